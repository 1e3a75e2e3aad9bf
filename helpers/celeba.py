"""Find and read CelebA's own files, in the official or the Kaggle layout.

Two layouts are accepted, at a root folder or one folder below it::

    official                          kaggle (jessicali9530/celeba-dataset)
    ROOT/img_align_celeba/*.jpg       ROOT/img_align_celeba/img_align_celeba/*.jpg
    ROOT/list_attr_celeba.txt         ROOT/list_attr_celeba.csv
    ROOT/list_eval_partition.txt      ROOT/list_eval_partition.csv

Typical use::

    files = find_celeba("data/celeba")          # CelebAFiles, or a DataError
    ids, attrs = read_attributes(files)         # attrs: (N, 40) int8 of +1 / -1
    splits = split_ids(ids, read_partitions(files))   # {"train": [...], ...}

:func:`detect_layout` works on names only, so the same rules apply to a folder and
to the member names of a zip archive. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from helpers.errors import DataError

# The 40 binary attributes, in the order of CelebA's list_attr_celeba file.
ATTRIBUTE_NAMES: tuple[str, ...] = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips "
    "Big_Nose Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby "
    "Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup High_Cheekbones Male "
    "Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin "
    "Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace "
    "Wearing_Necktie Young"
).split()

# Partition codes of list_eval_partition, and the official split sizes.
SPLITS: dict[str, int] = {"train": 0, "validation": 1, "test": 2}
CELEBA_COUNTS: dict[str, int] = {"train": 162770, "validation": 19867, "test": 19962}
CELEBA_TOTAL = 202599
IMAGE_SIZE = (178, 218)  # (width, height) of every aligned image


class LayoutPaths(NamedTuple):
    """Where one layout keeps its files, relative to its root ("/"-separated)."""

    image_dir: str
    attr_file: str
    partition_file: str


LAYOUTS: dict[str, LayoutPaths] = {
    "official": LayoutPaths(
        "img_align_celeba", "list_attr_celeba.txt", "list_eval_partition.txt"
    ),
    "kaggle": LayoutPaths(
        "img_align_celeba/img_align_celeba",
        "list_attr_celeba.csv",
        "list_eval_partition.csv",
    ),
}

_IMAGE_DIR_NAME = "img_align_celeba"
_LIST_NAMES = {p.attr_file for p in LAYOUTS.values()} | {
    p.partition_file for p in LAYOUTS.values()
}


@dataclass(frozen=True)
class CelebAFiles:
    """The located files of one CelebA copy.

    Attributes:
        root: the folder that holds the layout (may be below the folder asked for).
        layout: "official" or "kaggle".
        image_dir: folder of the 178x218 JPEGs named 000001.jpg, ...
        attr_file: list_attr_celeba.txt or .csv.
        partition_file: list_eval_partition.txt or .csv.
    """

    root: Path
    layout: str
    image_dir: Path
    attr_file: Path
    partition_file: Path

    @classmethod
    def at(cls, root: str | os.PathLike, layout: str) -> "CelebAFiles":
        """Return the paths ``layout`` uses under ``root`` (nothing is checked)."""
        if layout not in LAYOUTS:
            choices = ", ".join(LAYOUTS)
            raise ValueError(f"unknown layout {layout!r}: choose one of {choices}")
        root = Path(root)
        rel = LAYOUTS[layout]
        return cls(
            root,
            layout,
            root / rel.image_dir,
            root / rel.attr_file,
            root / rel.partition_file,
        )

    def image_path(self, image_id: str) -> Path:
        """Return the path of one image, e.g. ``image_path("000001.jpg")``."""
        return self.image_dir / image_id


def expected_paths_text() -> str:
    """Describe both layouts' relative paths, for error messages."""
    lines = []
    for name, rel in LAYOUTS.items():
        label = "kaggle (jessicali9530/celeba-dataset)" if name == "kaggle" else name
        lines.append(
            f"  {label}: {rel.image_dir}/*.jpg, {rel.attr_file}, {rel.partition_file}"
        )
    return "\n".join(lines)


# Layout detection on names --------------------------------------------------------
def _missing(prefix: str, layout: str, names: set[str], dirs: set[str]) -> list[str]:
    """List the files of ``layout`` under ``prefix`` missing from the names."""
    rel = LAYOUTS[layout]
    lists = (rel.attr_file, rel.partition_file)
    missing = [f for f in lists if prefix + f not in names]
    if prefix + rel.image_dir not in dirs:
        missing.insert(0, rel.image_dir + "/*.jpg")
    return missing


def _index(relative_paths: Iterable[str]) -> tuple[set[str], set[str]]:
    """Return (list-file names, folders that directly hold a .jpg)."""
    names, jpg_dirs = set(), set()
    for name in relative_paths:
        name = name.replace("\\", "/").removeprefix("./")
        base = name.rsplit("/", 1)[-1]
        if base in _LIST_NAMES:
            names.add(name)
        elif base.lower().endswith(".jpg"):
            jpg_dirs.add(name.rsplit("/", 1)[0] if "/" in name else "")
    return names, jpg_dirs


def _prefixes(names: set[str]) -> set[str]:
    return {n[: len(n) - len(n.rsplit("/", 1)[-1])] for n in names}


def detect_layout(relative_paths: Iterable[str]) -> tuple[str, str] | None:
    """Find a CelebA layout among relative names ("/"-separated, as in a zip).

    A layout counts only when its image folder holds at least one .jpg and both
    list files are present under the same prefix. The shallowest match wins.

    Args:
        relative_paths: file names relative to a folder or zip root, e.g.
            "celeba/img_align_celeba/img_align_celeba/000001.jpg".

    Returns:
        (prefix, layout): prefix is "" or ends in "/" (e.g. "celeba/"), so
        ``prefix + LAYOUTS[layout].attr_file`` is the attribute file's name.
        None when no complete layout is present.
    """
    names, jpg_dirs = _index(relative_paths)
    found = [
        (prefix.count("/"), prefix, layout)
        for prefix in _prefixes(names)
        for layout in LAYOUTS
        if not _missing(prefix, layout, names, jpg_dirs)
    ]
    if not found:
        return None
    _, prefix, layout = min(found)
    return prefix, layout


def describe_missing(relative_paths: Iterable[str]) -> str:
    """Say which expected files are missing, for the closest partial layout.

    Args:
        relative_paths: names as for :func:`detect_layout`.

    Returns:
        One line per layout, e.g. "official at celeba/: missing list_attr_celeba.txt".
    """
    names, jpg_dirs = _index(relative_paths)
    prefixes = _prefixes(names) | {""}
    image_dirs = [d for d in jpg_dirs if _IMAGE_DIR_NAME in d]
    prefixes |= {d[: d.index(_IMAGE_DIR_NAME)] for d in image_dirs}
    lines = []
    for layout in LAYOUTS:
        candidates = [(_missing(p, layout, names, jpg_dirs), p) for p in prefixes]
        missing, prefix = min(
            candidates, key=lambda c: (len(c[0]), c[1].count("/"), c[1])
        )
        where = f" (at {prefix})" if prefix else ""
        lines.append(f"  {layout}{where}: missing {', '.join(missing) or 'nothing'}")
    return "\n".join(lines)


# Finding a copy on disk -----------------------------------------------------------
def _first_jpg(path: str, rel: str) -> Iterator[str]:
    """Yield one .jpg name in an image folder (and in a nested one), stopping early."""
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.name == _IMAGE_DIR_NAME and entry.is_dir():
                yield from _first_jpg(entry.path, f"{rel}/{entry.name}")
            elif entry.name.lower().endswith(".jpg"):
                yield f"{rel}/{entry.name}"
                return


def _folder_names(root: Path, rel: str = "", depth: int = 1) -> Iterator[str]:
    """Yield the names detect_layout needs: list files and one .jpg per image folder."""
    with os.scandir(root) as entries:
        for entry in entries:
            name = f"{rel}{entry.name}"
            if entry.name == _IMAGE_DIR_NAME and entry.is_dir():
                yield from _first_jpg(entry.path, name)
            elif entry.is_dir() and depth > 0:
                yield from _folder_names(Path(entry.path), name + "/", depth - 1)
            elif entry.name.lower().endswith(".jpg"):
                yield name
                return  # loose images: not a CelebA root, and maybe 200k of them
            else:
                yield name


def _top_entries(root: Path, limit: int = 10) -> str:
    """List the first ``limit`` entries of root by name (reads at most 1000)."""
    names = []
    with os.scandir(root) as entries:
        for entry in entries:
            names.append(entry.name + ("/" if entry.is_dir() else ""))
            if len(names) > 1000:
                break
    if not names:
        return "nothing (the folder is empty)"
    total = f"{len(names)}+" if len(names) > 1000 else str(len(names))
    more = f", ... ({total} entries)" if len(names) > limit else ""
    return ", ".join(sorted(names)[:limit]) + more


def find_celeba(root: str | os.PathLike) -> CelebAFiles:
    """Locate CelebA in ``root`` or in one folder below it.

    Only the folder listings needed are read (the image folder is not listed in
    full), so this is fast even for 202,599 images.

    Args:
        root: a folder holding either layout, or the folder above one.

    Returns:
        The located files.

    Raises:
        DataError: nothing usable; the message lists what was looked for, what
            the folder holds, and which files are missing.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(
            f"CelebA folder {root} does not exist. Download it first "
            "(`python -m helpers download`) or make a generated stand-in "
            "(`python -m helpers make-slice --out DIR`)."
        )
    if not root.is_dir():
        raise DataError(
            f"{root} is a file, not a folder: unzip it, then pass the folder that "
            "contains list_attr_celeba.txt or list_attr_celeba.csv."
        )
    names = list(_folder_names(root))
    found = detect_layout(names)
    if found is not None:
        prefix, layout = found
        return CelebAFiles.at(root / prefix if prefix else root, layout)
    hint = ""
    if any("/" not in n and n.lower().endswith(".jpg") for n in names):
        hint = (
            f"\n{root} holds .jpg files directly: it looks like the image folder. "
            f"Pass the folder that contains list_attr_celeba.* instead "
            f"(probably {root.parent})."
        )
    raise DataError(
        f"No CelebA found in {root}.\n"
        f"Looked for these paths, in {root} or one folder below it:\n"
        f"{expected_paths_text()}\n"
        f"Found in {root}: {_top_entries(root)}\n"
        f"Closest matches:\n{describe_missing(names)}{hint}\n"
        "Download CelebA (`python -m helpers download`) or point to the folder "
        "that holds these files."
    )


def count_images(files: CelebAFiles) -> int:
    """Count the .jpg files in the image folder (reads the whole listing)."""
    with os.scandir(files.image_dir) as entries:
        return sum(1 for e in entries if e.name.lower().endswith(".jpg"))


# Reading the list files -----------------------------------------------------------
def decode_list_file(data: bytes) -> str:
    """Decode a list file's bytes: UTF-8 (a byte-order mark is dropped), else Latin-1.

    CelebA's own files are ASCII; copies re-saved by spreadsheet programs start with
    a UTF-8 byte-order mark, or are in Latin-1 (Windows-1252): both read the same.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _open_list(path: Path) -> io.StringIO:
    """Open a list file as text in whatever encoding it uses (see decode_list_file)."""
    return io.StringIO(decode_list_file(Path(path).read_bytes()), newline="")


def _check_names(path: Path, line_no: int, names: list[str]) -> None:
    for i, (got, want) in enumerate(zip(names, ATTRIBUTE_NAMES)):
        if got != want:
            raise DataError(
                f"{path} line {line_no}: attribute {i + 1} is {got!r}, expected "
                f"{want!r} (CelebA's 40 attributes, in order)."
            )
    if len(names) != len(ATTRIBUTE_NAMES):
        raise DataError(
            f"{path} line {line_no}: {len(names)} attribute names, expected "
            f"{len(ATTRIBUTE_NAMES)}."
        )


def _attribute_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (line number, [image_id, 40 values]) after checking the header."""
    with _open_list(path) as f:
        if path.suffix.lower() == ".csv":
            reader = csv.reader(f)
            header = next(reader, [])
            if header[:1] != ["image_id"]:
                raise DataError(
                    f"{path} line 1: expected a header starting with 'image_id', got "
                    f"{','.join(header[:3])!r}..."
                )
            _check_names(path, 1, [h.strip() for h in header[1:]])
            for line_no, row in enumerate(reader, start=2):
                if row:
                    yield line_no, [v.strip() for v in row]
            return
        first, second = f.readline(), f.readline()
        try:
            expected = int(first)
        except ValueError:
            raise DataError(
                f"{path} line 1: expected the image count, got {first.strip()[:40]!r}."
            ) from None
        _check_names(path, 2, second.split())
        count = 0
        for line_no, line in enumerate(f, start=3):
            row = line.split()
            if row:
                count += 1
                yield line_no, row
        if count < expected:  # more rows: duplicates, dropped by read_attributes
            raise DataError(
                f"{path}: line 1 says {expected} images but the file has {count} "
                "rows; the file is truncated or damaged, download it again."
            )


def read_attributes(files: CelebAFiles) -> tuple[list[str], np.ndarray]:
    """Read the 40 attributes of every image.

    The file may be UTF-8 (with or without a byte-order mark) or Latin-1. An image
    listed twice keeps its first row; the later rows are dropped with one warning
    that gives their count and the first few names.

    Args:
        files: located CelebA files (.txt or .csv attribute file).

    Returns:
        (image_ids, attrs): N ids like "000001.jpg" in file order, and attrs of
        shape (N, 40) int8 with values +1 / -1, columns in ATTRIBUTE_NAMES order.

    Raises:
        DataError: wrong or misordered names, a malformed row (with its line
            number), or a count that disagrees with the file's first line.
    """
    path = Path(files.attr_file)
    ids, values, seen, duplicates = [], [], set(), []
    for line_no, row in _attribute_rows(path):
        if len(row) != len(ATTRIBUTE_NAMES) + 1 or not set(row[1:]) <= {"1", "-1"}:
            raise DataError(
                f"{path} line {line_no}: expected an image id and 40 values of 1 or "
                f"-1, got {len(row) - 1} values: {' '.join(row)[:80]!r}"
            )
        if row[0] in seen:
            duplicates.append(f"{row[0]} (line {line_no})")
            continue
        seen.add(row[0])
        ids.append(row[0])
        values.append(row[1:])
    _warn_duplicates(path, duplicates)
    attrs = np.array(values, dtype=np.int8).reshape(len(ids), len(ATTRIBUTE_NAMES))
    return ids, attrs


def read_partitions(files: CelebAFiles) -> dict[str, int]:
    """Read the official split of every image.

    Args:
        files: located CelebA files (.txt or .csv partition file).

    Returns:
        image id -> 0 (train), 1 (validation) or 2 (test), in file order.

    The file may be UTF-8 (with or without a byte-order mark) or Latin-1; an image
    listed twice keeps its first row (with a warning).

    Raises:
        DataError: a malformed row or a partition value outside 0..2.
    """
    path = Path(files.partition_file)
    is_csv = path.suffix.lower() == ".csv"
    partitions: dict[str, int] = {}
    duplicates = []
    with _open_list(path) as f:
        rows = csv.reader(f) if is_csv else (line.split() for line in f)
        for line_no, row in enumerate(rows, start=1):
            if is_csv and line_no == 1:
                if [v.strip() for v in row] != ["image_id", "partition"]:
                    raise DataError(
                        f"{path} line 1: expected the header 'image_id,partition', "
                        f"got {','.join(row)[:60]!r}."
                    )
                continue
            if not row:
                continue
            value = row[1].strip() if len(row) == 2 else ""
            if value not in {"0", "1", "2"}:
                raise DataError(
                    f"{path} line {line_no}: expected 'IMAGE_ID PARTITION' with "
                    f"partition 0, 1 or 2, got {' '.join(row)[:60]!r}."
                )
            if row[0].strip() in partitions:
                duplicates.append(f"{row[0].strip()} (line {line_no})")
                continue
            partitions[row[0].strip()] = int(value)
    _warn_duplicates(path, duplicates)
    return partitions


def _warn_duplicates(path: Path, duplicates: list[str]) -> None:
    """Warn once about rows of images listed earlier in the same file (kept: first)."""
    if duplicates:
        more = ", ..." if len(duplicates) > 5 else ""
        warnings.warn(
            f"{path}: {len(duplicates)} duplicate row(s) of images listed earlier, "
            f"e.g. {', '.join(duplicates[:5])}{more}; the first row of each image "
            "is used, the later ones are ignored.",
            stacklevel=3,
        )


def split_ids(ids: Iterable[str], partitions: dict[str, int]) -> dict[str, list[str]]:
    """Group image ids by split, keeping their order.

    Args:
        ids: image ids, e.g. from :func:`read_attributes`.
        partitions: from :func:`read_partitions`.

    Returns:
        {"train": [...], "validation": [...], "test": [...]}.

    Raises:
        DataError: an id that the partition file does not list.
    """
    names = {code: name for name, code in SPLITS.items()}
    out: dict[str, list[str]] = {name: [] for name in SPLITS}
    for image_id in ids:
        if image_id not in partitions:
            raise DataError(
                f"image {image_id} has attributes but no partition entry: the "
                "attribute and partition files do not belong together."
            )
        out[names[partitions[image_id]]].append(image_id)
    return out
