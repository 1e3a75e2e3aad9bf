"""Decode CelebA once into a compact uint8 cache, and read it back.

Decoding 202,599 JPEGs every epoch is slower than a GPU trains, so ``prepare``
decodes each image once (face crop, antialiased resize) into one memory-mapped
uint8 array per split::

    CACHE/train_images.npy        (N, 64, 64, 3) uint8, np.load(mmap_mode="r")
    CACHE/train_attributes.npy    (N, 40) int8 of +1 / -1
    CACHE/train_ids.txt           N lines like 000001.jpg
    ... the same for validation and test, and
    CACHE/meta.json               settings, counts, the source's fingerprint, and
                                  the images skipped or reframed by a policy
    .CACHE.lock                   beside it: one prepare at a time (helpers.locks)

At 64x64 that is 2.5 GB for all of CelebA (float32 would be 10 GB). The cache is
written into ``CACHE.partial`` and renamed at the end, so an interrupted run
never leaves a cache that looks finished.

Typical use::

    python -m helpers prepare --data data/celeba --cache data/cache64
    images, attributes, ids = load_split("data/cache64", "train")  # memory maps

``helpers.datasets`` streams a split as ``tf.data`` batches. Nothing here imports
TensorFlow.
"""

from __future__ import annotations

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
from dataclasses import dataclass
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from helpers import celeba
from helpers.archives import KIND_NAMES, archive_kind
from helpers.errors import DamagedFileError, DataError
from helpers.files import read_json, unsafe_zip_member
from helpers.fingerprint import describe_change, evenly, source_fingerprint
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


def _files(split: str) -> tuple[str, str, str]:
    return f"{split}_images.npy", f"{split}_attributes.npy", f"{split}_ids.txt"


def _prepare_hint(cache_dir) -> str:
    return f"run `python -m helpers prepare --data PATH --cache {cache_dir}` first"


# Where the images are: a folder or a zip, read the same way by every worker -------
@dataclass(frozen=True)
class _Source:
    """Picklable address of the image folder, or of a zip and its member prefix."""

    folder: str | None = None
    zip_path: str | None = None
    prefix: str = ""


# What a missing, truncated, corrupt or oversized file raises while decoding.
_DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    KeyError,
    EOFError,
    Image.DecompressionBombError,
)
_OPEN_ZIPS: dict[str, zipfile.ZipFile] = {}  # one handle per process


def _close_zips() -> None:
    for archive in _OPEN_ZIPS.values():
        archive.close()
    _OPEN_ZIPS.clear()


def _decode(
    source: _Source, image_id: str, crop, image_size: int, notes=None, modes=None
) -> np.ndarray:
    """Decode one image of ``source``; raises on a missing or broken file."""
    if source.zip_path is None:
        path = os.path.join(source.folder, image_id)
        return load_image(path, crop, image_size, notes=notes, modes=modes)
    archive = _OPEN_ZIPS.get(source.zip_path)
    if archive is None:
        archive = _OPEN_ZIPS[source.zip_path] = zipfile.ZipFile(source.zip_path)
    data = archive.read(source.prefix + image_id)
    return load_image(data, crop, image_size, notes=notes, modes=modes)


def _decode_chunk(task):
    """Decode a chunk; return (positions decoded, (k, H, W, 3) uint8, failures,
    notes, converted), failures and notes as (image id, text) pairs, converted
    as {original mode: images} of the images that were not 8-bit RGB."""
    source, ids, crop, image_size = task
    done, images, failed, notes = [], [], [], []
    converted: dict[str, int] = {}
    for position, image_id in enumerate(ids):
        noted: list[str] = []
        modes: list[str] = []
        try:
            images.append(_decode(source, image_id, crop, image_size, noted, modes))
            done.append(position)
        except _DECODE_ERRORS as error:
            failed.append((image_id, f"{type(error).__name__}: {error}"))
        notes += [(image_id, text) for text in noted]
        for mode in modes:
            converted[mode] = converted.get(mode, 0) + 1
    shape = (len(done), image_size, image_size, 3)
    stacked = np.stack(images) if images else np.zeros(shape, np.uint8)
    return done, stacked, failed, notes, converted


def _open_zip(path: Path, workdir: Path) -> tuple[_Source, celeba.CelebAFiles]:
    """Locate CelebA inside a zip; copy its two list files into ``workdir``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            unsafe = [
                (i.filename, why)
                for i in archive.infolist()
                if (why := unsafe_zip_member(i))
            ]
            if unsafe:
                raise DataError(
                    f"{path} holds unsafe member names such as {unsafe[0][0]!r} "
                    f"({unsafe[0][1]}); it was not read. Use a zip from the "
                    "official CelebA page or Kaggle."
                )
            found = celeba.detect_layout(names)
            if found is None:
                raise DataError(
                    f"No CelebA layout found in the zip {path}. Expected, at its root "
                    f"or one folder below:\n{celeba.expected_paths_text()}\n"
                    f"Closest matches:\n{celeba.describe_missing(names)}"
                )
            prefix, layout = found
            rel = celeba.LAYOUTS[layout]
            workdir.mkdir(parents=True, exist_ok=True)
            for member in (rel.attr_file, rel.partition_file):
                (workdir / member).write_bytes(archive.read(prefix + member))
    except zipfile.BadZipFile as error:
        raise DataError(
            f"{path} is not a readable zip ({error}); download it again (a Google "
            "Drive quota page saved as .zip looks like this)."
        ) from None
    files = celeba.CelebAFiles.at(workdir, layout)
    source = _Source(zip_path=str(path), prefix=prefix + rel.image_dir + "/")
    return source, files


def _is_zip(data: Path) -> bool:
    """A file that is a zip by its name or its bytes; a tar is refused clearly."""
    if not data.is_file():
        return False
    kind = archive_kind(data)
    if kind is not None and kind != "zip":
        raise DataError(
            f"{data} is {KIND_NAMES[kind]}: prepare reads a folder or a zip. Extract "
            f"it first: `python -m helpers download --source local --from {data} "
            "--dest DIR`, then pass --data DIR/celeba."
        )
    return kind == "zip" or data.suffix.lower() == ".zip"


def _locate(data: Path, workdir: Path) -> tuple[_Source, celeba.CelebAFiles]:
    if _is_zip(data):
        return _open_zip(data, workdir)
    files = celeba.find_celeba(data)
    return _Source(folder=str(files.image_dir)), files


# The cache folder ------------------------------------------------------------------
def cache_info(cache_dir: str | os.PathLike) -> dict:
    """Return the meta.json of a finished cache.

    Args:
        cache_dir: folder written by :func:`prepare_cache`.

    Returns:
        The meta dict: image_size, crop, layout, source, counts, skipped, ...

    Raises:
        DataError: no finished cache there; the message says how to make one.
    """
    cache_dir = Path(cache_dir).expanduser()
    meta_path = cache_dir / META
    if meta_path.is_dir():
        raise DataError(
            f"{meta_path} is a folder: delete {cache_dir} and {_prepare_hint(cache_dir)}."
        )
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
    fix = f"delete {cache_dir} and {_prepare_hint(cache_dir)}"
    try:
        meta = read_json(meta_path, fix)
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
            f"wrong): {fix}."
        )
    return meta


def _load_array(path: Path, cache_dir: Path, mmap: bool) -> np.ndarray:
    """np.load one cache array; a missing, truncated or garbled file is a DataError."""
    fix = f"delete {cache_dir} and {_prepare_hint(cache_dir)}"
    if not path.is_file():
        raise DataError(f"{path} is missing from the cache: {fix}.")
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        # e.g. "mmap length is greater than file size", "cannot reshape array",
        # "Failed to interpret file ... as a pickle", a garbled header
        raise DataError(f"{path} is damaged ({error}): {fix}.") from None


def load_split(cache_dir: str | os.PathLike, split: str):
    """Open one split of a cache without reading the images into memory.

    Args:
        cache_dir: folder written by :func:`prepare_cache`.
        split: "train", "validation" or "test".

    Returns:
        (images, attributes, ids): images (N, H, W, 3) uint8 memory map,
        attributes (N, 40) int8 of +1 / -1, ids a list of N names like
        "000001.jpg", all in the same order.

    Raises:
        DataError: unknown split, or no finished cache.
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
    fix = f"delete {cache_dir} and {_prepare_hint(cache_dir)}"
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

    Checks the byte size of every file meta.json records (``file_sizes``; caches
    written before it was recorded skip this), then opens every split the way
    training does (``load_split``: array headers, shapes and counts against
    meta.json), and reads the first and last image of each.
    """
    recorded = meta.get("file_sizes")
    if isinstance(recorded, dict):
        for name, size in recorded.items():
            path = cache_dir / name
            try:
                actual = path.stat().st_size
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


# Writing ---------------------------------------------------------------------------
def _shrink(path: Path, count: int) -> None:
    """Keep only the first ``count`` images of an .npy file (after skips)."""
    old = np.load(path, mmap_mode="r")
    tmp = path.with_name("shrink_" + path.name)
    shape = (count, *old.shape[1:])
    if count == 0:
        np.save(tmp, np.zeros(shape, np.uint8))
    else:
        new = _open_reserved_memmap(tmp, shape)
        for start in range(0, count, 4096):
            stop = min(start + 4096, count)
            new[start:stop] = old[start:stop]
        new.flush()
        del new
    del old
    os.replace(tmp, path)


def _need_space(folder: Path, needed: int, what: Path) -> None:
    """Raise ENOSPC (the command line's "no space left" line) before writing."""
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise OSError(
            errno.ENOSPC,
            f"{what} needs {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB is free",
            str(what),
        )


def _open_reserved_memmap(path: Path, shape) -> np.ndarray:
    """``open_memmap`` whose every block is allocated first.

    A memory map over a sparse file on a full disk dies of SIGBUS at the first
    page that cannot be written; checking the free space and allocating the whole
    file (``posix_fallocate``) first turns that into an ordinary ENOSPC OSError.
    """
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


class _SplitWriter:
    """Decode splits into a folder, collecting skipped files and progress."""

    def __init__(self, out: Path, run, bar, image_size: int):
        self.out, self.run, self.bar, self.size = out, run, bar, image_size
        self.skipped: list[dict] = []
        self.reframed: list[dict] = []
        self.converted: dict[str, int] = {}  # original mode -> images converted
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
            for mode, count in converted.items():
                self.converted[mode] = self.converted.get(mode, 0) + count
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


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _runner(workers: int):
    """Return (map function preserving order, pool or None) for ``workers``."""
    _close_zips()  # a forked worker must not share the parent's zip file offset
    if workers <= 1:
        return (lambda tasks: map(_decode_chunk, tasks)), None
    if "fork" in multiprocessing.get_all_start_methods():
        # Workers ignore Ctrl-C: the parent stops them and removes the .partial.
        pool = multiprocessing.get_context("fork").Pool(workers, _ignore_sigint)
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

    A finished cache with the same settings and source is reused (no work). The
    cache remembers a fingerprint of its source (``helpers.fingerprint``): when the
    source at the same path has changed since (regenerated, re-downloaded,
    edited), the cache is rebuilt, and the old one is replaced only once the new
    one is complete.

    Only one process prepares a cache at a time: a second one is refused at once
    (``helpers.locks``), so it never removes the first one's working folder.

    Policies for real-world files (each reported in meta.json, and printed by the
    ``prepare`` command with the first few names):

    * unreadable images (missing, not an image, truncated: no JPEG end marker, or
      PIL finds data missing) are skipped: meta "skipped";
    * an image that is not a 178x218 frame is kept, its face box scaled to it
      (``preprocess.frame_box``): meta "reframed";
    * an image listed twice in the attribute or partition file keeps its first
      row (a warning gives the count).

    Args:
        data: a CelebA folder (official or Kaggle layout) or a .zip of either.
        cache_dir: folder to create; must be new, empty, or this very cache.
        image_size: side of the square images stored.
        crop: face box (left, top, width, height) in the 178x218 frame.
        progress: show a tqdm progress bar and print what happens.
        workers: decoding processes (None: one per CPU, one for small data).

    Returns:
        {"cache_dir", "counts": {split: n}, "skipped": int, "skipped_files":
        [{"file", "split", "reason"}], "seconds", "bytes_per_image", "reused"}.

    Raises:
        DataError: no CelebA at ``data``, or ``cache_dir`` holds something else
            (another cache's settings, or files that are not a cache).
        BusyError: another process is preparing this cache.
    """
    from helpers.locks import cache_lock

    cache_path = Path(cache_dir).expanduser().resolve()
    with cache_lock(cache_path, "prepare"):
        return _prepare_locked(data, cache_path, image_size, crop, progress, workers)


def _prepare_locked(data, cache_dir, image_size, crop, progress, workers) -> dict:
    """prepare_cache while holding the cache's lock."""

    crop = list(check_crop(crop, celeba.IMAGE_SIZE))
    if not 1 <= int(image_size) <= 1024:
        raise ValueError(f"image_size={image_size}: must be between 1 and 1024")
    image_size = int(image_size)
    data = Path(data).expanduser().resolve()
    wanted = {
        "format_version": FORMAT_VERSION,
        "image_size": image_size,
        "crop": crop,
        "source": str(data),
    }
    meta = _check_existing(cache_dir, wanted)
    fingerprint = _source_fingerprint(data)
    stale = None
    if meta is not None:
        stale = _why_rebuild(meta, cache_dir, data, fingerprint)
        if stale is None:
            if progress:
                print(f"{cache_dir} already holds this cache; nothing to do.")
            return _summary(meta, cache_dir, reused=True)

    partial = cache_dir.with_name(cache_dir.name + ".partial")
    if partial.exists():
        if progress:
            print(f"removing {partial}, left by an interrupted run")
        shutil.rmtree(partial)
    start = time.perf_counter()
    try:
        partial.mkdir(parents=True)
        files, writer, counts = _write_splits(
            data, partial, image_size, crop, progress, workers, cache_dir
        )
        _warn_about_skipped_and_converted(writer, cache_dir)
        shutil.rmtree(partial / "lists", ignore_errors=True)
        kept = sum(counts.values())
        if kept == 0:
            skipped = writer.skipped
            first = (
                skipped[0] if skipped else {"file": "-", "reason": "no images listed"}
            )
            raise DataError(
                f"no image of {data} could be decoded, e.g. {first['file']}: "
                f"{first['reason']}. Check --data (and --crop); nothing was cached."
            )
        file_sizes = {f.name: f.stat().st_size for f in sorted(partial.iterdir())}
        size = sum(file_sizes.values())
        meta = {
            **wanted,
            "source_fingerprint": fingerprint,
            "layout": files.layout,
            "counts": counts,
            "skipped": writer.skipped,
            "reframed": writer.reframed,
            "converted": dict(sorted(writer.converted.items())),
            "attribute_names": list(celeba.ATTRIBUTE_NAMES),
            "seconds": round(time.perf_counter() - start, 3),
            "bytes_per_image": round(size / max(kept, 1), 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "file_sizes": file_sizes,
        }
        (partial / META).write_text(json.dumps(meta, indent=2) + "\n")
        _swap_in(partial, cache_dir, replace_old=stale is not None)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return _summary(meta, cache_dir, reused=False)


def _why_rebuild(meta: dict, cache_dir: Path, data: Path, fingerprint: dict) -> str | None:
    """Why an existing cache must be rebuilt (damaged, or its source changed), said
    aloud; None when it can be reused as it is."""
    old = meta.get("source_fingerprint")
    damage = cache_problem(cache_dir, meta)
    if damage is not None:
        print(
            f"{cache_dir} is damaged ({damage}): rebuilding it from {data} (the "
            "damaged one is replaced once the new one is done)."
        )
        return damage
    if old is None or old.get("digest") == fingerprint["digest"]:
        return None
    stale = describe_change(old, fingerprint)
    print(
        f"{data} has changed since the cache {cache_dir} was made ({stale}): "
        "rebuilding the cache (the old one is kept until the new one is done)."
    )
    return stale


def _write_splits(data, partial, image_size, crop, progress, workers, cache_dir):
    """Decode, crop and write every split into ``partial``; (files, writer, counts)."""
    source, files = _locate(data, partial / "lists")
    all_ids, all_attrs = celeba.read_attributes(files)
    row = {image_id: i for i, image_id in enumerate(all_ids)}
    by_split = celeba.split_ids(all_ids, celeba.read_partitions(files))
    total = sum(map(len, by_split.values()))
    # the whole cache (images, attributes, ids) before a single image is decoded
    per_image = image_size * image_size * 3 + len(celeba.ATTRIBUTE_NAMES) + 12
    _need_space(partial, total * per_image + 64 * 1024, cache_dir)
    if workers is None:
        workers = 1 if total < 2000 else (os.cpu_count() or 1)
    run, pool = _runner(workers)
    bar = tqdm(total=total, unit="img", disable=not progress, desc="prepare")
    writer, counts = _SplitWriter(partial, run, bar, image_size), {}
    try:
        for split, ids in by_split.items():
            tasks = [
                (source, ids[i : i + CHUNK], crop, image_size)
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
    return files, writer, counts


def _warn_about_skipped_and_converted(writer, cache_dir: Path) -> None:
    if len(writer.skipped) > MAX_WARNINGS:
        warnings.warn(
            f"skipped {len(writer.skipped)} unreadable images in all (see meta.json)",
            stacklevel=4,
        )
    if writer.converted:
        warnings.warn(
            f"converted {_converted_text(writer.converted)} to 8-bit RGB; "
            f"the counts per mode are in {cache_dir / META}, under 'converted'",
            stacklevel=4,
        )


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


def _source_fingerprint(data: Path) -> dict:
    """The source's fingerprint, or the usual clear error when it is not CelebA."""

    if _is_zip(data):
        try:
            return source_fingerprint(data)
        except zipfile.BadZipFile as error:
            raise DataError(
                f"{data} is not a readable zip ({error}); download it again (a "
                "Google Drive quota page saved as .zip looks like this)."
            ) from None
    celeba.find_celeba(data)  # its clear DataError when there is no CelebA
    return source_fingerprint(data)


def _converted_text(converted: dict) -> str:
    """'3 images not in 8-bit RGB (I;16, 16-bit grayscale, scaled: 2; L, ...: 1)'."""
    total = sum(converted.values())
    parts = "; ".join(
        f"{mode}, {_mode_name(mode)}: {count}"
        for mode, count in sorted(converted.items())
    )
    return f"{total} image{'s' if total != 1 else ''} not in 8-bit RGB ({parts})"


def _mode_name(mode: str) -> str:
    if mode.startswith("I;16"):
        return "16-bit grayscale, scaled by 255/65535"
    base = mode.split(" ")[0]
    extra = " with transparency, over black" if "transparency" in mode else ""
    return MODE_NAMES.get(base, base) + extra


def report_lines(summary: dict, first: int = 5) -> list[str]:
    """Say which images a policy handled: counts, first names, where the list is.

    Args:
        summary: from :func:`prepare_cache`.
        first: how many names to show per kind.
    """
    meta_path = Path(summary["cache_dir"]) / META
    lines = []
    for key, label, field in (
        ("skipped_files", "skipped (unreadable or truncated)", "reason"),
        ("reframed_files", "not a 178x218 frame (face box scaled)", "note"),
    ):
        items = summary.get(key) or []
        lines.append(f"  {label}: {len(items)}")
        for item in items[:first]:
            lines.append(f"    {item['file']}: {item[field]}")
        if items:
            name = key.removesuffix("_files")
            more = f"{len(items) - first} more; " if len(items) > first else ""
            lines.append(f"    ({more}full list: {meta_path}, under {name!r})")
    return lines


# The cache's own fingerprint: which data a run was trained on --------------------
def cache_fingerprint(cache_dir: str | os.PathLike) -> dict:
    """Return {"digest", "image_size", "crop", "counts", "source"} of a finished cache.

    Raises:
        DataError: no finished cache, or damaged arrays (from ``cache.load_split``).
    """
    cache_dir = Path(cache_dir)
    meta = cache_info(cache_dir)
    digest = hashlib.sha256()
    settings = {
        key: meta.get(key)
        for key in ("image_size", "crop", "counts", "layout", "source_fingerprint")
    }
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
    return {
        "digest": digest.hexdigest(),
        "cache_dir": str(cache_dir.resolve()),
        "source": meta.get("source"),
        "image_size": meta.get("image_size"),
        "crop": meta.get("crop"),
        "counts": dict(meta.get("counts", {})),
    }


def describe_cache(fingerprint: dict) -> str:
    """One line: "the cache X (64 px, crop [...], train 160 / ..., from SOURCE)"."""
    counts = " / ".join(
        f"{k} {v}" for k, v in (fingerprint.get("counts") or {}).items()
    )
    return (
        f"the cache {fingerprint.get('cache_dir')} ({fingerprint.get('image_size')} px, "
        f"crop {fingerprint.get('crop')}, {counts}, made from "
        f"{fingerprint.get('source')})"
    )
