"""The six kinds of hand-in of the real 02_model and 03_loss, before and after repair.

Each kind is built from the release (``tests/handins.py``); after repair every
graded cell is there once with the release's metadata, every written answer sits
on the cell the student wrote it in (whatever happened to the metadata), every
test is the release's, and the file is valid for its own nbformat version.
``benchmarks/handin_points.py`` autogrades the same hand-ins with nbgrader.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from handins import KINDS, hand_in, written_answers

from instructor.commands import main
from instructor.grading import (
    backup_path,
    grade_cells,
    notebook_text,
    repair_file,
    repair_submission,
    stamp_notebook,
)
from instructor.notebook_tools import make_student_notebook

REPO = Path(__file__).resolve().parents[2]
STEMS = ("02_model", "03_loss")


def _pair(stem):
    source = stamp_notebook(
        nbformat.read(str(REPO / "solutions" / f"{stem}.ipynb"), as_version=4), stem
    )
    release = nbformat.read(str(REPO / "notebooks" / f"{stem}.ipynb"), as_version=4)
    return source, release


def _holders(nb):
    out = {}
    for index, cell in enumerate(nb.cells):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id:
            out.setdefault(grade_id, []).append(index)
    return out


@pytest.mark.parametrize("stem", STEMS)
@pytest.mark.parametrize("kind", KINDS)
def test_repair_places_every_answer_whatever_happened(stem, kind):
    source, release = _pair(stem)
    submitted = hand_in(kind, release, source)
    repaired, report = repair_submission(submitted, release, f"{stem}.ipynb")
    nbformat.validate(repaired)
    holders = _holders(repaired)
    assert set(holders) == set(grade_cells(release)), str(report)
    assert all(len(v) == 1 for v in holders.values()), holders
    assert grade_cells(repaired) == grade_cells(release)
    answers = written_answers(source)
    for grade_id, text in answers.items():
        cell = repaired.cells[holders[grade_id][0]]
        if kind == "untouched":
            assert cell.source == "YOUR ANSWER HERE", grade_id
        else:
            assert cell.source == text, (grade_id, str(report))
    for cell in release.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("locked") and not meta.get("solution") and meta.get("grade"):
            mine = repaired.cells[holders[meta["grade_id"]][0]]
            assert mine.source == cell.source
    if kind in ("correct", "untouched"):
        assert report.actions == [], str(report)
    assert "not found" not in str(report) and "stub put back" not in str(report)


@pytest.mark.parametrize("stem", STEMS)
def test_a_stripped_02_written_answers_are_not_misfiled(stem, tmp_path):
    """The issue's case: answers of a Colab-stripped file, each on its own question."""
    source, release = _pair(stem)
    nb = hand_in("colab_stripped", release, source)
    path = tmp_path / f"{stem}.ipynb"
    path.write_text(notebook_text(nb), encoding="utf-8")
    release_path = REPO / "notebooks" / f"{stem}.ipynb"
    report = repair_file(path, release_path, None)
    repaired = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
    assert (repaired.nbformat, repaired.nbformat_minor) == (4, 0)
    nbformat.validate(repaired)  # no cell ids in a 4.0 file
    assert all("id" not in cell for cell in repaired.cells)
    assert backup_path(path).read_text(encoding="utf-8") == notebook_text(nb)
    holders = _holders(repaired)
    for grade_id, text in written_answers(source).items():
        assert repaired.cells[holders[grade_id][0]].source == text, str(report)
    assert "placed by its question label" in str(report)
    # a second repair in place keeps the first original as the backup
    repair_file(path, release_path, None)
    assert backup_path(path).read_text(encoding="utf-8") == notebook_text(nb)


def test_a_notebook_from_elsewhere_is_refused_with_one_line(tmp_path, capsys):
    source, release = _pair("03_loss")
    other = _pair("02_model")[1]  # a 02 handed in as 03: not this release
    path = tmp_path / "03_loss.ipynb"
    path.write_text(notebook_text(other), encoding="utf-8")
    args = ["repair-submission", str(path), "--release"]
    assert main(args + [str(REPO / "notebooks" / "03_loss.ipynb")]) == 2
    err = capsys.readouterr().err.strip()
    assert "is not from this release" in err and len(err.splitlines()) == 1
    assert path.read_text(encoding="utf-8") == notebook_text(other)  # untouched
    assert not backup_path(path).exists()


@pytest.mark.parametrize("text", ["[]", '{"a": 1}', '{"cells": 3, "nbformat": 4}'])
def test_json_that_is_not_a_notebook_is_named_in_one_line(tmp_path, capsys, text):
    path = tmp_path / "02_model.ipynb"
    path.write_text(text)
    release = str(REPO / "notebooks" / "02_model.ipynb")
    assert main(["repair-submission", str(path), "--release", release]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "not a notebook" in err and len(err.splitlines()) == 1
    assert main(["check-submission", str(path)]) == 1
    out = capsys.readouterr().out
    assert str(path) in out and "not a notebook" in out


def test_a_folder_survey_and_repair_report_every_file(tmp_path, capsys):
    source, release = _pair("02_model")
    submitted = tmp_path / "submitted"
    files = {
        "ada": notebook_text(hand_in("correct", release, source)),
        "bo": "{not json",
        "cy": "[]",
        "di": notebook_text(hand_in("colab_stripped", release, source)),
        "ed": notebook_text(_pair("03_loss")[1]),  # the wrong notebook
    }
    for who, text in files.items():
        path = submitted / who / "02_model" / "02_model.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(text, encoding="utf-8")
    assert main(["check-submission", str(submitted)]) == 1
    out = capsys.readouterr().out
    for who in files:
        assert f"{who}/02_model/02_model.ipynb" in out, who
    assert "2 of 5 file(s) could not be read" in out
    releases = tmp_path / "release" / "02_model"
    releases.mkdir(parents=True)
    (releases / "02_model.ipynb").write_text(
        (REPO / "notebooks" / "02_model.ipynb").read_text(encoding="utf-8")
    )
    code = main(["repair-submission", str(submitted), "--release", str(releases.parent)])
    out = capsys.readouterr().out
    assert code == 1
    assert "3 NOT repaired" in out and "5 notebook(s) checked, 1 repaired" in out
    repaired = json.loads((submitted / "di/02_model/02_model.ipynb").read_text())
    assert repaired["nbformat_minor"] == 0
