"""Safe files: atomic writes (a crash or ``kill -9`` leaves the old file or the new),
damaged JSON named clearly, archive member names that stay inside their folder, and
saved models checked whole before they are trusted."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
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
    # Per process: two processes writing one file each rename a whole one.
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
        with contextlib.suppress(OSError):  # a live writer's (or not ours: EPERM) stays
            try:
                os.kill(int(leftover.name[len(path.name) + 2 : -4].strip(".")), 0)
            except (ValueError, ProcessLookupError):  # no pid, or a dead one
                leftover.unlink()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, line ends kept as given) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def read_json(path: str | os.PathLike, fix: str) -> dict:
    """Read a JSON object the lab wrote (the file must exist); DamagedFileError (not
    UTF-8, not JSON, not an object) names the file and ``fix`` (what to do)."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DamagedFileError(path, f"not UTF-8 text: {error.reason}", fix) from None
    except json.JSONDecodeError as error:
        problem = "empty" if not error.doc.strip() else f"not valid JSON: {error}"
        raise DamagedFileError(path, problem, fix) from None
    if not isinstance(data, dict):
        raise DamagedFileError(path, f"JSON {type(data).__name__}, not an object", fix)
    return data


def write_text_or_fallback(path: str | os.PathLike, text: str) -> Path | None:
    """Write ``text`` to ``path``, or if the disk refuses to the temporary folder
    with a warning naming both; return where it is, None for nowhere (then print)."""
    path = Path(path)
    try:
        return atomic_write_text(path, text)
    except OSError as error:
        why = os_error_message(error) or f"{type(error).__name__}: {error}"
    fallback = Path(tempfile.gettempdir()) / f"helpers-{path.parent.name}-{path.name}"
    try:
        atomic_write_text(fallback, text)
    except OSError:
        fallback = None
    where = f"; saved it to {fallback}" if fallback else ", nor a copy"
    print(f"warning: could not save {path} ({why}){where}", file=sys.stderr)
    return fallback


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


def keras_file_problem(path: str | os.PathLike) -> str | None:
    """Say what is wrong with a ``.keras`` file, or None when it is whole: a zip
    whose every member's CRC-32 matches, with Keras' config.json and weights."""
    try:
        if Path(path).stat().st_size == 0:
            return "the file is empty"
        with zipfile.ZipFile(path) as archive:
            if (bad := archive.testzip()) is not None:
                return f"its member {bad} fails its checksum"
            if missing := {"config.json", "model.weights.h5"} - set(archive.namelist()):
                return f"it lacks {', '.join(sorted(missing))}"
    except zipfile.BadZipFile as error:
        return f"not a readable zip: {error}"
    except (OSError, EOFError, ValueError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def weights_file_problem(path: str | os.PathLike) -> str | None:
    """Say what is wrong with a ``.weights.h5`` (HDF5) file, or None if all reads."""
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
    if (problem := keras_file_problem(path)) is not None:
        raise DamagedFileError(path, problem, fix)
