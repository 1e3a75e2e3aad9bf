"""Find and read CelebA's own files, in the official or the Kaggle layout.

Two layouts are accepted, at a root folder or one folder below it::

    official                          kaggle (jessicali9530/celeba-dataset)
    ROOT/img_align_celeba/*.jpg       ROOT/img_align_celeba/img_align_celeba/*.jpg
    ROOT/list_attr_celeba.txt         ROOT/list_attr_celeba.csv
    ROOT/list_eval_partition.txt      ROOT/list_eval_partition.csv

:func:`detect_layout` works on names only: the same rules serve folders and archives.
"""

from __future__ import annotations

import csv
import io
import itertools
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
_LIST_NAMES = {name for paths in LAYOUTS.values() for name in paths[1:]}


@dataclass(frozen=True)
class CelebAFiles:
    """The located files of one CelebA copy (``root`` holds the layout)."""

    root: Path
    layout: str  # "official" or "kaggle"
    image_dir: Path  # the 178x218 JPEGs 000001.jpg, ...
    attr_file: Path
    partition_file: Path

    @classmethod
    def at(cls, root: str | os.PathLike, layout: str) -> "CelebAFiles":
        """The paths ``layout`` uses under ``root`` (nothing is checked)."""
        if layout not in LAYOUTS:
            choices = ", ".join(LAYOUTS)
            raise ValueError(f"unknown layout {layout!r}: choose one of {choices}")
        root = Path(root)
        return cls(root, layout, *(root / rel for rel in LAYOUTS[layout]))

    def image_path(self, image_id: str) -> Path:
        """The path of one image, e.g. ``image_path("000001.jpg")``."""
        return self.image_dir / image_id


def expected_paths_text() -> str:
    """Both layouts' relative paths, one line each, for error messages."""
    lines = []
    for name, rel in LAYOUTS.items():
        label = "kaggle (jessicali9530/celeba-dataset)" if name == "kaggle" else name
        lines.append(
            f"  {label}: {rel.image_dir}/*.jpg, {rel.attr_file}, {rel.partition_file}"
        )
    return "\n".join(lines)


# Layout detection on names --------------------------------------------------------
def _missing(prefix: str, layout: str, names: set[str], dirs: set[str]) -> list[str]:
    rel = LAYOUTS[layout]
    missing = [f for f in rel[1:] if prefix + f not in names]
    if prefix + rel.image_dir not in dirs:
        missing.insert(0, rel.image_dir + "/*.jpg")
    return missing


def _index(relative_paths: Iterable[str]) -> tuple[set[str], set[str]]:
    """(list-file names, folders that directly hold a .jpg)."""
    names, jpg_dirs = set(), set()
    for name in relative_paths:
        name = name.replace("\\", "/").removeprefix("./")
        folder, _, base = name.rpartition("/")
        if base in _LIST_NAMES:
            names.add(name)
        elif base.lower().endswith(".jpg"):
            jpg_dirs.add(folder)
    return names, jpg_dirs


def _prefixes(names: set[str]) -> set[str]:
    return {n[: n.rfind("/") + 1] for n in names}  # "" or ending in "/"


def detect_layout(relative_paths: Iterable[str]) -> tuple[str, str] | None:
    """Find a CelebA layout among relative names ("/"-separated, as in a zip).

    Its image folder must hold a .jpg and both list files be beside it. Returns
    the shallowest (prefix, layout), the prefix "" or ending in "/", or None.
    """
    names, jpg_dirs = _index(relative_paths)
    found = [
        (prefix.count("/"), prefix, layout)
        for prefix in _prefixes(names)
        for layout in LAYOUTS
        if not _missing(prefix, layout, names, jpg_dirs)
    ]
    return min(found)[1:] if found else None  # the shallowest


def describe_missing(relative_paths: Iterable[str]) -> str:
    """One line per layout naming what its closest partial copy lacks."""
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
def _folder_names(root: Path, rel: str = "", depth: int = 1) -> Iterator[str]:
    """The names detect_layout needs: list files and one .jpg per image folder."""
    with os.scandir(root) as entries:
        for entry in entries:
            name = f"{rel}{entry.name}"
            if entry.name == _IMAGE_DIR_NAME and entry.is_dir():
                yield from _folder_names(Path(entry.path), name + "/", 0)
            elif entry.is_dir() and depth > 0:
                yield from _folder_names(Path(entry.path), name + "/", depth - 1)
            elif entry.name.lower().endswith(".jpg"):
                yield name
                return  # one is enough: an image folder may hold 200,000
            else:
                yield name


def _top_entries(root: Path, limit: int = 10) -> str:
    """The first ``limit`` entries of root by name (reads at most 1001)."""
    with os.scandir(root) as entries:
        first = itertools.islice(entries, 1001)
        names = [e.name + ("/" if e.is_dir() else "") for e in first]
    if not names:
        return "nothing (the folder is empty)"
    total = f"{len(names)}+" if len(names) > 1000 else str(len(names))
    more = f", ... ({total} entries)" if len(names) > limit else ""
    return ", ".join(sorted(names)[:limit]) + more


def find_celeba(root: str | os.PathLike) -> CelebAFiles:
    """Locate CelebA in ``root`` or in one folder below it (fast: a few listings).

    Raises DataError naming what was looked for, found, and missing.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(
            f"CelebA folder {root} does not exist. Download it first "
            "(`python -m vaelab download`) or make a generated stand-in "
            "(`python -m vaelab make-slice --out DIR`)."
        )
    if not root.is_dir():
        raise DataError(
            f"{root} is a file, not a folder: unzip it, then pass the folder that "
            "contains list_attr_celeba.txt or list_attr_celeba.csv."
        )
    names = list(_folder_names(root))
    found = detect_layout(names)
    if found is not None:
        return CelebAFiles.at(root / found[0], found[1])
    hint = ""
    if any("/" not in n and n.lower().endswith(".jpg") for n in names):
        hint = (
            f"\n{root} holds .jpg files directly: it looks like the image folder. "
            "Pass the folder that contains list_attr_celeba.* instead (probably "
            f"{root.parent})."
        )
    raise DataError(
        f"No CelebA found in {root}.\n"
        f"Looked for these paths, in {root} or one folder below it:\n"
        f"{expected_paths_text()}\n"
        f"Found in {root}: {_top_entries(root)}\n"
        f"Closest matches:\n{describe_missing(names)}{hint}\n"
        "Download CelebA (`python -m vaelab download`) or point to the folder "
        "that holds these files."
    )


def count_images(files: CelebAFiles) -> int:
    """Count the .jpg files in the image folder (reads the whole listing)."""
    with os.scandir(files.image_dir) as entries:
        return sum(1 for e in entries if e.name.lower().endswith(".jpg"))


# Reading the list files -----------------------------------------------------------
def decode_list_file(data: bytes) -> str:
    """Decode a list file: UTF-8 (a byte-order mark is dropped), else Latin-1.

    Copies re-saved by spreadsheet programs have a byte-order mark, or are Latin-1.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _list_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of a .csv or a space-separated .txt list file."""
    text = io.StringIO(decode_list_file(path.read_bytes()), newline="")
    if path.suffix.lower() == ".csv":
        rows = ([v.strip() for v in row] for row in csv.reader(text))
    else:
        rows = (line.split() for line in text)
    yield from enumerate(rows, start=1)


def _first_of_each(path: Path, rows) -> dict:
    """{id: value} of (line number, id, value) rows; later rows of an id are dropped."""
    kept, duplicates = {}, []
    for line_no, image_id, value in rows:
        if image_id in kept:
            duplicates.append(f"{image_id} (line {line_no})")
        else:
            kept[image_id] = value
    if duplicates:
        more = ", ..." if len(duplicates) > 5 else ""
        warnings.warn(
            f"{path}: {len(duplicates)} duplicate row(s) of images listed earlier, "
            f"e.g. {', '.join(duplicates[:5])}{more}; the first row of each image "
            "is used, the later ones are ignored.",
            stacklevel=3,
        )
    return kept


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


def _attribute_rows(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, image id, 40 values) after checking the header and each row."""
    rows = _list_rows(path)
    _, first = next(rows, (1, []))
    if path.suffix.lower() == ".csv":
        if first[:1] != ["image_id"]:
            raise DataError(
                f"{path} line 1: expected a header starting with 'image_id', got "
                f"{','.join(first[:3])!r}..."
            )
        _check_names(path, 1, first[1:])
        expected = 0
    else:
        try:
            expected = int(" ".join(first))
        except ValueError:
            raise DataError(
                f"{path} line 1: expected the image count, got "
                f"{' '.join(first)[:40]!r}."
            ) from None
        _check_names(path, 2, next(rows, (2, []))[1])
    count = 0
    for line_no, row in rows:
        if not row:
            continue
        if len(row) != len(ATTRIBUTE_NAMES) + 1 or not set(row[1:]) <= {"1", "-1"}:
            raise DataError(
                f"{path} line {line_no}: expected an image id and 40 values of 1 or "
                f"-1, got {len(row) - 1} values: {' '.join(row)[:80]!r}"
            )
        count += 1
        yield line_no, row[0], row[1:]
    if count < expected:  # more rows: duplicates, dropped by read_attributes
        raise DataError(
            f"{path}: line 1 says {expected} images but the file has {count} "
            "rows; the file is truncated or damaged, download it again."
        )


def read_attributes(files: CelebAFiles) -> tuple[list[str], np.ndarray]:
    """Read the 40 attributes of every image: (image ids, (N, 40) int8 of +1 / -1).

    Ids ("000001.jpg") in file order, columns in ATTRIBUTE_NAMES order; an image
    listed twice keeps its first row (and warns). Raises DataError: wrong or
    misordered names, a malformed row, or fewer rows than line 1 says.
    """
    path = Path(files.attr_file)
    kept = _first_of_each(path, _attribute_rows(path))
    attrs = np.array(list(kept.values()), dtype=np.int8)
    return list(kept), attrs.reshape(len(kept), len(ATTRIBUTE_NAMES))


def read_partitions(files: CelebAFiles) -> dict[str, int]:
    """Read the official split: image id -> 0 (train), 1 (validation) or 2 (test).

    Duplicates as for :func:`read_attributes`; a malformed row raises DataError.
    """
    path = Path(files.partition_file)
    rows = _list_rows(path)
    if path.suffix.lower() == ".csv":
        header = next(rows, (1, []))[1]
        if header != ["image_id", "partition"]:
            raise DataError(
                f"{path} line 1: expected the header 'image_id,partition', "
                f"got {','.join(header)[:60]!r}."
            )
    return _first_of_each(path, (_partition(path, n, row) for n, row in rows if row))


def _partition(path: Path, line_no: int, row: list[str]) -> tuple[int, str, int]:
    if len(row) != 2 or row[1] not in {"0", "1", "2"}:
        raise DataError(
            f"{path} line {line_no}: expected 'IMAGE_ID PARTITION' with "
            f"partition 0, 1 or 2, got {' '.join(row)[:60]!r}."
        )
    return line_no, row[0], int(row[1])


def split_ids(ids: Iterable[str], partitions: dict[str, int]) -> dict[str, list[str]]:
    """Group image ids by split, in order: {"train": [...], ...}.

    Raises DataError for an id that the partition file does not list.
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


# A generated slice (vaelab.synthetic: cartoon faces in CelebA's layouts, for CI, the
# demo and SMOKE=1) carries this file, so nothing mistakes it for CelebA.
GENERATED_MARKER = "generated_slice.json"


def is_generated_slice(path: str | os.PathLike) -> bool:
    """True if ``path`` is a generated slice (not real CelebA)."""
    return (Path(path) / GENERATED_MARKER).is_file()
