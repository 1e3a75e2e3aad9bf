"""nbgrader metadata from the markers, and repairing what students hand in.

The solution notebooks carry nbgrader's markers (``### BEGIN SOLUTION`` ...), and
:func:`stamp_notebook` derives nbgrader's cell metadata from them, so nobody edits
metadata by hand and ``nbgrader generate_assignment`` works on ``solutions/`` as
they are:

- a code cell with a solution region is an autograded *answer* cell
  (``solution: true``) whose ``grade_id`` is ``<notebook>-<name>``, where ``<name>``
  is the part a ``%%export <part>`` cell exports, else the function or class that
  holds the region;
- the self-check cell after it (the next code cell, opening with
  ``\"\"\"Check that ...``) is a locked, autograded *test* cell worth
  :data:`CHECK_POINTS`: ``<notebook>-<name>-check``;
- a markdown cell with a solution region is a manually graded written answer worth
  :data:`ANSWER_POINTS`: ``<notebook>-q<N>-<M>-answer`` after the "Question N.M"
  label above it, or ``<notebook>-<section>-answer`` after the section heading;
- any other self-check cell is locked (nbgrader restores it when grading) but
  carries no points.

Every other cell loses any ``nbgrader`` metadata, so stamping twice changes nothing.

Students then work in Colab or an editor that may not keep metadata, copy cells or
retype them: :func:`repair_submission` puts a submission back into the shape of its
release before ``nbgrader autograde`` and says what it changed.
"""

from __future__ import annotations

import ast
import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import LabError

CHECK_POINTS = 2
ANSWER_POINTS = 3
SCHEMA_VERSION = 3
CHECK_OPENING = '"""Check that'
_SOLUTION_MARKER = "### BEGIN SOLUTION"
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*$", re.MULTILINE)
_SECTION_NUMBER = re.compile(r"^(?P<number>\d+(?:\.\d+)*)\.?\s+(?P<rest>.*)$")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")
_EXPORT = re.compile(r"^\s*%%export\s+(?P<part>\w+)")
_QUESTION = re.compile(r"\bQuestion\s+(?P<number>\d+(?:\.\d+)*)")
_GRADE_ID_JUNK = re.compile(r"[^a-z0-9_]+")


class GradingError(LabError):
    """A notebook cannot be stamped or repaired as asked."""


# ------------------------------------------------------------------------ stamping
def notebook_text(nb) -> str:
    """Serialise a notebook deterministically (sorted keys, one-space indent)."""
    import nbformat

    for index, cell in enumerate(nb.cells):
        if "id" not in cell and (nb.nbformat, nb.nbformat_minor) >= (4, 5):
            cell["id"] = f"cell-{index}"
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def _metadata(grade_id: str, *, solution: bool, grade: bool, locked: bool, points=None):
    meta = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
    }
    if grade:
        meta["points"] = points
    return meta


def _slug(text: str, words: int = 3) -> str:
    parts = [p for p in _SLUG_JUNK.split(text.lower()) if p]
    return "-".join(parts[:words])


def _python_source(source: str) -> str:
    """Blank IPython magics and shell lines so ``ast`` can read a cell."""
    lines = []
    for line in source.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(("%", "!")):
            lines.append(line[: len(line) - len(stripped)] + "pass")
        else:
            lines.append(line)
    return "\n".join(lines)


def _defined_name(source: str) -> str | None:
    """Return the function or class holding the cell's first solution region."""
    try:
        tree = ast.parse(_python_source(source))
    except SyntaxError:
        return None
    marker_line = next(
        (n for n, line in enumerate(source.split("\n"), 1) if _SOLUTION_MARKER in line),
        None,
    )
    definitions = [
        node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    ]
    holding = [
        node
        for node in definitions
        if marker_line is not None and node.lineno <= marker_line <= node.end_lineno
    ]
    if holding:  # the outermost one: a method is named by its class
        return min(holding, key=lambda node: node.lineno).name
    top = [node for node in tree.body if node in definitions]
    return top[0].name if top else None


def _section(cells, index: int) -> str:
    """Slug of the nearest heading at or above cell ``index`` (e.g. "6-7-discussion")."""
    for cell in reversed(cells[: index + 1]):
        if cell.cell_type != "markdown":
            continue
        headings = [
            title
            for title in _HEADING.findall(cell.source)
            if not title.startswith(("BEGIN ", "END "))  # nbgrader's markers
        ]
        if headings:
            title = headings[-1]
            match = _SECTION_NUMBER.match(title)
            if match:
                return _slug(match.group("number"), 5) + "-" + _slug(match["rest"], 1)
            return _slug(title)
    return "cell"


def _question(cells, index: int) -> str | None:
    """ "q1-2" for the last "Question 1.2" above a written answer, back to the code."""
    text = cells[index].source.split(_SOLUTION_MARKER)[0]
    for cell in reversed(cells[:index]):
        if cell.cell_type != "markdown":
            break
        text = cell.source + "\n" + text
    numbers = _QUESTION.findall(text)
    return "q" + numbers[-1].replace(".", "-") if numbers else None


def _is_check(cell) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_OPENING)


def _has_solution(cell) -> bool:
    return cell.cell_type in ("code", "markdown") and _SOLUTION_MARKER in cell.source


def stamp_notebook(nb, name: str):
    """Return a copy of ``nb`` with nbgrader cell metadata derived from its markers.

    Args:
        nb: a ``nbformat`` v4 solution notebook.
        name: the notebook's stem, e.g. "03_loss": the prefix of every grade_id.

    Returns:
        The stamped copy (the input is unchanged).
    """
    stamped = copy.deepcopy(nb)
    used: set[str] = set()

    def unique(grade_id: str) -> str:
        grade_id = _GRADE_ID_JUNK.sub("-", grade_id.lower()).strip("-")
        candidate, n = grade_id, 2
        while candidate in used:
            candidate, n = f"{grade_id}-{n}", n + 1
        used.add(candidate)
        return candidate

    last_solution: str | None = None  # grade_id of an answer cell awaiting its check
    for index, cell in enumerate(stamped.cells):
        cell.metadata.pop("nbgrader", None)
        if _has_solution(cell) and cell.cell_type == "code":
            export = _EXPORT.match(cell.source)
            base = (
                export.group("part")
                if export
                else _defined_name(cell.source) or _section(stamped.cells, index)
            )
            last_solution = unique(f"{name}-{base}")
            cell.metadata["nbgrader"] = _metadata(
                last_solution, solution=True, grade=False, locked=False
            )
        elif _has_solution(cell):
            label = _question(stamped.cells, index) or _section(stamped.cells, index)
            grade_id = unique(f"{name}-{label}-answer")
            cell.metadata["nbgrader"] = _metadata(
                grade_id, solution=True, grade=True, locked=False, points=ANSWER_POINTS
            )
        elif _is_check(cell):
            if last_solution is not None:
                grade_id = unique(f"{last_solution}-check")
                meta = _metadata(
                    grade_id,
                    solution=False,
                    grade=True,
                    locked=True,
                    points=CHECK_POINTS,
                )
            else:
                grade_id = unique(f"{name}-{_section(stamped.cells, index)}-check")
                meta = _metadata(grade_id, solution=False, grade=False, locked=True)
            cell.metadata["nbgrader"] = meta
            last_solution = None
        elif cell.cell_type == "code":
            last_solution = None  # a check must be the next code cell
    return stamped


def grade_cells(nb) -> dict[str, dict]:
    """Map grade_id -> nbgrader metadata for every stamped cell of ``nb``."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: dict(cell.metadata["nbgrader"])
        for cell in nb.cells
        if "grade_id" in cell.metadata.get("nbgrader", {})
    }


def total_points(nb) -> float:
    """Sum of the points of the graded cells of ``nb``."""
    return sum(m.get("points", 0) for m in grade_cells(nb).values() if m["grade"])


# ----------------------------------------------------------------------- repairing
@dataclass
class RepairReport:
    """What :func:`repair_submission` changed, one line per change."""

    notebook: str = ""
    actions: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when the notebook could not be repaired at all."""
        return any(line.startswith("NOT REPAIRED") for line in self.actions)

    def add(self, text: str) -> None:
        self.actions.append(text)

    def __str__(self) -> str:
        if not self.actions:
            return f"{self.notebook}: nothing to repair"
        return "\n".join(f"{self.notebook}: {line}" for line in self.actions)


def _normal(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().split("\n"))


def _grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    if not isinstance(meta, dict):
        return None
    if not (meta.get("grade") or meta.get("solution") or meta.get("locked")):
        return None
    return meta.get("grade_id") or None


def _is_test(meta: dict) -> bool:
    return bool(meta.get("locked")) and not meta.get("solution")


def _match_score(cell, release_cell, meta: dict) -> float:
    """How likely ``cell`` is the student's copy of ``release_cell`` (0..1).

    For answer cells an edited copy beats an untouched copy of the stub.
    """
    ours, theirs = _normal(cell.source), _normal(release_cell.source)
    ratio = difflib.SequenceMatcher(None, ours, theirs, autojunk=False).ratio()
    if _is_test(meta):
        if ours == theirs:
            return 1.0
        first = ours.split("\n", 1)[0] == theirs.split("\n", 1)[0]
        return max(ratio, 0.9 if first else 0.0)
    if cell.cell_type == "code":
        name = _defined_name(theirs.replace("raise NotImplementedError()", "pass"))
        if name is not None and name == _defined_name(ours):
            return 0.9 if ours == theirs else 0.95
        return ratio
    return 0.5 if ours == theirs else 0.6 + 0.3 * ratio  # a written answer


def _threshold(meta: dict, cell_type: str) -> float:
    if _is_test(meta):
        return 0.6
    return 0.5 if cell_type == "code" else 0.0


def repair_submission(submitted, release, name: str = "notebook"):
    """Return ``submitted`` repaired against its ``release``, and what was done.

    Matches cells by ``grade_id``, then by content and position, so that
    ``nbgrader autograde`` grades what the student wrote:

    - a ``grade_id`` that appears more than once (a copied cell) stays on one cell:
      for a test cell the copy that still matches the release, otherwise the last
      copy (the definition Python keeps, and the one nbgrader's own
      ``DeduplicateIds`` keeps); the others lose their nbgrader metadata;
    - a ``grade_id`` the release does not have is removed;
    - a release cell whose metadata vanished (retyped, or stripped by an editor) is
      found among the cells between its neighbours, by the function it defines,
      its first line or its similarity, and gets the release's metadata back;
    - every test cell is restored from the release (edited or deleted ones too,
      deleted ones after the answer they check); a deleted written answer comes
      back as the release's stub so it is graded (as 0) instead of missing;
    - every graded cell gets the release's metadata (points, locks).

    Args:
        submitted: the student's ``nbformat`` v4 notebook (unchanged).
        release: the release notebook it was made from (nbgrader's ``release/``
            or ``make-student``'s ``notebooks/``).
        name: how the report names the notebook.

    Returns:
        (repaired notebook, :class:`RepairReport`).
    """
    nb = copy.deepcopy(submitted)
    report = RepairReport(notebook=name)
    wanted = {}
    order = []
    for cell in release.cells:
        grade_id = _grade_id(cell)
        if grade_id is not None:
            wanted[grade_id] = cell
            order.append(grade_id)
    if not wanted:
        raise GradingError(
            f"the release of {name} has no nbgrader cells: give the notebook from "
            f"nbgrader's release/ folder or make-student's notebooks/"
        )
    ordinary = {
        _normal(cell.source) for cell in release.cells if _grade_id(cell) is None
    }

    _drop_unknown_and_copied_ids(nb, wanted, report)
    _restore_lost_cells(nb, wanted, order, ordinary, report)
    _place_written_answers(nb, release, wanted, order, ordinary, report)
    _reset_graded_cells(nb, wanted, report)
    return nb, report


def _drop_unknown_and_copied_ids(nb, wanted: dict, report: RepairReport) -> None:
    """Step 1: remove ids the release does not know; keep a copied id on one cell."""
    holders: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        if "nbgrader" in cell.metadata and _grade_id(cell) is None:
            del cell.metadata["nbgrader"]  # an empty or half-written entry
            continue
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        if grade_id not in wanted:
            del cell.metadata["nbgrader"]
            report.add(f"cell {index}: unknown grade_id {grade_id!r} removed")
            continue
        holders.setdefault(grade_id, []).append(index)
    for grade_id, indices in holders.items():
        if len(indices) == 1:
            continue
        meta = wanted[grade_id].metadata["nbgrader"]
        keep = indices[-1]
        stub = _normal(wanted[grade_id].source)
        if nb.cells[keep].cell_type == "markdown":  # a written answer: the text
            written = [i for i in indices if _normal(nb.cells[i].source) != stub]
            keep = written[-1] if written else keep
        if _is_test(meta):
            same = [
                i
                for i in indices
                if _normal(nb.cells[i].source) == _normal(wanted[grade_id].source)
            ]
            keep = same[0] if same else keep
        for index in indices:
            if index != keep:
                del nb.cells[index].metadata["nbgrader"]
        others = ", ".join(str(i) for i in indices if i != keep)
        report.add(
            f"grade_id {grade_id!r} was on cells {indices}: kept on cell {keep}, "
            f"removed from the copies (cells {others})"
        )


def _position(nb, grade_id: str) -> int | None:
    """Index of the cell that holds ``grade_id``, if any."""
    for index, cell in enumerate(nb.cells):
        if _grade_id(cell) == grade_id:
            return index
    return None


def _restore_lost_cells(nb, wanted: dict, order: list, ordinary: set, report) -> None:
    """Step 2: a release cell whose metadata vanished is looked for between its
    neighbours; a deleted test or stub is put back (written answers: later)."""
    for rank, grade_id in enumerate(order):
        if _position(nb, grade_id) is not None or wanted[grade_id].cell_type == "markdown":
            continue  # written answers are placed below, by their question
        release_cell = wanted[grade_id]
        meta = release_cell.metadata["nbgrader"]
        before = [_position(nb, g) for g in order[:rank]]
        after = [_position(nb, g) for g in order[rank + 1 :]]
        low = max([p for p in before if p is not None], default=-1)
        high = min([p for p in after if p is not None], default=len(nb.cells))
        candidates = [
            (_match_score(nb.cells[i], release_cell, meta), i)
            for i in range(low + 1, high)
            if _grade_id(nb.cells[i]) is None
            and nb.cells[i].cell_type == release_cell.cell_type
            and _normal(nb.cells[i].source) not in ordinary
        ]
        candidates = [
            (score, i)
            for score, i in candidates
            if score >= _threshold(meta, release_cell.cell_type)
        ]
        if candidates:
            score, index = max(candidates, key=lambda pair: (pair[0], pair[1]))
            nb.cells[index].metadata["nbgrader"] = copy.deepcopy(dict(meta))
            report.add(
                f"cell {index}: nbgrader metadata of {grade_id!r} restored (it had "
                f"none; matched by {'content' if score >= 0.9 else 'position'})"
            )
            continue
        if meta.get("solution") and release_cell.cell_type == "code":
            report.add(
                f"answer cell {grade_id!r} not found (renamed or deleted): its test "
                f"still grades whatever the notebook defines"
            )
            continue
        restored = copy.deepcopy(release_cell)
        if restored.cell_type == "code":
            restored.outputs, restored.execution_count = [], None
        nb.cells.insert(low + 1, restored)
        kind = "test" if _is_test(meta) else "answer"
        report.add(
            f"cell {low + 1}: deleted {kind} cell {grade_id!r} put back from the "
            f"release"
        )


def _reset_graded_cells(nb, wanted: dict, report: RepairReport) -> None:
    """Step 3: graded cells carry the release's metadata; tests carry its source."""
    for index, cell in enumerate(nb.cells):
        grade_id = _grade_id(cell)
        if grade_id is None:
            continue
        release_cell = wanted[grade_id]
        meta = dict(release_cell.metadata["nbgrader"])
        if dict(cell.metadata["nbgrader"]) != meta:
            changed = sorted(
                key
                for key in set(meta) | set(cell.metadata["nbgrader"])
                if meta.get(key) != cell.metadata["nbgrader"].get(key)
                and key != "checksum"
            )
            if changed:
                report.add(
                    f"cell {index}: {grade_id!r} metadata {changed} reset to the "
                    f"release's"
                )
            cell.metadata["nbgrader"] = copy.deepcopy(meta)
        for key in ("editable", "deletable"):
            if key in release_cell.metadata:
                cell.metadata[key] = release_cell.metadata[key]
        if cell.cell_type != release_cell.cell_type:
            report.add(
                f"cell {index}: {grade_id!r} is a {cell.cell_type} cell, the release "
                f"has a {release_cell.cell_type} cell: check it by hand"
            )
        if _is_test(meta) and _normal(cell.source) != _normal(release_cell.source):
            cell.source = release_cell.source
            report.add(f"cell {index}: edited test cell {grade_id!r} restored")


def _question_cell(cells, label: str) -> int | None:
    """Index of the markdown cell that asks question ``label`` ("q2-3"), if any."""
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and any(
            "q" + number.replace(".", "-") == label
            for number in _QUESTION.findall(cell.source)
        ):
            return index
    return None


def _place_written_answers(nb, release, wanted, order, ordinary, report) -> None:
    """Give each written answer without metadata the release's, by its question.

    A written answer is found by the question label above it ("Question 2.3",
    whatever the metadata says), else by order between the graded cells around it;
    among the cells found, the one the student wrote in (not the stub) nearest its
    question wins. What cannot be placed is reported, and only a deleted answer
    comes back as the stub (graded 0, never over text that might be the answer).
    """
    label_of = {
        grade_id: _question(release.cells, release.cells.index(wanted[grade_id]))
        for grade_id in order
        if wanted[grade_id].cell_type == "markdown"
    }
    labels = {label for label in label_of.values() if label}

    def position(grade_id: str) -> int | None:
        for index, cell in enumerate(nb.cells):
            if _grade_id(cell) == grade_id:
                return index
        return None

    def free(index: int) -> bool:
        cell = nb.cells[index]
        return (
            cell.cell_type == "markdown"
            and _grade_id(cell) is None
            and _normal(cell.source) not in ordinary
        )

    for rank, grade_id in enumerate(order):
        if grade_id not in label_of or position(grade_id) is not None:
            continue
        label, stub = label_of[grade_id], _normal(wanted[grade_id].source)
        meta = wanted[grade_id].metadata["nbgrader"]
        if label is not None:
            found = [
                i
                for i in range(len(nb.cells))
                if free(i) and _question(nb.cells, i) == label
            ]
            how = f"by its question label ({label.replace('-', '.')[1:]})"
        else:
            before = [position(g) for g in order[:rank]]
            after = [position(g) for g in order[rank + 1 :]]
            low = max([p for p in before if p is not None], default=-1)
            high = min([p for p in after if p is not None], default=len(nb.cells))
            found = [
                i
                for i in range(low + 1, high)
                if free(i) and _question(nb.cells, i) not in labels
            ]
            how = "by order (its question has no label)"
        answered = [i for i in found if _normal(nb.cells[i].source) != stub]
        chosen = (answered or found or [None])[0]
        if chosen is not None:
            nb.cells[chosen].metadata["nbgrader"] = copy.deepcopy(dict(meta))
            state = "" if answered else " (still the stub)"
            report.add(
                f"cell {chosen}: written answer {grade_id!r} placed {how}{state}"
            )
            for other in answered[1:]:
                report.add(
                    f"cell {other}: more text under the same question as "
                    f"{grade_id!r} (cell {chosen}), not graded: read it by hand"
                )
            continue
        asked = _question_cell(nb.cells, label) if label else None
        if asked is None:
            before = [position(g) for g in order[:rank]]
            asked = max([p for p in before if p is not None], default=-1)
        restored = copy.deepcopy(wanted[grade_id])
        nb.cells.insert(asked + 1, restored)
        report.add(
            f"cell {asked + 1}: written answer {grade_id!r} not found (no text under "
            f"its question): the release's stub put back, graded 0; check by hand"
        )


def _fit_version(nb) -> None:
    """Make ``nb`` valid for its own nbformat version, or raise GradingError."""
    import nbformat

    if (nb.nbformat, nb.nbformat_minor) < (4, 5):
        for cell in nb.cells:  # cell ids exist from nbformat 4.5 on
            cell.pop("id", None)
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        raise GradingError(
            f"the repaired notebook is not valid nbformat "
            f"{nb.nbformat}.{nb.nbformat_minor}: {error.message}"
        ) from error


def from_this_release(submitted, release) -> bool:
    """True when ``submitted`` shares graded cells or most fixed text with ``release``.

    A stripped hand-in keeps the release's text cells; a notebook of another
    assignment or course shares neither its grade_ids nor its text.
    """
    ids = {_grade_id(cell) for cell in release.cells} - {None}
    if ids & {_grade_id(cell) for cell in submitted.cells}:
        return True
    fixed = [
        _normal(cell.source)
        for cell in release.cells
        if _grade_id(cell) is None and len(_normal(cell.source)) >= 40
    ]
    theirs = {_normal(cell.source) for cell in submitted.cells}
    return bool(fixed) and sum(text in theirs for text in fixed) >= 0.3 * len(fixed)


def read_submission(path: str | Path):
    """Read a notebook file as nbformat v4, or raise GradingError naming it."""
    import json

    import nbformat

    path = Path(path)
    if not path.is_file():
        raise GradingError(f"{path} is not a notebook file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GradingError(
            f"{path} is not a readable notebook (not valid JSON: {error}): ask the "
            f"student to download it again (File > Download > Download .ipynb in Colab)"
        ) from error
    if not (
        isinstance(data, dict)
        and isinstance(data.get("cells"), list)
        and isinstance(data.get("nbformat"), int)
    ):
        raise GradingError(
            f"{path} is JSON but not a notebook (no 'cells' list and 'nbformat' "
            f"number): ask the student for the .ipynb file itself"
        )
    try:
        return nbformat.reads(json.dumps(data), as_version=4)
    except Exception as error:  # nbformat raises several kinds for a broken file
        raise GradingError(
            f"{path} is not a readable notebook ({type(error).__name__}: {error})"
        ) from error


def backup_path(path: Path) -> Path:
    """Where an in-place repair keeps the original: ``NAME.before-repair.ipynb``."""
    return path.with_name(path.stem + ".before-repair" + path.suffix)


def repair_file(
    submitted: str | Path,
    release: str | Path,
    out: str | Path | None,
    backup: bool = True,
):
    """Repair one submitted notebook file; write ``out`` (default: in place).

    In place, the original is first copied to ``NAME.before-repair.ipynb`` beside
    it (once: a second repair keeps the first original), unless ``backup`` is False
    (:func:`repair_folder` keeps a copy of the whole tree instead).

    Raises:
        GradingError: a file is not a notebook, or the submission is not from
            this release (nothing is written then).

    Returns:
        The :class:`RepairReport`.
    """
    import shutil

    submitted, release = Path(submitted), Path(release)
    student, source = read_submission(submitted), read_submission(release)
    if not from_this_release(student, source):
        raise GradingError(
            f"{submitted} is not from this release ({release.name}): it shares no "
            f"graded cell and little text with it; nothing written"
        )
    repaired, report = repair_submission(student, source, submitted.name)
    _fit_version(repaired)
    target = Path(out) if out is not None else submitted
    if out is None and backup and not backup_path(submitted).exists():
        shutil.copy2(submitted, backup_path(submitted))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(notebook_text(repaired), encoding="utf-8")
    return report


def repair_folder(
    submitted: str | Path, release: str | Path, out: str | Path | None = None
) -> list[RepairReport]:
    """Repair nbgrader's ``submitted/<student>/<assignment>/<notebook>.ipynb`` tree.

    Args:
        submitted: the course's ``submitted/`` folder.
        release: the course's ``release/`` folder (``<assignment>/<notebook>``).
        out: where to write the repaired tree; default: in place, after copying
            the originals to ``<submitted>-before-repair/`` (once).

    Returns:
        One report per notebook; a file that cannot be repaired (not a notebook,
        not from this release) gets a report whose one line starts with
        "NOT REPAIRED", and the others are repaired all the same.
    """
    import shutil

    submitted, release = Path(submitted), Path(release)
    if not submitted.is_dir() or not release.is_dir():
        raise GradingError(
            f"give nbgrader's submitted/ and release/ folders ({submitted}, "
            f"{release}): a folder is repaired as submitted/<student>/<assignment>/"
        )
    notebooks = sorted(
        path
        for path in submitted.glob("*/*/*.ipynb")
        if not path.stem.endswith(".before-repair")
    )
    if not notebooks:
        raise GradingError(
            f"{submitted} has no <student>/<assignment>/<notebook>.ipynb files"
        )
    if out is None:
        backup = submitted.with_name(submitted.name + "-before-repair")
        if not backup.exists():
            shutil.copytree(submitted, backup)
    reports = []
    for path in notebooks:
        relative = path.relative_to(submitted)
        assignment = relative.parts[1]
        source = release / assignment / path.name
        if not source.is_file():
            reports.append(
                RepairReport(str(relative), [f"no release notebook {source}: skipped"])
            )
            continue
        target = None if out is None else Path(out) / relative
        try:
            report = repair_file(path, source, target, backup=False)
        except GradingError as error:  # one bad file does not stop the class
            reports.append(RepairReport(str(relative), [f"NOT REPAIRED: {error}"]))
            continue
        report.notebook = str(relative)
        reports.append(report)
    return reports
