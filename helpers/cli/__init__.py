"""The lab's one command line: ``python -m helpers <command> [--help]``.

Each command group is a module of this package (``train``, ``generate``, ``evaluate``,
``report``, ``data``, ``slice``, ``course``, ``pretrained``, ``demo``) holding functions
``<name>_command(parser) -> handler``: one adds its arguments to ``parser`` and
returns the function that runs them. The ML modules (``helpers.generate``,
``helpers.training``, ...) hold no argparse code. A command's module is imported only
when that command is asked for, so ``--help`` is instant and data commands do not
load TensorFlow.

No command ends in a traceback (``helpers.errors.report_error``): a
:class:`helpers.errors.LabError` is printed as one clear message with exit code 2; a
full disk or a read-only folder as one line saying what to do (exit 1); any other
error, a bug, as one line saying where its full traceback was saved
(``helpers-error-<time>.log`` in the run directory, else the temporary folder).
Numbers and paths are checked while the arguments are parsed (``helpers.validate``),
before any command writes a file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from pathlib import Path

from helpers.errors import Terminated, report_error

# command -> ("module:function", one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "helpers.cli.demo:demo_command",
        "make the generated slice, train the cpu preset, plot",
    ),
    "make-slice": (
        "helpers.cli.slice:make_slice_command",
        "write a generated CelebA-format slice",
    ),
    "download": (
        "helpers.cli.data:download_command",
        "download CelebA (kaggle, opendatasets, url, local)",
    ),
    "prepare": (
        "helpers.cli.data:prepare_command",
        "decode CelebA once into a uint8 cache",
    ),
    "train": ("helpers.cli.train:train_command", "train (or resume) a VAE run"),
    "sample": (
        "helpers.cli.generate:sample_command",
        "decode a grid of new faces from a run",
    ),
    "explore": (
        "helpers.cli.generate:explore_command",
        "write every exploration figure of a run",
    ),
    "evaluate": (
        "helpers.cli.evaluate:evaluate_command",
        "reconstruction, latent usage, blur, FID/KID",
    ),
    "make-student": (
        "helpers.cli.course:make_student_command",
        "stamp solutions/, generate notebooks/ (or --release DIR, --course DIR)",
    ),
    "repair-submission": (
        "helpers.cli.course:repair_submission_command",
        "repair a student's notebook against its release before nbgrader autograde",
    ),
    "check-submission": (
        "helpers.cli.course:check_submission_command",
        "what hand-ins kept of their grading metadata (through Colab or not)",
    ),
    "export-model": (
        "helpers.cli.pretrained:export_model_command",
        "write a run's model as a portable file for students to download",
    ),
    "report": (
        "helpers.cli.report:report_command",
        "build the hand-in report from a run",
    ),
}


def _overview() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: python -m helpers <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    lines += ["", "Run `python -m helpers <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Hide TensorFlow's C++ info/warning lines where it honours this (TF 2.21 prints
    # its start-up lines regardless); errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_overview())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command {name!r}\n\n{_overview()}", file=sys.stderr)
        return 2
    target, description = COMMANDS[name]
    module_name, function_name = target.split(":")
    parser = argparse.ArgumentParser(
        prog=f"python -m helpers {name}", description=description
    )
    args = None
    try:
        handler = getattr(importlib.import_module(module_name), function_name)(parser)
        args = parser.parse_args(rest)
        return int(handler(args) or 0)
    except Terminated as stop:
        print(
            f"{stop}: nothing finished was lost; run the same command again to "
            "resume",
            file=sys.stderr,
        )
        return 143
    except KeyboardInterrupt:
        print(
            "interrupted: nothing finished was lost; "
            "run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    except Exception as error:  # noqa: BLE001  the one place that catches all
        run_dir = getattr(args, "run_dir", None)
        folders = [run_dir] if run_dir and Path(run_dir).is_dir() else []
        return report_error(error, folders)
