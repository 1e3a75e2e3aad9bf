"""Copies on Google Drive that a later notebook can trust: fsync-ed, read back and
recorded last in a manifest (sizes, SHA-256) that the next machine waits for, since
Drive uploads in the background (googlecolab/colabtools #659, #2607)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import time
from pathlib import Path

from helpers.environment import ipython_shell
from helpers.errors import DataError
from helpers.files import atomic_write_text, sha256_file

MANIFEST = ".vae-lab-manifest.json"
CHUNK = 16 << 20
WAIT_SECONDS = 600.0  # how long a notebook waits for Drive to sync a copy
POLL_SECONDS = 15.0  # and how often it looks
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


def _files(folder: Path) -> dict[str, Path]:
    """Every file under ``folder`` but the manifest, by "/"-separated relative path."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)
    return {p.relative_to(folder).as_posix(): p for p in paths}


def write_manifest(folder: Path, hashes: dict[str, str] | None = None) -> dict:
    """Flush every file in ``folder``, then record their sizes and SHA-256 (those
    in ``hashes``, by relative path, already known)."""
    folder, hashes = Path(folder), hashes or {}
    record = dict(written_at=time.time(), written_on=socket.gethostname(), files={})
    for rel, path in _files(folder).items():
        if rel not in hashes:
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        digest = hashes.get(rel) or sha256_file(path)
        record["files"][rel] = {"size": path.stat().st_size, "sha256": digest}
    atomic_write_text(folder / MANIFEST, json.dumps(record, indent=1))  # fsync-ed
    fsync_dir(folder)
    return record


def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest, or None if it has none (or it is not readable)."""
    try:
        record = json.loads((Path(folder) / MANIFEST).read_text())
        float(record["written_at"])
        return record if isinstance(record["files"], dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def problems(folder: Path, allow_newer: bool = False) -> list[str] | None:
    """One line per file missing from ``folder`` or of another size than recorded
    (None: no manifest); ``allow_newer``: one modified since (a run went on) is ok."""
    if (manifest := read_manifest(folder)) is None:
        return None
    found = []
    for rel, entry in manifest["files"].items():
        try:
            stat = (Path(folder) / rel).stat()
        except OSError:
            found.append(f"{rel} is missing (expected {_size(entry['size'])})")
            continue
        newer = allow_newer and stat.st_mtime > manifest["written_at"] + 1
        if stat.st_size != entry["size"] and not newer:  # newer: written again
            found.append(f"{rel} has {_size(stat.st_size)} of {_size(entry['size'])}")
    return found


def wait_until_complete(
    folder: Path, what: str, *, verbose: bool = True, allow_newer: bool = False
) -> list[str] | None:
    """Wait (at most :func:`wait_seconds`) until ``folder`` matches its manifest;
    return None (no manifest), [] (complete), or the problems left at the end."""
    timeout, waited = wait_seconds(), 0.0
    if not (found := problems(folder, allow_newer=allow_newer)):
        return found
    if verbose:
        print(
            f"{what} is not complete yet ({'; '.join(found[:3])}"
            f"{'; ...' if len(found) > 3 else ''}): Google Drive is probably still "
            "syncing it from the machine that wrote it. Waiting up to "
            f"{describe_wait(timeout)} (checking every {POLL_SECONDS:.0f} s) ..."
        )
    while found and waited < timeout:
        step = min(POLL_SECONDS, timeout - waited)
        time.sleep(step)
        waited += step
        found = problems(folder, allow_newer=allow_newer)
    if verbose and not found:
        print(f"{what} is complete now (after {waited:.0f} s).")
    return found


def copy_folder(
    source: Path, target: Path, *, expected: dict | None, progress_bar
) -> dict:
    """Copy ``source`` to ``target`` (via ``target.copying``), each file hashed as read,
    fsync-ed, read back and matched to ``expected`` (the source's manifest; else
    IncompleteCopy, ``target`` untouched); return the copy's manifest."""
    partial = target.with_name(target.name + ".copying")
    shutil.rmtree(partial, ignore_errors=True)
    files, wanted = _files(source), expected["files"] if expected else {}
    if missing := sorted(set(wanted) - set(files)):
        raise IncompleteCopy(
            f"{source} lacks {', '.join(missing[:3])} listed in its manifest."
        )
    hashes, bad = {}, []
    try:
        for rel, file in files.items():
            (copy := partial / rel).parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with open(file, "rb") as reader, open(copy, "wb") as writer:
                while chunk := reader.read(CHUNK):
                    writer.write(chunk)
                    digest.update(chunk)
                    progress_bar.update(len(chunk))
                writer.flush()
                os.fsync(writer.fileno())
            hashes[rel], size = digest.hexdigest(), copy.stat().st_size
            want = wanted.get(rel)
            if want and (want["size"], want["sha256"]) != (size, hashes[rel]):
                bad.append(
                    f"{rel}: {_size(size)}, sha256 {hashes[rel][:12]}... read, but "
                    f"{_size(want['size'])}, {want['sha256'][:12]}... written"
                )
            elif sha256_file(copy) != hashes[rel]:
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


def watched_folders(runs_dir: Path, extra=()) -> list[Path]:
    """Every run directory under ``runs_dir``, and the ``extra`` folders that exist."""
    runs = sorted(p for p in Path(runs_dir).glob("*") if p.is_dir())
    return runs + [Path(p) for p in extra if Path(p).is_dir()]


def flush(runs_dir: Path, extra=()) -> list[Path]:
    """Re-record every watched folder with a file newer than, or not as recorded in,
    its manifest; return those folders."""
    written = []
    for folder in watched_folders(runs_dir, extra):
        manifest = read_manifest(folder) or {"files": {}, "written_at": 0.0}
        if any(
            (s := path.stat()).st_size != manifest["files"].get(rel, {}).get("size")
            or s.st_mtime > manifest["written_at"]
            for rel, path in _files(folder).items()
        ):
            written.append(folder)
            write_manifest(folder)
    return written


_hooks: dict[str, object] = {}


def keep_flushed(runs_dir: Path, extra=()) -> bool:
    """After every notebook cell, :func:`flush` ``runs_dir``; False outside IPython."""
    if not hasattr(shell := ipython_shell(), "events"):
        return False
    if str(runs_dir) not in _hooks:

        def after_cell(*_):
            try:
                flush(runs_dir, extra)
            except OSError as error:  # Drive unmounted, full, ...: say it, go on
                print(f"note: could not flush {runs_dir} to Google Drive ({error})")

        shell.events.register("post_run_cell", after_cell)
        _hooks[str(runs_dir)] = after_cell
    return True
