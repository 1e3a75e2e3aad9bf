"""The lab's one command line: ``python -m vaelab <command> [--help]``.

Each command group is a module of this package (``train``, ``generate``, ``evaluate``,
``report``, ``data``, ``slice``, ``demo``) holding functions
``<name>_command(parser) -> handler``: one adds its arguments to ``parser`` and
returns the function that runs them. The ML modules (``helpers.generate``,
``helpers.training``, ...) hold no argparse code. A command's module is imported only
when that command is asked for, so ``--help`` is instant and data commands do not
load TensorFlow.

No command ends in a traceback (:func:`report_error`): a
:class:`helpers.errors.LabError` is printed as one clear message with exit code 2; a
full disk or a read-only folder as one line saying what to do (exit 1); any other
error, a bug, as one line saying where its full traceback was saved
(``helpers-error-<time>.log`` in the run directory, else the temporary folder).
Numbers and paths are checked while the arguments are parsed (``vaelab.validate``),
before any command writes a file.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import tempfile
import time
import traceback

from pathlib import Path

from helpers.errors import LabError, Terminated, os_error_message


def save_traceback(error: BaseException, folders=()) -> Path | None:
    """Write the traceback to ``helpers-error-<UTC time>.log`` in the first folder
    of ``folders`` (then the temporary folder) that can be written; its path or None.
    """
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    header = f"python -m vaelab {' '.join(sys.argv[1:])}\n{time.ctime()}\n\n"
    for folder in [f for f in folders if f is not None] + [tempfile.gettempdir()]:
        path = Path(folder) / f"helpers-error-{stamp}-{os.getpid()}.log"
        with contextlib.suppress(OSError):
            path.write_text(header + text)
            return path
    return None


def report_error(error: BaseException, log_folders=()) -> int:
    """Print ``error`` as one line on stderr; return the exit code for it.

    A ``LabError``: its message (exit 2). A full disk, a read-only folder, no
    memory: what to do (exit 1). Anything else is a bug: one line says where its
    traceback was saved (exit 1).
    """
    if isinstance(error, LabError):
        print(f"error: {error}", file=sys.stderr)
        return 2
    message = os_error_message(error) if isinstance(error, OSError) else None
    if message is None and isinstance(error, MemoryError):
        message = (
            "out of memory: ask for fewer images (--n) or a smaller --batch-size, "
            "or use a machine with more memory"
        )
    if message is not None:
        print(f"error: {message}", file=sys.stderr)
        return 1
    log = save_traceback(error, log_folders)
    where = f"the full traceback is in {log}" if log else "no log could be written"
    summary = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    print(
        f"error: unexpected {summary} ({where}; please include it when you report "
        "this problem)",
        file=sys.stderr,
    )
    return 1


# command -> ("module:function", one-line description)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": (
        "vaelab.cli.demo:demo_command",
        "make the generated slice, train the cpu preset, plot",
    ),
    "make-slice": (
        "vaelab.cli.slice:make_slice_command",
        "write a generated CelebA-format slice",
    ),
    "download": (
        "vaelab.cli.data:download_command",
        "download CelebA (kaggle, opendatasets, url, local)",
    ),
    "prepare": (
        "vaelab.cli.data:prepare_command",
        "decode CelebA once into a uint8 cache",
    ),
    "train": ("vaelab.cli.train:train_command", "train (or resume) a VAE run"),
    "sample": (
        "vaelab.cli.generate:sample_command",
        "decode a grid of new faces from a run",
    ),
    "explore": (
        "vaelab.cli.generate:explore_command",
        "write every exploration figure of a run",
    ),
    "evaluate": (
        "vaelab.cli.evaluate:evaluate_command",
        "reconstruction, latent usage, blur, FID/KID",
    ),
    "report": (
        "vaelab.cli.report:report_command",
        "build the hand-in report from a run",
    ),
}


# The instructor's commands, which students never install (instructor/).
INSTRUCTOR_COMMANDS = ("make-student", "repair-submission", "check-submission", "export-model")


def _overview(commands: dict, prog: str) -> str:
    width = max(map(len, commands))
    lines = [f"usage: {prog} <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in commands.items()]
    lines += ["", f"Run `{prog} <command> --help` for a command's options."]
    return "\n".join(lines)


def main(
    argv: list[str] | None = None,
    commands: dict[str, tuple[str, str]] | None = None,
    prog: str = "python -m vaelab",
) -> int:
    """Run one command of ``commands`` (default: the lab's); return its exit code.

    ``python -m instructor`` runs its own command table through this same function.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = COMMANDS if commands is None else commands
    # Hide TensorFlow's C++ info/warning lines where it honours this (TF 2.21 prints
    # its start-up lines regardless); errors still show.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(_overview(commands, prog))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands and name in INSTRUCTOR_COMMANDS and prog.endswith("vaelab"):
        print(
            f"error: {name} is an instructor's command: run `python -m instructor "
            f"{name}`",
            file=sys.stderr,
        )
        return 2
    if name not in commands:
        print(
            f"error: unknown command {name!r}\n\n{_overview(commands, prog)}",
            file=sys.stderr,
        )
        return 2
    target, description = commands[name]
    module_name, function_name = target.split(":")
    parser = argparse.ArgumentParser(prog=f"{prog} {name}", description=description)
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
