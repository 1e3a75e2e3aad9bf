"""nbgrader itself on the real solutions: release, autograde, repaired submissions.

One course (a single assignment ``lab`` with the six notebooks) is generated once
for the module. ``nbgrader generate_assignment`` runs on all six notebooks;
``nbgrader autograde`` executes notebooks (12-31 s each on 2 CPU cores, under
``SMOKE=1``), so full and zero points are proven on the two fastest notebooks,
02_model and 03_loss, and a repaired submission is graded for 03_loss.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_answers import type_in_answers

from instructor.grading import grade_cells, repair_submission
from instructor.grading import notebook_text
from instructor.notebook_tools import _COLAB, plan_student_notebooks
from instructor.release import write_nbgrader_course

pytest.importorskip("nbgrader")

REPO = Path(__file__).resolve().parents[2]
ASSIGNMENT = "lab"
# CI autogrades the two fastest notebooks; LAB_AUTOGRADE_ALL=1 autogrades all six
# (01..06 in order: later notebooks load the parts the same student exported).
ALL_SIX = ("01_setup", "02_model", "03_loss", "04_train", "05_generate", "06_analysis")
GRADED = ALL_SIX if os.environ.get("LAB_AUTOGRADE_ALL") else ("02_model", "03_loss")


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config import Config

    root = tmp_path_factory.mktemp("course")
    write_nbgrader_course(root, REPO / "solutions", assignment=ASSIGNMENT, timeout=300)
    with pytest.MonkeyPatch.context() as patch:
        # Kernels find the lab's helpers and run on the generated slice; nbgrader
        # calls alembic from the interpreter's bin folder.
        patch.setenv("SMOKE", "1")
        patch.setenv(
            "PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        )
        patch.setenv(
            "PATH",
            os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        )
        patch.chdir(root)
        config = Config()
        config.CourseDirectory.root = str(root)
        config.Execute.timeout = 300
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        result = api.generate_assignment(ASSIGNMENT)
        assert result["success"], result["log"]
        yield root, api


def _read(path: Path):
    return nbformat.read(str(path), as_version=4)


def _solution_lines(nb) -> set[str]:
    """Lines inside solution or hidden-test regions that appear nowhere else."""
    inside, outside = set(), set()
    for cell in nb.cells:
        in_region = False
        for line in cell.source.split("\n"):
            if re.search(r"### (BEGIN|END) (SOLUTION|HIDDEN TESTS)", line):
                in_region = "BEGIN" in line
                continue
            (inside if in_region else outside).add(line.strip())
    return {line for line in inside - outside if len(line) >= 12}


def test_generate_assignment_releases_six_notebooks_without_solutions(course):
    root, _ = course
    released = sorted((root / "release" / ASSIGNMENT).glob("*.ipynb"))
    assert [p.name for p in released] == sorted(
        p.name for p in (REPO / "solutions").glob("*.ipynb")
    )
    assert len(released) == 6
    for path in released:
        source = _read(root / "source" / ASSIGNMENT / path.name)
        release = _read(path)
        text = "\n".join(cell.source for cell in release.cells)
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text, path.name
        lines = {line.strip() for line in text.split("\n")}
        leaked = [line for line in _solution_lines(source) if line in lines]
        assert leaked == [], (path.name, leaked)
        for cell in release.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("solution") and cell.cell_type == "code":
                assert "raise NotImplementedError()" in cell.source
            if meta.get("solution") and cell.cell_type == "markdown":
                assert cell.source == "YOUR ANSWER HERE"
        assert set(grade_cells(release)) == set(grade_cells(source)), path.name
        badges = re.findall(r"colab\.research\.google\.com/github/\S+?\.ipynb", text)
        assert badges and all(  # students open the student notebook, not answers
            b.endswith(f"/blob/main/notebooks/{path.name}") for b in badges
        ), badges


def _normalised(nb, ours: bool) -> list[tuple[str, str, str | None]]:
    """(type, source, grade_id) per cell, with each tool's own additions taken out."""
    cells = nb.cells[1:] if ours else nb.cells  # make-student's notice
    out = []
    for cell in cells:
        lines = cell.source.split("\n")
        if ours:  # make-student's hint lines after the stubs
            lines = [
                line
                for i, line in enumerate(lines)
                if not (
                    i
                    and lines[i - 1].strip() in ("# YOUR CODE HERE", "YOUR ANSWER HERE")
                    and re.match(r"\s*(# TODO: |\*Hint: )", line)
                )
            ]
        source = "\n".join(lines)
        if not ours and cell.cell_type == "markdown":  # make-student repoints badges
            source = _COLAB.sub(r"\1notebooks/", source)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        out.append((cell.cell_type, source, grade_id))
    return out


def test_make_student_agrees_with_nbgrader(course, tmp_path):
    root, _ = course
    plan = plan_student_notebooks(REPO / "solutions", tmp_path)
    assert len(plan.expected) == 6
    for path, text in plan.expected.items():
        ours = nbformat.reads(text, as_version=4)
        theirs = _read(root / "release" / ASSIGNMENT / path.name)
        assert _normalised(ours, True) == _normalised(theirs, False), path.name
        for cell in ours.cells:  # locked like nbgrader's LockCells does
            if cell.metadata.get("nbgrader", {}).get("locked"):
                assert cell.metadata["editable"] is False


def _autograded_points(nb) -> float:
    """Points of the autograded test cells (written answers are graded by hand)."""
    return sum(
        m["points"]
        for m in grade_cells(nb).values()
        if m["grade"] and not m["solution"]
    )


def _autograde(root: Path, api, student: str, like: str | None = None) -> None:
    """Autograde one student in its own lab workdir (``VAE_LAB_WORKDIR``).

    03_loss loads the parts the same student exported in 02_model (``%%export``),
    so each student needs a workdir of their own, or they grade each other's code.
    ``like``: start with that student's exported parts (their earlier notebooks).
    """
    workdir = root / "workdirs" / student
    if like is not None and not (workdir / "student").exists():
        shutil.copytree(root / "workdirs" / like / "student", workdir / "student")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VAE_LAB_WORKDIR", str(workdir))
        result = api.autograde(ASSIGNMENT, student)
    assert result["success"], result["log"]


def _submit(root: Path, student: str, notebooks: dict[str, object]) -> None:
    folder = root / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True, exist_ok=True)
    for stem, nb in notebooks.items():
        (folder / f"{stem}.ipynb").write_text(notebook_text(nb), encoding="utf-8")


def _scores(root: Path, student: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        out = {}
        for stem in GRADED:
            try:
                nb = gradebook.find_submission_notebook(stem, ASSIGNMENT, student)
            except MissingEntry:  # not submitted
                continue
            out[stem] = (nb.code_score, nb.max_code_score)
        return out


def test_autograde_gives_solutions_full_points_and_the_release_none(course):
    root, api = course
    source = {s: _read(root / "source" / ASSIGNMENT / f"{s}.ipynb") for s in GRADED}
    release = {s: _read(root / "release" / ASSIGNMENT / f"{s}.ipynb") for s in GRADED}
    _submit(root, "solver", source)
    _submit(root, "blank", release)
    for student in ("solver", "blank"):
        _autograde(root, api, student)
    for stem in GRADED:
        points = _autograded_points(source[stem])
        assert points > 0
        assert _scores(root, "solver")[stem] == (points, points), stem
        assert _scores(root, "blank")[stem] == (0.0, points), stem


def test_hidden_test_is_not_released_and_autograde_runs_it(course):
    root, api = course
    source = _read(root / "source" / ASSIGNMENT / "03_loss.ipynb")
    hidden = [c for c in source.cells if "### BEGIN HIDDEN TESTS" in c.source]
    assert len(hidden) == 1 and hidden[0].metadata["nbgrader"]["grade"]
    grade_id = hidden[0].metadata["nbgrader"]["grade_id"]
    release = _read(root / "release" / ASSIGNMENT / "03_loss.ipynb")
    released = next(c for c in release.cells if grade_cells_id(c) == grade_id)
    assert "HIDDEN" not in released.source and "hidden tests passed" not in str(release)
    graded = root / "autograded" / "solver" / ASSIGNMENT / "03_loss.ipynb"
    if not graded.exists():
        _submit(root, "solver", {"03_loss": source})
        _autograde(root, api, "solver")
    cell = next(c for c in _read(graded).cells if grade_cells_id(c) == grade_id)
    assert "### BEGIN HIDDEN TESTS" in cell.source  # nbgrader put it back
    assert any("hidden tests passed" in o.get("text", "") for o in cell.outputs)
    assert not any(o.output_type == "error" for o in cell.outputs)


def grade_cells_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def test_repaired_submission_gets_full_points(course):
    root, api = course
    source = _read(root / "source" / ASSIGNMENT / "03_loss.ipynb")
    release = _read(root / "release" / ASSIGNMENT / "03_loss.ipynb")
    student = type_in_answers(release, source)
    ids = grade_cells(release)
    answer_ids = [g for g, m in ids.items() if m["solution"]]
    test_ids = [g for g, m in ids.items() if m["grade"] and not m["solution"]]
    where = {grade_cells_id(c): i for i, c in enumerate(student.cells)}
    # A copied answer cell (its stub copy left above), an edited test, a deleted
    # test, then an editor that drops every cell's metadata.
    first = where[answer_ids[0]]
    student.cells.insert(first, copy.deepcopy(release.cells[where[answer_ids[0]]]))
    student.cells[first]["id"] = "copied-stub"
    edited = [
        i for i, c in enumerate(student.cells) if grade_cells_id(c) == test_ids[0]
    ]
    student.cells[edited[0]].source = student.cells[edited[0]].source.replace(
        "check_", "# check_"
    )  # the student silenced the check
    last = [i for i, c in enumerate(student.cells) if grade_cells_id(c) == test_ids[-1]]
    del student.cells[last[0]]
    broken = copy.deepcopy(student)
    for cell in broken.cells:
        cell.metadata.pop("nbgrader", None)
    repaired, report = repair_submission(broken, release, "03_loss.ipynb")
    text = str(report)
    assert f"edited test cell '{test_ids[0]}' restored" in text
    assert f"deleted test cell '{test_ids[-1]}' put back" in text
    assert set(grade_cells(repaired)) == set(ids)
    _submit(root, "repaired", {"03_loss": repaired})
    # The student handed in a correct 02_model earlier: their exported parts are there.
    _autograde(root, api, "repaired", like="solver")
    points = _autograded_points(source)
    assert _scores(root, "repaired")["03_loss"] == (points, points)
    shutil.rmtree(root / "submitted" / "repaired")


def test_feedback_keeps_the_hidden_tests_hidden(course):
    """`nbgrader generate_feedback`, run in the course folder with its own config."""
    import subprocess

    root, api = course
    source = _read(root / "source" / ASSIGNMENT / "03_loss.ipynb")
    release = _read(root / "release" / ASSIGNMENT / "03_loss.ipynb")
    for student, nb in (("solver", source), ("blank", release)):
        if not (root / "autograded" / student / ASSIGNMENT / "03_loss.ipynb").exists():
            _submit(root, student, {"03_loss": nb})
            _autograde(root, api, student)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    for student in ("solver", "blank"):
        done = subprocess.run(
            [sys.executable, "-m", "nbgrader", "generate_feedback", ASSIGNMENT,
             "--student", student, "--force"],
            cwd=root, env=env, capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    solver = (root / "feedback" / "solver" / ASSIGNMENT / "03_loss.html").read_text()
    blank = (root / "feedback" / "blank" / ASSIGNMENT / "03_loss.html").read_text()
    for html in (solver, blank):
        assert "HIDDEN TESTS" not in html and "Hidden from students" not in html
        assert "check_kl" in html  # the visible tests are still shown
    assert "hidden tests passed" in solver  # their output stays: the student sees it ran
    # The untouched notebook's failing test cells show one line, not a traceback
    # quoting the cell (whose hidden lines sit right below the visible check).
    assert "NotImplementedError" in blank or "CheckFailed" in blank
    assert "most recent call last" not in blank and "----&gt;" not in blank
