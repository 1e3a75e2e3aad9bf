"""``vaelab/solution.py``, generated from the solutions' ``%%export`` cells.

The completed parts live once, in the solution notebooks (as d2l's ``#@save``
cells do); ``python -m instructor make-student`` writes them, in ``PARTS`` order,
into the module that the lab's CLI, demo, benchmarks and ``USE_LAB_PART`` import
(``helpers.student.solution_module``). Students never install this package: the
student release ships no ``solution.py``, or only the parts given out.
"""

from __future__ import annotations

from pathlib import Path

from helpers.files import atomic_write_text
from vaelab import SOLUTION_FILE
from helpers.student import (
    HEADER,
    PARTS,
    SOLUTION_PACKAGE,
    STUDENT_PACKAGE,
)

SOLUTION_BANNER = '''"""The lab's reference VAE: the solutions' %%export cells, in PARTS order.

Generated from solutions/*.ipynb by `python -m instructor make-student`: do not edit.
Edit the solution cell instead and run make-student again (a test fails when this
file is out of date). The student release leaves it out, or keeps only the parts
the instructor gives (`make-student --release DIR --give encoder,decoder`).
Classes are registered under package "lab", so students' own classes keep theirs.
"""
'''


def strip_solution_markers(source: str) -> str:
    """Drop the ``### BEGIN/END SOLUTION`` marker lines, keeping the code between."""
    keep = [
        line
        for line in source.split("\n")
        if not line.strip().startswith(("### BEGIN SOLUTION", "### END SOLUTION"))
    ]
    return "\n".join(keep)


def solution_module_source(sources: dict[str, str], notebooks=None) -> str:
    """Return the text of ``vaelab/solution.py`` from {part: %%export source}.

    Args:
        sources: each part's cell source (marker lines are dropped).
        notebooks: {part: notebook file name} (default: ``PARTS``' notebooks).
    """
    chunks = [SOLUTION_BANNER, HEADER.split('"""', 2)[2]]
    for part in PARTS:
        if part not in sources:
            continue
        where = (notebooks or {}).get(part, f"{PARTS[part]}.ipynb")
        body = strip_solution_markers(sources[part]).strip("\n")
        body = body.replace(STUDENT_PACKAGE, SOLUTION_PACKAGE)
        chunks.append(f"\n\n# {'=' * 20} {part}: from {where}\n{body}\n")
    return "".join(chunks)




def _solution_text(solutions_dir) -> str:
    notebooks = sorted(Path(solutions_dir).glob("[0-9][0-9]_*.ipynb"))
    where = {
        part: f"solutions/{nb.name}" for nb in notebooks for part in parts_from_notebooks([nb])
    }
    return solution_module_source(parts_from_notebooks(notebooks), where)


def solution_module_stale(solutions_dir, path: Path | None = None) -> bool:
    """True when ``vaelab/solution.py`` differs from what the solutions give."""
    path = path or SOLUTION_FILE
    text = _solution_text(solutions_dir)
    return not path.is_file() or path.read_text(encoding="utf-8") != text


def write_solution_module(solutions_dir, path: Path | None = None) -> bool:
    """Generate ``vaelab/solution.py`` from the solutions; True if it changed."""
    path = path or SOLUTION_FILE
    if not solution_module_stale(solutions_dir, path):
        return False
    atomic_write_text(path, _solution_text(solutions_dir))
    return True


def parts_from_notebooks(paths) -> dict[str, str]:
    """Return {part: source} of every ``%%export`` cell in the given notebooks."""
    import nbformat

    found = {}
    for path in paths:
        notebook = nbformat.read(str(path), as_version=4)
        for cell in notebook.cells:
            first, _, rest = cell.source.partition("\n")
            if cell.cell_type == "code" and first.startswith("%%export "):
                found[first.split()[1]] = rest
    return found


def completed_parts(solutions_dir) -> dict[str, str]:
    """{part: source} of the solutions' ``%%export`` cells without their solution
    markers: what a student who completed every exercise exports."""
    found = parts_from_notebooks(sorted(Path(solutions_dir).glob("0*.ipynb")))
    return {part: strip_solution_markers(source) for part, source in found.items()}
