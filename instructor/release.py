"""What students get: a release without the answers, and an nbgrader course.

The only reference implementation of what students write is ``vaelab/solution.py``
(in the checkout), generated from the solutions' ``%%export`` cells.
:func:`build_release` writes the student notebooks and a copy of ``helpers``
without that file, so ``USE_LAB_PART`` there says the lab's part is not shipped. A
course that hands out earlier answers (so later notebooks can go on) gives them by
name: ``give=("encoder", "decoder")`` writes a ``solution.py`` with those parts
alone. Nothing else of the solutions goes in: no ``solutions/``, no tests.

:func:`write_nbgrader_course` lays the solutions out as an nbgrader course
(``source/<assignment>/<notebook>.ipynb`` and ``nbgrader_config.py``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import LabError
from helpers.runs import SOLUTION_FILE
from helpers.student import PARTS
from instructor.export_cells import parts_from_notebooks, solution_module_source

# Top-level files of the repository that students need (installing, reading).
RELEASE_FILES = ("pyproject.toml", "README.md", "LICENSE", "requirements.txt")
RELEASE_FOLDERS = ("report_template",)
# A file of helpers/ whose first lines carry this is never released.
INSTRUCTOR_ONLY = "# INSTRUCTOR ONLY"


class ReleaseError(LabError):
    """The release cannot be built (bad markers, a folder in the way)."""


@dataclass
class ReleaseSummary:
    """What :func:`build_release` wrote."""

    dest: Path
    notebooks: list[Path] = field(default_factory=list)
    given: tuple[str, ...] = ()
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{len(self.notebooks)} student notebook(s) in {self.dest}/notebooks"]
        out.append(
            "the lab's reference parts: "
            + (f"given out: {', '.join(self.given)}" if self.given else "none shipped")
        )
        out += [f"left out (instructor only): {s}" for s in self.skipped]
        return out


def check_given(give) -> tuple[str, ...]:
    """Return the parts to give out, in PARTS order; refuse unknown names."""
    names = [g.strip() for g in (give or ()) if g.strip()]
    unknown = [g for g in names if g not in PARTS]
    if unknown:
        raise ReleaseError(
            f"--give {','.join(unknown)}: not a part; the parts are {', '.join(PARTS)}"
        )
    return tuple(p for p in PARTS if p in names)


def _copy_helpers(src: Path, dest: Path, summary: ReleaseSummary) -> None:
    for path in sorted(src.rglob("*")):
        relative = path.relative_to(src)
        if "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        if path == src / SOLUTION_FILE.name:  # the answers: written below, if given
            continue
        target = dest / relative
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".py":
            head = "\n".join(path.read_text(encoding="utf-8").split("\n")[:5])
            if INSTRUCTOR_ONLY in head:
                summary.skipped.append(f"helpers/{relative}")
                continue
        shutil.copy2(path, target)


def build_release(
    dest: str | Path,
    repo: str | Path = ".",
    solutions: str | Path | None = None,
    repo_url: str | None = None,
    give=(),
) -> ReleaseSummary:
    """Write the student release into ``dest`` (which must not exist or be empty).

    Args:
        dest: the release folder: ``notebooks/``, ``helpers/`` (without
            ``solution.py``) and the files needed to install it.
        repo: the instructor's repository (holding ``helpers/`` and ``solutions/``).
        solutions: the solution notebooks (default: ``<repo>/solutions``).
        repo_url: the repository students install from and open in Colab (default:
            :data:`instructor.notebook_tools.REPO_URL`).
        give: parts whose solution the release ships (``USE_LAB_PART`` then
            swaps them in), e.g. ``("encoder", "decoder")``; default none.

    Raises:
        ReleaseError: ``dest`` is not empty, or ``give`` names an unknown part.
    """
    from instructor.notebook_tools import REPO_URL, plan_student_notebooks, repo_url_in

    repo, dest = Path(repo), Path(dest)
    given = check_given(give)
    solutions = Path(solutions) if solutions is not None else repo / "solutions"
    repo_url = repo_url or repo_url_in(solutions) or REPO_URL
    if dest.exists() and any(dest.iterdir()):
        raise ReleaseError(
            f"{dest} is not empty: give a new folder for the release (it is "
            f"written from scratch so nothing of the solutions is left in it)"
        )
    plan = plan_student_notebooks(solutions, dest / "notebooks", repo_url)
    summary = ReleaseSummary(dest=dest, given=given)
    (dest / "notebooks").mkdir(parents=True, exist_ok=True)
    for path, text in plan.expected.items():
        path.write_text(text, encoding="utf-8")
        summary.notebooks.append(path)
    _copy_helpers(repo / "helpers", dest / "helpers", summary)
    if given:
        sources = parts_from_notebooks(sorted(solutions.glob("[0-9][0-9]_*.ipynb")))
        chosen = {part: sources[part] for part in given}
        (dest / "helpers" / SOLUTION_FILE.name).write_text(
            solution_module_source(chosen), encoding="utf-8"
        )
    for name in RELEASE_FILES:
        if name == "README.md":  # the repository's README is the instructor's
            text = release_readme(repo_url, [p.stem for p in summary.notebooks])
            (dest / name).write_text(text, encoding="utf-8")
        elif (repo / name).is_file():
            shutil.copy2(repo / name, dest / name)
    for name in RELEASE_FOLDERS:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, dest / name)
    return summary


def release_readme(repo_url: str, stems: list[str]) -> str:
    """The student release's README: open each notebook, install, hand in."""
    repo = repo_url.removeprefix("https://github.com/")
    rows = "\n".join(
        f"| {stem} | [open in Colab](https://colab.research.google.com/github/{repo}"
        f"/blob/main/notebooks/{stem}.ipynb) |"
        for stem in sorted(stems)
    )
    return f"""\
# A variational autoencoder on CelebA: the lab

Six notebooks, in order. Open each one in Colab from the table (Runtime > Change
runtime type > GPU), run the cells from the top, write your code where a cell says
`# YOUR CODE HERE` and your answers where it says `YOUR ANSWER HERE`, and run each
self-check below an exercise until it passes.

| notebook | |
| --- | --- |
{rows}

The first cell of every notebook installs the lab's helpers:
`pip install "vae-celeba-lab @ git+{repo_url}"` (on your own machine too).

Hand in: the last cell of each notebook, `check_submission(...)`, says whether
anything is still empty; then *File > Download > Download .ipynb* and upload the
file as your instructor asks.
"""


# ------------------------------------------------------------------ nbgrader course
NBGRADER_CONFIG = """\
# nbgrader configuration written by `python -m instructor make-student --course`.
import os

c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "vae-celeba-lab"
# Grade in the mode the self-checks were written for: the generated slice (SMOKE=1).
# nbgrader's kernels inherit this process's environment (it adds
# NBGRADER_EXECUTION=autograde), so every command run from this folder grades so;
# the lab then shrinks its training cells, and each student's notebooks share a
# work folder of their own (autograded/<student>/.vae-lab). A notebook graded
# without SMOKE=1 stops its kernel, so nbgrader fails it instead of scoring it.
os.environ["SMOKE"] = "1"
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
c.Execute.timeout = {timeout}
# nbgrader's stub is the same as make-student's, minus the "# TODO: hint" line.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"

# Feedback (nbgrader generate_feedback) keeps the hidden tests hidden: nbgrader's
# ClearHiddenTests removes their code from the test cells, and a failing test cell
# shows only its last line (the lab's one-line message), never a traceback that
# quotes the cell's lines. The scores are unchanged (GetGrades reads them first).
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    ClearHiddenTests,
    GetGrades,
    NbGraderPreprocessor,
)


class OneLineTestErrors(NbGraderPreprocessor):
    # A test cell's error shows as `Name: message`, without its traceback.

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {{}}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{{output['ename']}}: {{output['evalue']}}"]
        return cell, resources


c.GenerateFeedback.preprocessors = [
    GetGrades,
    OneLineTestErrors,
    ClearHiddenTests,
    CSSHTMLHeaderPreprocessor,
]
"""


def write_nbgrader_course(
    root: str | Path,
    solutions: str | Path = "solutions",
    assignment: str | None = None,
    notebooks: list[str] | None = None,
    repo_url: str | None = None,
    timeout: int = 600,
) -> list[Path]:
    """Lay the stamped solutions out as an nbgrader course under ``root``.

    Args:
        root: the course folder (created); gets ``nbgrader_config.py``.
        solutions: the solution notebooks.
        assignment: one assignment holding every notebook; default: one
            assignment per notebook, named after it (``source/03_loss/03_loss.ipynb``).
        notebooks: stems to include (default: all).
        repo_url: see :func:`instructor.notebook_tools.prepare_solution`.
        timeout: seconds one cell may run during ``nbgrader autograde``.

    Returns:
        The source notebooks written.
    """
    import nbformat

    from instructor.notebook_tools import (
        REPO_URL,
        notebook_text,
        prepare_solution,
        repo_url_in,
        student_links,
    )

    root, solutions = Path(root), Path(solutions)
    repo_url = repo_url or repo_url_in(solutions) or REPO_URL
    written = []
    for path in sorted(solutions.glob("*.ipynb")):
        if notebooks is not None and path.stem not in notebooks:
            continue
        nb = prepare_solution(
            nbformat.read(str(path), as_version=4), path.stem, repo_url
        )
        # nbgrader's release is what students open: its badge opens the student
        # notebook (notebooks/), never the answers (solutions/)
        student_links(nb)
        target = root / "source" / (assignment or path.stem) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(notebook_text(nb), encoding="utf-8")
        written.append(target)
    if not written:
        raise LabError(f"no solution notebooks in {solutions}")
    config = root / "nbgrader_config.py"
    if not config.exists():
        config.write_text(NBGRADER_CONFIG.format(timeout=timeout), encoding="utf-8")
    return written
