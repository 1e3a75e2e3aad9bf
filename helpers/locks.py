"""One process at a time per run directory and per cache: an OS-level file lock
(``filelock``: the OS drops it when the process dies, ``kill -9`` included). A second
process is refused at once, named by the owner file beside the lock. Readers take
no lock: ``train`` replaces its files atomically.
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
    return Path(f"{lock_path}.owner.json")


def _holder(lock_path: str | os.PathLike) -> tuple[str, object]:
    """("pid 7 on host x (`train`, since 2026-11-27 09:00:00 UTC)" or a hint, host)."""
    try:
        owner = json.loads(owner_path(lock_path).read_text())
        text = f"pid {int(owner['pid'])} on host {owner['host']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its owner file is missing or unreadable)", None
    details = [f"`{owner['command']}`"] if owner.get("command") else []
    details += [f"since {owner['started']}"] if owner.get("started") else []
    return text + (f" ({', '.join(details)})" if details else ""), owner["host"]


@contextlib.contextmanager
def hold(lock_path: str | os.PathLike, folder: str | os.PathLike, command: str):
    """Hold the lock at ``lock_path`` (its folder is created) for writing into
    ``folder`` with ``command`` (e.g. "train"); BusyError if another process has it."""
    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        holder, host, hint = *_holder(lock_path), ""
        if str(host) != socket.gethostname():
            # Held from another machine (or a Colab session that has since ended,
            # on a drive without flock): that cannot be checked from here.
            hint = (
                " If that process no longer runs (e.g. a Colab session that ended), "
                f"delete {lock_path} and run this command again."
            )
        raise BusyError(
            f"{folder} is in use by {holder}: wait until it finishes (or stop it), "
            "then run this command again. Two processes writing into one folder "
            f"would corrupt it.{hint}"
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
    return hold(Path(run_dir) / ".lock", run_dir, command)


def cache_lock(cache_dir: str | os.PathLike, command: str = "prepare"):
    """Hold a cache's lock ``.CACHE.lock``, beside it: the cache folder itself is
    renamed into place when finished."""
    cache_dir = Path(cache_dir)
    return hold(cache_dir.with_name(f".{cache_dir.name}.lock"), cache_dir, command)
