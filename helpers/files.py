"""Safe files: atomic writes, damaged JSON named clearly, archive members that stay
inside their folder, and saved models checked whole before they are trusted.

Every small file the lab writes goes through :func:`atomic_write_bytes`: a temporary
file beside the target, flushed to disk, then one ``os.replace``, so a crash or
``kill -9`` leaves the old file or the new, never half.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import zipfile
from glob import escape as glob_escape
from pathlib import Path

from helpers.errors import DamagedFileError, os_error_message


def sha256_file(path: str | os.PathLike) -> str:
    """Return the SHA-256 of a file as hex, read in 1 MiB blocks (any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    path = Path(path)
    # The temporary name is per process: two processes writing the same file
    # (two `evaluate`s of one run) each rename a whole file, the last one wins.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:  # a full disk or a kill: leave no half-written temp file
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    # Temporary files of this path left by killed writers (dead pids) go too.
    for leftover in path.parent.glob(f".{glob_escape(path.name)}.*tmp"):
        middle = leftover.name[len(path.name) + 2 : -len(".tmp")].strip(".")
        if not (middle.isdigit() and _alive(int(middle))):
            with contextlib.suppress(OSError):
                leftover.unlink()
    return path


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours (EPERM), or no way to tell
        return True
    return True


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, line ends kept as given) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike, fix: str) -> dict:
    """Read a JSON object the lab wrote (the file must exist).

    Raises:
        DamagedFileError: not UTF-8, not JSON, or not an object; its message names
            the file and ``fix`` (what to do, e.g. "delete it and ...").
    """
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DamagedFileError(path, f"not UTF-8 text: {error.reason}", fix) from None
    except json.JSONDecodeError as error:
        problem = "empty" if not error.doc.strip() else f"not valid JSON: {error}"
        raise DamagedFileError(path, problem, fix) from None
    if not isinstance(data, dict):
        problem = f"a JSON {type(data).__name__}, not an object"
        raise DamagedFileError(path, problem, fix)
    return data


def write_text_or_fallback(path: str | os.PathLike, text: str) -> Path | None:
    """Write ``text`` to ``path``; if the disk refuses, save it elsewhere and say so.

    For results that took long to compute: the fallback is the system's temporary
    folder, and a warning names both places. Returns where the text is, or None
    when it could be written nowhere (the caller then prints it).
    """
    path = Path(path)
    try:
        return atomic_write_text(path, text)
    except OSError as error:
        why = os_error_message(error) or f"{type(error).__name__}: {error}"
    fallback = Path(tempfile.gettempdir()) / f"helpers-{path.parent.name}-{path.name}"
    try:
        atomic_write_text(fallback, text)
    except OSError:
        print(f"warning: could not save {path} ({why}), nor a copy", file=sys.stderr)
        return None
    print(
        f"warning: could not save {path} ({why}); saved it to {fallback}",
        file=sys.stderr,
    )
    return fallback


def unsafe_zip_member(info: zipfile.ZipInfo) -> str | None:
    """Return why extracting ``info`` could write outside its folder, or None."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return unsafe_member_name(info.filename)


def unsafe_member_name(original: str) -> str | None:
    """Return why an archive member's name could land outside its folder, or None."""
    name = original.replace("\\", "/")
    if name.startswith("/") or os.path.isabs(original):
        return "is an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "contains '..' and would land outside the destination"
    return None


KERAS_MEMBERS = ("config.json", "model.weights.h5")


def keras_file_problem(path: str | os.PathLike) -> str | None:
    """Say what is wrong with a ``.keras`` file, or None when it is whole.

    Whole: a zip whose every member's CRC-32 matches, holding ``KERAS_MEMBERS``.
    """
    try:
        if Path(path).stat().st_size == 0:
            return "the file is empty"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f"its member {bad} fails its checksum"
            missing = [m for m in KERAS_MEMBERS if m not in archive.namelist()]
            if missing:
                return f"it lacks {', '.join(missing)}"
    except zipfile.BadZipFile as error:
        return f"not a readable zip: {error}"
    except (OSError, EOFError, ValueError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def weights_file_problem(path: str | os.PathLike) -> str | None:
    """Say what is wrong with a ``.weights.h5`` file (HDF5), or None when every
    dataset in it can be read."""
    import h5py

    try:
        if Path(path).stat().st_size == 0:
            return "the file is empty"
        with h5py.File(path, "r") as handle:
            items = []
            handle.visititems(lambda _, item: items.append(item))  # None: go on
            for item in items:
                if isinstance(item, h5py.Dataset):
                    item[()]
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        return f"not a readable HDF5 file: {error}"
    return None


def check_keras_file(path: str | os.PathLike, fix: str) -> None:
    """Raise ``DamagedFileError(path, problem, fix)`` unless the file is whole."""
    problem = keras_file_problem(path)
    if problem is not None:
        raise DamagedFileError(path, problem, fix)
