"""README, "How to change an exercise", done end to end: a seventh notebook.

A maintainer writes two things, the solution notebook (its ``%%export`` cell and
self-check cell) and the part's one entry in ``helpers.student.PART_REGISTRY``;
``python -m instructor make-student`` derives everything else: the student
notebook, the nbgrader metadata and points, the release's list of graded cells
and ``vaelab/solution.py``. This test does exactly that in a scratch copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from helpers import student
from instructor import export_cells, submissions
from instructor.commands import main
from instructor.grading import grade_cells

REPO = Path(__file__).resolve().parents[2]

EXPORT_CELL = '''%%export brightness
def mean_brightness(images):
    """The mean pixel value of each image in a batch."""
    ### BEGIN SOLUTION
    return images.mean(axis=(1, 2, 3))
    ### END SOLUTION
'''
CHECK_CELL = '''"""Check that mean_brightness averages each image."""
import numpy as np
assert np.allclose(mean_brightness(np.ones((2, 4, 4, 3))), [1.0, 1.0])
'''


def _seventh_notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# 07 Brightness\n\n## Your turn"),
        nbformat.v4.new_code_cell(EXPORT_CELL),
        nbformat.v4.new_code_cell(CHECK_CELL),
        nbformat.v4.new_markdown_cell(
            "**Question 7.1** Why are the samples darker?\n\n"
            "### BEGIN SOLUTION\nThey average.\n### END SOLUTION"
        ),
    ]
    nbformat.write(nb, str(path))


def _check_brightness(module, config):
    import numpy as np

    assert np.allclose(module["mean_brightness"](np.zeros((1, 2, 2, 3))), [0.0])


def test_a_seventh_notebook_is_two_edits_and_one_command(tmp_path, monkeypatch):
    solutions, notebooks = tmp_path / "solutions", tmp_path / "notebooks"
    shutil.copytree(REPO / "solutions", solutions)
    # Edit 1 of 2: the solution notebook.
    _seventh_notebook(solutions / "07_brightness.ipynb")
    # Edit 2 of 2: the part's entry in the registry (what PARTS etc. derive from).
    part = student.Part("07_brightness", ("mean_brightness",), _check_brightness)
    monkeypatch.setitem(student.PART_REGISTRY, "brightness", part)
    monkeypatch.setitem(student.PARTS, "brightness", part.notebook)
    monkeypatch.setitem(student.PART_NAMES, "brightness", part.names)

    args = ["make-student", "--solutions", str(solutions), "--out", str(notebooks)]
    assert main(args) == 0
    assert main([*args, "--check"]) == 0  # and it is now consistent

    # The student notebook: the answer is a stub, the check is there.
    released = nbformat.read(str(notebooks / "07_brightness.ipynb"), as_version=4)
    text = "\n".join(cell.source for cell in released.cells)
    assert "%%export brightness" in text and "images.mean" not in text
    assert "Check that mean_brightness" in text
    # nbgrader's metadata and points, from the markers.
    stamped = nbformat.read(str(solutions / "07_brightness.ipynb"), as_version=4)
    cells = grade_cells(stamped)
    assert cells["07_brightness-brightness-check"]["points"] > 0
    assert cells["07_brightness-q7-1-answer"]["points"] > 0
    # The release's list of graded cells, and the reference module.
    assert "07_brightness" in submissions.graded_cells(solutions)
    source = export_cells.solution_module_source(
        export_cells.parts_from_notebooks(sorted(solutions.glob("0*.ipynb")))
    )
    assert "# ==================== brightness: from 07_brightness.ipynb" in source
    assert "def mean_brightness" in source
    # The other six notebooks came out exactly as the repository has them.
    for path in sorted((REPO / "notebooks").glob("0*.ipynb")):
        assert (notebooks / path.name).read_text() == path.read_text(), path.name
