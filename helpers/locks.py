"""One process at a time per run directory and per cache: an OS-level file lock.

``train`` holds its run directory's lock and ``prepare`` its cache's; a second
process is refused at once, named by the owner file written beside the lock (pid,
host, command, start time). The lock is ``filelock``'s ``FileLock`` (``flock`` or
``msvcrt``): the OS drops it when the process dies, ``kill -9`` included. Readers
(``sample``, ``evaluate``, ``explore``) take no lock: ``train`` replaces its files
atomically, and they write only files ``train`` never touches.
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


def _owner(lock_path: Path) -> dict:
    try:
        owner = json.loads(owner_path(lock_path).read_text())
    except (OSError, ValueError):
        return {}
    return owner if isinstance(owner, dict) else {}


def describe_owner(lock_path: str | os.PathLike) -> str:
    """Return "pid 123 on host x (`train`, since 2026-11-27 15:20:01 UTC)" or a hint."""
    owner = _owner(Path(lock_path))
    try:
        text = f"pid {int(owner['pid'])} on host {owner['host']}"
    except (ValueError, KeyError, TypeError):
        return "another process (its owner file is missing or unreadable)"
    details = [f"`{owner['command']}`"] if owner.get("command") else []
    if owner.get("started"):
        details.append(f"since {owner['started']}")
    return text + (f" ({', '.join(details)})" if details else "")


@contextlib.contextmanager
def hold(lock_path: str | os.PathLike, folder: str | os.PathLike, command: str):
    """Hold the lock at ``lock_path`` (its folder must exist) for writing into
    ``folder``; ``command`` (e.g. "train") is recorded for the refusal message.

    Raises:
        BusyError: another live process holds the lock.
    """
    lock_path = Path(lock_path)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        hint = ""
        if str(_owner(lock_path).get("host")) != socket.gethostname():
            # Held from another machine (or a Colab session that has since ended,
            # on a drive without flock): that cannot be checked from here.
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
