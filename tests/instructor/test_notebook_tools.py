"""make-student: nbgrader-style stubs, marker errors, determinism, --check."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from instructor.commands import main
from instructor.notebook_tools import (
    MarkerError,
    clear_solutions,
    find_outputs,
    make_student_notebook,
    plan_student_notebooks,
    strip_outputs,
    write_student_notebooks,
)

REPO = Path(__file__).resolve().parents[2]

SOLUTION_CELL = '''\
class Sampling:
    def call(self, z_mean, z_log_var):
        """Draw z = z_mean + exp(0.5 * z_log_var) * eps."""
        if True:
            ### BEGIN SOLUTION (hint: use exp(0.5 * z_log_var))
            eps = 1.0
            return z_mean + eps
            ### END SOLUTION


def kl(mean):
    """Return the KL."""
    ### BEGIN SOLUTION
    return mean
    ### END SOLUTION
'''

TEST_CELL = '''\
"""Check that kl runs."""
assert kl is not None
### BEGIN HIDDEN TESTS
assert kl(0) == 0
### END HIDDEN TESTS
'''


def _solution_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "[![Open In Colab]"
            "(https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/org/lab/blob/main/solutions/"
            "02_model.ipynb)"
        ),
        nbformat.v4.new_code_cell(SOLUTION_CELL),
        nbformat.v4.new_code_cell(TEST_CELL),
        nbformat.v4.new_markdown_cell(
            "Why blurry?\n\n### BEGIN SOLUTION\nMSE.\n" "### END SOLUTION"
        ),
    ]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="hi\n")]
    nb.cells[1].execution_count = 3
    nb.cells[1].metadata["ExecuteTime"] = {"end_time": "2024"}
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"c{index}"
    return nb


def _write(path: Path, nb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def test_stub_keeps_indentation_signature_docstring_and_raises():
    student = clear_solutions(SOLUTION_CELL, "code", "nb, cell 1")
    ast.parse(student)
    lines = student.split("\n")
    assert lines[4:7] == [
        " " * 12 + "# YOUR CODE HERE",
        " " * 12 + "# TODO: use exp(0.5 * z_log_var)",
        " " * 12 + "raise NotImplementedError()",
    ]
    assert "    def call(self, z_mean, z_log_var):" in lines
    assert '        """Draw z = z_mean + exp(0.5 * z_log_var) * eps."""' in lines
    assert "def kl(mean):" in lines and '    """Return the KL."""' in lines
    assert "eps = 1.0" not in student and "return mean" not in student
    assert (
        "    # YOUR CODE HERE\n    # TODO: write what the docstring above describes, "
        "then run the check below\n    raise NotImplementedError()"
    ) in student
    namespace: dict = {}
    exec(compile(student, "<student>", "exec"), namespace)
    with pytest.raises(NotImplementedError):
        namespace["Sampling"]().call(0.0, 0.0)
    with pytest.raises(NotImplementedError):
        namespace["kl"](0.0)


def test_hidden_tests_are_removed_and_markdown_gets_answer_stub():
    assert (
        clear_solutions(TEST_CELL)
        == '"""Check that kl runs."""\nassert kl is not None\n'
    )
    text = clear_solutions(
        "Q?\n### BEGIN SOLUTION (hint: think)\nA.\n### END SOLUTION", "markdown"
    )
    assert text == "Q?\nYOUR ANSWER HERE\n*Hint: think*"


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n",
            "nb.ipynb, cell 4, line 2: '### BEGIN SOLUTION' inside the region opened "
            "by '### BEGIN SOLUTION' at line 1",
        ),
        (
            "x = 1\n    ### BEGIN SOLUTION\n    y = 2\n",
            "nb.ipynb, cell 4, line 2: '### BEGIN SOLUTION' is never closed",
        ),
        (
            "x = 1\n### END SOLUTION\n",
            "nb.ipynb, cell 4, line 2: '### END SOLUTION' without a matching "
            "'### BEGIN SOLUTION'",
        ),
        (
            "### BEGIN HIDDEN TESTS\n### END SOLUTION\n",
            "nb.ipynb, cell 4, line 2: '### END SOLUTION' without a matching "
            "'### BEGIN SOLUTION' (the open region is '### BEGIN HIDDEN TESTS')",
        ),
        (
            "## BEGIN SOLUTION\n",
            "nb.ipynb, cell 4, line 1: '## BEGIN SOLUTION' looks "
            "like a marker but is not one",
        ),
        (
            "### BEGIN SOLUTION use exp\n### END SOLUTION\n",
            "nb.ipynb, cell 4, line 1: unexpected text after '### BEGIN SOLUTION'",
        ),
    ],
    ids=["nested", "unclosed", "stray-end", "mismatched", "misspelt", "bad-hint"],
)
def test_bad_markers_name_notebook_cell_and_line(source, message):
    with pytest.raises(MarkerError) as info:
        clear_solutions(source, "code", "nb.ipynb, cell 4")
    assert str(info.value).startswith(message)


def test_bad_marker_in_notebook_names_file_and_cell(tmp_path):
    nb = _solution_notebook()
    nb.cells[2].source = "x = 1\n### END SOLUTION"
    _write(tmp_path / "solutions" / "02_model.ipynb", nb)
    with pytest.raises(
        MarkerError, match=r"^solutions/02_model.ipynb, cell 2, line 2: "
    ):
        plan_student_notebooks(tmp_path / "solutions", tmp_path / "notebooks")


def test_student_notebook_notice_badge_and_no_outputs():
    nb = _solution_notebook()
    student = make_student_notebook(nb, "solutions/02_model.ipynb")
    assert nb.cells[1].execution_count == 3  # the input is untouched
    assert student.cells[0].cell_type == "markdown"
    assert student.cells[0].source == (
        "*Generated from `solutions/02_model.ipynb` by `python -m instructor "
        "make-student`: do not edit.*"
    )
    assert "/blob/main/notebooks/02_model.ipynb" in student.cells[1].source
    assert "solutions/" not in student.cells[1].source
    code = student.cells[2]
    assert code.outputs == [] and code.execution_count is None
    assert "ExecuteTime" not in code.metadata
    assert student.cells[4].source == "Why blurry?\n\nYOUR ANSWER HERE"
    nbformat.validate(student)


def test_generation_is_deterministic_and_check_detects_stale(tmp_path, capsys):
    solutions, out = tmp_path / "solutions", tmp_path / "notebooks"
    _write(solutions / "02_model.ipynb", _solution_notebook())
    args = ["make-student", "--solutions", str(solutions), "--out", str(out)]
    assert main(args + ["--check"]) == 1
    assert f"missing: {out / '02_model.ipynb'}" in capsys.readouterr().out
    assert main(args) == 0
    first = (out / "02_model.ipynb").read_bytes()
    assert main(args) == 0
    assert (out / "02_model.ipynb").read_bytes() == first
    assert write_student_notebooks(solutions, out) == []
    # The committed solution still has outputs: --check says so.
    assert main(args + ["--check"]) == 1
    assert "outputs: " in capsys.readouterr().out
    assert strip_outputs(solutions / "02_model.ipynb") is True
    assert strip_outputs(solutions / "02_model.ipynb") is False
    assert find_outputs(solutions / "02_model.ipynb") == []
    assert main(args + ["--check"]) == 0
    # Edit the solution: the student notebook is now stale, and --check writes nothing.
    nb = nbformat.read(str(solutions / "02_model.ipynb"), as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace("eps = 1.0", "eps = 2.0")
    nb.cells.append(nbformat.v4.new_markdown_cell("More."))
    nb.cells[-1]["id"] = "more"
    _write(solutions / "02_model.ipynb", nb)
    (out / "99_old.ipynb").write_text((out / "02_model.ipynb").read_text())
    capsys.readouterr()
    assert main(args + ["--check"]) == 1
    report = capsys.readouterr().out
    assert f"stale: {out / '02_model.ipynb'}" in report
    assert f"extra: {out / '99_old.ipynb'}" in report
    assert (out / "02_model.ipynb").read_bytes() == first
    assert main(args) == 0
    assert (out / "02_model.ipynb").read_bytes() != first
    assert json_cells(out / "02_model.ipynb")[-1] == "More."


def json_cells(path: Path) -> list[str]:
    return [cell.source for cell in nbformat.read(str(path), as_version=4).cells]


# ---------------------------------------------------------------- the real repository
def _real_solutions() -> list[Path]:
    return sorted((REPO / "solutions").glob("*.ipynb"))


def test_repository_student_notebooks_are_up_to_date():
    if not _real_solutions():
        pytest.skip(
            "solutions/ has no notebooks yet: this test turns on by itself "
            "once solutions/NN_name.ipynb exist"
        )
    plan = plan_student_notebooks(REPO / "solutions", REPO / "notebooks")
    for source in _real_solutions():
        assert (
            REPO / "notebooks" / source.name
        ).exists(), f"no student twin of {source}"
    assert plan.ok, "run `python -m instructor make-student`:\n" + "\n".join(
        plan.problems()
    )


def test_repository_notebooks_carry_no_outputs():
    notebooks = _real_solutions() + sorted((REPO / "notebooks").glob("*.ipynb"))
    if not notebooks:
        pytest.skip("no notebooks in solutions/ or notebooks/ yet")
    dirty = {str(p.relative_to(REPO)): find_outputs(p) for p in notebooks}
    assert {p: c for p, c in dirty.items() if c} == {}


EXPECTED_NOTEBOOKS = [
    "01_setup.ipynb",
    "02_model.ipynb",
    "03_loss.ipynb",
    "04_train.ipynb",
    "05_generate.ipynb",
    "06_analysis.ipynb",
]


def test_repository_has_the_six_notebooks_in_both_folders():
    for folder in ("solutions", "notebooks"):
        names = sorted(p.name for p in (REPO / folder).glob("*.ipynb"))
        assert names == EXPECTED_NOTEBOOKS, folder


def test_every_student_todo_is_followed_by_a_self_check():
    """Check that each code TODO stub compiles and the next code cell checks it."""
    import ast

    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        cells = nbformat.read(str(path), as_version=4).cells
        code = [c.source for c in cells if c.cell_type == "code"]
        todos = [
            i for i, src in enumerate(code) if "raise NotImplementedError()" in src
        ]
        for index in todos:
            ast.parse(code[index].replace("%", "#"))  # IPython magics aside
            if path.name.startswith("06"):
                continue  # 06's exercise is the written discussion (markdown)
            following = code[index + 1] if index + 1 < len(code) else ""
            assert following.lstrip().startswith('"""Check that'), (path.name, index)
            assert "helpers.checks" in following or "check_" in following
        if not path.name.startswith("06"):
            assert todos, f"{path.name} has no TODO for students"
