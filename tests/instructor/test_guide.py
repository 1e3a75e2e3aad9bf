"""INSTRUCTORS.md is executed: every fenced bash block runs as written, or says why not.

Each ```bash block is preceded by ``<!-- guide-test: run -->`` (run here, in order,
in a scratch copy of the repository, from its root), ``<!-- guide-test: slow ...
-->`` (minutes of grading or testing: run with ``LAB_AUTOGRADE_ALL=1``) or
``<!-- guide-test: skip (why) -->`` (network, GPU or a trained run: never here). A
block without a marker fails the test, so the guide cannot grow an unchecked
command.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "INSTRUCTORS.md"
BLOCK = re.compile(
    r"(?:<!-- guide-test: (?P<kind>run|slow|skip)(?P<why>[^>]*)-->\s*\n)?"
    r"[ \t]*```bash\n(?P<code>.*?)\n[ \t]*```",
    re.DOTALL,
)
COPIED = ("helpers", "instructor", "vaelab", "solutions", "notebooks", "tests", "report_template")
FILES = ("INSTRUCTORS.md", "README.md", "pyproject.toml", "requirements.txt", "LICENSE")


def blocks() -> list[tuple[str, str, str]]:
    """(kind, why, code) for every fenced bash block of the guide, in order."""
    out = []
    for match in BLOCK.finditer(GUIDE.read_text(encoding="utf-8")):
        code = "\n".join(line.strip() for line in match["code"].split("\n"))
        out.append((match["kind"] or "", match["why"].strip(), code.replace("\\\n", " ")))
    return out


def test_every_bash_block_says_whether_it_runs():
    found = blocks()
    assert len(found) >= 8
    unmarked = [code for kind, _, code in found if not kind]
    assert unmarked == [], f"mark these guide blocks with <!-- guide-test: ... -->: {unmarked}"
    for kind, why, code in found:
        if kind in ("slow", "skip"):
            assert why.startswith("("), f"say why a block is {kind}: {code}"


def _copy_repo(root: Path) -> Path:
    repo = root / "repo"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints")
    for name in COPIED:
        shutil.copytree(REPO / name, repo / name, ignore=ignore)
    for name in FILES:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, repo / name)
    return repo


def _hand_ins(repo: Path) -> None:
    """What the guide says to collect: ada's notebooks, one saved by Colab."""
    from handins import as_colab_saves

    course = repo.parent / "vae-course"
    for path in sorted((course / "release").glob("*/*.ipynb")):
        target = course / "submitted" / "ada" / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nb = nbformat.read(str(path), as_version=4)
        if path.stem == "02_model":
            nb = as_colab_saves(nb)
        nbformat.write(nb, str(target))
    shutil.copy2(repo / "notebooks" / "03_loss.ipynb", repo / "ada.ipynb")


def test_the_guide_runs_as_written(tmp_path):
    pytest.importorskip("nbgrader")
    repo = _copy_repo(tmp_path)
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=os.pathsep.join([bin_dir, env["PATH"]]),
        PYTHONPATH=str(repo),
        HOME=str(tmp_path / "home"),
        GIT_AUTHOR_NAME="Guide Test",
        GIT_AUTHOR_EMAIL="guide@example.org",
        GIT_COMMITTER_NAME="Guide Test",
        GIT_COMMITTER_EMAIL="guide@example.org",
    )
    env.pop("VAE_LAB_WORKDIR", None)
    (tmp_path / "home").mkdir()
    slow = os.environ.get("LAB_AUTOGRADE_ALL") == "1"
    placed = False
    ran = 0
    for kind, why, code in blocks():
        if kind == "skip" or (kind == "slow" and not slow):
            continue
        if "hand-in" in why and not placed:
            _hand_ins(repo)
            placed = True
        done = subprocess.run(
            ["bash", "-e", "-c", code],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert done.returncode == 0, f"{code}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        ran += 1
    assert ran >= 6
    # what the blocks made: the links, the course, the repairs
    release = tmp_path / "vae-lab-student"
    assert "ORG/vae-lab-student/blob/main/notebooks/02_model.ipynb" in (
        release / "README.md"
    ).read_text()
    course = tmp_path / "vae-course"
    assert len(list((course / "release").glob("*/*.ipynb"))) == 6
    badge = "github/ORG/vae-lab-student/blob/main/notebooks/03_loss.ipynb"
    assert badge in (course / "release" / "03_loss" / "03_loss.ipynb").read_text()
    assert (course / "submitted-before-repair" / "ada" / "02_model").is_dir()
    assert (repo / "ada-fixed.ipynb").is_file()
