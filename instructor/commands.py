"""The instructor's commands: make-student, repair- and check-submission, export-model.

``python -m instructor make-student`` stamps nbgrader metadata into solutions/ and
generates notebooks/ from them; with ``--release DIR`` it writes the student release
(notebooks and a helpers without the reference answers) instead, and with
``--course DIR`` an nbgrader course. ``python -m instructor repair-submission`` repairs
what students hand in before ``nbgrader autograde``.
"""

from __future__ import annotations

from pathlib import Path

from helpers.errors import LabError
from vaelab import SOLUTION_FILE
from instructor.export_cells import solution_module_stale, write_solution_module
from instructor.notebook_tools import (
    REPO_URL,
    check_repo_url,
    plan_student_notebooks,
    repo_url_in,
    strip_outputs,
    write_student_notebooks,
)


def _own_layout(solutions) -> bool:
    """True when ``solutions`` is this repository's, beside its helpers/."""
    return Path(solutions).resolve() == SOLUTION_FILE.parents[1] / "solutions"


def make_student_command(parser):
    """``python -m instructor make-student``: generate notebooks/ from solutions/."""
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
        "missing or extra, a solution lacks its nbgrader metadata, or has outputs",
    )
    parser.add_argument(
        "--strip-outputs",
        action="store_true",
        help="first strip outputs from the solution notebooks in place",
    )
    parser.add_argument(
        "--repo-url",
        default=None,
        help="GitHub repository every Colab badge and install line points at, in "
        "solutions/, notebooks/, the --release and the --course; it is written into "
        "the solutions, so later commands find it there (default: the one the "
        f"solutions' install lines name, else {REPO_URL}, the REPO_URL constant in "
        "instructor/notebook_tools.py)",
    )
    parser.add_argument(
        "--release",
        metavar="DIR",
        help="write the student release into DIR (a new folder): the student "
        "notebooks and helpers/ without the reference answers; solutions/ and "
        "notebooks/ are left as they are",
    )
    parser.add_argument(
        "--give",
        metavar="PARTS",
        default="",
        help="with --release: comma-separated parts whose solution the release "
        "ships, so USE_LAB_PART can swap them in (e.g. encoder,decoder); "
        "default: none",
    )
    parser.add_argument(
        "--course",
        metavar="DIR",
        help="lay the solutions out as an nbgrader course in DIR "
        "(source/<NN_name>/<NN_name>.ipynb and nbgrader_config.py)",
    )

    return _make_student


def _make_student(args) -> int:
    repo_url = check_repo_url(args.repo_url or repo_url_in(args.solutions) or REPO_URL)
    if args.release:
        return _write_release(args, repo_url)
    if args.course:
        return _write_course(args, repo_url)
    if args.strip_outputs and not args.check:
        for path in sorted(Path(args.solutions).glob("*.ipynb")):
            if strip_outputs(path):
                print(f"stripped outputs: {path}")
    plan = plan_student_notebooks(args.solutions, args.out, repo_url)
    if args.check:
        return _check_student_notebooks(args, plan, repo_url)
    return _write_student_notebooks(args, plan, repo_url)


def _write_release(args, repo_url: str) -> int:
    from instructor.release import build_release

    repo = Path(args.solutions).resolve().parent  # holds helpers/ too
    summary = build_release(
        args.release, repo, args.solutions, repo_url, args.give.split(",")
    )
    print("\n".join(summary.lines()))
    print(f"students install and open it from {repo_url}: push {args.release}")
    return 0


def _write_course(args, repo_url: str) -> int:
    from instructor.release import write_nbgrader_course

    for path in write_nbgrader_course(args.course, args.solutions, repo_url=repo_url):
        print(f"wrote {path}")
    print(f"next: cd {args.course} && nbgrader generate_assignment <assignment>")
    return 0


def _check_student_notebooks(args, plan, repo_url: str) -> int:
    stale = _own_layout(args.solutions) and solution_module_stale(args.solutions)
    if stale:
        print(f"stale: {SOLUTION_FILE} (generated from the solutions)")
    if plan.ok and not stale:
        print(f"{len(plan.expected)} student notebook(s) up to date")
        return 0
    print("\n".join(plan.problems()))
    print(
        "fix: python -m instructor make-student"
        + (" --strip-outputs" if plan.with_outputs else "")
        + (f" --repo-url {repo_url}" if args.repo_url else "")
    )
    return 1


def _write_student_notebooks(args, plan, repo_url: str) -> int:
    """notebooks/, and beside this repository's solutions the generated solution
    module, INSTRUCTORS.md's points table and the graded-cells manifest."""
    changed = write_student_notebooks(args.solutions, args.out, repo_url)
    if _own_layout(args.solutions) and write_solution_module(args.solutions):
        changed.append(SOLUTION_FILE)
    guide = Path(args.solutions).resolve().parent / "INSTRUCTORS.md"
    if guide.is_file():
        from instructor.guide_tables import update_expected_table, update_points_table

        points = update_points_table(guide, args.solutions)
        if update_expected_table(guide, args.solutions) or points:
            changed.append(guide)
    from helpers.submission import MANIFEST
    from instructor.submissions import update_manifest

    # the repository's own list, beside its solutions (not a scratch folder's)
    manifest = guide.parent / "helpers" / MANIFEST.relative_to(MANIFEST.parents[1])
    if manifest.parent.is_dir() and update_manifest(args.solutions, manifest):
        changed.append(manifest)
    for path in changed:
        print(f"wrote {path}")
    print(f"{len(plan.expected)} student notebook(s), {len(changed)} file(s) changed")
    for line in plan.problems():
        if not line.startswith(("stale", "missing", "unstamped")):
            print("warning: " + line)
    return 0


def repair_submission_command(parser):
    """``python -m instructor repair-submission``: repair hand-ins before autograde."""
    parser.add_argument(
        "submitted",
        help="a submitted .ipynb, or nbgrader's submitted/ folder "
        "(<student>/<assignment>/<notebook>.ipynb)",
    )
    parser.add_argument(
        "--release",
        required=True,
        help="the release notebook it was made from (nbgrader's release/<assignment>/"
        "<notebook>.ipynb or notebooks/<notebook>.ipynb), or nbgrader's release/ "
        "folder when SUBMITTED is a folder",
    )
    parser.add_argument(
        "-o",
        "--out",
        help="where to write the repaired notebook (or folder); default: in place, "
        "after keeping the original (a file's as NAME.before-repair.ipynb beside it, "
        "a folder's in <submitted>-before-repair/)",
    )

    def run(args) -> int:
        from instructor.grading import repair_file, repair_folder

        if Path(args.submitted).is_dir():
            reports = repair_folder(args.submitted, args.release, args.out)
        else:
            reports = [repair_file(args.submitted, args.release, args.out)]
        for report in reports:
            print(report)
        failed = sum(r.failed for r in reports)
        changed = sum(bool(r.actions) and not r.failed for r in reports)
        print(
            f"{len(reports)} notebook(s) checked, {changed} repaired"
            + (f", {failed} NOT repaired (see above)" if failed else "")
        )
        return 1 if failed else 0

    return run


def check_submission_command(parser):
    """``python -m instructor check-submission``: what hand-ins kept of their metadata."""
    parser.add_argument(
        "paths",
        nargs="+",
        help="submitted .ipynb files, or folders searched for them (e.g. nbgrader's "
        "submitted/)",
    )
    parser.add_argument(
        "--notebook",
        help="the lab notebook they all are, e.g. 05_generate (default: told by "
        "each file's grade_ids)",
    )

    def run(args) -> int:
        from helpers.submission import check_notebook, read_notebook
        from instructor.submissions import survey

        files = []
        for path in map(Path, args.paths):
            if not path.exists():
                raise LabError(f"{path}: no such file or folder")
            files += sorted(path.rglob("*.ipynb")) if path.is_dir() else [path]
        files = [f for f in files if ".ipynb_checkpoints" not in f.parts]
        if not files:
            raise LabError(f"no .ipynb files in {', '.join(args.paths)}")
        reports, unreadable = [], []
        for path in files:
            try:  # every file is reported: one bad file does not stop the class
                report = check_notebook(read_notebook(path), args.notebook, str(path))
            except LabError as error:
                unreadable.append(path)
                print(f"{path}: CANNOT CHECK: {error}")
                continue
            reports.append(report)
            print("\n".join(report.lines()))
        print("\n".join(survey(reports)))
        damaged = sum(not r.intact for r in reports)
        if damaged:
            print(
                f"{damaged} of {len(files)} need `repair-submission` before "
                "nbgrader autograde"
            )
        if unreadable:
            print(
                f"{len(unreadable)} of {len(files)} file(s) could not be read: ask "
                "those students for the notebook again"
            )
        return 1 if unreadable else 0

    return run


COMMANDS: dict[str, tuple[str, str]] = {
    "make-student": (
        "instructor.commands:make_student_command",
        "stamp solutions/, generate notebooks/ (or --release DIR, --course DIR)",
    ),
    "repair-submission": (
        "instructor.commands:repair_submission_command",
        "repair a student's notebook against its release before nbgrader autograde",
    ),
    "check-submission": (
        "instructor.commands:check_submission_command",
        "what hand-ins kept of their grading metadata (through Colab or not)",
    ),
    "export-model": (
        "instructor.export:export_model_command",
        "write a run's model as a portable file for students to download",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Run one instructor command (``python -m instructor``); return its exit code."""
    from vaelab.cli import main as run_command

    return run_command(argv, commands=COMMANDS, prog="python -m instructor")
