"""Atomic file writes: a crash or ``kill -9`` leaves the old file or the new, never half.

Every small file the lab writes (configs, run.json, markers, reports, backups) goes
through here: the bytes go to a hidden temporary file beside the target, are flushed to
disk, and replace the target in one ``os.replace``.
"""

from __future__ import annotations

import os
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
