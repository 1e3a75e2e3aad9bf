"""The points nbgrader gives the six kinds of hand-in of 02 and 03, before and after repair.

Builds an nbgrader course (02_model and 03_loss), hands in each kind of
``tests/handins.py`` (correct; untouched; saved as Colab saves, metadata
stripped; an answer cell copied; cells deleted and retyped; a test edited) as a
student of its own, once as handed in and once after ``repair-submission``, and
autogrades them with the course's own config. Prints, per kind: autograded points
and how many written answers sit on the graded cell (the text the student wrote
there, which the formgrader shows). Minutes; not a timed test::

    python benchmarks/handin_points.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
STEMS = ("02_model", "03_loss")


def main() -> int:
    import nbformat
    from handins import KINDS, hand_in, written_answers
    from nbgrader.api import Gradebook, MissingEntry

    from instructor.grading import notebook_text, repair_file

    course = Path(tempfile.mkdtemp(prefix="vae-points-"))
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env.pop("SMOKE", None)
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    subprocess.run([sys.executable, "-m", "instructor", "make-student", "--course",
                    str(course)], cwd=REPO, env=env, check=True, capture_output=True)
    for stem in ("01_setup", *STEMS):
        subprocess.run([nbgrader, "generate_assignment", stem], cwd=course, env=env,
                       check=True, capture_output=True)
    students = []
    for kind in KINDS:
        for repaired in (False, True):
            student = f"{kind}-{'after' if repaired else 'before'}"
            students.append((kind, repaired, student))
            for stem in STEMS:
                source = nbformat.read(str(course / "source" / stem / f"{stem}.ipynb"), 4)
                release_path = course / "release" / stem / f"{stem}.ipynb"
                release = nbformat.read(str(release_path), 4)
                path = course / "submitted" / student / stem / f"{stem}.ipynb"
                path.parent.mkdir(parents=True)
                path.write_text(notebook_text(hand_in(kind, release, source)))
                if repaired:
                    repair_file(path, release_path, None, backup=False)
    answers = {
        stem: written_answers(
            nbformat.read(str(course / "source" / stem / f"{stem}.ipynb"), 4)
        )
        for stem in STEMS
    }
    print(f"{'kind':<16}{'repair':<8}" + "".join(f"{s:>26}" for s in STEMS))
    for kind, repaired, student in students:
        cells = []
        for stem in STEMS:
            done = subprocess.run([nbgrader, "autograde", stem, "--student", student],
                                  cwd=course, env=env, capture_output=True, text=True)
            graded = course / "autograded" / student / stem / f"{stem}.ipynb"
            if done.returncode != 0 or not graded.exists():
                cells.append("autograde FAILED")
                continue
            with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
                try:
                    nb = gradebook.find_submission_notebook(stem, stem, student)
                    points = f"{nb.code_score:g}/{nb.max_code_score:g}"
                except MissingEntry:
                    points = "none"
            graded_nb = nbformat.read(str(graded), 4)
            on_cell = sum(
                any(c.metadata.get("nbgrader", {}).get("grade_id") == g
                    and c.source == text for c in graded_nb.cells)
                for g, text in answers[stem].items()
            )
            cells.append(f"{points} pts, {on_cell}/{len(answers[stem])} answers")
        label = "after" if repaired else "before"
        print(f"{kind:<16}{label:<8}" + "".join(f"{c:>26}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
