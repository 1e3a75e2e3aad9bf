"""check_submission / check-submission: what a hand-in kept of its grading metadata."""

from __future__ import annotations

import copy
import json
import sys
import types
from pathlib import Path

import pytest

from helpers import submission
from instructor import submissions
from instructor.commands import main

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_generate"


def release_nb() -> dict:
    return json.loads((REPO / "notebooks" / f"{NOTEBOOK}.ipynb").read_text())


def answered_nb() -> dict:
    """The release with the solutions' answers typed in."""
    import nbformat
    from notebook_answers import type_in_answers

    from instructor.grading import stamp_notebook

    path = REPO / "solutions" / f"{NOTEBOOK}.ipynb"
    source = stamp_notebook(nbformat.read(str(path), as_version=4), NOTEBOOK)
    release = nbformat.reads(json.dumps(release_nb()), as_version=4)
    return json.loads(nbformat.writes(type_in_answers(release, source)))


def cell_with(nb: dict, grade_id: str) -> dict:
    return next(
        c
        for c in nb["cells"]
        if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )


def through_colab(nb: dict) -> dict:
    """What Colab's save adds: a cell id in each cell's metadata, the file's name."""
    nb = copy.deepcopy(nb)
    for i, cell in enumerate(nb["cells"]):
        cell["metadata"]["id"] = f"cell{i:04d}"
    nb["metadata"]["colab"]["name"] = f"Copy of {NOTEBOOK}.ipynb"
    return nb


def test_the_manifest_matches_the_stamped_solutions():
    text = submissions.manifest_text(REPO / "solutions")
    assert (
        submission.MANIFEST.read_text(encoding="utf-8") == text
    ), "stale helpers/templates/graded_cells.json: run python -m instructor make-student"
    cells = submission.expected_cells(NOTEBOOK)
    assert cells[f"{NOTEBOOK}-sample_faces"] == {
        "grade": False,
        "locked": False,
        "solution": True,
    }
    assert cells[f"{NOTEBOOK}-sample_faces-check"]["points"] == 2
    with pytest.raises(submission.SubmissionError, match="unknown notebook"):
        submission.expected_cells("07_gan")


def test_the_release_notebook_is_intact_and_not_from_colab():
    report = submission.check_notebook(release_nb())  # name told by its grade_ids
    assert report.notebook == NOTEBOOK and report.intact and not report.colab
    assert (
        len(report.kept) == report.expected == len(submission.expected_cells(NOTEBOOK))
    )
    assert "kept on 9 of 9 graded cells" in report.lines()[0]


def test_what_students_do_in_colab_is_named():
    nb = through_colab(release_nb())
    retyped = cell_with(nb, f"{NOTEBOOK}-sample_faces")
    del retyped["metadata"]["nbgrader"]  # deleted and typed again
    copied = copy.deepcopy(cell_with(nb, f"{NOTEBOOK}-latent_grid-check"))
    nb["cells"].append(copied)  # a check cell copied, metadata and all
    cell_with(nb, f"{NOTEBOOK}-interpolate_faces-check")["metadata"]["nbgrader"][
        "points"
    ] = 20
    report = submission.check_notebook(nb, source="ada.ipynb")
    assert report.colab and not report.intact
    assert report.missing == [f"{NOTEBOOK}-sample_faces"]
    assert report.duplicated == [f"{NOTEBOOK}-latent_grid-check"]
    assert report.changed == [f"{NOTEBOOK}-interpolate_faces-check"]
    assert len(report.kept) == report.expected - 3
    text = "\n".join(report.lines())
    assert "passed through Colab" in text and "deleted and retyped" in text
    totals = submissions.survey(
        [report, submission.check_notebook(release_nb(), NOTEBOOK)]
    )
    assert totals[0].startswith(
        "1 submission(s) through Colab: metadata kept on 6 of 9"
    )
    assert totals[1].startswith("1 submission(s) not through Colab: metadata kept on 9")


def test_in_colab_it_reads_the_live_notebook(monkeypatch, capsys):
    live = through_colab(release_nb())
    del cell_with(live, f"{NOTEBOOK}-latent_grid")["metadata"]["nbgrader"]
    asked = {}

    def blocking_request(request, timeout_sec):
        asked[request] = timeout_sec
        return {"ipynb": live}

    message = types.ModuleType("google.colab._message")
    message.blocking_request = blocking_request
    colab = types.ModuleType("google.colab")
    colab._message = message
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab._message", message)
    report = submission.check_submission(NOTEBOOK)
    assert asked == {"get_ipynb": 120}
    assert report.source == "this Colab notebook" and report.colab
    assert report.missing == [f"{NOTEBOOK}-latent_grid"]
    out = capsys.readouterr().out
    assert "kept on 8 of 9" in out and "Hand it in all the same" in out

    def broken(request, timeout_sec):
        raise TimeoutError("no answer")

    message.blocking_request = broken
    with pytest.raises(submission.SubmissionError, match="did not hand over"):
        submission.live_colab_notebook()


def test_outside_colab_it_reads_the_saved_file_or_says_how(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "google.colab", None)  # importing it fails
    monkeypatch.chdir(tmp_path)
    assert submission.check_submission(NOTEBOOK) is None
    assert 'check_submission(path="FILE.ipynb")' in capsys.readouterr().out
    (tmp_path / f"{NOTEBOOK}.ipynb").write_text(json.dumps(release_nb()))
    report = submission.check_submission(NOTEBOOK)
    assert report.intact and report.source == f"saved file {NOTEBOOK}.ipynb"
    out = capsys.readouterr().out  # untouched: every answer cell is named
    assert "Ready to hand in" not in out and "NOT ready: 6 answer cell(s)" in out
    assert f"{NOTEBOOK}-sample_faces" in out and f"{NOTEBOOK}-q5-1-answer" in out
    (tmp_path / f"{NOTEBOOK}.ipynb").write_text(json.dumps(answered_nb()))
    report = submission.check_submission(NOTEBOOK)
    assert report.ready and report.empty == []
    assert "Ready to hand in" in capsys.readouterr().out


def test_an_edited_test_cell_is_not_reported_as_kept():
    nb = answered_nb()
    test = cell_with(nb, f"{NOTEBOOK}-sample_faces-check")
    test["source"] = "".join(test["source"]).replace("check_", "# check_")
    report = submission.check_notebook(nb)
    assert report.tests_edited == [f"{NOTEBOOK}-sample_faces-check"]
    assert not report.intact and "test cells edited" in "\n".join(report.lines())
    stripped = answered_nb()  # the same text with the metadata gone: still empty?
    cell_with(stripped, f"{NOTEBOOK}-latent_grid")["source"] = (
        "# YOUR CODE HERE\nraise NotImplementedError()"
    )
    del cell_with(stripped, f"{NOTEBOOK}-latent_grid")["metadata"]["nbgrader"]
    report = submission.check_notebook(stripped, NOTEBOOK)
    assert len(report.empty) == 1 and report.empty[0].endswith("(code)")


def test_the_command_surveys_a_folder_and_names_a_broken_file(tmp_path, capsys):
    folder = tmp_path / "submitted"
    for student, nb in (("ada", through_colab(release_nb())), ("bob", release_nb())):
        (folder / student / NOTEBOOK).mkdir(parents=True)
        path = folder / student / NOTEBOOK / f"{NOTEBOOK}.ipynb"
        path.write_text(json.dumps(nb))
    assert main(["check-submission", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "1 submission(s) through Colab: metadata kept on 9 of 9" in out
    assert "need `repair-submission`" not in out
    (tmp_path / "cut.ipynb").write_text('{"cells": [')
    assert main(["check-submission", str(tmp_path / "cut.ipynb")]) == 1
    out = capsys.readouterr().out
    assert "cut.ipynb: CANNOT CHECK" in out and "not valid JSON" in out
    assert "1 of 1 file(s) could not be read" in out
    assert main(["check-submission", str(tmp_path / "empty-folder")]) == 2
