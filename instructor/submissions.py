"""The class's hand-ins: the release's list of graded cells, and a survey.

``update_manifest`` writes ``helpers/templates/graded_cells.json`` (what
``helpers.submission.check_submission`` compares a student's notebook with) from
the stamped solutions; ``survey`` totals, over a class's files, which graded cells
kept their metadata and whether each file passed through Colab: first-hand
evidence of what Colab keeps (``python -m instructor check-submission``).
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers.files import atomic_write_text
from helpers.submission import _KEYS, MANIFEST, SubmissionReport, source_digest
from instructor.grading import grade_cells
from instructor.notebook_tools import clear_solutions


def graded_cells(solutions: str | Path) -> dict[str, dict[str, dict]]:
    """Return {notebook: {grade_id: {solution, grade, locked[, points]}}}.

    Args:
        solutions: the folder of stamped solution notebooks.
    """
    import nbformat

    out = {}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        cells = grade_cells(nb)
        released = {  # a test cell's text as released: hidden tests taken out
            cell.metadata["nbgrader"]["grade_id"]: source_digest(
                clear_solutions(cell.source, "code", f"{path.name}, cell {index}")
            )
            for index, cell in enumerate(nb.cells)
            if cell.metadata.get("nbgrader", {}).get("locked")
            and not cell.metadata["nbgrader"].get("solution")
            and cell.metadata["nbgrader"].get("grade")
        }
        out[path.stem] = {
            grade_id: {
                **{key: bool(meta.get(key)) for key in _KEYS},
                **({"points": meta["points"]} if meta.get("grade") else {}),
                **({"sha256": released[grade_id]} if grade_id in released else {}),
            }
            for grade_id, meta in cells.items()
        }
    return out


def manifest_text(solutions: str | Path) -> str:
    """The text of ``templates/graded_cells.json`` for these solutions."""
    return json.dumps(graded_cells(solutions), indent=1, sort_keys=True) + "\n"


def update_manifest(solutions: str | Path, path: str | Path = MANIFEST) -> bool:
    """Rewrite the manifest from the solutions; return True when it changed."""
    text, path = manifest_text(solutions), Path(path)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write_text(path, text)
    return True


def survey(reports: list[SubmissionReport]) -> list[str]:
    """Totals over many submissions: what Colab (and the rest) kept."""
    lines = []
    for label, group in (
        ("through Colab", [r for r in reports if r.colab]),
        ("not through Colab", [r for r in reports if not r.colab]),
    ):
        if not group:
            continue
        cells = sum(r.expected for r in group)
        kept = sum(len(r.kept) for r in group)
        lines.append(
            f"{len(group)} submission(s) {label}: metadata kept on {kept} of {cells} "
            f"graded cells ({100 * kept / max(cells, 1):.0f} %); "
            f"{sum(len(r.missing) for r in group)} lost, "
            f"{sum(len(r.duplicated) for r in group)} duplicated, "
            f"{sum(len(r.changed) for r in group)} edited, "
            f"{sum(len(r.tests_edited) for r in group)} test cell(s) with edited text, "
            f"{sum(len(r.empty) for r in group)} answer cell(s) left empty"
        )
    return lines
