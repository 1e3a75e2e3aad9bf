"""What students get: a release without the answers, and an nbgrader course.

The reference implementations of what students write live in ``helpers/`` (the
self-checks never import them: they compare with stored expected values). Each is
wrapped, at module level, in comment markers::

    # BEGIN REFERENCE (encoder)
    def build_encoder(config): ...
    # END REFERENCE

:func:`build_release` writes the student notebooks and a copy of ``helpers`` in
which every such region is replaced by stubs of the same names that raise
:class:`NotInReleaseError` ("the lab's encoder is not in the student release: you
write it in notebook 02_model"). Nothing else of the solutions goes in: no
``solutions/``, no tests, no scripts that generate fixtures from the reference.

:func:`write_nbgrader_course` lays the solutions out as an nbgrader course
(``source/<assignment>/<notebook>.ipynb`` and ``nbgrader_config.py``).
"""

from __future__ import annotations

import ast
import io
import py_compile
import re
import shutil
import textwrap
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import LabError
from helpers.student import PARTS

# Top-level files of the repository that students need (installing, reading).
RELEASE_FILES = ("pyproject.toml", "README.md", "LICENSE", "requirements.txt")
RELEASE_FOLDERS = ("report_template",)
# A file of helpers/ whose first lines carry this is never released.
INSTRUCTOR_ONLY = "# INSTRUCTOR ONLY"
_BEGIN = re.compile(r"^# BEGIN REFERENCE \((?P<part>[\w-]+)\)\s*$")
_END = re.compile(r"^# END REFERENCE\s*$")
_LOOKS_LIKE = re.compile(r"#\s*(BEGIN|END)\s+REFERENCE", re.IGNORECASE)


class NotInReleaseError(LabError, NotImplementedError):
    """Reference code that the student release leaves out was called."""

    def __init__(self, part: str, notebook: str):
        super().__init__(
            f"the lab's {part} is not in the student release: you write it in "
            f"notebook {notebook} ({notebook}.ipynb); run that notebook's cells "
            f"(its self-checks say when your {part} is right) and use your own"
        )


class ReleaseError(LabError):
    """The release cannot be built (bad markers, a folder in the way)."""


# ----------------------------------------------------------------- reference code
def _stub(part: str, node: ast.stmt) -> list[str]:
    notebook = PARTS[part]
    doc = f'"""Not in the student release: you write it in notebook {notebook}."""'
    error = (
        "from helpers.release import NotInReleaseError\n\n"
        f"raise NotInReleaseError({part!r}, {notebook!r})"
    )
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        body = textwrap.indent(f"{doc}\n{error}", "    ")
        return [f"def {node.name}(*args, **kwargs):", *body.split("\n"), "", ""]
    if isinstance(node, ast.ClassDef):
        body = textwrap.indent(error, "        ")
        return [
            f"class {node.name}:",
            f"    {doc}",
            "",
            "    def __init__(self, *args, **kwargs):",
            *body.split("\n"),
            "",
            "",
        ]
    names = []
    if isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        names = [node.target.id]
    return [f"{name} = None  # not in the student release" for name in names]


def _marker_lines(source: str, where: str) -> set[int]:
    """Line numbers of the marker comments (docstrings that mention them aside)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError) as error:
        raise ReleaseError(f"{where}: not valid Python ({error})") from error
    lines = set()
    for token in tokens:
        if token.type != tokenize.COMMENT or not _LOOKS_LIKE.search(token.string):
            continue
        number, column = token.start
        if column != 0 or not (_BEGIN.match(token.line) or _END.match(token.line)):
            raise ReleaseError(
                f"{where}, line {number}: {token.string.strip()!r} looks like a "
                f"reference marker but is not one: write '# BEGIN REFERENCE (<part>)' "
                f"and '# END REFERENCE' alone on a line, at column 0"
            )
        lines.add(number)
    return lines


def strip_reference(source: str, where: str = "module") -> tuple[str, list[str]]:
    """Replace every reference region of a module's text with raising stubs.

    Args:
        source: the module's text.
        where: its path, for error messages.

    Returns:
        (the stripped text, the parts removed in order).

    Raises:
        ReleaseError: a marker is nested, unclosed, stray, misspelt, names an
            unknown part, or its region is not whole module-level statements.
    """
    markers = _marker_lines(source, where)
    out: list[str] = []
    parts: list[str] = []
    region: list[str] | None = None
    opened = (0, "")
    for number, line in enumerate(source.split("\n"), start=1):
        if number not in markers:
            (out if region is None else region).append(line)
            continue
        begin = _BEGIN.match(line)
        if begin is not None:
            if region is not None:
                raise ReleaseError(
                    f"{where}, line {number}: reference regions cannot nest (one "
                    f"is open since line {opened[0]})"
                )
            part = begin.group("part")
            if part not in PARTS:
                raise ReleaseError(
                    f"{where}, line {number}: unknown part {part!r}; known parts: "
                    f"{', '.join(PARTS)}"
                )
            region, opened = [], (number, part)
            continue
        if region is None:
            raise ReleaseError(
                f"{where}, line {number}: '# END REFERENCE' without a BEGIN above it"
            )
        part = opened[1]
        try:
            tree = ast.parse("\n".join(region))
        except SyntaxError as error:
            raise ReleaseError(
                f"{where}, lines {opened[0]}-{number}: the {part} region is not whole "
                f"module-level statements ({error.msg}): put the markers around "
                f"complete functions or classes, at column 0"
            ) from error
        out.append(f"# Reference {part} removed from the student release.")
        for node in tree.body:
            out.extend(_stub(part, node))
        parts.append(part)
        region = None
    if region is not None:
        raise ReleaseError(
            f"{where}, line {opened[0]}: '# BEGIN REFERENCE ({opened[1]})' is never "
            f"closed: add '# END REFERENCE' after the region"
        )
    return "\n".join(out), parts


# ------------------------------------------------------------------------ release
@dataclass
class ReleaseSummary:
    """What :func:`build_release` wrote."""

    dest: Path
    notebooks: list[Path] = field(default_factory=list)
    stripped: dict[str, list[str]] = field(default_factory=dict)  # module -> parts
    skipped: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{len(self.notebooks)} student notebook(s) in {self.dest}/notebooks"]
        out += [
            f"stripped {m}: {', '.join(dict.fromkeys(p))}"
            for m, p in self.stripped.items()
        ]
        out += [f"left out (instructor only): {s}" for s in self.skipped]
        return out


def _copy_helpers(src: Path, dest: Path, summary: ReleaseSummary) -> None:
    for path in sorted(src.rglob("*")):
        relative = path.relative_to(src)
        if "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        target = dest / relative
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix != ".py":
            shutil.copy2(path, target)
            continue
        text = path.read_text(encoding="utf-8")
        if INSTRUCTOR_ONLY in "\n".join(text.split("\n")[:5]):
            summary.skipped.append(f"helpers/{relative}")
            continue
        stripped, parts = strip_reference(text, f"helpers/{relative}")
        if parts:
            summary.stripped[f"helpers/{relative}"] = parts
        target.write_text(stripped, encoding="utf-8")
        py_compile.compile(str(target), doraise=True, cfile=str(target) + "c.tmp")
        Path(str(target) + "c.tmp").unlink()


def build_release(
    dest: str | Path,
    repo: str | Path = ".",
    solutions: str | Path | None = None,
    repo_url: str | None = None,
) -> ReleaseSummary:
    """Write the student release into ``dest`` (which must not exist or be empty).

    Args:
        dest: the release folder: ``notebooks/``, ``helpers/`` (reference code
            stripped) and the files needed to install it (``pyproject.toml`` ...).
        repo: the instructor's repository (holding ``helpers/`` and ``solutions/``).
        solutions: the solution notebooks (default: ``<repo>/solutions``).
        repo_url: the repository students install from and open in Colab (default:
            :data:`helpers.notebook_tools.REPO_URL`).

    Raises:
        ReleaseError: ``dest`` is not empty, or a reference marker is bad.
    """
    from helpers.notebook_tools import REPO_URL, plan_student_notebooks

    repo, dest = Path(repo), Path(dest)
    solutions = Path(solutions) if solutions is not None else repo / "solutions"
    if dest.exists() and any(dest.iterdir()):
        raise ReleaseError(
            f"{dest} is not empty: give a new folder for the release (it is "
            f"written from scratch so nothing of the solutions is left in it)"
        )
    plan = plan_student_notebooks(solutions, dest / "notebooks", repo_url or REPO_URL)
    summary = ReleaseSummary(dest=dest)
    (dest / "notebooks").mkdir(parents=True, exist_ok=True)
    for path, text in plan.expected.items():
        path.write_text(text, encoding="utf-8")
        summary.notebooks.append(path)
    _copy_helpers(repo / "helpers", dest / "helpers", summary)
    for name in RELEASE_FILES:
        if (repo / name).is_file():
            shutil.copy2(repo / name, dest / name)
    for name in RELEASE_FOLDERS:
        if (repo / name).is_dir():
            shutil.copytree(repo / name, dest / name)
    return summary


# ------------------------------------------------------------------ nbgrader course
NBGRADER_CONFIG = """\
# nbgrader configuration written by `python -m helpers make-student --course`.
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.course_id = "vae-celeba-lab"
# Grade with the generated slice: the self-checks use fixed inputs, so SMOKE=1
# gives the same points in minutes (run `SMOKE=1 nbgrader autograde ...`).
c.Execute.timeout = {timeout}
# nbgrader's stub is the same as make-student's, minus the "# TODO: hint" line.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
"""


def write_nbgrader_course(
    root: str | Path,
    solutions: str | Path = "solutions",
    assignment: str | None = None,
    notebooks: list[str] | None = None,
    repo_url: str | None = None,
    timeout: int = 600,
) -> list[Path]:
    """Lay the stamped solutions out as an nbgrader course under ``root``.

    Args:
        root: the course folder (created); gets ``nbgrader_config.py``.
        solutions: the solution notebooks.
        assignment: one assignment holding every notebook; default: one
            assignment per notebook, named after it (``source/03_loss/03_loss.ipynb``).
        notebooks: stems to include (default: all).
        repo_url: see :func:`helpers.notebook_tools.prepare_solution`.
        timeout: seconds one cell may run during ``nbgrader autograde``.

    Returns:
        The source notebooks written.
    """
    import nbformat

    from helpers.notebook_tools import REPO_URL, notebook_text, prepare_solution

    root, solutions = Path(root), Path(solutions)
    written = []
    for path in sorted(solutions.glob("*.ipynb")):
        if notebooks is not None and path.stem not in notebooks:
            continue
        nb = prepare_solution(
            nbformat.read(str(path), as_version=4), path.stem, repo_url or REPO_URL
        )
        target = root / "source" / (assignment or path.stem) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(notebook_text(nb), encoding="utf-8")
        written.append(target)
    if not written:
        raise LabError(f"no solution notebooks in {solutions}")
    config = root / "nbgrader_config.py"
    if not config.exists():
        config.write_text(NBGRADER_CONFIG.format(timeout=timeout), encoding="utf-8")
    return written
