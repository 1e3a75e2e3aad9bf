"""Before handing in: did the notebook keep its ``nbgrader`` metadata (lost by a cell
retyped or pasted, duplicated by a copied one)? Checked against the release's
``templates/graded_cells.json`` (written by ``python -m instructor make-student``)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import LabError

MANIFEST = Path(__file__).parent / "templates" / "graded_cells.json"
_KEYS = ("solution", "grade", "locked")  # nbgrader's flags (and points if graded)
# The stubs make-student (and nbgrader) leave where the student writes.
CODE_STUB = "# YOUR CODE HERE"
RAISE_STUB = "raise NotImplementedError()"
ANSWER_STUB = "YOUR ANSWER HERE"


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else str(source)


def source_digest(source) -> str:
    """SHA-256 of a cell's text, blind to trailing spaces and end-of-line changes."""
    lines = [line.rstrip() for line in _text(source).strip().splitlines()]
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


def is_stub(cell: dict) -> bool:
    """True when a cell still holds the release's stub (nothing written in it)."""
    text = _text(cell.get("source", ""))
    if cell.get("cell_type") == "markdown":
        return text.strip().startswith(ANSWER_STUB) and all(
            line.strip().startswith(("*Hint:", ANSWER_STUB)) or not line.strip()
            for line in text.strip().splitlines()
        )
    return CODE_STUB in text and RAISE_STUB in text


class SubmissionError(LabError):
    """A notebook to check cannot be found or read."""


def expected_cells(notebook: str, manifest: str | Path = MANIFEST) -> dict[str, dict]:
    """The graded cells of release notebook ``notebook`` (e.g. "05_generate")."""
    known = _manifest(manifest)
    if notebook not in known:
        raise SubmissionError(
            f"unknown notebook {notebook!r}: the lab's notebooks are "
            f"{', '.join(sorted(known))}"
        )
    return known[notebook]


def _manifest(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# (attribute, what it means, why) of each problem, in the order the report says them
_PROBLEMS = (
    ("missing", "no metadata", " (a cell deleted and retyped, or pasted, has none)"),
    ("duplicated", "on more than one cell", " (a copied cell)"),
    ("changed", "flags or points edited", ""),
    ("unknown", "not in the release", ""),
    ("tests_edited", "test cells edited", " (grading puts the release's back)"),
    ("empty", "still empty (the stub is there)", ""),
)


@dataclass
class SubmissionReport:
    """What a notebook kept of its graded cells' metadata."""

    notebook: str
    expected: int
    source: str = ""
    colab: bool = False  # the file shows Colab's own metadata
    kept: list[str] = field(default_factory=list)  # present once, same flags
    changed: list[str] = field(default_factory=list)  # present, flags or points edited
    missing: list[str] = field(default_factory=list)  # no cell carries the grade_id
    duplicated: list[str] = field(default_factory=list)  # more than one cell does
    unknown: list[str] = field(default_factory=list)  # not a grade_id of the release
    tests_edited: list[str] = field(default_factory=list)  # a locked test's text
    empty: list[str] = field(default_factory=list)  # answer cells still the stub

    @property
    def intact(self) -> bool:
        return not any([self.changed, self.missing, self.duplicated, self.tests_edited])

    @property
    def ready(self) -> bool:
        """Intact and every answer written: nothing left to do before handing in."""
        return self.intact and not self.empty

    def lines(self) -> list[str]:
        where = "passed through Colab" if self.colab else "no sign of Colab"
        out = [
            f"{self.notebook} ({self.source}; {where}): grading metadata kept on "
            f"{len(self.kept)} of {self.expected} graded cells"
        ]
        for name, what, why in _PROBLEMS:
            if getattr(self, name):
                out.append(f"  {what}: {', '.join(getattr(self, name))}{why}")
        return out


def _is_colab(nb: dict) -> bool:
    """True when the file shows what Colab writes on saving (the release has none)."""
    # the file's name, or a cell ``id`` (googlecolab/colabtools#581) or ``outputId``
    return "name" in nb.get("metadata", {}).get("colab", {}) or any(
        {"id", "outputId", "colab"} & set(cell.get("metadata", {}))
        for cell in nb.get("cells", [])
    )


def _grade_id(cell: dict) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader")
    grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
    return grade_id if isinstance(grade_id, str) else None


def _guess_notebook(nb: dict, known: list[str], source: str = "") -> str | None:
    ids = [_grade_id(cell) for cell in nb.get("cells", [])]
    prefixes = Counter(i.split("-", 1)[0] for i in ids if i is not None)
    for prefix, _ in prefixes.most_common():
        if prefix in known:
            return prefix
    name = str(nb.get("metadata", {}).get("colab", {}).get("name", ""))
    file_name = Path(source).name  # nbgrader's <NN_name>.ipynb
    return next((k for text in (name, file_name) for k in known if k in text), None)


def check_notebook(
    nb: dict, notebook: str | None = None, source: str = "", manifest=MANIFEST
) -> SubmissionReport:
    """Compare a notebook's graded cells (``nb``, its JSON) with the release's;
    ``notebook`` defaults to the one its grade_ids or file name (``source``) say."""
    notebook = notebook or _guess_notebook(nb, list(_manifest(manifest)), source)
    if notebook is None:
        raise SubmissionError(
            "cannot tell which lab notebook this is (no grade_id of the lab's and "
            "no known name): pass it, e.g. check_submission('05_generate')"
        )
    expected = expected_cells(notebook, manifest)
    cells: dict[str, list[dict]] = {}  # grade_id -> the cells that carry it
    report = SubmissionReport(notebook, len(expected), source, _is_colab(nb))
    for index, cell in enumerate(nb.get("cells", [])):
        grade_id = _grade_id(cell)
        if grade_id is not None:
            cells.setdefault(grade_id, []).append(cell)
        if is_stub(cell):
            report.empty.append(grade_id or f"cell {index} ({cell.get('cell_type')})")
    for grade_id, want in expected.items():
        found = cells.get(grade_id, [])
        meta = found[0]["metadata"]["nbgrader"] if found else {}
        if not found:
            report.missing.append(grade_id)
        elif len(found) > 1:
            report.duplicated.append(grade_id)
        elif any(bool(meta.get(k)) != want[k] for k in _KEYS) or (
            "points" in want and meta.get("points") != want["points"]
        ):
            report.changed.append(grade_id)
        else:
            report.kept.append(grade_id)
        digest = want.get("sha256")
        if digest and any(source_digest(c.get("source", "")) != digest for c in found):
            report.tests_edited.append(grade_id)
    report.unknown = sorted(set(cells) - set(expected))
    return report


def live_colab_notebook(timeout: int = 120) -> dict:
    """The running notebook as Colab holds it now (what Download .ipynb saves);
    SubmissionError outside Colab."""
    try:
        from google.colab import _message  # only inside Colab
    except ImportError as error:
        raise SubmissionError("not running in Colab") from error
    try:
        return _message.blocking_request("get_ipynb", timeout_sec=timeout)["ipynb"]
    except Exception as error:  # Colab's messaging: any failure means no notebook
        raise SubmissionError(
            f"Colab did not hand over the notebook ({type(error).__name__}: {error}); "
            "download it (File > Download > Download .ipynb) and check the file"
        ) from error


def read_notebook(path: str | Path) -> dict:
    """Read an .ipynb as JSON, or raise SubmissionError saying what is wrong."""
    path = Path(path)
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise SubmissionError(
            f"{path} is not a notebook (not valid JSON: {error}); download it again "
            "with File > Download > Download .ipynb"
        ) from error
    except OSError as error:  # no such file, a folder, no access
        raise SubmissionError(f"{path} cannot be read ({error})") from error
    cells = nb.get("cells") if isinstance(nb, dict) else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        raise SubmissionError(
            f"{path} is JSON but not a notebook (no list of cells); hand in the "
            ".ipynb itself (File > Download > Download .ipynb)"
        )
    return nb


def check_submission(notebook: str | None = None, path=None, verbose=True):
    """Check (never change) the notebook you are about to hand in: in Colab as Colab
    holds it now, else ``path`` or ``<notebook>.ipynb`` here; print and return the
    report (None when there is nothing to check here)."""
    if path is None:
        try:
            nb, source = live_colab_notebook(), "this Colab notebook"
        except SubmissionError:
            path = Path(f"{notebook}.ipynb") if notebook else None
            if not (path and path.is_file()):
                if verbose:
                    print(
                        "Not in Colab, and no saved notebook here: check the file you "
                        'hand in with check_submission(path="FILE.ipynb").'
                    )
                return None
    if path is not None:
        nb, source = read_notebook(path), f"saved file {path}"
    report = check_notebook(nb, notebook, source)
    if verbose:
        print("\n".join(report.lines()))
        if report.ready:
            print("Ready to hand in: File > Download > Download .ipynb.")
        elif report.intact:
            print(
                f"NOT ready: {len(report.empty)} answer cell(s) still empty "
                f"({', '.join(report.empty)}): write them, save, and run this cell "
                "again."
            )
        else:
            print(
                "Hand it in all the same: your instructor's repair-submission puts "
                "the metadata back. Next time, write inside the given cells rather "
                "than deleting, retyping or copying them."
            )
    return report
