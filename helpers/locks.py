"""One process at a time per run directory and per cache: an OS-level file lock.

``train`` holds the lock of its run directory and ``prepare`` the lock of its cache
while they write. A second process that asks for the same lock is refused at once,
with a message naming the folder and the process that holds it (pid, host, command,
start time: written beside the lock when it is taken)::

    with hold(run_dir / ".lock", run_dir, "train"):
        ...   # only this process writes into run_dir

The lock is ``filelock``'s ``FileLock`` (``fcntl.flock`` on Linux and macOS,
``msvcrt.locking`` on Windows): the operating system drops it when the process
ends in any way, ``kill -9`` included, so a lock left by a dead process never
blocks. The owner file left behind by such a process is only read to word the
refusal; it is not what locks. On a file system without ``flock`` filelock falls
back to a lock file; when that file names another machine (a Colab session that
ended, say), the refusal says which file to delete once that process is gone.

Commands that only read a run (``sample``, ``evaluate``, ``explore``) do not take
the lock: everything ``train`` writes is replaced atomically (``helpers.files``),
so a reader sees the old file or the new one, and those commands write only their
own files (the sample PNG, ``evaluation.*``, ``figures/``), which ``train`` never
touches.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from filelock import FileLock, Timeout

from helpers.errors import LabError
from helpers.files import atomic_write_text


class BusyError(LabError):
    """Another process is writing into the same run directory or cache."""


def owner_path(lock_path: str | os.PathLike) -> Path:
    """Return the file that names the lock's holder: ``<lock>.owner.json``."""
    lock_path = Path(lock_path)
    return lock_path.with_name(lock_path.name + ".owner.json")


def describe_owner(lock_path: str | os.PathLike) -> str:
    """Return "pid 123 on host x (`train`, since 2026-11-27 15:20:01 UTC)" or a hint."""
    try:
        owner = json.loads(owner_path(lock_path).read_text())
        text = f"pid {int(owner['pid'])} on host {owner['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its owner file is missing or unreadable)"
    details = []
    if owner.get("command"):
        details.append(f"`{owner['command']}`")
    if owner.get("started"):
        details.append(f"since {owner['started']}")
    return text + (f" ({', '.join(details)})" if details else "")


def _owner_host(lock_path: Path) -> str | None:
    try:
        return str(json.loads(owner_path(lock_path).read_text())["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


@contextlib.contextmanager
def hold(lock_path: str | os.PathLike, folder: str | os.PathLike, command: str):
    """Hold the lock at ``lock_path`` for writing into ``folder``; refuse if taken.

    Args:
        lock_path: the lock file (its folder must exist).
        folder: the run directory or cache it protects (named in the message).
        command: what this process does, e.g. "train" (recorded for the message).

    Raises:
        BusyError: another live process holds the lock.
    """
    lock_path = Path(lock_path)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        hint = ""
        if _owner_host(lock_path) != socket.gethostname():
            # A lock on a network or cloud drive held by another machine (or by a
            # Colab session that has since ended) cannot be checked from here.
            hint = (
                " If that process no longer runs (e.g. a Colab session that ended), "
                f"delete {lock_path} and run this command again."
            )
        raise BusyError(
            f"{folder} is in use by {describe_owner(lock_path)}: wait until it "
            f"finishes (or stop it), then run this command again. Two processes "
            f"writing into one folder would corrupt it.{hint}"
        ) from None
    try:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "command": command,
            "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
            "argv": sys.argv[1:4],
        }
        with contextlib.suppress(OSError):
            atomic_write_text(owner_path(lock_path), json.dumps(owner) + "\n")
        yield lock_path
    finally:
        with contextlib.suppress(OSError):
            owner_path(lock_path).unlink()
        lock.release()


def run_lock(run_dir: str | os.PathLike, command: str = "train"):
    """Hold the run directory's lock (``RUN/.lock``); creates the folder."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    return hold(run_dir / ".lock", run_dir, command)


def cache_lock(cache_dir: str | os.PathLike, command: str = "prepare"):
    """Hold a cache's lock, kept beside it (``.CACHE.lock``): the cache folder itself
    is renamed into place when finished."""
    cache_dir = Path(cache_dir)
    cache_dir.parent.mkdir(parents=True, exist_ok=True)
    return hold(cache_dir.with_name(f".{cache_dir.name}.lock"), cache_dir, command)
