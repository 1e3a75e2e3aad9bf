"""nbgrader metadata stamped from the markers, and submissions repaired for grading."""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat
import pytest
from notebook_answers import type_in_answers

from instructor.grading import (
    ANSWER_POINTS,
    CHECK_POINTS,
    GradingError,
    grade_cells,
    repair_file,
    repair_folder,
    repair_submission,
    stamp_notebook,
    total_points,
)
from instructor.grading import notebook_text
from instructor.guide_tables import (
    TABLE_BEGIN,
    TABLE_END,
    points_table,
    update_points_table,
)
from instructor.notebook_tools import make_student_notebook

SAMPLING = '''\
%%export sampling
class MySampling:
    """Draw z."""

    def call(self, inputs):
        ### BEGIN SOLUTION (hint: exp(0.5 * z_log_var))
        return inputs[0]
        ### END SOLUTION
'''
KL = '''\
def kl_divergence(z_mean, z_log_var):
    """Return the KL."""
    ### BEGIN SOLUTION
    return 0.0 * z_mean
    ### END SOLUTION
'''
KL_CHECK = '"""Check that kl_divergence is zero at N(0, I)."""\nassert kl_divergence(0, 0) == 0\n'
SAMPLING_CHECK = '"""Check that MySampling returns its mean."""\nassert MySampling().call([1, 2]) == 1\n'
OTHER_CHECK = '"""Check that the data loaded."""\nassert True\n'
ANSWER = (
    "### BEGIN SOLUTION\nBecause the Gaussian likelihood averages.\n### END SOLUTION"
)


def _solution() -> nbformat.NotebookNode:
    new_code, new_md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        new_md("# 3. The loss\n\nIntro."),
        new_code("import os"),
        new_code(OTHER_CHECK),
        new_md("## 3.1 Sampling"),
        new_code(SAMPLING),
        new_code(SAMPLING_CHECK),
        new_md("## 3.2 The KL term"),
        new_code(KL),
        new_code(KL_CHECK),
        new_md("## 3.3 Discussion: why blur?\n\nAnswer below."),
        new_md(ANSWER),
    ]
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"c{index}"
    nb.cells[1].metadata["nbgrader"] = {"grade": False, "solution": False}  # stale
    return nb


def _stamped():
    return stamp_notebook(_solution(), "03_loss")


def _release():
    return make_student_notebook(_stamped(), "solutions/03_loss.ipynb")


# ------------------------------------------------------------------------ stamping
def test_stamp_derives_nbgrader_metadata_from_markers():
    nb = _stamped()
    assert grade_cells(nb) == {
        "03_loss-3-the-check": {
            "grade": False,
            "grade_id": "03_loss-3-the-check",
            "locked": True,
            "schema_version": 3,
            "solution": False,
        },
        "03_loss-sampling": {
            "grade": False,
            "grade_id": "03_loss-sampling",
            "locked": False,
            "schema_version": 3,
            "solution": True,
        },
        "03_loss-sampling-check": {
            "grade": True,
            "grade_id": "03_loss-sampling-check",
            "locked": True,
            "points": CHECK_POINTS,
            "schema_version": 3,
            "solution": False,
        },
        "03_loss-kl_divergence": {
            "grade": False,
            "grade_id": "03_loss-kl_divergence",
            "locked": False,
            "schema_version": 3,
            "solution": True,
        },
        "03_loss-kl_divergence-check": {
            "grade": True,
            "grade_id": "03_loss-kl_divergence-check",
            "locked": True,
            "points": CHECK_POINTS,
            "schema_version": 3,
            "solution": False,
        },
        "03_loss-3-3-discussion-answer": {
            "grade": True,
            "grade_id": "03_loss-3-3-discussion-answer",
            "locked": False,
            "points": ANSWER_POINTS,
            "schema_version": 3,
            "solution": True,
        },
    }
    assert "nbgrader" not in nb.cells[1].metadata  # stale metadata is dropped
    assert "nbgrader" not in _solution().cells[4].metadata  # the input is unchanged
    assert total_points(nb) == 2 * CHECK_POINTS + ANSWER_POINTS
    assert nbformat.validate(nb) is None


def test_stamp_is_deterministic_idempotent_and_ids_unique():
    nb = _solution()
    nb.cells.insert(8, copy.deepcopy(nb.cells[7]))  # the same function twice
    nb.cells[8]["id"] = "c7-copy"
    first = stamp_notebook(nb, "03_loss")
    assert notebook_text(stamp_notebook(first, "03_loss")) == notebook_text(first)
    assert notebook_text(stamp_notebook(nb, "03_loss")) == notebook_text(first)
    ids = [c.metadata["nbgrader"]["grade_id"] for c in first.cells if c.metadata]
    assert len(ids) == len(set(ids))
    assert "03_loss-kl_divergence-2" in ids


def test_nbgrader_validator_accepts_the_stamped_notebook():
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (as on Colab)")
    from nbgrader.nbgraderformat import MetadataValidator

    MetadataValidator().validate_nb(_stamped())
    MetadataValidator().validate_nb(_release())


def test_student_notebook_keeps_grade_ids_and_locks_test_cells():
    release = _release()
    assert set(grade_cells(release)) == set(grade_cells(_stamped()))
    check = next(c for c in release.cells if c.source.startswith('"""Check that kl'))
    assert check.metadata["editable"] is False and check.metadata["deletable"] is False
    answer = next(c for c in release.cells if "answer" in str(c.metadata))
    assert answer.source == "YOUR ANSWER HERE"


# ----------------------------------------------------------------------- repairing
def _by_id(nb, grade_id):
    return [
        i
        for i, c in enumerate(nb.cells)
        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
    ]


def _answered(release):
    """The release with the solutions typed in (markers dropped), as a student would."""
    return type_in_answers(release, _stamped())


def test_untouched_submission_needs_no_repair():
    nb, report = repair_submission(_answered(_release()), _release(), "03_loss.ipynb")
    assert report.actions == []
    assert str(report) == "03_loss.ipynb: nothing to repair"
    assert notebook_text(nb) == notebook_text(_answered(_release()))


def test_copied_cell_keeps_one_grade_id():
    release = _release()
    student = _answered(release)
    kl = _by_id(student, "03_loss-kl_divergence")[0]
    stub = copy.deepcopy(release.cells[kl])  # a stub copied above the answer
    student.cells.insert(kl, stub)
    test = _by_id(student, "03_loss-kl_divergence-check")[0]
    student.cells.insert(test + 1, copy.deepcopy(student.cells[test]))
    student.cells[test + 1].source += "\nprint('my own try')"  # an edited copy
    repaired, report = repair_submission(student, release)
    assert _by_id(repaired, "03_loss-kl_divergence") == [kl + 1]  # the last copy
    assert "return 0.0 * z_mean" in repaired.cells[kl + 1].source
    assert _by_id(repaired, "03_loss-kl_divergence-check") == [test]
    assert any("was on cells" in line for line in report.actions)
    # The repair is checked above; nbgrader's own validator only where installed.
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (as on Colab)")
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    with pytest.raises(ValidationError, match="Duplicate grade id"):
        MetadataValidator().validate_nb(student)
    MetadataValidator().validate_nb(repaired)


def test_retyped_and_stripped_cells_get_their_metadata_back():
    release = _release()
    student = _answered(release)
    for cell in student.cells:  # an editor that drops all cell metadata
        cell.metadata = {}
    student.cells[-1].source = "The decoder averages plausible faces."  # retyped
    student.cells.insert(3, nbformat.v4.new_markdown_cell("my notes"))
    repaired, report = repair_submission(student, release)
    assert grade_cells(repaired) == grade_cells(release)
    answer = _by_id(repaired, "03_loss-3-3-discussion-answer")[0]
    assert repaired.cells[answer].source == "The decoder averages plausible faces."
    assert (
        "return 0.0 * z_mean"
        in repaired.cells[_by_id(repaired, "03_loss-kl_divergence")[0]].source
    )
    assert "nbgrader" not in repaired.cells[3].metadata  # the student's own cell
    assert sum(
        "metadata of" in line or "placed by" in line for line in report.actions
    ) == len(grade_cells(release))


def test_edited_and_deleted_test_cells_are_restored_from_the_release():
    release = _release()
    student = _answered(release)
    kl_test = _by_id(student, "03_loss-kl_divergence-check")[0]
    student.cells[kl_test].source = '"""Check that kl_divergence is zero."""\npass'
    del student.cells[_by_id(student, "03_loss-sampling-check")[0]]
    student.cells[_by_id(student, "03_loss-kl_divergence")[0]].metadata["nbgrader"][
        "points"
    ] = 100
    student.cells[0].metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": False,
        "grade_id": "made-up",
        "points": 5,
    }
    repaired, report = repair_submission(student, release)
    assert grade_cells(repaired) == grade_cells(release)
    restored = _by_id(repaired, "03_loss-sampling-check")[0]
    assert restored == _by_id(repaired, "03_loss-sampling")[0] + 1
    assert repaired.cells[restored].source == SAMPLING_CHECK.rstrip("\n") or (
        repaired.cells[restored].source == SAMPLING_CHECK
    )
    kl_test = _by_id(repaired, "03_loss-kl_divergence-check")[0]
    assert "assert kl_divergence(0, 0) == 0" in repaired.cells[kl_test].source
    text = "\n".join(report.actions)
    assert "edited test cell '03_loss-kl_divergence-check' restored" in text
    assert "deleted test cell '03_loss-sampling-check' put back" in text
    assert "unknown grade_id 'made-up' removed" in text
    assert "['points'] reset" in text


def test_deleted_answer_cells():
    release = _release()
    student = _answered(release)
    del student.cells[-1]  # the written answer
    del student.cells[_by_id(student, "03_loss-kl_divergence")[0]]  # the code answer
    repaired, report = repair_submission(student, release)
    text = "\n".join(report.actions)
    assert "answer cell '03_loss-kl_divergence' not found" in text
    assert _by_id(repaired, "03_loss-kl_divergence") == []  # no stub over their code
    answer = _by_id(repaired, "03_loss-3-3-discussion-answer")
    assert answer and repaired.cells[answer[0]].source == "YOUR ANSWER HERE"


def test_repair_needs_a_release_with_nbgrader_cells():
    with pytest.raises(GradingError, match="has no nbgrader cells"):
        repair_submission(_answered(_release()), _solution(), "x.ipynb")


def test_repair_files_and_an_nbgrader_submitted_folder(tmp_path):
    release_dir = tmp_path / "release" / "lab"
    release_dir.mkdir(parents=True)
    (release_dir / "03_loss.ipynb").write_text(notebook_text(_release()))
    student = _answered(_release())
    for cell in student.cells:
        cell.metadata.pop("nbgrader", None)
    submitted = tmp_path / "submitted"
    for who in ("ada", "bo"):
        path = submitted / who / "lab" / "03_loss.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(notebook_text(student))
    out = tmp_path / "one.ipynb"
    report = repair_file(
        submitted / "ada/lab/03_loss.ipynb", release_dir / "03_loss.ipynb", out
    )
    assert len(report.actions) == len(grade_cells(_release()))
    assert grade_cells(nbformat.read(str(out), 4)) == grade_cells(_release())
    reports = repair_folder(submitted, tmp_path / "release")
    assert [r.notebook for r in reports] == [
        "ada/lab/03_loss.ipynb",
        "bo/lab/03_loss.ipynb",
    ]
    backup = tmp_path / "submitted-before-repair" / "bo" / "lab" / "03_loss.ipynb"
    assert backup.read_text() == notebook_text(student)
    repaired = nbformat.read(str(submitted / "bo/lab/03_loss.ipynb"), 4)
    assert grade_cells(repaired) == grade_cells(_release())
    (submitted / "ada/lab/03_loss.ipynb").write_text("{not json")
    reports = repair_folder(submitted, tmp_path / "release")  # bo is still repaired
    assert [r.failed for r in reports] == [True, False]
    assert "NOT REPAIRED" in str(reports[0]) and "not a readable notebook" in str(
        reports[0]
    )


def test_repair_submission_command(tmp_path, capsys):
    from instructor.commands import main

    release = tmp_path / "03_loss_release.ipynb"
    release.write_text(notebook_text(_release()))
    student = _answered(_release())
    for cell in student.cells:
        cell.metadata.pop("nbgrader", None)
    submitted = tmp_path / "03_loss.ipynb"
    submitted.write_text(notebook_text(student))
    out = tmp_path / "fixed.ipynb"
    args = ["repair-submission", str(submitted), "--release", str(release)]
    assert main(args + ["-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert (
        "03_loss.ipynb: cell " in text and "1 notebook(s) checked, 1 repaired" in text
    )
    assert grade_cells(nbformat.read(str(out), 4)) == grade_cells(_release())
    assert submitted.read_text() == notebook_text(student)  # -o leaves it alone
    assert (
        main(
            [
                "repair-submission",
                str(tmp_path / "nope.ipynb"),
                "--release",
                str(release),
            ]
        )
        == 2
    )
    assert "is not a notebook file" in capsys.readouterr().err


# ---------------------------------------------------------------- the real repository
REPO = Path(__file__).resolve().parents[2]


def test_instructors_guide_has_a_rubric_for_every_graded_cell():
    """Every written answer has a rubric, and the points table is current."""
    guide = (REPO / "INSTRUCTORS.md").read_text(encoding="utf-8")
    solutions = sorted((REPO / "solutions").glob("*.ipynb"))
    assert solutions
    for path in solutions:
        cells = grade_cells(nbformat.read(str(path), as_version=4))
        for grade_id, meta in cells.items():
            if meta["grade"] and meta["solution"]:  # its rubric names it in bold
                assert f"**`{grade_id}`**" in guide, f"no rubric for {grade_id}"
    assert f"**{ANSWER_POINTS} points**" in guide
    table = guide.split(TABLE_BEGIN)[1].split(TABLE_END)[0].strip()
    assert table == points_table(REPO / "solutions"), (
        "the points table in INSTRUCTORS.md is stale: run python -m instructor "
        "make-student"
    )


def test_points_table_is_rewritten_between_its_markers(tmp_path):
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    (solutions / "03_loss.ipynb").write_text(notebook_text(_stamped()))
    guide = tmp_path / "GUIDE.md"
    guide.write_text(f"intro\n{TABLE_BEGIN}\nold\n{TABLE_END}\nrest\n")
    assert update_points_table(guide, solutions) is True
    assert update_points_table(guide, solutions) is False
    text = guide.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n")
    assert (
        "| 03_loss | `03_loss-sampling-check` (2), `03_loss-kl_divergence-check` (2)"
        in text
    )
    assert f"| 1 x {ANSWER_POINTS} | {2 * CHECK_POINTS + ANSWER_POINTS} |" in text
    guide.write_text("no markers")
    with pytest.raises(GradingError, match="no points table markers"):
        update_points_table(guide, solutions)


def test_a_check_earns_points_only_right_after_its_exercise():
    nb = _solution()
    nb.cells.insert(8, nbformat.v4.new_code_cell("x = 1"))  # between KL and its check
    nb.cells[8]["id"] = "between"
    cells = grade_cells(stamp_notebook(nb, "03_loss"))
    assert "03_loss-kl_divergence-check" not in cells
    check = cells["03_loss-3-2-the-check"]
    assert check["locked"] and not check["grade"] and "points" not in check


def test_a_colab_round_trip_needs_no_repair():
    """Colab keeps unknown cell metadata and adds its own (jax-ml/jax#2402, #581)."""
    release = _release()
    student = _answered(release)
    student.nbformat_minor = 0  # Colab writes nbformat 4.0: no cell ids
    for index, cell in enumerate(student.cells):
        cell.pop("id", None)
        cell.metadata["id"] = f"colab{index}"
        cell.metadata.pop("editable", None)  # locks mean nothing in Colab
        cell.metadata.pop("deletable", None)
    student.metadata["colab"] = {"provenance": []}
    student.metadata["accelerator"] = "GPU"
    repaired, report = repair_submission(student, release)
    assert report.actions == []
    assert grade_cells(repaired) == grade_cells(release)
    assert all(c.metadata.get("id") for c in repaired.cells)  # Colab's ids are kept
    lock = next(
        c for c in repaired.cells if c.metadata.get("nbgrader", {}).get("locked")
    )
    assert lock.metadata["editable"] is False  # the release's lock is back
