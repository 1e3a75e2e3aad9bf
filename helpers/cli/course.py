"""``python -m helpers make-student``: generate notebooks/ from solutions/."""

from __future__ import annotations

from pathlib import Path

from helpers.notebook_tools import (
    plan_student_notebooks,
    strip_outputs,
    write_student_notebooks,
)


def make_student_command(parser):
    """``python -m helpers make-student``: generate notebooks/ from solutions/."""
    parser.add_argument(
        "--solutions",
        default="solutions",
        help="folder of solution notebooks (default: solutions)",
    )
    parser.add_argument(
        "--out",
        default="notebooks",
        help="folder for the student notebooks (default: notebooks)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if any student notebook is stale, "
        "missing or extra, or a solution has outputs",
    )
    parser.add_argument(
        "--strip-outputs",
        action="store_true",
        help="first strip outputs from the solution notebooks in place",
    )

    def run(args) -> int:
        if args.strip_outputs and not args.check:
            for path in sorted(Path(args.solutions).glob("*.ipynb")):
                if strip_outputs(path):
                    print(f"stripped outputs: {path}")
        plan = plan_student_notebooks(args.solutions, args.out)
        if args.check:
            if plan.ok:
                print(f"{len(plan.expected)} student notebook(s) up to date")
                return 0
            print("\n".join(plan.problems()))
            print(
                "fix: python -m helpers make-student"
                + (" --strip-outputs" if plan.with_outputs else "")
            )
            return 1
        changed = write_student_notebooks(args.solutions, args.out)
        for path in changed:
            print(f"wrote {path}")
        print(f"{len(plan.expected)} student notebook(s), {len(changed)} changed")
        for line in plan.problems():
            if not line.startswith(("stale", "missing")):
                print("warning: " + line)
        return 0

    return run
