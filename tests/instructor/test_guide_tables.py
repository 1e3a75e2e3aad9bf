"""INSTRUCTORS.md's generated tables: current, and refusing what cannot be true."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.expected import EXPECTED
from instructor.grading import GradingError
from instructor.guide_tables import (
    EXPECTED_BEGIN,
    EXPECTED_END,
    expected_table,
    table_between,
    update_expected_table,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_guides_expected_table_is_the_ranges_nbval_checks():
    table = table_between(REPO / "INSTRUCTORS.md", EXPECTED_BEGIN, EXPECTED_END)
    assert table == expected_table(REPO / "solutions"), (
        "the expected-numbers table in INSTRUCTORS.md is stale: run python -m "
        "instructor make-student"
    )
    assert "| 02_model | encoder parameters | exactly 304,048 |" in table
    assert len(table.splitlines()) == 2 + len(EXPECTED)


def _solutions(tmp_path, *keys) -> Path:
    folder = tmp_path / "solutions"
    folder.mkdir()
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
         "source": f'expect("{key}", value)'}
        for key in keys
    ]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "01_setup.ipynb").write_text(json.dumps(notebook))
    return folder


def test_an_expectation_no_notebook_prints_is_refused(tmp_path):
    printed = list(EXPECTED)[1:]  # the first is printed nowhere
    with pytest.raises(GradingError, match=f"printed nowhere: {list(EXPECTED)[0]}"):
        expected_table(_solutions(tmp_path, *printed))


def test_a_printed_key_without_an_expectation_is_refused(tmp_path):
    with pytest.raises(GradingError, match="not in EXPECTED: no_such_key"):
        expected_table(_solutions(tmp_path, *EXPECTED, "no_such_key"))


def test_the_table_is_rewritten_between_its_markers(tmp_path):
    solutions = _solutions(tmp_path, *EXPECTED)
    guide = tmp_path / "GUIDE.md"
    guide.write_text(f"intro\n{EXPECTED_BEGIN}\nold\n{EXPECTED_END}\nrest\n")
    assert update_expected_table(guide, solutions) is True
    assert update_expected_table(guide, solutions) is False
    text = guide.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and "old" not in text
    assert "| 01_setup | encoder parameters | exactly 304,048 |" in text
    guide.write_text("no markers\n")
    with pytest.raises(GradingError, match="no expected table markers"):
        update_expected_table(guide, solutions)
