"""Copies on Google Drive that a later notebook can trust: flushed, sized, hashed.

Colab uploads to Drive in the background, so on the next machine a large file can
read short for minutes (googlecolab/colabtools #659, #2607). So every copy is
fsync-ed, read back against the SHA-256 computed while writing, and recorded last in
a manifest (sizes and SHA-256), which a later notebook waits for, a bounded time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

from helpers.errors import DataError
from helpers.files import atomic_write_text, sha256_file

MANIFEST = ".vae-lab-manifest.json"
CHUNK = 16 << 20
# How long (s) a notebook waits for Drive to sync a copy, and how often it looks.
WAIT_SECONDS = 600.0
POLL_SECONDS = 15.0
WAIT_ENV = "VAE_LAB_DRIVE_WAIT"


class IncompleteCopy(DataError):
    """A copy on Drive does not (yet) match its manifest."""


def wait_seconds() -> float:
    """The wait for Drive to sync, in seconds (``$VAE_LAB_DRIVE_WAIT``)."""
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, WAIT_SECONDS)))
    except ValueError:
        return WAIT_SECONDS


def describe_wait(seconds: float) -> str:
    """'45 s' or '10 min'."""
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.0f} min"


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (renames, new files); a no-op where unsupported."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def sha256_and_fsync(path: Path) -> str:
    """Flush ``path`` to its file system and return its SHA-256."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
    return sha256_file(path)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path, hashes: dict[str, str] | None = None) -> dict:
    """Flush every file in ``folder`` and record its size and SHA-256, last.

    ``hashes``: SHA-256 already known, by relative path (the rest are computed).
    """
    folder = Path(folder)
    hashes = hashes or {}
    entries = {}
    for path in _files(folder):
        rel = path.relative_to(folder).as_posix()
        digest = hashes.get(rel) or sha256_and_fsync(path)
        entries[rel] = {"size": path.stat().st_size, "sha256": digest}
    record = {"written_at": time.time(), "written_on": socket.gethostname()}
    record["files"] = entries
    atomic_write_text(folder / MANIFEST, json.dumps(record, indent=1))  # fsync-ed
    fsync_dir(folder)
    return record


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None if it has none (or it is not readable)."""
    try:
        record = json.loads((Path(folder) / MANIFEST).read_text())
        files = record["files"]
        float(record["written_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if isinstance(files, dict) else None


def problems(
    folder: Path, manifest: dict | None = None, allow_newer: bool = False
) -> list[str] | None:
    """One line per file missing from ``folder`` or of another size than recorded.

    None when there is no manifest. With ``allow_newer`` a file modified after the
    manifest (a run that went on) is not a problem.
    """
    folder = Path(folder)
    manifest = manifest or read_manifest(folder)
    if manifest is None:
        return None
    found = []
    for rel, entry in manifest["files"].items():
        path = folder / rel
        try:
            stat = path.stat()
        except OSError:
            found.append(f"{rel} is missing (expected {_size(entry['size'])})")
            continue
        if stat.st_size == entry["size"]:
            continue
        if allow_newer and stat.st_mtime > manifest["written_at"] + 1:
            continue  # written again after the manifest: newer, not short
        found.append(f"{rel} has {_size(stat.st_size)} of {_size(entry['size'])}")
    return found


def wait_until_complete(
    folder: Path, what: str, *, verbose: bool = True, allow_newer: bool = False
) -> list[str] | None:
    """Wait (at most :func:`wait_seconds`) until ``folder`` matches its manifest.

    Returns None (no manifest), [] (complete), or the problems left at the end.
    """
    timeout, poll = wait_seconds(), POLL_SECONDS
    found = problems(folder, allow_newer=allow_newer)
    if not found:
        return found
    if verbose:
        print(
            f"{what} is not complete yet ({'; '.join(found[:3])}"
            f"{'; ...' if len(found) > 3 else ''}): Google Drive is probably still "
            "syncing it from the machine that wrote it. Waiting up to "
            f"{describe_wait(timeout)} (checking every {poll:.0f} s) ..."
        )
    waited = 0.0
    while found and waited < timeout:
        step = min(poll, timeout - waited)
        time.sleep(step)
        waited += step
        found = problems(folder, allow_newer=allow_newer)
    if verbose and not found:
        print(f"{what} is complete now (after {waited:.0f} s).")
    return found


def copy_folder(
    source: Path, target: Path, *, expected: dict | None = None, progress_bar=None
) -> dict:
    """Copy ``source`` to ``target`` (via ``target.copying``); return its manifest.

    Every file is hashed while it is read, then fsync-ed and read back; with
    ``expected`` (the source's manifest) each must also match its record. Raises
    IncompleteCopy otherwise, leaving ``target`` as it was.
    """
    source, target = Path(source), Path(target)
    partial = target.with_name(target.name + ".copying")
    shutil.rmtree(partial, ignore_errors=True)
    files = _files(source)
    if expected is not None:
        listed = set(expected["files"])
        missing = sorted(listed - {p.relative_to(source).as_posix() for p in files})
        if missing:
            raise IncompleteCopy(
                f"{source} lacks {', '.join(missing[:3])} listed in its manifest."
            )
    hashes, bad = {}, []
    try:
        for file in files:
            rel = file.relative_to(source).as_posix()
            copy = partial / rel
            copy.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(file, "rb") as reader, open(copy, "wb") as writer:
                while chunk := reader.read(CHUNK):
                    writer.write(chunk)
                    digest.update(chunk)
                    if progress_bar is not None:
                        progress_bar.update(len(chunk))
                writer.flush()
                os.fsync(writer.fileno())
            hashes[rel], size = digest.hexdigest(), copy.stat().st_size
            want = (expected or {}).get("files", {}).get(rel)
            if want and (want["size"] != size or want["sha256"] != hashes[rel]):
                bad.append(
                    f"{rel}: {_size(size)} read, sha256 "
                    f"{hashes[rel][:12]}..., but {_size(want['size'])}, sha256 "
                    f"{want['sha256'][:12]}... were written"
                )
            elif sha256_and_fsync(copy) != hashes[rel]:
                bad.append(f"{rel}: the copy reads back differently")
        if bad:
            raise IncompleteCopy(
                f"the copy of {source} does not match what was written "
                f"({'; '.join(bad[:3])}): Drive is still syncing it, or it is damaged."
            )
        manifest = write_manifest(partial, hashes)
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return manifest


def changed_since_manifest(folder: Path) -> bool:
    """True when a file in ``folder`` is newer than, or absent from, its manifest."""
    manifest = read_manifest(folder) or {"files": {}, "written_at": 0.0}
    for path in _files(folder):
        entry = manifest["files"].get(path.relative_to(folder).as_posix(), {})
        stat = path.stat()
        if entry.get("size") != stat.st_size or stat.st_mtime > manifest["written_at"]:
            return True
    return False


def watched_folders(runs_dir: Path, extra=()) -> list[Path]:
    """Every run directory under ``runs_dir``, and the ``extra`` folders that exist."""
    runs_dir = Path(runs_dir)
    folders = []
    if runs_dir.is_dir():
        folders = sorted(p for p in runs_dir.iterdir() if p.is_dir())
    return folders + [Path(p) for p in extra if Path(p).is_dir()]


def flush(runs_dir: Path, extra=()) -> list[Path]:
    """Re-record (fsync-ed) every run directory and ``extra`` folder that changed.

    Returns the folders whose manifest was written.
    """
    folders = watched_folders(runs_dir, extra)
    written = [f for f in folders if changed_since_manifest(f)]
    for folder in written:
        write_manifest(folder)
    return written


_hooks: dict[str, object] = {}


def keep_flushed(runs_dir: Path, extra=()) -> bool:
    """After every notebook cell, :func:`flush` ``runs_dir``; False outside IPython."""
    from helpers.environment import ipython_shell

    shell = ipython_shell()
    if shell is None or not hasattr(shell, "events"):
        return False
    key = str(runs_dir)
    if key in _hooks:
        return True

    def after_cell(*_):
        try:
            flush(runs_dir, extra)
        except OSError as error:  # Drive unmounted, full, ...: say it, go on
            print(f"note: could not flush {runs_dir} to Google Drive ({error})")

    shell.events.register("post_run_cell", after_cell)
    _hooks[key] = after_cell
    return True
