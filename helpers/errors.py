"""Errors that carry a message for people: what went wrong and what to do."""

from __future__ import annotations

import contextlib
import errno
import signal
import threading
import traceback


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
    """Within the block, SIGTERM raises :class:`Terminated` (cleaned up as Ctrl-C);
    a no-op outside the main thread, where Python delivers no signals."""

    def stop(signum, frame):
        raise Terminated(f"stopped by signal {signal.Signals(signum).name}")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)


def is_disk_full(error: BaseException) -> bool:
    """True for ENOSPC / EDQUOT, also when a library (h5py) only says so in words."""
    if isinstance(error, OSError) and error.errno in _NO_SPACE:
        return True
    text = str(error).lower()
    return "no space left" in text or "errno = 28" in text or "disk quota" in text


_NO_SPACE = {getattr(errno, n) for n in ("ENOSPC", "EDQUOT") if hasattr(errno, n)}
_READ_ONLY = {errno.EACCES, errno.EPERM, errno.EROFS}


def os_error_message(error: OSError) -> str | None:
    """One clear line for a full disk or quota, or a read-only folder; else None."""
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


def short_error_lines(error: BaseException) -> list[str] | None:
    """One red line for a TODO stub still raising ``NotImplementedError``, a name
    a cell above never defined, or a ``LabError``; None for anything else."""
    frames = traceback.extract_tb(error.__traceback__)
    if isinstance(error, LabError):
        text = str(error)
    elif isinstance(error, NotImplementedError) and frames:
        if (frames[-1].line or "").strip() != "raise NotImplementedError()":
            return None
        code = list(traceback.walk_tb(error.__traceback__))[-1][0].f_code
        name = getattr(code, "co_qualname", frames[-1].name)
        text = (
            f"The TODO in `{name}` is not done yet: it still raises "
            "NotImplementedError. Fill it in and run its cell (and its check), then "
            "run this cell again."
        )
    elif isinstance(error, NameError) and _inside_one_cell(frames):
        text = (
            f"NameError: {error}. A cell above has not run, or it failed: run "
            "the cells above in order; the first that fails says what to fix (an "
            "exercise whose TODO is not done yet, say)."
        )
    else:
        return None
    return [f"\x1b[31m❌ {text}\x1b[0m"]


_TOP = ("<module>", "<cell line")  # a cell's code; IPython 7: "<cell line: N>"
_INNER = _TOP + ("<genexpr>", "<lambda>", "<listcomp>", "<dictcomp>", "<setcomp>")


def _inside_one_cell(frames) -> bool:
    """The error never left the cell's code (not counting IPython's frames above)."""
    tops = [i for i, f in enumerate(frames) if f.name.startswith(_TOP)]
    return bool(tops) and all(
        f.filename == frames[tops[-1]].filename and f.name.startswith(_INNER)
        for f in frames[tops[-1] :]
    )


def register_short_errors() -> bool:
    """Show ``short_error_lines`` in IPython instead of a traceback; False outside."""
    from helpers.environment import ipython_shell

    if (shell := ipython_shell()) is None:
        return False

    def handler(self, etype, value, tb, tb_offset=None):
        stb = short_error_lines(value) or self.InteractiveTB.structured_traceback(
            etype, value, tb, tb_offset=tb_offset
        )
        self._showtraceback(etype, value, stb)
        return stb

    shell.set_custom_exc((NotImplementedError, NameError, LabError), handler)
    return True
