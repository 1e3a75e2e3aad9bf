"""Safe files: atomic writes, and zip members that stay inside their folder.

Every small file the lab writes (configs, run.json, markers, reports, backups) goes
through :func:`atomic_write_bytes`: the bytes go to a hidden temporary file beside the
target, are flushed to disk, and replace the target in one ``os.replace``, so a crash
or ``kill -9`` leaves the old file or the new, never half.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from pathlib import Path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; return the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8, line ends kept as given) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def unsafe_zip_member(info: zipfile.ZipInfo) -> str | None:
    """Return why extracting ``info`` could write outside its folder, or None."""
    name = info.filename.replace("\\", "/")
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if name.startswith("/") or os.path.isabs(info.filename):
        return "is an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "starts with a drive letter"
    if ".." in name.split("/"):
        return "contains '..' and would land outside the destination"
    return None
