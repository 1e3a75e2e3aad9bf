"""Decode CelebA once into a compact uint8 cache, read it back, and fingerprint it.

``prepare_cache`` decodes each image once (face crop, antialiased resize) into
``CACHE.partial``, renamed into place when complete::

    CACHE/train_images.npy       (N, 64, 64, 3) uint8, memory-mapped by load_split
    CACHE/train_attributes.npy   (N, 40) int8 of +1 / -1
    CACHE/train_ids.txt          N lines like 000001.jpg (the same for validation, test)
    CACHE/meta.json              settings, counts, file sizes, the source's
                                 fingerprint, the images skipped or reframed
    .CACHE.lock                  beside it: one prepare at a time (helpers.locks)

Fingerprints sample ``SAMPLED_IMAGES`` images, never all; a folder's leaves out
modification times (a copy changes them, not the faces). No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import time
import warnings
import zipfile
from collections import Counter
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from helpers import celeba
from helpers.archives import KIND_NAMES, archive_kind
from helpers.errors import DamagedFileError, DataError
from helpers.files import read_json, sha256_file, unsafe_zip_member
from helpers.locks import cache_lock
from helpers.preprocess import (
    DEFAULT_CROP,
    DEFAULT_IMAGE_SIZE,
    MODE_NAMES,
    check_crop,
    load_image,
)

FORMAT_VERSION = 1
META = "meta.json"
CHUNK = 256  # images per task sent to a worker
MAX_WARNINGS = 20  # skipped files warned about one by one; the rest are summed up
SAMPLED_IMAGES = 256  # images a fingerprint looks at
# What a missing, truncated, corrupt or oversized file raises while decoding.
_DECODE_ERRORS = (
    OSError, SyntaxError, ValueError, KeyError, EOFError, Image.DecompressionBombError
)
_OPEN_ZIPS: dict[str, zipfile.ZipFile] = {}  # one handle per process


def _files(split: str) -> tuple[str, str, str]:
    return f"{split}_images.npy", f"{split}_attributes.npy", f"{split}_ids.txt"


def _prepare_hint(cache_dir) -> str:
    return f"run `python -m vaelab prepare --data PATH --cache {cache_dir}` first"


def _fix(cache_dir) -> str:
    return f"delete {cache_dir} and {_prepare_hint(cache_dir)}"


# Where the images are: a folder or a zip, read the same way by every worker -------
def _close_zips() -> None:
    for archive in _OPEN_ZIPS.values():
        archive.close()
    _OPEN_ZIPS.clear()


def _decode(source, image_id: str, crop, image_size: int, notes=None, modes=None):
    """Decode one image; ``source`` is (None, folder) or (zip path, member prefix)."""
    zip_path, prefix = source
    if zip_path is None:
        data = os.path.join(prefix, image_id)
    else:
        if zip_path not in _OPEN_ZIPS:
            _OPEN_ZIPS[zip_path] = zipfile.ZipFile(zip_path)
        data = _OPEN_ZIPS[zip_path].read(prefix + image_id)
    return load_image(data, crop, image_size, notes=notes, modes=modes)


def _decode_chunk(task):
    """Return (positions decoded, (k, H, W, 3) uint8, failures, notes, converted):
    failures and notes as (image id, text), converted counts original modes."""
    source, ids, crop, image_size = task
    done, images, failed, notes, converted = [], [], [], [], Counter()
    for position, image_id in enumerate(ids):
        noted: list[str] = []
        modes: list[str] = []
        try:
            images.append(_decode(source, image_id, crop, image_size, noted, modes))
            done.append(position)
        except _DECODE_ERRORS as error:
            failed.append((image_id, f"{type(error).__name__}: {error}"))
        notes += [(image_id, text) for text in noted]
        converted.update(modes)
    shape = (len(done), image_size, image_size, 3)
    stacked = np.stack(images) if images else np.zeros(shape, np.uint8)
    return done, stacked, failed, notes, converted


@contextlib.contextmanager
def _readable_zip(path: Path):
    try:
        yield
    except zipfile.BadZipFile as error:
        raise DataError(
            f"{path} is not a readable zip ({error}); download it again (a Google "
            "Drive quota page saved as .zip looks like this)."
        ) from None


def _is_zip(data: Path) -> bool:
    """A file that is a zip by its name or its bytes; a tar is refused clearly."""
    if not data.is_file():
        return False
    kind = archive_kind(data)
    if kind is not None and kind != "zip":
        raise DataError(
            f"{data} is {KIND_NAMES[kind]}: prepare reads a folder or a zip. Extract "
            f"it first: `python -m vaelab download --source local --from {data} "
            "--dest DIR`, then pass --data DIR/celeba."
        )
    return kind == "zip" or data.suffix.lower() == ".zip"


def _locate(data: Path, workdir: Path):
    """Return (source, CelebAFiles); a zip's two list files are copied to workdir."""
    if not _is_zip(data):
        files = celeba.find_celeba(data)
        return (None, str(files.image_dir)), files
    with _readable_zip(data), zipfile.ZipFile(data) as archive:
        names = archive.namelist()
        for info in archive.infolist():
            if why := unsafe_zip_member(info):
                raise DataError(
                    f"{data} holds unsafe member names such as {info.filename!r} "
                    f"({why}); it was not read. Use a zip from the official CelebA "
                    "page or Kaggle."
                )
        found = celeba.detect_layout(names)
        if found is None:
            raise DataError(
                f"No CelebA layout found in the zip {data}. Expected, at its root "
                f"or one folder below:\n{celeba.expected_paths_text()}\n"
                f"Closest matches:\n{celeba.describe_missing(names)}"
            )
        prefix, layout = found
        rel = celeba.LAYOUTS[layout]
        workdir.mkdir(parents=True, exist_ok=True)
        for member in (rel.attr_file, rel.partition_file):
            (workdir / member).write_bytes(archive.read(prefix + member))
    source = (str(data), prefix + rel.image_dir + "/")
    return source, celeba.CelebAFiles.at(workdir, layout)


# Which data: fingerprints of a source and of a cache -------------------------------
def evenly(items: list, k: int = SAMPLED_IMAGES) -> list:
    """Return ``k`` items spread evenly over ``items`` (all of them when fewer)."""
    if len(items) <= k:
        return list(items)
    step = (len(items) - 1) / (k - 1)
    return [items[round(i * step)] for i in range(k)]


def source_fingerprint(data: str | os.PathLike) -> dict:
    """Return {"kind", "digest", ...} for a CelebA folder or zip.

    Raises:
        DataError: no CelebA at ``data``, an unreadable zip, or an archive not a zip.
    """
    data = Path(data)
    digest = hashlib.sha256()
    if _is_zip(data):
        with _readable_zip(data), zipfile.ZipFile(data) as archive:
            members = sorted(
                (info.filename, info.CRC, info.file_size)
                for info in archive.infolist()
                if not info.is_dir()
            )
        digest.update(json.dumps(members).encode())
        return {"kind": "zip", "members": len(members), "digest": digest.hexdigest()}
    files = celeba.find_celeba(data)
    lists = {p.name: sha256_file(p) for p in (files.attr_file, files.partition_file)}
    lines = celeba.decode_list_file(files.attr_file.read_bytes()).splitlines()
    if files.attr_file.suffix.lower() == ".csv":
        ids = [line.split(",", 1)[0].strip() for line in lines[1:] if line.strip()]
    else:
        ids = [line.split()[0] for line in lines[2:] if line.strip()]
    sizes = []
    for image_id in evenly(ids):
        try:
            sizes.append((image_id, files.image_path(image_id).stat().st_size))
        except OSError:
            sizes.append((image_id, None))
    digest.update(json.dumps([lists, len(ids), sizes], sort_keys=True).encode())
    digest = digest.hexdigest()
    return {"kind": "folder", "images": len(ids), "lists": lists, "digest": digest}


def describe_change(old: dict, new: dict) -> str:
    """Say in a few words how two source fingerprints differ."""
    if old.get("kind") != new.get("kind"):
        return f"it was a {old.get('kind')}, now it is a {new.get('kind')}"
    if old.get("images") != new.get("images"):
        return f"{old.get('images')} images were listed, now {new.get('images')}"
    old_lists = old.get("lists") or {}
    changed = [k for k, v in (new.get("lists") or {}).items() if old_lists.get(k) != v]
    if changed:
        return f"{' and '.join(changed)} changed"
    if old.get("members") != new.get("members"):
        return f"the zip held {old.get('members')} files, now {new.get('members')}"
    return "image files changed (sizes or contents)"


def cache_fingerprint(cache_dir: str | os.PathLike) -> dict:
    """Return {"digest", "cache_dir", "source", "image_size", "crop", "counts"}.

    Raises:
        DataError: no finished cache, or damaged arrays (from ``load_split``).
    """
    cache_dir = Path(cache_dir)
    meta = cache_info(cache_dir)
    digest = hashlib.sha256()
    keys = ("image_size", "crop", "counts", "layout", "source_fingerprint")
    settings = {key: meta.get(key) for key in keys}
    if not settings["source_fingerprint"]:
        settings["source"] = meta.get("source")
    digest.update(json.dumps(settings, sort_keys=True).encode())
    for split in meta.get("counts", {}):
        images, attributes, ids = load_split(cache_dir, split)
        digest.update(repr((split, images.shape, str(images.dtype))).encode())
        digest.update(np.ascontiguousarray(attributes).tobytes())
        digest.update("\n".join(ids).encode())
        for i in evenly(list(range(len(images)))):
            digest.update(np.ascontiguousarray(images[i]).tobytes())
    described = {key: meta.get(key) for key in ("source", "image_size", "crop")}
    return {
        "digest": digest.hexdigest(),
        "cache_dir": str(cache_dir.resolve()),
        **described,
        "counts": dict(meta.get("counts", {})),
    }


def describe_cache(fingerprint: dict) -> str:
    """One line: "the cache X (64 px, crop [...], train 160 / ..., from SOURCE)"."""
    counts = (fingerprint.get("counts") or {}).items()
    counts = " / ".join(f"{k} {v}" for k, v in counts)
    return (
        f"the cache {fingerprint.get('cache_dir')} "
        f"({fingerprint.get('image_size')} px, crop {fingerprint.get('crop')}, "
        f"{counts}, made from {fingerprint.get('source')})"
    )


# Reading the cache -----------------------------------------------------------------
def cache_info(cache_dir: str | os.PathLike) -> dict:
    """Return the meta.json of a finished cache (image_size, crop, counts, ...).

    Raises:
        DataError: no finished cache there; the message says how to make one.
    """
    cache_dir = Path(cache_dir).expanduser()
    meta_path = cache_dir / META
    if meta_path.is_dir():
        raise DataError(f"{meta_path} is a folder: {_fix(cache_dir)}.")
    if not meta_path.is_file():
        partial = cache_dir.with_name(cache_dir.name + ".partial")
        if partial.exists():
            why = f"an interrupted prepare left {partial}; "
        elif cache_dir.exists():
            why = f"{cache_dir} holds no {META}; "
        else:
            why = "the folder does not exist; "
        raise DataError(
            f"No finished cache at {cache_dir}: {why}{_prepare_hint(cache_dir)}."
        )
    try:
        meta = read_json(meta_path, _fix(cache_dir))
    except DamagedFileError as error:
        raise DataError(str(error)) from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{cache_dir} was written by another version of this lab (format "
            f"{meta.get('format_version')}, need {FORMAT_VERSION}): delete it and "
            f"{_prepare_hint(cache_dir)}."
        )
    counts = meta.get("counts")
    if (
        not isinstance(counts, dict)
        or set(counts) != set(celeba.SPLITS)
        or not all(isinstance(v, int) and v >= 0 for v in counts.values())
        or not isinstance(meta.get("image_size"), int)
    ):
        raise DataError(
            f"{meta_path} is damaged (its counts or image_size are missing or "
            f"wrong): {_fix(cache_dir)}."
        )
    return meta


def _load_array(path: Path, cache_dir: Path, mmap: bool) -> np.ndarray:
    """np.load one cache array; a missing, truncated or garbled file is a DataError."""
    if not path.is_file():
        raise DataError(f"{path} is missing from the cache: {_fix(cache_dir)}.")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        # e.g. "mmap length is greater than file size", "cannot reshape array"
        raise DataError(f"{path} is damaged ({error}): {_fix(cache_dir)}.") from None


def load_split(cache_dir: str | os.PathLike, split: str):
    """Open one split of a cache without reading the images into memory.

    Returns (images, attributes, ids), in the same order: a (N, H, W, 3) uint8
    memory map, (N, 40) int8 of +1 / -1, and N names like "000001.jpg".

    Raises:
        DataError: unknown split, no finished cache, or a damaged one.
    """
    if split not in celeba.SPLITS:
        raise DataError(
            f"unknown split {split!r}: choose one of {', '.join(celeba.SPLITS)}"
        )
    meta = cache_info(cache_dir)
    cache_dir = Path(cache_dir).expanduser()
    image_file, attr_file, id_file = _files(split)
    count = meta["counts"][split]
    images = _load_array(cache_dir / image_file, cache_dir, mmap=bool(count))
    attributes = _load_array(cache_dir / attr_file, cache_dir, mmap=False)
    fix = _fix(cache_dir)
    size = meta["image_size"]
    if images.dtype != np.uint8 or images.shape[1:] != (size, size, 3):
        raise DataError(
            f"{cache_dir / image_file} is damaged (holds {images.dtype} "
            f"{images.shape}, meta.json says uint8 (N, {size}, {size}, 3)): {fix}."
        )
    if attributes.ndim != 2 or attributes.shape[1:] != (len(celeba.ATTRIBUTE_NAMES),):
        raise DataError(
            f"{cache_dir / attr_file} is damaged (shape {attributes.shape}): {fix}."
        )
    id_path = cache_dir / id_file
    try:
        # One name per line: a name may contain spaces (seen in Kaggle copies).
        ids = id_path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{id_path} is missing or damaged ({error}): {fix}.") from None
    if not len(images) == len(attributes) == len(ids) == count:
        raise DataError(
            f"{cache_dir} is damaged ({split}: {len(images)} images, "
            f"{len(attributes)} attribute rows, {len(ids)} ids, meta says {count}): "
            f"{fix}."
        )
    return images, attributes, ids


def cache_problem(cache_dir: Path, meta: dict) -> str | None:
    """Say what is wrong with a finished cache's files, or None when they are whole.

    Checks the file sizes meta.json records, opens every split as training does,
    and reads the first and last image of each.
    """
    recorded = meta.get("file_sizes")
    for name, size in (recorded if isinstance(recorded, dict) else {}).items():
        try:
            actual = (cache_dir / name).stat().st_size
        except OSError:
            return f"{name} is missing"
        if actual != size:
            return f"{name} holds {actual:,} bytes, meta.json records {size:,}"
    for split in celeba.SPLITS:
        try:
            images, _, _ = load_split(cache_dir, split)
            if len(images):
                np.asarray(images[0]).sum()
                np.asarray(images[-1]).sum()
        except DataError as error:
            return str(error).split(": delete")[0]
        except (OSError, ValueError) as error:
            return f"{split} cannot be read ({type(error).__name__}: {error})"
    return None


# Writing the cache -----------------------------------------------------------------
def _need_space(folder: Path, needed: int, what: Path) -> None:
    """Raise ENOSPC (the command line's "no space left" line) before writing."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        message = f"{what} needs {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB is free"
        raise OSError(errno.ENOSPC, message, str(what))


def _open_reserved_memmap(path: Path, shape) -> np.ndarray:
    """``open_memmap`` whose every block is allocated first: a memory map over a
    sparse file on a full disk dies of SIGBUS, this raises ENOSPC instead."""
    _need_space(path.parent, int(np.prod(shape)) + 4096, path)
    images = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
    if hasattr(os, "posix_fallocate"):
        try:
            with open(path, "r+b") as handle:
                size = os.fstat(handle.fileno()).st_size
                os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as error:
            del images
            if error.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # not supported here
                return np.lib.format.open_memmap(path, "r+")
            raise OSError(error.errno, error.strerror, str(path)) from None
    return images


def _shrink(path: Path, count: int) -> None:
    """Keep only the first ``count`` images of an .npy file (after skips)."""
    old = np.load(path, mmap_mode="r")
    tmp = path.with_name("shrink_" + path.name)
    if count == 0:
        np.save(tmp, np.zeros((0, *old.shape[1:]), np.uint8))
    else:
        new = _open_reserved_memmap(tmp, (count, *old.shape[1:]))
        for start in range(0, count, 4096):
            stop = min(start + 4096, count)
            new[start:stop] = old[start:stop]
        new.flush()
        del new
    del old
    os.replace(tmp, path)


class _SplitWriter:
    """Decode splits into a folder, collecting the skipped, reframed and converted."""

    def __init__(self, out: Path, run, bar, image_size: int):
        self.out, self.run, self.bar, self.size = out, run, bar, image_size
        self.skipped: list[dict] = []
        self.reframed: list[dict] = []
        self.converted: Counter = Counter()  # original mode -> images converted
        self.seen = 0

    def _note(self, split: str, failed: list[tuple[str, str]], count: int) -> None:
        self.seen += count
        self.bar.update(count)
        for image_id, reason in failed:
            self.skipped.append({"file": image_id, "split": split, "reason": reason})
            if len(self.skipped) <= MAX_WARNINGS:
                warnings.warn(f"skipped {image_id}: {reason}", stacklevel=5)
        if self.seen >= CHUNK and len(self.skipped) == self.seen:
            first = self.skipped[0]
            raise DataError(
                f"the first {self.seen} images all failed to decode, e.g. "
                f"{first['file']}: {first['reason']}. Check --data and --crop."
            )

    def write(self, split: str, ids: list[str], attrs: np.ndarray, tasks) -> int:
        """Decode one split's ``tasks``; return how many images were kept."""
        image_file, attr_file, id_file = _files(split)
        path, shape = self.out / image_file, (len(ids), self.size, self.size, 3)
        if not ids:
            np.save(path, np.zeros(shape, np.uint8))
        else:
            images = _open_reserved_memmap(path, shape)
        kept: list[int] = []
        for start, (done, chunk, failed, notes, converted) in zip(
            range(0, len(ids), CHUNK), self.run(tasks)
        ):
            self.converted.update(converted)
            images[len(kept) : len(kept) + len(done)] = chunk
            kept += [start + i for i in done]
            self._note(split, failed, len(done) + len(failed))
            self.reframed += [
                {"file": image_id, "split": split, "note": note}
                for image_id, note in notes
            ]
        if ids:
            images.flush()
            del images
            if len(kept) < len(ids):
                _shrink(path, len(kept))
        np.save(self.out / attr_file, attrs[kept].astype(np.int8))
        (self.out / id_file).write_text("".join(ids[i] + "\n" for i in kept))
        return len(kept)


def _runner(workers: int):
    """Return (map function preserving order, pool or None) for ``workers``."""
    _close_zips()  # a forked worker must not share the parent's zip file offset
    if workers <= 1:
        return (lambda tasks: map(_decode_chunk, tasks)), None
    if "fork" in multiprocessing.get_all_start_methods():
        # Workers ignore Ctrl-C: the parent stops them and removes the .partial.
        ignore_sigint = (signal.SIGINT, signal.SIG_IGN)
        pool = multiprocessing.get_context("fork").Pool(
            workers, signal.signal, ignore_sigint
        )
    else:  # spawn would re-run a script's top level: PIL releases the GIL anyway
        pool = ThreadPool(workers)
    return (lambda tasks: pool.imap(_decode_chunk, tasks)), pool


def prepare_cache(
    data: str | os.PathLike,
    cache_dir: str | os.PathLike,
    image_size: int = DEFAULT_IMAGE_SIZE,
    crop: Sequence[int] = DEFAULT_CROP,
    progress: bool = True,
    workers: int | None = None,
) -> dict:
    """Decode every CelebA image once into the uint8 cache (atomically).

    ``data`` is a CelebA folder (official or Kaggle layout) or a .zip of either;
    ``cache_dir`` must be new, empty, or this very cache: a finished one with the
    same settings and source is reused. One that is damaged or whose source has
    changed (by its fingerprint) is rebuilt, and replaced only once the new one is
    complete. ``crop`` is the face box (left, top, width, height) in the 178x218
    frame; ``workers`` None is one per CPU (one for small data).

    Real-world files: an unreadable image (missing, not an image, truncated) is
    skipped; one that is not a 178x218 frame is kept, its face box scaled to it;
    both are listed in meta.json ("skipped", "reframed"). An image listed twice
    keeps its first row (a warning gives the count).

    Returns {"cache_dir", "counts": {split: n}, "skipped", "skipped_files":
    [{"file", "split", "reason"}], "reframed", "reframed_files", "converted",
    "seconds", "bytes_per_image", "reused"}.

    Raises:
        DataError: no CelebA at ``data``, or ``cache_dir`` holds something else.
        BusyError: another process is preparing this cache.
    """
    cache_dir = Path(cache_dir).expanduser().resolve()
    with cache_lock(cache_dir, "prepare"):
        crop = list(check_crop(crop, celeba.IMAGE_SIZE))
        if not 1 <= int(image_size) <= 1024:
            raise ValueError(f"image_size={image_size}: must be between 1 and 1024")
        data = Path(data).expanduser().resolve()
        wanted = {
            "format_version": FORMAT_VERSION,
            "image_size": int(image_size),
            "crop": crop,
            "source": str(data),
        }
        meta = _check_existing(cache_dir, wanted)
        fingerprint = source_fingerprint(data)
        stale = None if meta is None else _why_rebuild(meta, cache_dir, fingerprint)
        if meta is not None and stale is None:
            if progress:
                print(f"{cache_dir} already holds this cache; nothing to do.")
            return _summary(meta, cache_dir, reused=True)
        partial = cache_dir.with_name(cache_dir.name + ".partial")
        if partial.exists():
            if progress:
                print(f"removing {partial}, left by an interrupted run")
            shutil.rmtree(partial)
        try:
            settings = {**wanted, "source_fingerprint": fingerprint}
            meta = _write_cache(partial, settings, progress, workers, cache_dir)
            _swap_in(partial, cache_dir, replace_old=stale is not None)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return _summary(meta, cache_dir, reused=False)


def _check_existing(cache_dir: Path, wanted: dict) -> dict | None:
    """Return the meta of a matching finished cache, None for an empty folder."""
    if not cache_dir.exists():
        return None
    if not cache_dir.is_dir():
        raise DataError(f"--cache {cache_dir} is a file; choose a folder path.")
    if not (cache_dir / META).exists():
        if any(cache_dir.iterdir()):
            raise DataError(
                f"{cache_dir} is not empty and is not a cache ({META} is missing): "
                "choose another --cache folder (it is created for you)."
            )
        return None
    meta = cache_info(cache_dir)
    have = {key: meta.get(key) for key in wanted}
    if have != wanted:
        diff = ", ".join(
            f"{key}={have[key]!r} (you asked for {wanted[key]!r})"
            for key in wanted
            if have[key] != wanted[key]
        )
        raise DataError(
            f"{cache_dir} already holds a cache made with different settings: {diff}. "
            "Use another --cache folder, or delete this one to rebuild it."
        )
    return meta


def _why_rebuild(meta: dict, cache_dir: Path, fingerprint: dict) -> str | None:
    """Why an existing cache must be rebuilt (damaged, or its source changed), said
    aloud; None when it can be reused as it is."""
    old = meta.get("source_fingerprint")
    damage = cache_problem(cache_dir, meta)
    if damage is not None:
        print(
            f"{cache_dir} is damaged ({damage}): rebuilding it from {meta['source']} "
            "(the damaged one is replaced once the new one is done)."
        )
        return damage
    if old is None or old.get("digest") == fingerprint["digest"]:
        return None
    stale = describe_change(old, fingerprint)
    print(
        f"{meta['source']} has changed since the cache {cache_dir} was made ({stale}): "
        "rebuilding the cache (the old one is kept until the new one is done)."
    )
    return stale


def _write_cache(partial: Path, settings: dict, progress, workers, cache_dir) -> dict:
    """Decode, crop and write every split into ``partial``, then its meta.json."""
    start = time.perf_counter()
    partial.mkdir(parents=True)
    data, size = Path(settings["source"]), settings["image_size"]
    source, files = _locate(data, partial / "lists")
    all_ids, all_attrs = celeba.read_attributes(files)
    row = {image_id: i for i, image_id in enumerate(all_ids)}
    by_split = celeba.split_ids(all_ids, celeba.read_partitions(files))
    total = sum(map(len, by_split.values()))
    # the whole cache (images, attributes, ids) before a single image is decoded
    per_image = size * size * 3 + len(celeba.ATTRIBUTE_NAMES) + 12
    _need_space(partial, total * per_image + 64 * 1024, cache_dir)
    if workers is None:
        workers = 1 if total < 2000 else (os.cpu_count() or 1)
    run, pool = _runner(workers)
    bar = tqdm(total=total, unit="img", disable=not progress, desc="prepare")
    writer, counts = _SplitWriter(partial, run, bar, size), {}
    try:
        for split, ids in by_split.items():
            tasks = [
                (source, ids[i : i + CHUNK], settings["crop"], size)
                for i in range(0, len(ids), CHUNK)
            ]
            attrs = all_attrs[[row[i] for i in ids]] if ids else all_attrs[:0]
            counts[split] = writer.write(split, ids, attrs, tasks)
    finally:
        bar.close()
        if pool is not None:
            pool.terminate()
            pool.join()
        _close_zips()
    if len(writer.skipped) > MAX_WARNINGS:
        warnings.warn(
            f"skipped {len(writer.skipped)} unreadable images in all (see meta.json)",
            stacklevel=3,
        )
    if writer.converted:
        warnings.warn(
            f"converted {_converted_text(writer.converted)} to 8-bit RGB; "
            f"the counts per mode are in {cache_dir / META}, under 'converted'",
            stacklevel=3,
        )
    shutil.rmtree(partial / "lists", ignore_errors=True)
    kept = sum(counts.values())
    if kept == 0:
        first = (writer.skipped or [{"file": "-", "reason": "no images listed"}])[0]
        raise DataError(
            f"no image of {data} could be decoded, e.g. {first['file']}: "
            f"{first['reason']}. Check --data (and --crop); nothing was cached."
        )
    file_sizes = {f.name: f.stat().st_size for f in sorted(partial.iterdir())}
    meta = {
        **settings,
        "layout": files.layout,
        "counts": counts,
        "skipped": writer.skipped,
        "reframed": writer.reframed,
        "converted": dict(sorted(writer.converted.items())),
        "attribute_names": list(celeba.ATTRIBUTE_NAMES),
        "seconds": round(time.perf_counter() - start, 3),
        "bytes_per_image": round(sum(file_sizes.values()) / max(kept, 1), 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "file_sizes": file_sizes,
    }
    (partial / META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def _swap_in(partial: Path, cache_dir: Path, replace_old: bool) -> None:
    """Move the finished ``partial`` cache into place (an old cache: via .old)."""
    old = cache_dir.with_name(cache_dir.name + ".old")
    if replace_old:  # a finished cache of the old source: swap it out
        shutil.rmtree(old, ignore_errors=True)
        os.replace(cache_dir, old)
    elif cache_dir.exists():
        cache_dir.rmdir()  # checked above: an empty folder
    os.replace(partial, cache_dir)
    shutil.rmtree(old, ignore_errors=True)


# Saying what prepare did -----------------------------------------------------------
def _summary(meta: dict, cache_dir: Path, reused: bool) -> dict:
    return {
        "cache_dir": str(cache_dir),
        "counts": dict(meta["counts"]),
        "skipped": len(meta["skipped"]),
        "skipped_files": list(meta["skipped"]),
        "reframed": len(meta.get("reframed", [])),
        "reframed_files": list(meta.get("reframed", [])),
        "converted": dict(meta.get("converted", {})),
        "seconds": meta["seconds"],
        "bytes_per_image": meta["bytes_per_image"],
        "reused": reused,
    }


def _converted_text(converted: dict) -> str:
    """'3 images not in 8-bit RGB (I;16, 16-bit grayscale, scaled: 2; L, ...: 1)'."""
    parts = []
    for mode, count in sorted(converted.items()):
        base = mode.split(" ")[0]
        name = MODE_NAMES.get(base, base)
        if mode.startswith("I;16"):
            name = "16-bit grayscale, scaled by 255/65535"
        elif "transparency" in mode:
            name += " with transparency, over black"
        parts.append(f"{mode}, {name}: {count}")
    total = sum(converted.values())
    plural = "s" if total != 1 else ""
    return f"{total} image{plural} not in 8-bit RGB ({'; '.join(parts)})"
