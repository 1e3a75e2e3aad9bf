"""The tables of INSTRUCTORS.md that are generated, not typed.

``python -m instructor make-student`` rewrites each between its markers, and a test
fails when one is stale, so the guide cannot drift from what it describes:

- the points table (:func:`instructor.grading.points_table`): every graded cell;
- the expected-numbers table (:func:`expected_table`): every number or trend a
  notebook prints beside the student's own, from ``helpers.expected.EXPECTED``
  (the ranges nbval enforces on the solutions under ``VAE_LAB_CHECK_EXPECTED=1``).
"""

from __future__ import annotations

import re
from pathlib import Path

from instructor.grading import ANSWER_POINTS, GradingError, grade_cells

TABLE_BEGIN = (
    "<!-- BEGIN POINTS TABLE (python -m instructor make-student writes it) -->"
)
TABLE_END = "<!-- END POINTS TABLE -->"

EXPECTED_BEGIN = (
    "<!-- BEGIN EXPECTED TABLE (python -m instructor make-student writes it) -->"
)
EXPECTED_END = "<!-- END EXPECTED TABLE -->"


def points_table(solutions: str | Path) -> str:
    """Markdown table of every notebook's graded cells and points."""
    import nbformat

    rows = [
        "| notebook | autograded test cells | written answers | points |",
        "| --- | --- | --- | --- |",
    ]
    total = 0.0
    for path in sorted(Path(solutions).glob("*.ipynb")):
        cells = grade_cells(nbformat.read(str(path), as_version=4))
        tests = [g for g, m in cells.items() if m["grade"] and not m["solution"]]
        answers = [g for g, m in cells.items() if m["grade"] and m["solution"]]
        points = sum(cells[g]["points"] for g in tests + answers)
        total += points
        rows.append(
            f"| {path.stem} | "
            + (", ".join(f"`{g}` ({cells[g]['points']:g})" for g in tests) or "none")
            + f" | {len(answers)} x {ANSWER_POINTS} | {points:g} |"
        )
    rows.append(f"| **all** | | | **{total:g}** |")
    return "\n".join(rows)


def update_points_table(guide: str | Path, solutions: str | Path) -> bool:
    """Rewrite the points table between the markers of ``guide``; True if changed."""
    return update_between(
        guide, TABLE_BEGIN, TABLE_END, points_table(solutions), "points table"
    )


def update_expected_table(guide: str | Path, solutions: str | Path) -> bool:
    """Rewrite the expected-numbers table of ``guide``; True if changed."""
    table = expected_table(solutions)
    return update_between(guide, EXPECTED_BEGIN, EXPECTED_END, table, "expected table")


def expected_table(solutions: str | Path) -> str:
    """Markdown table of helpers.expected.EXPECTED, with the notebook that prints each.

    Raises:
        GradingError: an expectation that no solution notebook prints (dead text),
            or a notebook that prints a key EXPECTED does not have.
    """
    from helpers.expected import EXPECTED, smoke_text

    where: dict[str, list[str]] = {}
    for path in sorted(Path(solutions).glob("*.ipynb")):
        for key in re.findall(r"expect\(\\?[\"'](\w+)", path.read_text("utf-8")):
            where.setdefault(key, []).append(path.stem)
    unknown = sorted(set(where) - set(EXPECTED))
    unused = sorted(set(EXPECTED) - set(where))
    if unknown or unused:
        raise GradingError(
            "helpers.expected.EXPECTED and the notebooks' expect() calls differ: "
            + "; ".join(
                part
                for part in (
                    unknown and f"printed but not in EXPECTED: {', '.join(unknown)}",
                    unused and f"in EXPECTED but printed nowhere: {', '.join(unused)}",
                )
                if part
            )
        )
    rows = [
        "| notebook | quantity | generated slice (`smoke`, checked by nbval) "
        "| CelebA |",
        "| --- | --- | --- | --- |",
    ]
    for key, expectation in EXPECTED.items():
        notebooks = ", ".join(dict.fromkeys(where[key]))
        rows.append(
            f"| {notebooks} | {expectation.what} | {smoke_text(expectation.smoke)} "
            f"| {expectation.celeba} |"
        )
    return "\n".join(rows)


def update_between(
    guide: str | Path, begin: str, end: str, table: str, what: str = "table"
) -> bool:
    """Rewrite the text between the markers ``begin`` and ``end``; True if changed."""
    guide = Path(guide)
    text = guide.read_text(encoding="utf-8")
    if begin not in text or end not in text:
        raise GradingError(
            f"{guide} has no {what} markers: put {begin!r} and {end!r} on lines of "
            "their own where the table goes"
        )
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{begin}\n{table}\n{end}{tail}"
    if new == text:
        return False
    guide.write_text(new, encoding="utf-8")
    return True


def table_between(guide: str | Path, begin: str, end: str) -> str:
    """The text between the markers, stripped ('' when they are missing)."""
    text = Path(guide).read_text(encoding="utf-8")
    if begin not in text or end not in text:
        return ""
    return text.split(begin, 1)[1].split(end, 1)[0].strip()
