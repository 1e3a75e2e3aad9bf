"""Where the data came from: cheap fingerprints of a CelebA source and of a cache.

A cache remembers its source's fingerprint in meta.json, so ``prepare`` rebuilds it
when the source folder at the same path was regenerated or replaced. A run remembers
its cache's fingerprint in run.json, so resuming it on other data is refused.

Both are cheap (well under a second for all of CelebA) and never read every image:

* source, a folder: SHA-256 of the attribute and partition files, the number of
  listed images, and the byte sizes of up to ``SAMPLED_IMAGES`` images spread
  evenly over the list. Modification times are left out on purpose: copying a
  dataset (Drive to the Colab disk, every session) changes them, not the faces.
* source, a zip: the name, CRC-32 and size of every member, read from the zip's
  central directory (the CRCs cover every byte of every image).
* cache: the settings and counts of its meta.json, its source's fingerprint, each
  split's array headers (shape, dtype), its ids and attributes files, and the
  bytes of up to ``SAMPLED_IMAGES`` images per split.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path


from helpers.files import sha256_file

SAMPLED_IMAGES = 256


def evenly(items: list, k: int = SAMPLED_IMAGES) -> list:
    if len(items) <= k:
        return list(items)
    step = (len(items) - 1) / (k - 1)
    return [items[round(i * step)] for i in range(k)]


def _listed_ids(attr_file: Path) -> list[str]:
    """The image names of an attribute file (first field of each data row)."""
    from helpers.celeba import decode_list_file

    lines = decode_list_file(attr_file.read_bytes()).splitlines()
    if attr_file.suffix.lower() == ".csv":
        return [line.split(",", 1)[0].strip() for line in lines[1:] if line.strip()]
    return [line.split()[0] for line in lines[2:] if line.strip()]


def _zip_bytes(path: Path) -> bool:
    from helpers.archives import archive_kind

    return archive_kind(path) == "zip"


def source_fingerprint(data: str | os.PathLike) -> dict:
    """Return {"kind", "digest", ...} for a CelebA folder or zip.

    Args:
        data: what ``prepare --data`` was given (an existing folder or .zip).

    Raises:
        DataError: no CelebA at ``data`` (from ``celeba.find_celeba``).
    """
    data = Path(data)
    digest = hashlib.sha256()
    if data.is_file() and (data.suffix.lower() == ".zip" or _zip_bytes(data)):
        with zipfile.ZipFile(data) as archive:
            members = sorted(
                (info.filename, info.CRC, info.file_size)
                for info in archive.infolist()
                if not info.is_dir()
            )
        digest.update(json.dumps(members).encode())
        return {"kind": "zip", "members": len(members), "digest": digest.hexdigest()}
    from helpers.celeba import find_celeba

    files = find_celeba(data)
    lists = {p.name: sha256_file(p) for p in (files.attr_file, files.partition_file)}
    ids = _listed_ids(files.attr_file)
    sizes = []
    for image_id in evenly(ids):
        try:
            sizes.append((image_id, files.image_path(image_id).stat().st_size))
        except OSError:
            sizes.append((image_id, None))
    digest.update(json.dumps([lists, len(ids), sizes], sort_keys=True).encode())
    return {
        "kind": "folder",
        "images": len(ids),
        "lists": lists,
        "digest": digest.hexdigest(),
    }


def describe_change(old: dict, new: dict) -> str:
    """Say in a few words how two source fingerprints differ."""
    if old.get("kind") != new.get("kind"):
        return f"it was a {old.get('kind')}, now it is a {new.get('kind')}"
    if old.get("images") != new.get("images"):
        return f"{old.get('images')} images were listed, now {new.get('images')}"
    changed = [
        name
        for name, value in (new.get("lists") or {}).items()
        if (old.get("lists") or {}).get(name) != value
    ]
    if changed:
        return f"{' and '.join(changed)} changed"
    if old.get("members") != new.get("members"):
        return f"the zip held {old.get('members')} files, now {new.get('members')}"
    return "image files changed (sizes or contents)"
