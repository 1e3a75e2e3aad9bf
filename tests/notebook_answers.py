"""Test helper: a release notebook with a solution's answers typed in."""

from __future__ import annotations

import copy

from instructor.notebook_tools import BEGIN_SOLUTION, END_SOLUTION


def type_in_answers(release, source):
    """The release with ``source``'s answer cells typed in, as a student would.

    Answer cells are matched by nbgrader ``grade_id``; the solution markers are
    dropped, the code between them kept.
    """
    answers = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in source.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = "\n".join(
                line
                for line in answers[grade_id].split("\n")
                if BEGIN_SOLUTION not in line and END_SOLUTION not in line
            )
    return nb
