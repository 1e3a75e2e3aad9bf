"""Generate the student notebooks from the solutions, nbgrader style.

``solutions/NN_name.ipynb`` is the source; ``notebooks/NN_name.ipynb`` is generated
by ``python -m instructor make-student`` and never edited by hand. In every cell the
lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` become, at the marker's
indentation::

    # YOUR CODE HERE
    # TODO: <hint>              (a default line when the marker carries none)
    raise NotImplementedError()

so the student notebook still parses, and fails loudly where work is left. The
signature and docstring stay outside the markers. A hint is written after the
marker: ``### BEGIN SOLUTION (hint: use exp(0.5 * z_log_var))``. Markdown answers
become ``YOUR ANSWER HERE``. ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``
regions are removed. Outputs and execution counts are stripped, a "generated, do not
edit" cell goes first, and a Colab badge pointing at ``solutions/`` is repointed at
``notebooks/``. Writing is byte-for-byte deterministic, so ``--check`` can tell a
stale notebook from a fresh one without writing anything.

The markers alone drive this; cell metadata is derived from them. Before the
student notebooks are written, every solution notebook is *stamped*: nbgrader's cell
metadata (solution cells, locked test cells with points, manually graded written
answers, see :mod:`instructor.grading`) is computed from the markers and written into
``solutions/*.ipynb``, so ``nbgrader generate_assignment`` works on the solutions as
they are, and the student notebooks carry the same ``grade_id``s as nbgrader's
release. Every Colab badge and ``git+`` install line points at :data:`REPO_URL`
(or ``--repo-url``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import LabError
from instructor.grading import notebook_text, stamp_notebook

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
CODE_STUB = "# YOUR CODE HERE"
DEFAULT_TODO = "write what the docstring above describes, then run the check below"
ANSWER_STUB = "YOUR ANSWER HERE"
NOTICE_ID = "generated-notice"
# The lab's repository: every Colab badge and install line points here. An
# instructor's fork changes this one line (or passes --repo-url to make-student).
REPO_URL = "https://github.com/vae-celeba-lab/vae-celeba-lab"

# A marker line: indentation, the marker, then optionally "(hint: ...)".
_MARKER = re.compile(
    r"^(?P<indent>[ \t]*)(?P<marker>### (?:BEGIN|END) (?:SOLUTION|HIDDEN TESTS))"
    r"(?P<rest>.*)$"
)
_HINT = re.compile(r"^\s*\(hint:\s*(?P<hint>.*?)\s*\)\s*$")
# Anything that looks like a marker but is misspelt ("## BEGIN SOLUTION", "### END").
_LOOKS_LIKE_MARKER = re.compile(r"#+\s*(BEGIN|END)\s+(SOLUTION|HIDDEN)", re.IGNORECASE)
_COLAB = re.compile(r"(colab\.research\.google\.com/\S*?/)solutions/")
_GITHUB_URL = re.compile(
    r"^https://github\.com/(?P<repo>[\w.-]+/[\w.-]+?)(?:\.git)?/?$"
)
_BADGE_REPO = re.compile(
    r"(colab\.research\.google\.com/github/)[\w.-]+/[\w.-]+(/blob/)"
)
_INSTALL_REPO = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+")
# Metadata that records one machine's session rather than the notebook's content.
_VOLATILE_CELL_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")
_VOLATILE_NB_METADATA = ("widgets",)


class MarkerError(LabError):
    """A solution or hidden-test marker is nested, unclosed, stray or misspelt."""


def _nbformat():
    try:
        import nbformat
    except ImportError as error:  # pragma: no cover - nbformat ships with jupyter
        raise LabError("make-student needs nbformat: pip install nbformat") from error
    return nbformat


# --------------------------------------------------------------------------- cells
def clear_solutions(source: str, cell_type: str = "code", where: str = "cell") -> str:
    """Replace solution regions with stubs and drop hidden-test regions.

    Args:
        source: the cell's text.
        cell_type: "code" (stub raises NotImplementedError) or "markdown"
            (stub is ``YOUR ANSWER HERE``).
        where: "notebook, cell N" for error messages.

    Returns:
        The student version of the cell's text.

    Raises:
        MarkerError: nested, unclosed, stray or misspelt markers; the message
            names ``where`` and the 1-based line.
    """
    out: list[str] = []
    open_marker: tuple[str, int] | None = None  # (BEGIN marker, line number)
    for number, line in enumerate(source.split("\n"), start=1):
        match = _MARKER.match(line)
        if match is None:
            if _LOOKS_LIKE_MARKER.search(line):
                raise MarkerError(
                    f"{where}, line {number}: {line.strip()!r} looks like a marker but "
                    f"is not one; write exactly {BEGIN_SOLUTION!r} / {END_SOLUTION!r} "
                    f"(or {BEGIN_HIDDEN!r} / {END_HIDDEN!r}) on a line of its own"
                )
            if open_marker is None:
                out.append(line)
            continue
        indent, marker, rest = match.group("indent", "marker", "rest")
        if marker.startswith("### BEGIN"):
            if open_marker is not None:
                raise MarkerError(
                    f"{where}, line {number}: {marker!r} inside the region opened by "
                    f"{open_marker[0]!r} at line {open_marker[1]}; regions cannot "
                    f"nest: close the first one with its END marker"
                )
            hint = _parse_hint(rest, marker, where, number)
            open_marker = (marker, number)
            if marker == BEGIN_SOLUTION:
                out.extend(_stub(indent, hint, cell_type))
            continue
        expected = marker.replace("END", "BEGIN")
        if open_marker is None or open_marker[0] != expected:
            opened = f" (the open region is {open_marker[0]!r})" if open_marker else ""
            raise MarkerError(
                f"{where}, line {number}: {marker!r} without a matching {expected!r}"
                f"{opened}; add the BEGIN marker above it or delete this line"
            )
        if rest.strip():
            raise MarkerError(
                f"{where}, line {number}: unexpected text after {marker!r}: "
                f"{rest.strip()!r}; END markers take nothing after them"
            )
        open_marker = None
    if open_marker is not None:
        raise MarkerError(
            f"{where}, line {open_marker[1]}: {open_marker[0]!r} is never closed; add "
            f"{open_marker[0].replace('BEGIN', 'END')!r} after the region"
        )
    return "\n".join(out)


def _parse_hint(rest: str, marker: str, where: str, number: int) -> str | None:
    if not rest.strip():
        return None
    match = _HINT.match(rest)
    if marker != BEGIN_SOLUTION or match is None or not match.group("hint"):
        raise MarkerError(
            f"{where}, line {number}: unexpected text after {marker!r}: "
            f"{rest.strip()!r}; the only thing allowed is a hint on a solution marker, "
            f"written as `{BEGIN_SOLUTION} (hint: ...)`"
        )
    return match.group("hint")


def _stub(indent: str, hint: str | None, cell_type: str) -> list[str]:
    if cell_type == "markdown":
        return [indent + ANSWER_STUB] + ([indent + f"*Hint: {hint}*"] if hint else [])
    todo = hint or DEFAULT_TODO
    return [
        indent + CODE_STUB,
        indent + f"# TODO: {todo}",
        indent + "raise NotImplementedError()",
    ]


# ----------------------------------------------------------------------- notebooks
def strip_notebook(nb) -> bool:
    """Remove outputs, execution counts and session metadata in place.

    Returns:
        True if anything was removed.
    """
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            if cell.get("outputs") or cell.get("execution_count") is not None:
                changed = True
            cell.outputs = []
            cell.execution_count = None
        for key in _VOLATILE_CELL_METADATA:
            if key in cell.get("metadata", {}):
                del cell.metadata[key]
                changed = True
        if cell.cell_type != "code" and cell.get("attachments") == {}:
            del cell["attachments"]
    for key in _VOLATILE_NB_METADATA:
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    return changed


def find_outputs(path: str | Path) -> list[int]:
    """Return the indices of code cells that carry outputs or execution counts."""
    nb = _nbformat().read(str(path), as_version=4)
    return [
        index
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]


def strip_outputs(path: str | Path) -> bool:
    """Strip outputs and execution counts from a notebook file, in place.

    Returns:
        True if the file changed (it is rewritten only then).
    """
    nbformat = _nbformat()
    path = Path(path)
    nb = nbformat.read(str(path), as_version=4)
    strip_notebook(nb)
    text = notebook_text(nb)
    if path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True


def check_repo_url(url: str) -> str:
    """Return ``url`` as ``https://github.com/OWNER/REPO``, or raise LabError.

    Colab opens notebooks from GitHub only, so the lab's repository must be there.
    """
    match = _GITHUB_URL.match(url.strip())
    if match is None:
        raise LabError(
            f"--repo-url {url!r} is not a GitHub repository URL: write it as "
            f"https://github.com/OWNER/REPO (Colab badges open notebooks from GitHub)"
        )
    return f"https://github.com/{match.group('repo')}"


def repo_url_in(solutions: str | Path) -> str | None:
    """The repository the solutions' install lines point at, if they agree on one.

    ``make-student --repo-url URL`` writes URL into the solutions, so every later
    command (``--check``, ``--release``, ``--course``) finds it there without
    being told again.
    """
    import json

    found = set()
    for path in sorted(Path(solutions).glob("*.ipynb")):
        try:
            cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        except (OSError, ValueError, AttributeError):
            continue
        for cell in cells:
            source = cell.get("source", "")
            text = "".join(source) if isinstance(source, list) else str(source)
            found.update(_INSTALL_REPO.findall(text))
    if len(found) != 1:
        return None
    return "https://github.com/" + found.pop().removeprefix("git+https://github.com/")


def student_links(nb) -> None:
    """Point the badges of a notebook students open at ``notebooks/``, in place."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = _COLAB.sub(r"\1notebooks/", cell.source)


def set_repo_url(nb, url: str = REPO_URL) -> int:
    """Point every Colab badge and ``git+`` install line of ``nb`` at ``url``.

    Returns:
        How many links were rewritten (0 when they already pointed there).
    """
    repo = check_repo_url(url).removeprefix("https://github.com/")
    count = 0
    for cell in nb.cells:
        if cell.cell_type not in ("code", "markdown"):
            continue
        source, n_badges = _BADGE_REPO.subn(rf"\g<1>{repo}\g<2>", cell.source)
        source, n_installs = _INSTALL_REPO.subn(
            f"git+https://github.com/{repo}", source
        )
        if source != cell.source:
            cell.source = source
            count += n_badges + n_installs
    return count


def prepare_solution(nb, stem: str, repo_url: str = REPO_URL):
    """Return the solution as committed: links at ``repo_url``, nbgrader-stamped."""
    nb = copy.deepcopy(nb)
    set_repo_url(nb, repo_url)
    return stamp_notebook(nb, stem)


def make_student_notebook(nb, source_name: str):
    """Return the student version of a solution notebook (the input is unchanged).

    nbgrader metadata stays, so a student notebook can be graded like nbgrader's
    release; locked cells are also made read-only (``editable``/``deletable``
    false), as nbgrader's ``LockCells`` does.

    Args:
        nb: a ``nbformat`` v4 notebook.
        source_name: the solution's path as shown to people, e.g.
            "solutions/02_model.ipynb" (used in the notice and in errors).
    """
    nbformat = _nbformat()
    student = copy.deepcopy(nb)
    if (student.nbformat, student.nbformat_minor) < (4, 5):
        student.nbformat_minor = 5  # cell ids make the output stable and diffable
    strip_notebook(student)
    for index, cell in enumerate(student.cells):
        where = f"{source_name}, cell {index}"
        if cell.cell_type in ("code", "markdown"):
            cell.source = clear_solutions(cell.source, cell.cell_type, where)
        if cell.metadata.get("nbgrader", {}).get("locked"):
            cell.metadata["editable"] = False
            cell.metadata["deletable"] = False
    student_links(student)
    notice = nbformat.v4.new_markdown_cell(
        f"*Generated from `{source_name}` by `python -m instructor make-student`: "
        f"do not edit.*"
    )
    notice["id"] = NOTICE_ID
    student.cells.insert(0, notice)
    return student


@dataclass
class StudentPlan:
    """What ``make-student`` would write, and what is out of date."""

    expected: dict[Path, str] = field(default_factory=dict)  # path -> text
    stale: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    extra: list[Path] = field(default_factory=list)
    with_outputs: dict[Path, list[int]] = field(default_factory=dict)
    # solution -> its text once stamped (only those that differ from the file)
    unstamped: dict[Path, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every student notebook is present and up to date."""
        return not (
            self.stale
            or self.missing
            or self.extra
            or self.with_outputs
            or self.unstamped
        )

    def problems(self) -> list[str]:
        """One line per problem, each saying what to do."""
        lines = [
            f"unstamped: {p} lacks its nbgrader metadata or repository links "
            f"(make-student writes them)"
            for p in self.unstamped
        ]
        lines += [f"stale: {p} (regenerate it)" for p in self.stale]
        lines += [f"missing: {p} (generate it)" for p in self.missing]
        lines += [
            f"extra: {p} has no solutions/ source (delete it or add the solution)"
            for p in self.extra
        ]
        lines += [
            f"outputs: {p} has outputs in cells {cells} (strip them with "
            f"`python -m instructor make-student --strip-outputs`)"
            for p, cells in self.with_outputs.items()
        ]
        return lines


def plan_student_notebooks(
    solutions: str | Path, out: str | Path, repo_url: str = REPO_URL
) -> StudentPlan:
    """Work out every student notebook and compare with what is on disk.

    Args:
        solutions: folder of ``NN_name.ipynb`` solution notebooks.
        out: folder of generated student notebooks.
        repo_url: the repository every badge and install line points at.

    Raises:
        LabError: ``solutions`` is not a folder; MarkerError: a bad marker.
    """
    nbformat = _nbformat()
    solutions, out = Path(solutions), Path(out)
    if not solutions.is_dir():
        raise LabError(f"{solutions} is not a folder of solution notebooks")
    plan = StudentPlan()
    for source in sorted(solutions.glob("*.ipynb")):
        nb = prepare_solution(
            nbformat.read(str(source), as_version=4), source.stem, repo_url
        )
        solution_text = notebook_text(nb)
        if source.read_text(encoding="utf-8") != solution_text:
            plan.unstamped[source] = solution_text
        shown = f"{solutions.name}/{source.name}"
        target = out / source.name
        plan.expected[target] = notebook_text(make_student_notebook(nb, shown))
        if not target.exists():
            plan.missing.append(target)
        elif target.read_text(encoding="utf-8") != plan.expected[target]:
            plan.stale.append(target)
        cells = find_outputs(source)
        if cells:
            plan.with_outputs[source] = cells
    if out.is_dir():
        plan.extra = [p for p in sorted(out.glob("*.ipynb")) if p not in plan.expected]
    return plan


def write_student_notebooks(
    solutions="solutions", out="notebooks", repo_url: str = REPO_URL
) -> list[Path]:
    """Stamp the solutions, generate every student notebook; return what changed."""
    plan = plan_student_notebooks(solutions, out, repo_url)
    Path(out).mkdir(parents=True, exist_ok=True)
    changed = []
    for path, text in plan.unstamped.items():
        path.write_text(text, encoding="utf-8")
        changed.append(path)
    for path, text in plan.expected.items():
        if path in plan.stale or path in plan.missing:
            path.write_text(text, encoding="utf-8")
            changed.append(path)
    return changed
