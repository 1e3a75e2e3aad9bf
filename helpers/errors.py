"""Errors that carry a message for people: what went wrong and what to do.

The command line prints these without a traceback and exits non-zero
(:func:`report_error`). A full disk or a read-only folder gets its own clear line;
any other exception is a bug: one line says where its full traceback was saved.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import sys
import threading
import tempfile
import time
import traceback
from pathlib import Path


class LabError(Exception):
    """A problem the user can fix; the message says how."""


class DataError(LabError):
    """The data is missing, in the wrong layout, or unreadable."""


class DownloadError(LabError):
    """A download failed: network, checksum, HTML instead of a zip, unsafe zip."""


class CredentialsError(DownloadError):
    """Kaggle credentials are missing or rejected (never contains the key)."""


class TrainingError(LabError):
    """Training stopped: a NaN loss, or a run directory that does not match."""


class DamagedFileError(LabError):
    """A file the lab wrote earlier cannot be read; the message names it and the fix."""

    def __init__(self, path, problem: str, fix: str):
        self.path, self.problem, self.fix = path, problem, fix
        super().__init__(f"{path} is damaged ({problem}): {fix}")


class Terminated(KeyboardInterrupt):
    """SIGTERM turned into an orderly stop (``sigterm_stops``), cleaned up as Ctrl-C."""


@contextlib.contextmanager
def sigterm_stops():
    """Within the block, SIGTERM raises :class:`Terminated` instead of killing.

    So a ``kill``, a Colab or a batch system's stop runs the same cleanup as
    Ctrl-C (temporary files removed, the status written). Only in the main
    thread, where Python delivers signals; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise Terminated(f"stopped by signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def is_disk_full(error: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also when a library (h5py) only says so in words."""
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return True
    text = str(error).lower()
    return "no space left" in text or "errno = 28" in text or "disk quota" in text


# Turning any error into one line for the command line ------------------------------
_NO_SPACE = {
    getattr(errno, name) for name in ("ENOSPC", "EDQUOT") if hasattr(errno, name)
}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


def os_error_message(error: OSError) -> str | None:
    """Return one clear line for a disk problem a user can fix, or None.

    Covers a full disk or quota (ENOSPC, EDQUOT) and a read-only or foreign
    folder (EACCES, EPERM, EROFS).
    """
    where = error.filename or "a file"
    if error.errno in _NO_SPACE:
        return (
            f"no space left on the disk while writing {where}: free some space or "
            "choose a folder on another disk, then run the same command again "
            "(work already finished is kept)"
        )
    if error.errno in _READ_ONLY:
        return (
            f"cannot write {where}: permission denied or a read-only disk. Choose a "
            "folder you can write to (e.g. under your home folder or /content on "
            "Colab), or fix its permissions"
        )
    return None


def save_traceback(error: BaseException, folders=()) -> Path | None:
    """Write the full traceback to ``helpers-error-<UTC time>.log``; return its path.

    The first folder of ``folders`` (then the system's temporary folder) that can
    be written wins; None if none can.
    """
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    header = f"python -m helpers {' '.join(sys.argv[1:])}\n{time.ctime()}\n\n"
    for folder in [*folders, tempfile.gettempdir()]:
        if folder is None:
            continue
        path = Path(folder) / f"helpers-error-{stamp}-{os.getpid()}.log"
        try:
            path.write_text(header + text)
            return path
        except OSError:
            continue
    return None


def report_error(error: BaseException, log_folders=()) -> int:
    """Print ``error`` as one line on stderr and return the exit code for it.

    A ``LabError`` prints its message (exit 2); a full disk or a read-only folder
    prints what to do (exit 1); running out of memory says what to lower (exit 1);
    anything else is a bug: one line says where its full traceback was saved
    (exit 1).
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


# ------------------------------------------------------------ short notebook errors
_STUB_LINE = "raise NotImplementedError()"


def short_error_lines(error: BaseException) -> list[str] | None:
    """One red line for a notebook error a student should not read a traceback for.

    A TODO stub that still raises ``NotImplementedError``, a name a cell above
    never defined (it was not run, or it failed), and a ``LabError`` (its message
    says what to do) each get one line; anything else returns None (the usual
    traceback).
    """
    red, reset = "\x1b[31m", "\x1b[0m"
    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1] if frames else None
    if isinstance(error, LabError):
        return [f"{red}❌ {error}{reset}"]
    if isinstance(error, NotImplementedError) and last is not None:
        if (last.line or "").strip() != _STUB_LINE:
            return None
        tb = error.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        name = getattr(tb.tb_frame.f_code, "co_qualname", last.name)
        return [
            f"{red}❌ The TODO in `{name}` is not done yet: it still raises "
            "NotImplementedError. Fill it in and run its cell (and its check), then "
            f"run this cell again.{reset}"
        ]
    if isinstance(error, NameError) and frames and _inside_one_cell(frames):
        return [
            f"{red}❌ NameError: {error}. A cell above has not run, or it failed: run "
            "the cells above in order; the first that fails says what to fix (an "
            f"exercise whose TODO is not done yet, say).{reset}"
        ]
    return None


def _is_cell_top(name: str) -> bool:
    """A cell's top level: "<module>", or "<cell line: N>" as IPython 7 names it."""
    return name == "<module>" or name.startswith("<cell line")


def _inside_one_cell(frames) -> bool:
    """The error never left the cell's own code: its top level, or a comprehension,
    generator or lambda written there (not a function it called). Frames above the
    cell's (IPython running it) do not count."""
    tops = [i for i, f in enumerate(frames) if _is_cell_top(f.name)]
    if not tops:
        return False
    cell = frames[tops[-1]]
    inner = {"<genexpr>", "<lambda>", "<listcomp>", "<dictcomp>", "<setcomp>"}
    return all(
        f.filename == cell.filename and (_is_cell_top(f.name) or f.name in inner)
        for f in frames[tops[-1] :]
    )


def register_short_errors(shell=None) -> bool:
    """Show ``short_error_lines`` in IPython instead of a traceback; False outside."""
    from helpers.environment import ipython_shell

    shell = shell if shell is not None else ipython_shell()
    if shell is None:
        return False

    def handler(self, etype, value, tb, tb_offset=None):
        stb = short_error_lines(value)
        if stb is None:
            stb = self.InteractiveTB.structured_traceback(
                etype, value, tb, tb_offset=tb_offset
            )
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((NotImplementedError, NameError, LabError), handler)
    return True
