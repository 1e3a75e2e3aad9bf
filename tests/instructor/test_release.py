"""The student release (no answers) and the repository URL in one place."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from helpers.errors import LabError
from instructor.notebook_tools import (
    REPO_URL,
    check_repo_url,
    plan_student_notebooks,
    set_repo_url,
    write_student_notebooks,
)
from instructor.release import ReleaseError, build_release
from helpers.student import PARTS
from instructor.export_cells import (
    parts_from_notebooks,
    solution_module_source,
    strip_solution_markers,
)

REPO = Path(__file__).resolve().parents[2]
FORK = "https://github.com/my-uni/vae-lab-2027"
SOLUTION_CELLS = parts_from_notebooks(sorted((REPO / "solutions").glob("0*.ipynb")))
NOT_SHIPPED = "is not shipped with this copy of the lab"
NONE_SHIPPED = "the lab's reference parts are not shipped with this copy of the lab"


# --------------------------------------------------------------- the answers
# Characters of code (whitespace and comments left out) that mark a copy: more than
# one statement, so a line the scaffolding shares with an answer (train()'s
# `vae.compile(optimizer=keras.optimizers.Adam(learning_rate=...))`) is not one.
SHINGLE = 100


def _code(text: str) -> str:
    """``text``'s code without whitespace or comments: a copy is found reformatted."""
    kept = []
    for line in text.split("\n"):
        if not line.strip().startswith("#"):
            kept.append("".join(line.split("  #", 1)[0].split()))
    return "".join(kept)


def answers() -> dict[str, list[set[str]]]:
    """part -> for each ``### BEGIN/END SOLUTION`` region of its %%export cell, its
    code's every run of SHINGLE characters (all of it, when shorter)."""
    found = {}
    for part, source in SOLUTION_CELLS.items():
        regions = re.findall(
            r"### BEGIN SOLUTION[^\n]*\n(.*?)### END SOLUTION", source, re.S
        )
        found[part] = []
        for code in filter(None, map(_code, regions)):
            stop = max(1, len(code) - SHINGLE + 1)
            found[part].append({code[i : i + SHINGLE] for i in range(stop)})
    return found


def parts_answered_in(text: str) -> set[str]:
    """The parts any of whose solution regions is (even partly) in ``text``."""
    code = _code(text)
    return {
        part
        for part, regions in answers().items()
        if any(any(piece in code for piece in region) for region in regions)
    }


def test_every_part_has_answers_and_the_check_finds_them_in_the_solution():
    """What the release tests below look for: every part's answer regions, each
    found in vaelab/solution.py (so a copy of one in helpers/ would be caught)."""
    assert list(SOLUTION_CELLS) == list(PARTS)
    assert all(answers()[part] for part in PARTS), answers()
    solution = (REPO / "vaelab" / "solution.py").read_text(encoding="utf-8")
    assert parts_answered_in(solution) == set(PARTS)
    for part in PARTS:  # found in its own cell, reformatted too
        assert part in parts_answered_in(SOLUTION_CELLS[part])
        spaced = SOLUTION_CELLS[part].replace(", ", ",\n        ").replace("(", "( ")
        assert part in parts_answered_in(spaced)
    assert not parts_answered_in(
        (REPO / "helpers" / "generate.py").read_text(encoding="utf-8")
    )


# ----------------------------------------------------------------------- release
@pytest.fixture(scope="module")
def release(tmp_path_factory):
    dest = tmp_path_factory.mktemp("release") / "student-lab"
    summary = build_release(dest, REPO, repo_url=FORK)
    return dest, summary


# The repository's editable install would find modules the release lacks (the
# checkout's vaelab/) in the repository: a student's install of the release has
# no such finder, so the scripts run without it.
HERMETIC = textwrap.dedent("""
    import sys
    sys.meta_path[:] = [
        f
        for f in sys.meta_path
        if "__editable__" not in str(getattr(f, "__module__", ""))
    ]
    """)


def run_in_release(script: str, dest: Path, **env) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python whose ``helpers`` is the release's alone."""
    env = dict(os.environ, PYTHONPATH=str(dest), RELEASE=str(dest), **env)
    env.pop("VAE_LAB_WORKDIR", None)  # the release's lab makes its own
    result = subprocess.run(
        [sys.executable, "-c", HERMETIC + script],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def _helpers_code(dest: Path) -> dict[str, str]:
    return {
        str(path.relative_to(dest)): path.read_text(encoding="utf-8")
        for path in sorted((dest / "helpers").rglob("*.py"))
    }


def test_release_holds_notebooks_and_helpers_but_no_answers(release):
    dest, summary = release
    assert sorted(p.name for p in (dest / "notebooks").glob("*.ipynb")) == sorted(
        p.name for p in (REPO / "solutions").glob("*.ipynb")
    )
    assert len(summary.notebooks) == 6
    for name in (
        "solutions",
        "tests",
        "benchmarks",
        "INSTRUCTORS.md",
        "conftest.py",
        "instructor",  # the instructor's tools never ship
        "vaelab",  # nor the checkout's command line, demo and reference parts
    ):
        assert not (dest / name).exists(), name
    assert (dest / "pyproject.toml").is_file() and (
        dest / "helpers/lab.py"
    ).is_file()
    # the lab's reference parts (helpers/solution.py) are not shipped ...
    assert not (dest / "helpers/solution.py").exists()
    assert summary.given == ()
    assert "the lab's reference parts: none shipped" in summary.lines()
    # ... and every other module of helpers/ is
    shipped = {
        p.relative_to(dest / "helpers") for p in (dest / "helpers").rglob("*.py")
    }
    repo = {
        p.relative_to(REPO / "helpers")
        for p in (REPO / "helpers").rglob("*.py")
        if "__pycache__" not in p.parts
    }
    skipped = {Path(name.removeprefix("helpers/")) for name in summary.skipped}
    assert shipped == repo - {Path("solution.py")} - skipped
    # check_submission's list of graded cells goes with the notebooks
    assert (dest / "helpers/templates/graded_cells.json").is_file()
    # no helpers module holds any of the solution cells' answers
    found = {
        name: sorted(parts_answered_in(text))
        for name, text in _helpers_code(dest).items()
        if parts_answered_in(text)
    }
    assert not found, found
    assert not list((dest / "helpers").rglob("__pycache__"))
    for path in (dest / "notebooks").glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert summary.lines()[0].startswith("6 student notebook(s)")


def test_release_refuses_a_folder_in_use(release, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ReleaseError, match="is not empty"):
        build_release(tmp_path, REPO)


def test_release_refuses_to_give_an_unknown_part(tmp_path):
    with pytest.raises(ReleaseError, match="--give answers: not a part; the parts"):
        build_release(tmp_path / "out", REPO, give=("encoder", "answers"))
    assert not (tmp_path / "out").exists()


def test_self_checks_work_from_the_release_helpers(release):
    """A correct Sampling and KL pass the release's checks; the reference is gone."""
    dest, _ = release
    script = textwrap.dedent("""
        import importlib.util, os
        from pathlib import Path
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import keras
        from keras import layers, ops

        import helpers
        from helpers import student
        from helpers.checks import check_kl, check_sampling
        from helpers.errors import LabError

        assert helpers.__file__.startswith(os.environ["RELEASE"]), helpers.__file__


        class MySampling(layers.Layer):
            def __init__(self, seed=None, **kwargs):
                super().__init__(**kwargs)
                self.seed_generator = keras.random.SeedGenerator(seed)

            def call(self, inputs):
                z_mean, z_log_var = inputs
                eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
                return z_mean + ops.exp(0.5 * z_log_var) * eps


        check_sampling(MySampling)


        def kl_divergence(z_mean, z_log_var):
            per_dim = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            return ops.sum(per_dim, axis=-1)


        check_kl(kl_divergence)
        # The lab's reference parts are not in the release, and each way to them
        # says so.
        assert importlib.util.find_spec("helpers.solution") is None
        assert student.solution_sources() == {}
        try:
            student.solution_module()
            raise SystemExit("the lab's reference module is in the release")
        except LabError as error:
            print("MODULE GONE:", error)
        for part in student.PARTS:
            try:
                student.reference_source(part)
                raise SystemExit(f"the lab's {part} is in the release")
            except LabError as error:
                assert "is not shipped" in str(error), error
                assert f"notebook {student.PARTS[part]}" in str(error), error
        try:  # the switch: USE_LAB_PART["sampling"] = True
            student.load_student_parts(
                Path(os.environ["WORK"]), {"sampling": True}, check=False
            )
            raise SystemExit("USE_LAB_PART swapped in a part the release lacks")
        except LabError as error:
            print("REFERENCE GONE:", error)
        # ... and the scaffolding around them stays.
        from helpers.generate import latent_grid_2d, sample_in_batches, slerp_faces

        for kept in (latent_grid_2d, sample_in_batches, slerp_faces):
            assert "student release" not in (kept.__doc__ or ""), kept
        print("CHECK PASSED")
        """)
    result = run_in_release(script, dest, WORK=str(dest.parent / "work"))
    assert "CHECK PASSED" in result.stdout
    assert f"MODULE GONE: {NONE_SHIPPED}" in result.stdout
    assert (
        f"REFERENCE GONE: USE_LAB_PART['sampling']: the lab's 'sampling' {NOT_SHIPPED}"
        in result.stdout
    )


def test_the_students_code_runs_the_whole_lab_in_the_release(release, tmp_path):
    """Only the student's parts (the solutions' %%export cells) and the release's
    helpers: checks, training, evaluation and every figure work; what would fall
    back on the lab's parts says they are not shipped."""
    from vaelab.synthetic import make_slice

    dest, _ = release
    (tmp_path / "parts.json").write_text(json.dumps(SOLUTION_CELLS))
    make_slice(tmp_path / "slice", n=160, seed=0)  # the checkout's, not the release's
    script = textwrap.dedent("""
        import json, os
        from pathlib import Path
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import numpy as np

        import helpers
        from helpers import generate, student
        from helpers.cache import load_split, prepare_cache
        from helpers.config import preset
        from helpers.errors import LabError
        from helpers.metrics import evaluate
        from helpers.runs import load_run
        from helpers.training import train, train_student

        assert helpers.__file__.startswith(os.environ["RELEASE"]), helpers.__file__
        root = Path(os.environ["WORK"])
        for part, source in json.loads((root / "parts.json").read_text()).items():
            student.export_source(part, source, root / "work")
        prepare_cache(root / "slice", root / "cache", progress=False)
        config = preset("smoke", latent_dim=8, filters=(8, 16, 32), batch_size=16,
                        epochs=1, train_limit=64, val_limit=32)
        parts = student.load_student_parts(root / "work", config=config)
        assert parts.failed == [] and not parts.lab_parts, parts.table()
        assert "sample_faces" in parts.status and "latent_grid" in parts.status
        train_student(parts, config, root / "cache", root / "run", verbose=0)
        student.import_student_module(root / "work", verbose=False)
        run = load_run(root / "run")
        assert type(run.vae).__module__ == "student_vae", type(run.vae)
        report = evaluate(run, n=12, gmm_fit_n=40, write=False,
                          sample_faces=parts.sample_faces)
        assert report["n"] == 12 and "prior_samples" in report["sharpness"]
        train_u8, _, _ = load_split(root / "cache", "train")
        val, attrs, _ = load_split(root / "cache", "validation")
        figures = generate.write_figures(
            run.vae, root / "figures", config.value_range, np.asarray(train_u8[:40]),
            np.asarray(val[:12]), attrs[:12], sample_faces=parts.sample_faces,
            interpolate_faces=parts.interpolate_faces)
        names = sorted(p.name for p in figures)
        assert {"prior_samples.png", "interpolation.png", "latent_grid_2d.png"} <= set(
            names), names
        for call in (lambda: evaluate(run, n=12, gmm_fit_n=40, write=False),
                     lambda: generate.write_figures(run.vae, root / "f2", (0, 1),
                                                    train_u8[:40], val[:12],
                                                    attrs[:12]),
                     lambda: train(config, root / "cache", root / "lab-run",
                                   verbose=0)):
            try:
                call()
                raise SystemExit("the lab's parts ran in the release")
            except LabError as error:
                assert "reference parts are not shipped" in str(error), error
        assert not (root / "lab-run").exists() or not any(
            (root / "lab-run").glob("*.keras"))
        print("RELEASE LAB OK", len(names), "figures")
        """)
    result = run_in_release(script, dest, WORK=str(tmp_path))
    assert "RELEASE LAB OK" in result.stdout


def test_a_release_gives_out_exactly_the_parts_named(tmp_path):
    """give=("decoder", "encoder"): solution.py holds those parts' cells and no
    other; USE_LAB_PART swaps in exactly the solution's source of a given part and
    says a part not given is not shipped."""
    dest = tmp_path / "release"
    summary = build_release(dest, REPO, give=("decoder", "encoder"))
    assert summary.given == ("encoder", "decoder")  # in PARTS order
    assert "the lab's reference parts: given out: encoder, decoder" in summary.lines()
    from helpers.student import solution_sources

    shipped = solution_sources(dest / "helpers" / "solution.py")
    assert list(shipped) == ["encoder", "decoder"]
    for part in shipped:
        cell = strip_solution_markers(SOLUTION_CELLS[part]).strip("\n") + "\n"
        assert shipped[part] == cell, part
    code = _helpers_code(dest)
    assert parts_answered_in(code.pop("helpers/solution.py")) == {"encoder", "decoder"}
    found = {name: parts_answered_in(text) for name, text in code.items()}
    assert not any(found.values()), found
    # In the release: the student's encoder is broken, the switch swaps in the
    # lab's; every other part is the student's own.
    parts = dict(SOLUTION_CELLS, encoder="def build_encoder(config):\n    1 / 0\n")
    (tmp_path / "parts.json").write_text(json.dumps(parts))
    script = textwrap.dedent("""
        import json, os
        from pathlib import Path
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import numpy as np

        import helpers
        from helpers import student
        from helpers.config import preset
        from helpers.errors import LabError

        assert helpers.__file__.startswith(os.environ["RELEASE"]), helpers.__file__
        root = Path(os.environ["WORK"])
        cells = json.loads((root / "cells.json").read_text())
        for part, source in json.loads((root / "parts.json").read_text()).items():
            student.export_source(part, source, root / "work")
        assert student.reference_source("encoder") == cells["encoder"]
        config = preset("smoke", latent_dim=8, filters=(8, 16, 32))
        parts = student.load_student_parts(
            root / "work", {"encoder": True}, config=config, check=False)
        assert parts.lab_parts == ["encoder"], parts.table()
        assert parts.origins()["encoder"] == "lab"
        assert parts.origins()["decoder"] == "student"
        assembled = parts.path.read_text()
        assert cells["encoder"] in assembled and "1 / 0" not in assembled
        assert parts.build_encoder.__module__ == student.MODULE_NAME
        vae = student.build_student_vae(parts, config)
        z_mean, z_log_var = vae.encoder(np.zeros((2, *config.image_shape), "float32"))
        assert z_mean.shape == (2, 8) == z_log_var.shape
        for part in ("sampling", "losses", "vae_model"):
            try:
                student.load_student_parts(root / "work", {part: True}, config=config,
                                           check=False)
                raise SystemExit(f"USE_LAB_PART[{part!r}] swapped in a part not given")
            except LabError as error:
                assert "is not shipped" in str(error), error
        print("GIVEN OK")
        """)
    cells = {
        part: strip_solution_markers(SOLUTION_CELLS[part]).strip("\n") + "\n"
        for part in ("encoder", "decoder")
    }
    (tmp_path / "cells.json").write_text(json.dumps(cells))
    result = run_in_release(script, dest, WORK=str(tmp_path))
    assert "GIVEN OK" in result.stdout


def test_time_estimates_need_no_lab_parts(monkeypatch, tmp_path):
    """04 and 06 print training-time estimates in the release too."""
    from helpers import student, timing
    from helpers.config import preset

    config = preset("smoke", latent_dim=5)
    want = timing.model_flops(config)
    monkeypatch.setattr(student, "SOLUTION_FILE", tmp_path / "absent.py")
    assert timing.model_flops(config) == want


def test_the_fallbacks_say_a_part_not_given_is_not_shipped(monkeypatch, tmp_path):
    """A release that gives out the encoder alone: evaluate and write_figures
    without the student's functions say the lab's are not shipped."""
    import types

    from helpers import generate, metrics, student

    path = tmp_path / "solution.py"
    text = solution_module_source({"encoder": SOLUTION_CELLS["encoder"]})
    path.write_text(text, encoding="utf-8")
    module = types.ModuleType(student.SOLUTION_MODULE)
    exec(compile(text, str(path), "exec"), module.__dict__)
    monkeypatch.setattr(student, "SOLUTION_FILE", path)
    monkeypatch.setitem(sys.modules, student.SOLUTION_MODULE, module)
    assert student.reference_source("encoder")  # given: USE_LAB_PART works
    with pytest.raises(LabError, match="not shipped"):
        metrics.evaluate(tmp_path / "run", n=4, write=False)
    with pytest.raises(LabError, match="not shipped"):
        generate.write_figures(None, tmp_path / "f", (0.0, 1.0), None, None, None)


def _helpers_used(source: str, modules: dict) -> set[tuple[str, str]]:
    """(module, name) of every helpers name a cell imports or reads as mod.name.

    ``modules`` maps the names earlier cells imported to what they are; the cell's
    own imports are added to it (a notebook's cells share one namespace).
    """
    tree = _parse_cell(source)
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "helpers"
        ):
            for alias in node.names:
                used.add((node.module, alias.name))
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("helpers"):
                    modules[alias.asname or alias.name] = alias.name
                    if alias.name.count(".") and alias.asname is None:
                        used.add(tuple(alias.name.rsplit(".", 1)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in modules:
                used.add((modules[node.value.id], node.attr))
    return used


def _parse_cell(source: str) -> ast.Module:
    lines = [  # a magic or shell line becomes `pass`, at its indentation
        (
            line[: len(line) - len(line.lstrip())] + "pass"
            if line.lstrip().startswith(("%", "!"))
            else line
        )
        for line in source.split("\n")
    ]
    return ast.parse(textwrap.dedent("\n".join(lines)))


def _called(source: str, modules: dict) -> list[tuple[str, int, set[str]]]:
    """(qualified name, positional count, keywords) of each helpers call in a cell."""
    calls = []
    for node in ast.walk(_parse_cell(source)):
        if not isinstance(node, ast.Call):
            continue
        func, name = node.func, None
        if isinstance(func, ast.Name) and func.id in modules:
            name = modules[func.id]
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id in modules:
                name = f"{modules[func.value.id]}.{func.attr}"
        if name:
            calls.append((name, len(node.args), {k.arg for k in node.keywords}))
    return calls


# What the student release does not ship, and the calls that fall back on it
# unless they are given the student's parts: {call: [(keyword, position), ...]}.
LAB_ONLY = {
    ("helpers", "solution"),
    ("helpers.student", "solution_module"),
    ("helpers.student", "reference_source"),
    ("helpers.student", "solution_sources"),
}
FALLS_BACK = {
    "helpers.metrics.evaluate": [("sample_faces", 10)],
    "helpers.generate.write_figures": [("sample_faces", 7), ("interpolate_faces", 8)],
    "helpers.training.train": [("parts", 3)],
}


def _lab_code_used(source: str, modules: dict) -> list[str]:
    used = _helpers_used(source, modules)
    found = [
        ".".join(name)
        for name in sorted(used)
        if name in LAB_ONLY or name[0].startswith("helpers.solution")
    ]
    for name, positional, keywords in _called(source, modules):
        for keyword, position in FALLS_BACK.get(name, ()):
            if keyword not in keywords and positional <= position:
                found.append(f"{name} without {keyword}=")
    return found


def test_no_notebook_cell_uses_what_the_release_leaves_out():
    """Every cell runs in the release: none may use the lab's reference parts, nor
    call what falls back on them without the student's own."""
    found = []
    for path in sorted((REPO / "solutions").glob("0*.ipynb")):
        modules = {}
        for index, cell in enumerate(nbformat.read(str(path), as_version=4).cells):
            if cell.cell_type == "code":
                for name in _lab_code_used(cell.source, modules):
                    found.append(f"{path.name} cell {index}: {name}")
    assert not found, "\n".join(found)
    # The scan sees through earlier cells' imports, and finds each kind of use.
    earlier = {}
    _helpers_used("from helpers import metrics, student", earlier)  # an earlier cell
    assert _lab_code_used("student.solution_module()", earlier) == [
        "helpers.student.solution_module"
    ]
    assert _lab_code_used("metrics.evaluate(run, n=8)", earlier) == [
        "helpers.metrics.evaluate without sample_faces="
    ]
    assert not _lab_code_used("metrics.evaluate(run, sample_faces=mine)", earlier)
    assert _lab_code_used("from helpers.solution import VAE", {}) == [
        "helpers.solution.VAE"
    ]
    assert _lab_code_used("import helpers.solution", {}) == ["helpers.solution"]
    assert _lab_code_used("from helpers import solution", {}) == ["helpers.solution"]
    uses = _lab_code_used(
        "from helpers.generate import write_figures as wf\n"
        "wf(vae, out, vr, a, b, c, sample_faces=s)",
        {},
    )
    assert uses == ["helpers.generate.write_figures without interpolate_faces="]
    assert _lab_code_used(
        "from helpers.training import train\ntrain(c, d, r, parts)", {}
    ) == []


# ------------------------------------------------------------------ repository URL
def _links(nb) -> list[str]:
    text = "\n".join(cell.source for cell in nb.cells)
    return re.findall(
        r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+|git\+https://\S+?(?=[\"'\s])",
        text,
    )


def _badges(nb) -> list[str]:
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    return re.findall(r"colab\.research\.google\.com/github/(\S+?\.ipynb)", text)


def _student_links_ok(path: Path, repo: str) -> None:
    """Every badge opens this notebook's student twin, every install line ``repo``."""
    nb = nbformat.read(str(path), as_version=4)
    links = _links(nb)
    assert len(links) >= 2, (path, links)  # the badge and the install line
    assert all(repo in link for link in links), (path, links)
    badges = _badges(nb)
    assert badges == [f"{repo}/blob/main/notebooks/{path.name}"], (path, badges)


def test_every_student_facing_notebook_opens_the_student_notebooks(tmp_path):
    """--repo-url once; then notebooks/, the release and the course all point there."""
    from instructor.commands import main
    from instructor.notebook_tools import repo_url_in

    solutions = tmp_path / "solutions"
    shutil.copytree(REPO / "solutions", solutions)
    notebooks = tmp_path / "notebooks"
    common = ["make-student", "--solutions", str(solutions)]
    assert main(common + ["--out", str(notebooks), "--repo-url", FORK]) == 0
    assert repo_url_in(solutions) == FORK  # remembered in the solutions
    assert main(common + ["--out", str(notebooks), "--check"]) == 0  # no URL again
    assert main(common + ["--release", str(tmp_path / "release")]) == 0
    assert main(common + ["--course", str(tmp_path / "course")]) == 0
    repo = FORK.removeprefix("https://github.com/")
    for path in sorted(notebooks.glob("*.ipynb")):
        _student_links_ok(path, repo)
        _student_links_ok(tmp_path / "release" / "notebooks" / path.name, repo)
        _student_links_ok(tmp_path / "course" / "source" / path.stem / path.name, repo)
    readme = (tmp_path / "release" / "README.md").read_text(encoding="utf-8")
    assert f"git+{FORK}" in readme and "solutions" not in readme
    assert readme.count(f"github/{repo}/blob/main/notebooks/") == 6
    assert "Instructor" not in readme and "make-student" not in readme


def test_repository_notebooks_point_at_the_one_repo_url():
    """One URL (the one the solutions name, whatever --repo-url wrote) everywhere."""
    from instructor.notebook_tools import repo_url_in

    url = repo_url_in(REPO / "solutions")
    assert url is not None, "the solutions' install lines name different repositories"
    repo = url.removeprefix("https://github.com/")
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        _student_links_ok(path, repo)
    for folder in ("solutions", "notebooks"):
        for path in sorted((REPO / folder).glob("*.ipynb")):
            links = _links(nbformat.read(str(path), as_version=4))
            assert len(links) >= 2, (path, links)  # the badge and the install line
            assert all(repo in link for link in links), (path, links)


def test_repo_url_points_badges_and_installs_at_a_fork(tmp_path, release):
    solutions, out = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    for path in sorted((REPO / "solutions").glob("*.ipynb"))[:2]:
        (solutions / path.name).write_text(path.read_text(encoding="utf-8"))
    assert write_student_notebooks(solutions, out, repo_url=FORK + ".git")
    for folder in (solutions, out):
        for path in folder.glob("*.ipynb"):
            links = _links(nbformat.read(str(path), as_version=4))
            assert links and all("my-uni/vae-lab-2027" in link for link in links)
            assert "vae-celeba-lab/vae-celeba-lab" not in path.read_text()
    assert plan_student_notebooks(solutions, out, FORK).ok
    assert not plan_student_notebooks(solutions, out).ok  # the default differs
    dest, _ = release
    for path in (dest / "notebooks").glob("*.ipynb"):
        links = _links(nbformat.read(str(path), as_version=4))
        assert links and all("my-uni/vae-lab-2027" in link for link in links), path


@pytest.mark.parametrize(
    "url", ["git@github.com:me/lab.git", "https://gitlab.com/me/lab", "me/lab"]
)
def test_repo_url_must_be_a_github_repository(url):
    with pytest.raises(LabError, match="is not a GitHub repository URL"):
        check_repo_url(url)


def test_set_repo_url_counts_what_it_rewrote():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "[![Open](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/a/b/blob/main/solutions/x.ipynb)"
        ),
        nbformat.v4.new_code_cell('PACKAGE = "lab @ git+https://github.com/a/b"'),
    ]
    assert set_repo_url(nb, FORK) == 2
    assert set_repo_url(nb, FORK) == 0
    assert (
        "github/my-uni/vae-lab-2027/blob/main/solutions/x.ipynb" in nb.cells[0].source
    )
    assert (
        nb.cells[1].source
        == 'PACKAGE = "lab @ git+https://github.com/my-uni/vae-lab-2027"'
    )


# ---------------------------------------------------------------------- the CLI
def test_make_student_release_course_and_repo_url_from_the_command_line(
    tmp_path, capsys
):
    from instructor.commands import main

    solutions = str(REPO / "solutions")
    dest = tmp_path / "release"
    assert (
        main(
            [
                "make-student",
                "--solutions",
                solutions,
                "--release",
                str(dest),
                "--repo-url",
                FORK,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 student notebook(s)" in out
    assert "the lab's reference parts: none shipped" in out
    assert not (dest / "helpers/solution.py").exists()
    assert "my-uni/vae-lab-2027" in (dest / "notebooks/03_loss.ipynb").read_text()
    assert main(["make-student", "--solutions", solutions, "--release", str(dest)]) == 2
    assert "is not empty" in capsys.readouterr().err
    given = tmp_path / "given"
    args = ["make-student", "--solutions", solutions, "--release", str(given)]
    assert main(args + ["--give", "decoder,encoder"]) == 0
    assert "given out: encoder, decoder" in capsys.readouterr().out
    from helpers.student import solution_sources

    assert list(solution_sources(given / "helpers/solution.py")) == [
        "encoder",
        "decoder",
    ]
    assert main(args[:-1] + [str(tmp_path / "g2"), "--give", "encoder,answers"]) == 2
    assert "--give answers: not a part" in capsys.readouterr().err
    course = tmp_path / "course"
    assert (
        main(["make-student", "--solutions", solutions, "--course", str(course)]) == 0
    )
    assert (course / "source/03_loss/03_loss.ipynb").is_file()
    assert "c.Execute.timeout" in (course / "nbgrader_config.py").read_text()
    assert main(["make-student", "--repo-url", "gitlab.com/x/y", "--check"]) == 2
    assert "not a GitHub repository URL" in capsys.readouterr().err
    args = ["make-student", "--solutions", solutions, "--out", str(REPO / "notebooks")]
    assert main(args + ["--check", "--repo-url", FORK]) == 1
    assert f"--repo-url {FORK}" in capsys.readouterr().out
