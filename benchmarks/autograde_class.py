"""Time nbgrader autograde on the lab: seconds per notebook, per student, per class.

Builds an nbgrader course from solutions/ in a scratch folder (``python -m
instructor make-student --course``, then ``nbgrader generate_assignment`` for the
six notebooks), hands in the completed notebooks for ``--students`` students, and
grades them exactly as INSTRUCTORS.md section 4 says: one ``nbgrader autograde
<assignment> --student <student>`` per notebook, in order, ``--parallel``
students at a time (what ``xargs -P`` does). Prints the measured seconds and the
points each student got; run it on the machine that grades (not a timed test)::

    python benchmarks/autograde_class.py                      # one student
    python benchmarks/autograde_class.py --students 4 --parallel 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = ("01_setup", "02_model", "03_loss", "04_train", "05_generate", "06_analysis")


def run(command: list[str], cwd: Path, env: dict) -> float:
    """Run one command; return its seconds, or stop with its output on failure."""
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds


def grade_student(course: Path, student: str, env: dict) -> dict[str, float]:
    """Autograde one student's six notebooks in order; seconds per notebook."""
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    return {
        a: run([nbgrader, "autograde", a, "--student", student], course, env)
        for a in ASSIGNMENTS
    }


def scores(course: Path) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        out = {}
        for student in gradebook.students:
            total = sum(
                gradebook.find_submission(a, student.id).code_score for a in ASSIGNMENTS
            )
            out[student.id] = total
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--keep", help="build the course here and keep it")
    args = parser.parse_args()
    course = Path(args.keep or tempfile.mkdtemp(prefix="vae-course-"))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env["PATH"]])
    env.pop("SMOKE", None)  # the course's nbgrader_config.py must set it
    env.pop("VAE_LAB_WORKDIR", None)  # and give each student a work folder
    python = [sys.executable, "-m", "instructor", "make-student"]
    run(python + ["--solutions", str(REPO / "solutions"), "--course", str(course)],
        REPO, env)
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    for a in ASSIGNMENTS:
        run([nbgrader, "generate_assignment", a], course, env)
    students = [f"student{i:03d}" for i in range(args.students)]
    for student in students:
        for a in ASSIGNMENTS:
            folder = course / "submitted" / student / a
            folder.mkdir(parents=True, exist_ok=True)
            shutil.copy2(course / "source" / a / f"{a}.ipynb", folder / f"{a}.ipynb")
    print(f"course in {course}; {len(students)} student(s), {args.parallel} at a time,"
          f" {os.cpu_count()} CPU(s)")
    start = time.perf_counter()
    with ThreadPoolExecutor(args.parallel) as pool:
        timings = list(pool.map(lambda s: grade_student(course, s, env), students))
    wall = time.perf_counter() - start
    for student, seconds in zip(students, timings):
        per = "  ".join(f"{a} {t:5.1f} s" for a, t in seconds.items())
        print(f"{student}: {per}  | student {sum(seconds.values()):6.1f} s")
    points = scores(course)
    print("autograded points per student:", points)
    print(f"class of {len(students)}: {wall:.1f} s wall, {args.parallel} in parallel"
          f" ({wall / len(students):.1f} s per student)")
    if not args.keep:
        shutil.rmtree(course, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
