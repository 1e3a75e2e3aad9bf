"""Decode CelebA once into a compact uint8 cache, read it back, and fingerprint it.

``prepare_cache`` writes ``CACHE.partial``, renamed into place when complete:
SPLIT_images.npy (N, H, W, 3) uint8, SPLIT_attributes.npy (N, 40) int8 of +1 / -1,
SPLIT_ids.txt and meta.json (settings, counts, file sizes, the source's fingerprint,
the images skipped or reframed). Fingerprints sample images, not modification times.
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
import stat
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
from helpers.files import read_json, sha256_file, unsafe_member_name
from helpers.locks import cache_lock
from helpers.preprocess import DEFAULT_CROP, DEFAULT_IMAGE_SIZE, check_crop, load_image

FORMAT_VERSION = 1
META = "meta.json"
CHUNK = 256  # images per task sent to a worker
MAX_WARNINGS = 20  # skipped files warned about one by one; the rest are summed up
SAMPLED_IMAGES = 256  # images a fingerprint looks at
# What a missing, truncated, corrupt or oversized file raises while decoding.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, KeyError, EOFError)
_DECODE_ERRORS += (Image.DecompressionBombError,)
_OPEN_ZIPS: dict[str, zipfile.ZipFile] = {}  # one handle per process


def _files(split: str) -> tuple[str, str, str]:
    return f"{split}_images.npy", f"{split}_attributes.npy", f"{split}_ids.txt"


def _fix(cache_dir, delete: bool = True) -> str:
    run = f"run `python -m vaelab prepare --data PATH --cache {cache_dir}` first"
    return f"delete {cache_dir} and {run}" if delete else run


# Where the images are: a folder or a zip, read the same way by every worker -------
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
    """Return (positions decoded, (k, H, W, 3) uint8, records of the images skipped
    and reframed, the original modes of those converted)."""
    source, split, ids, crop, image_size = task
    done, images, skipped, reframed, modes = [], [], [], [], []
    for position, image_id in enumerate(ids):
        notes: list[str] = []
        try:
            images.append(_decode(source, image_id, crop, image_size, notes, modes))
            done.append(position)
        except _DECODE_ERRORS as error:
            reason = f"{type(error).__name__}: {error}"
            skipped.append({"file": image_id, "split": split, "reason": reason})
        reframed += [{"file": image_id, "split": split, "note": n} for n in notes]
    images = np.array(images, np.uint8).reshape(-1, image_size, image_size, 3)
    return done, images, skipped, reframed, modes


@contextlib.contextmanager
def _decoding(workers: int):
    """Yield an order-keeping map of tasks to ``_decode_chunk`` results."""
    if workers <= 1:
        pool = None
    elif "fork" in multiprocessing.get_all_start_methods():
        # Workers ignore Ctrl-C: the parent stops them and removes the .partial.
        pool = multiprocessing.get_context("fork").Pool(
            workers, signal.signal, (signal.SIGINT, signal.SIG_IGN)
        )
    else:  # spawn would re-run a script's top level: PIL releases the GIL anyway
        pool = ThreadPool(workers)
    try:
        yield lambda tasks: (map if pool is None else pool.imap)(_decode_chunk, tasks)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        while _OPEN_ZIPS:  # none stays open for a forked worker to share
            _OPEN_ZIPS.popitem()[1].close()


@contextlib.contextmanager
def _open_zip(data: Path):
    """Yield ``data`` opened if it is a zip (by its name or bytes), else None;
    DataError for a tar or an unreadable zip."""
    kind = archive_kind(data) if data.is_file() else None
    if kind not in (None, "zip"):
        raise DataError(
            f"{data} is {KIND_NAMES[kind]}: prepare reads a folder or a zip. Extract "
            f"it first: `python -m vaelab download --source local --from {data} "
            "--dest DIR`, then pass --data DIR/celeba."
        )
    if kind is None and not (data.is_file() and data.suffix.lower() == ".zip"):
        yield None
        return
    try:
        with zipfile.ZipFile(data) as archive:
            yield archive
    except zipfile.BadZipFile as error:
        raise DataError(
            f"{data} is not a readable zip ({error}); download it again (a Google "
            "Drive quota page saved as .zip looks like this)."
        ) from None


def _locate(data: Path, workdir: Path):
    """Return (source, CelebAFiles); a zip's two list files are copied to workdir."""
    with _open_zip(data) as archive:
        if archive is None:
            files = celeba.find_celeba(data)
            return (None, str(files.image_dir)), files
        for info in archive.infolist():
            link = stat.S_ISLNK(info.external_attr >> 16) and "is a symbolic link"
            if why := link or unsafe_member_name(info.filename):
                raise DataError(
                    f"{data} holds unsafe member names such as {info.filename!r} "
                    f"({why}); it was not read. Use a zip from the official CelebA "
                    "page or Kaggle."
                )
        names = archive.namelist()
        if (found := celeba.detect_layout(names)) is None:
            raise DataError(
                f"No CelebA layout found in the zip {data}. Expected, at its root "
                f"or one folder below:\n{celeba.expected_paths_text()}\n"
                f"Closest matches:\n{celeba.describe_missing(names)}"
            )
        prefix, layout = found
        files = celeba.CelebAFiles.at(workdir, layout)
        workdir.mkdir(parents=True, exist_ok=True)
        for path in (files.attr_file, files.partition_file):
            path.write_bytes(archive.read(prefix + path.name))
    return (str(data), f"{prefix}{celeba.LAYOUTS[layout].image_dir}/"), files


# Which data: fingerprints of a source and of a cache -------------------------------
def evenly(items: Sequence, k: int = SAMPLED_IMAGES) -> list:
    """Return ``k`` items spread evenly over ``items`` (all of them when fewer)."""
    if len(items) <= k:
        return list(items)
    step = (len(items) - 1) / (k - 1)
    return [items[round(i * step)] for i in range(k)]


def source_fingerprint(data: str | os.PathLike) -> dict:
    """Return {"kind", "digest", ...} for a CelebA folder or zip; DataError for no
    CelebA at ``data``, an unreadable zip, or another archive."""
    data = Path(data)
    with _open_zip(data) as archive:
        if archive is not None:
            infos = [info for info in archive.infolist() if not info.is_dir()]
            members = sorted((i.filename, i.CRC, i.file_size) for i in infos)
            digest = hashlib.sha256(json.dumps(members).encode()).hexdigest()
            return {"kind": "zip", "members": len(members), "digest": digest}
    files = celeba.find_celeba(data)
    lists = {p.name: sha256_file(p) for p in (files.attr_file, files.partition_file)}
    lines = celeba.decode_list_file(files.attr_file.read_bytes()).splitlines()
    csv = files.attr_file.suffix.lower() == ".csv"  # 1 header line, or count + names
    rows = [line for line in lines[1 if csv else 2 :] if line.strip()]
    ids = [row.split("," if csv else None, 1)[0].strip() for row in rows]
    sizes = [(i, _size(files.image_path(i))) for i in evenly(ids)]
    text = json.dumps([lists, len(ids), sizes], sort_keys=True)
    digest = hashlib.sha256(text.encode()).hexdigest()
    return {"kind": "folder", "images": len(ids), "lists": lists, "digest": digest}


def _size(path: Path) -> int | None:
    return path.stat().st_size if path.exists() else None


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
    """Return {"digest", "cache_dir", "source", "image_size", "crop", "counts"};
    DataError for no finished cache, or damaged arrays (from ``load_split``)."""
    cache_dir = Path(cache_dir)
    meta = cache_info(cache_dir)
    keys = ("image_size", "crop", "counts", "layout", "source_fingerprint")
    settings = {key: meta.get(key) for key in keys}
    if not settings["source_fingerprint"]:
        settings["source"] = meta.get("source")
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for split in meta["counts"]:
        images, attributes, ids = load_split(cache_dir, split)
        digest.update(repr((split, images.shape, str(images.dtype))).encode())
        digest.update(attributes.tobytes())
        digest.update("\n".join(ids).encode())
        for i in evenly(range(len(images))):
            digest.update(images[i].tobytes())
    return {
        "digest": digest.hexdigest(),
        "cache_dir": str(cache_dir.resolve()),
        **{key: meta.get(key) for key in ("source", "image_size", "crop")},
        "counts": dict(meta["counts"]),
    }


def describe_cache(fingerprint: dict) -> str:
    """One line: "the cache X (64 px, crop [...], train 160 / ..., from SOURCE)"."""
    counts = (fingerprint.get("counts") or {}).items()
    return (
        f"the cache {fingerprint.get('cache_dir')} "
        f"({fingerprint.get('image_size')} px, crop {fingerprint.get('crop')}, "
        f"{' / '.join(f'{k} {v}' for k, v in counts)}, "
        f"made from {fingerprint.get('source')})"
    )


# Reading the cache -----------------------------------------------------------------
def cache_info(cache_dir: str | os.PathLike) -> dict:
    """Return the meta.json of a finished cache (image_size, crop, counts, ...);
    DataError if there is none, saying how to make one."""
    cache_dir = Path(cache_dir).expanduser()
    meta_path = cache_dir / META
    if meta_path.is_dir():
        raise DataError(f"{meta_path} is a folder: {_fix(cache_dir)}.")
    if not meta_path.is_file():
        partial = cache_dir.with_name(cache_dir.name + ".partial")
        if partial.exists():
            why = f"an interrupted prepare left {partial}"
        elif cache_dir.exists():
            why = f"{cache_dir} holds no {META}"
        else:
            why = "the folder does not exist"
        raise DataError(
            f"No finished cache at {cache_dir}: {why}; {_fix(cache_dir, False)}."
        )
    try:
        meta = read_json(meta_path, _fix(cache_dir))
    except DamagedFileError as error:
        raise DataError(str(error)) from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise DataError(
            f"{cache_dir} was written by another version of this lab (format "
            f"{meta.get('format_version')}, need {FORMAT_VERSION}): {_fix(cache_dir)}."
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
        raise DataError(f"{path} is damaged ({error}): {_fix(cache_dir)}.") from None


def load_split(cache_dir: str | os.PathLike, split: str):
    """Open one split of a cache without reading its images into memory: (images,
    attributes, ids), a (N, H, W, 3) uint8 memory map, (N, 40) int8 of +1 / -1 and N
    names like "000001.jpg"; DataError: unknown split, no finished cache, damage."""
    if split not in celeba.SPLITS:
        raise DataError(
            f"unknown split {split!r}: choose one of {', '.join(celeba.SPLITS)}"
        )
    meta = cache_info(cache_dir)
    cache_dir = Path(cache_dir).expanduser()
    image_file, attr_file, id_file = _files(split)
    count, size, fix = meta["counts"][split], meta["image_size"], _fix(cache_dir)
    images = _load_array(cache_dir / image_file, cache_dir, mmap=bool(count))
    attributes = _load_array(cache_dir / attr_file, cache_dir, mmap=False)
    if images.dtype != np.uint8 or images.shape[1:] != (size, size, 3):
        raise DataError(
            f"{cache_dir / image_file} is damaged (holds {images.dtype} "
            f"{images.shape}, meta.json says uint8 (N, {size}, {size}, 3)): {fix}."
        )
    if attributes.shape[1:] != (len(celeba.ATTRIBUTE_NAMES),):
        raise DataError(
            f"{cache_dir / attr_file} is damaged (shape {attributes.shape}): {fix}."
        )
    try:  # one name per line: a name may contain spaces (seen in Kaggle copies)
        ids = (cache_dir / id_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(
            f"{cache_dir / id_file} is missing or damaged ({error}): {fix}."
        ) from None
    if not len(images) == len(attributes) == len(ids) == count:
        raise DataError(
            f"{cache_dir} is damaged ({split}: {len(images)} images, "
            f"{len(attributes)} attribute rows, {len(ids)} ids, meta says {count}): "
            f"{fix}."
        )
    return images, attributes, ids


def cache_problem(cache_dir: Path, meta: dict) -> str | None:
    """Say what is wrong with a finished cache's files, or None when they are whole:
    the sizes meta.json records, each split opened, its first and last image read."""
    for name, size in (meta.get("file_sizes") or {}).items():
        if (actual := _size(cache_dir / name)) is None:
            return f"{name} is missing"
        if actual != size:
            return f"{name} holds {actual:,} bytes, meta.json records {size:,}"
    for split in celeba.SPLITS:
        try:
            images = load_split(cache_dir, split)[0]
            np.asarray(images[[0, -1]] if len(images) else images).sum()
        except DataError as error:
            return str(error).split(": delete")[0]
        except (OSError, ValueError) as error:
            return f"{split} cannot be read ({type(error).__name__}: {error})"
    return None


# Writing the cache -----------------------------------------------------------------
def _write_images(path: Path, shape: tuple, results, bar, log: dict) -> list[int]:
    """Write one split's decoded ``results`` to ``path``; return the positions kept."""
    images = np.lib.format.open_memmap(path, "w+", np.uint8, shape)
    try:  # allocate every block: a map over a sparse file on a full disk dies of SIGBUS
        with open(path, "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
    except AttributeError:  # no posix_fallocate on this system
        pass
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EOPNOTSUPP):  # else: unsupported
            del images
            raise OSError(error.errno, error.strerror, str(path)) from None
    kept, skipped = [], log["skipped"]
    for start, (done, chunk, bad, reframed, modes) in results:
        images[len(kept) : len(kept) + len(done)] = chunk
        kept += [start + i for i in done]
        bar.update(len(done) + len(bad))
        log["converted"].update(modes)
        log["reframed"] += reframed
        for item in bad[: max(0, MAX_WARNINGS - len(skipped))]:
            warnings.warn(f"skipped {item['file']}: {item['reason']}", stacklevel=4)
        skipped += bad
        if len(skipped) >= CHUNK and not (kept or any(log["counts"].values())):
            raise DataError(
                f"the first {len(skipped)} images all failed to decode, e.g. "
                f"{skipped[0]['file']}: {skipped[0]['reason']}. Check --data and "
                "--crop."
            )
    images.flush()
    del images
    if len(kept) < shape[0]:  # rewritten from the map, never all in memory
        tmp = path.with_name("shrink_" + path.name)
        np.save(tmp, np.load(path, mmap_mode="r")[: len(kept)])
        os.replace(tmp, path)
    return kept


def prepare_cache(
    data: str | os.PathLike,
    cache_dir: str | os.PathLike,
    image_size: int = DEFAULT_IMAGE_SIZE,
    crop: Sequence[int] = DEFAULT_CROP,
    progress: bool = True,
    workers: int | None = None,
) -> dict:
    """Decode every CelebA image once into the uint8 cache (atomically).

    ``data``: a CelebA folder (official or Kaggle layout) or a .zip of either.
    ``cache_dir``: new, empty, or this very cache (reused; rebuilt when damaged or its
    source changed, swapped in once complete). ``crop``: the face box (left, top,
    width, height) in the 178x218 frame. ``workers``: None is one per CPU (one for
    small data). Unreadable images are skipped, other frames reframed (both listed).

    Returns {"cache_dir", "counts": {split: n}, "skipped", "skipped_files": [{"file",
    "split", "reason"}], "reframed", "reframed_files", "converted", "seconds",
    "bytes_per_image", "reused"}. DataError: no CelebA at ``data``, or ``cache_dir``
    holds something else; BusyError: another process is preparing this cache."""
    cache_dir = Path(cache_dir).expanduser().resolve()
    with cache_lock(cache_dir, "prepare"):
        crop, size = list(check_crop(crop, celeba.IMAGE_SIZE)), int(image_size)
        if not 1 <= size <= 1024:
            raise ValueError(f"image_size={image_size}: must be between 1 and 1024")
        data = Path(data).expanduser().resolve()
        wanted = dict(format_version=FORMAT_VERSION, image_size=size, crop=crop)
        wanted["source"] = str(data)
        meta, fingerprint, stale = _check_existing(cache_dir, wanted)
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
            old = cache_dir.with_name(cache_dir.name + ".old")
            shutil.rmtree(old, ignore_errors=True)
            if cache_dir.exists():  # a finished cache or an empty folder
                os.replace(cache_dir, old)
            os.replace(partial, cache_dir)
            shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return _summary(meta, cache_dir, reused=False)


def _check_existing(cache_dir: Path, wanted: dict):
    """Return (this finished cache's meta or None, the source's fingerprint, why to
    rebuild the cache, said aloud, or None); DataError for a folder of other things."""
    if cache_dir.exists() and not cache_dir.is_dir():
        raise DataError(f"--cache {cache_dir} is a file; choose a folder path.")
    meta = cache_info(cache_dir) if (cache_dir / META).exists() else None
    if meta is None and cache_dir.exists() and any(cache_dir.iterdir()):
        raise DataError(
            f"{cache_dir} is not empty and is not a cache ({META} is missing): "
            "choose another --cache folder (it is created for you)."
        )
    if wrong := [k for k, v in wanted.items() if meta and meta.get(k) != v]:
        diff = (f"{k}={meta.get(k)!r} (you asked for {wanted[k]!r})" for k in wrong)
        raise DataError(
            f"{cache_dir} already holds a cache made with different settings: "
            f"{', '.join(diff)}. Use another --cache folder, or delete this one to "
            "rebuild it."
        )
    fingerprint = source_fingerprint(wanted["source"])
    if meta is None:
        return None, fingerprint, None
    old = meta.get("source_fingerprint")
    if (stale := cache_problem(cache_dir, meta)) is not None:
        print(
            f"{cache_dir} is damaged ({stale}): rebuilding it from {meta['source']} "
            "(the damaged one is replaced once the new one is done)."
        )
    elif old is not None and old.get("digest") != fingerprint["digest"]:
        stale = describe_change(old, fingerprint)
        print(
            f"{meta['source']} has changed since the cache {cache_dir} was made "
            f"({stale}): rebuilding it (the old one is kept until the new is done)."
        )
    return meta, fingerprint, stale


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
    needed = total * (size * size * 3 + len(celeba.ATTRIBUTE_NAMES) + 12) + 65536
    if needed > (free := shutil.disk_usage(partial).free):
        gb = f"needs {needed / 1e9:.2f} GB, {free / 1e9:.2f} GB is free"
        raise OSError(errno.ENOSPC, f"{cache_dir} {gb}", str(cache_dir))
    if workers is None:
        workers = 1 if total < 2000 else (os.cpu_count() or 1)
    log = {"counts": {}, "skipped": [], "reframed": [], "converted": Counter()}
    bar = tqdm(total=total, unit="img", disable=not progress, desc="prepare")
    with bar, _decoding(workers) as run:
        for split, ids in by_split.items():  # a loop: warnings' stacklevel holds
            image_file, attr_file, id_file = _files(split)
            starts = range(0, len(ids), CHUNK)
            chunks = (ids[i : i + CHUNK] for i in starts)
            tasks = [(source, split, c, settings["crop"], size) for c in chunks]
            results = zip(starts, run(tasks))
            shape = (len(ids), size, size, 3)
            kept = _write_images(partial / image_file, shape, results, bar, log)
            np.save(partial / attr_file, all_attrs[[row[ids[i]] for i in kept]])
            (partial / id_file).write_text("".join(ids[i] + "\n" for i in kept))
            log["counts"][split] = len(kept)
    if len(log["skipped"]) > MAX_WARNINGS:
        warnings.warn(
            f"skipped {len(log['skipped'])} unreadable images in all (see meta.json)",
            stacklevel=3,
        )
    if log["converted"]:
        warnings.warn(
            f"converted {_converted_text(log['converted'])} to 8-bit RGB; "
            f"the counts per mode are in {cache_dir / META}, under 'converted'",
            stacklevel=3,
        )
    shutil.rmtree(partial / "lists", ignore_errors=True)
    if (kept := sum(log["counts"].values())) == 0:
        first = (log["skipped"] or [{"file": "-", "reason": "no images listed"}])[0]
        raise DataError(
            f"no image of {data} could be decoded, e.g. {first['file']}: "
            f"{first['reason']}. Check --data (and --crop); nothing was cached."
        )
    file_sizes = {f.name: f.stat().st_size for f in sorted(partial.iterdir())}
    meta = {
        **settings,
        "layout": files.layout,
        **log,
        "converted": dict(sorted(log["converted"].items())),
        "attribute_names": list(celeba.ATTRIBUTE_NAMES),
        "seconds": round(time.perf_counter() - start, 3),
        "bytes_per_image": round(sum(file_sizes.values()) / kept, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "file_sizes": file_sizes,
    }
    (partial / META).write_text(json.dumps(meta, indent=2) + "\n")
    return meta


# Saying what prepare did -----------------------------------------------------------
def _summary(meta: dict, cache_dir: Path, reused: bool) -> dict:
    keys = ("counts", "converted", "seconds", "bytes_per_image")
    summary = {"cache_dir": str(cache_dir), **{key: meta[key] for key in keys}}
    for key in ("skipped", "reframed"):
        summary[key], summary[f"{key}_files"] = len(meta[key]), list(meta[key])
    return {**summary, "reused": reused}


def _converted_text(converted: dict) -> str:
    """'3 images not in 8-bit RGB (I;16, scaled by 255/65535: 2; L: 1)'."""
    parts = []
    for mode, count in sorted(converted.items()):
        if mode.startswith("I;16"):
            mode += ", scaled by 255/65535"
        elif "transparency" in mode or mode in ("LA", "La", "PA", "RGBA", "RGBa"):
            mode += ", over black"
        parts.append(f"{mode}: {count}")
    total = sum(converted.values())
    return f"{total} image{'s' * (total != 1)} not in 8-bit RGB ({'; '.join(parts)})"
