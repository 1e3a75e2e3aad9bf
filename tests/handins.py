"""Test helper: the six kinds of hand-in an instructor gets, built from a release.

Used by ``tests/instructor/test_handins.py`` (what repair makes of each) and
``benchmarks/handin_points.py`` (the points nbgrader gives each, before and after
repair).
"""

from __future__ import annotations

import copy

import nbformat
from notebook_answers import type_in_answers

KINDS = ("correct", "untouched", "colab_stripped", "copied", "retyped", "test_edited")


def _gid(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def _where(nb, kind: str) -> list[int]:
    """Indices of graded cells: "code" answers, "written" answers or "test" cells."""
    out = []
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade_id"):
            continue
        if kind == "code" and meta.get("solution") and cell.cell_type == "code":
            out.append(i)
        elif kind == "written" and meta.get("solution") and cell.cell_type == "markdown":
            out.append(i)
        elif kind == "test" and meta.get("grade") and not meta.get("solution"):
            out.append(i)
    return out


def as_colab_saves(nb):
    """What Colab's Download .ipynb gives: nbformat 4.0, no cell ids, no nbgrader."""
    nb = copy.deepcopy(nb)
    nb.nbformat_minor = 0
    for i, cell in enumerate(nb.cells):
        cell.pop("id", None)
        cell.metadata = {"id": f"colab{i:04d}"}
    nb.metadata["colab"] = {"name": "Copy of lab.ipynb", "provenance": []}
    return nb


def hand_in(kind: str, release, source):
    """The hand-in of one ``kind`` (see :data:`KINDS`) for this release."""
    if kind == "untouched":
        return copy.deepcopy(release)
    nb = type_in_answers(release, source)
    if kind == "correct":
        return nb
    if kind == "colab_stripped":
        return as_colab_saves(nb)
    if kind == "copied":
        # the first written answer copied (metadata and all): the student wrote in
        # the copy and left the original as the stub; a stub copy of the first code
        # answer left above it
        written = _where(nb, "written")[0]
        copy_cell = copy.deepcopy(nb.cells[written])
        copy_cell["id"] = "copied-answer"
        nb.cells[written].source = release.cells[written].source
        nb.cells.insert(written + 1, copy_cell)
        code = _where(nb, "code")[0]
        stub = copy.deepcopy(release.cells[_where(release, "code")[0]])
        stub["id"] = "copied-stub"
        nb.cells.insert(code, stub)
        return nb
    if kind == "retyped":
        # the first code answer and the last written answer deleted and typed again
        for index in (_where(nb, "written")[-1], _where(nb, "code")[0]):
            old = nb.cells[index]
            new = (
                nbformat.v4.new_code_cell(old.source)
                if old.cell_type == "code"
                else nbformat.v4.new_markdown_cell(old.source)
            )
            new["id"] = f"retyped-{index}"
            nb.cells[index] = new
        return nb
    if kind == "test_edited":
        test = nb.cells[_where(nb, "test")[0]]
        test.source = test.source.replace("check_", "# check_")  # silenced
        return nb
    raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")


def written_answers(source) -> dict[str, str]:
    """grade_id -> the answer text a student types (the solution, markers dropped)."""
    typed = type_in_answers(copy.deepcopy(source), source)
    return {
        _gid(cell): cell.source
        for cell in typed.cells
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")
    }
