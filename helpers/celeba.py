"""Find and read CelebA's own files, at a root folder or one folder below it::

    official                          kaggle (jessicali9530/celeba-dataset)
    ROOT/img_align_celeba/*.jpg       ROOT/img_align_celeba/img_align_celeba/*.jpg
    ROOT/list_attr_celeba.txt         ROOT/list_attr_celeba.csv
    ROOT/list_eval_partition.txt      ROOT/list_eval_partition.csv

:func:`detect_layout` works on names only: the same rules serve folders and zips.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from collections import namedtuple
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

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

# Where one layout keeps its files, relative to its root ("/"-separated).
LayoutPaths = namedtuple("LayoutPaths", "image_dir attr_file partition_file")
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
        return cls(Path(root), layout, *(Path(root, rel) for rel in LAYOUTS[layout]))

    def image_path(self, image_id: str) -> Path:
        """The path of one image, e.g. ``image_path("000001.jpg")``."""
        return self.image_dir / image_id


def expected_paths_text() -> str:
    """Both layouts' relative paths, one line each, for error messages."""
    labels = {"kaggle": "kaggle (jessicali9530/celeba-dataset)"}
    return "\n".join(
        f"  {labels.get(name, name)}: {rel.image_dir}/*.jpg, {', '.join(rel[1:])}"
        for name, rel in LAYOUTS.items()
    )


# Layout detection on names --------------------------------------------------------
def _missing(prefix: str, layout: str, names: set[str], dirs: set[str]) -> list[str]:
    rel = LAYOUTS[layout]
    missing = [] if prefix + rel.image_dir in dirs else [rel.image_dir + "/*.jpg"]
    return missing + [f for f in rel[1:] if prefix + f not in names]


def _closest(relative_paths: Iterable[str]) -> dict[str, tuple]:
    """Per layout, its closest copy among the names: (how many of its paths are
    missing, depth, prefix ("" or ending in "/"), the missing paths)."""
    names, jpg_dirs = set(), set()
    for name in relative_paths:
        name = name.replace("\\", "/").removeprefix("./")
        folder, _, base = name.rpartition("/")
        if base in _LIST_NAMES:
            names.add(name)
        elif base.lower().endswith(".jpg"):
            jpg_dirs.add(folder)
    prefixes = {""} | {n[: n.rfind("/") + 1] for n in names}
    prefixes |= {
        d[: d.index(_IMAGE_DIR_NAME)] for d in jpg_dirs if _IMAGE_DIR_NAME in d
    }
    return {
        layout: min(
            (len(m), p.count("/"), p, m)
            for p in prefixes
            for m in [_missing(p, layout, names, jpg_dirs)]
        )
        for layout in LAYOUTS
    }


def detect_layout(relative_paths: Iterable[str]) -> tuple[str, str] | None:
    """Find a CelebA layout among relative names ("/"-separated, as in a zip): an
    image folder holding a .jpg, both list files beside it. Returns the shallowest
    (prefix, layout), the prefix "" or ending in "/", or None."""
    closest = _closest(relative_paths).items()
    found = [(depth, p, layout) for layout, (n, depth, p, _) in closest if n == 0]
    return min(found)[1:] if found else None


def describe_missing(relative_paths: Iterable[str]) -> str:
    """One line per layout naming what its closest partial copy lacks."""
    return "\n".join(
        f"  {layout}{f' (at {p})' if p else ''}: missing {', '.join(m) or 'nothing'}"
        for layout, (*_, p, m) in _closest(relative_paths).items()
    )


# Finding a copy on disk -----------------------------------------------------------
def _folder_names(root: Path, rel: str = "", depth: int = 1) -> Iterator[str]:
    """The names detect_layout needs: list files and one .jpg per image folder."""
    with os.scandir(root) as entries:
        for entry in entries:
            name = f"{rel}{entry.name}"
            if entry.is_dir() and (entry.name == _IMAGE_DIR_NAME or depth > 0):
                yield from _folder_names(Path(entry.path), name + "/", depth - 1)
            else:
                yield name
                if entry.name.lower().endswith(".jpg"):
                    return  # one is enough: an image folder may hold 200,000


def _top_entries(root: Path, limit: int = 10) -> str:
    """The first ``limit`` entries of root by name (reads at most 1001)."""
    with os.scandir(root) as entries:
        names = sorted(e.name + "/" * e.is_dir() for e in islice(entries, 1001))
    if not names:
        return "nothing (the folder is empty)"
    more = f", ... ({len(names)}{'+' * (len(names) > 1000)} entries)"
    return ", ".join(names[:limit]) + (more if len(names) > limit else "")


def find_celeba(root: str | os.PathLike) -> CelebAFiles:
    """Locate CelebA in ``root`` or in one folder below it (fast: a few listings);
    DataError names what was looked for, found, and missing."""
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
    if (found := detect_layout(names)) is not None:
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
    """Decode a list file: UTF-8 (minus a byte-order mark), else Latin-1 (re-saved)."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _list_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the non-blank lines of a .csv or a .txt list file."""
    text = io.StringIO(decode_list_file(path.read_bytes()), newline="")
    rows = csv.reader(text) if path.suffix.lower() == ".csv" else map(str.split, text)
    return ((n, [v.strip() for v in row]) for n, row in enumerate(rows, 1) if row)


def _first_of_each(path: Path, rows) -> dict:
    """{id: value} of (line number, id, value) rows; later rows of an id are dropped."""
    kept, duplicates = {}, []
    for line_no, image_id, value in rows:
        if image_id in kept:
            duplicates.append(f"{image_id} (line {line_no})")
        else:
            kept[image_id] = value
    if duplicates:
        warnings.warn(
            f"{path}: {len(duplicates)} duplicate row(s) of images listed earlier, "
            f"e.g. {', '.join(duplicates[:5])}{', ...' * (len(duplicates) > 5)}; the "
            "first row of each image is used, the later ones are ignored.",
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
            f"{path} line {line_no}: {len(names)} attribute names, expected 40."
        )


def _attribute_rows(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line number, image id, 40 values) after checking the header and each row."""
    rows = _list_rows(path)
    first, expected = next(rows, (1, []))[1], 0
    if path.suffix.lower() == ".csv":
        if first[:1] != ["image_id"]:
            raise DataError(
                f"{path} line 1: expected a header starting with 'image_id', got "
                f"{','.join(first[:3])!r}..."
            )
        _check_names(path, 1, first[1:])
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
    for count, (line_no, row) in enumerate(rows, 1):
        if len(row) != len(ATTRIBUTE_NAMES) + 1 or not set(row[1:]) <= {"1", "-1"}:
            raise DataError(
                f"{path} line {line_no}: expected an image id and 40 values of 1 or "
                f"-1, got {len(row) - 1} values: {' '.join(row)[:80]!r}"
            )
        yield line_no, row[0], row[1:]
    if count < expected:  # more rows: duplicates, dropped by read_attributes
        raise DataError(
            f"{path}: line 1 says {expected} images but the file has {count} "
            "rows; the file is truncated or damaged, download it again."
        )


def read_attributes(files: CelebAFiles) -> tuple[list[str], np.ndarray]:
    """Return (image ids in file order, (N, 40) int8 of +1 / -1 in ATTRIBUTE_NAMES
    order); an image listed twice keeps its first row (and warns). Raises DataError:
    wrong or misordered names, a malformed row, or fewer rows than line 1 says."""
    kept = _first_of_each(files.attr_file, _attribute_rows(files.attr_file))
    attrs = np.array(list(kept.values()), dtype=np.int8)
    return list(kept), attrs.reshape(len(kept), len(ATTRIBUTE_NAMES))


def read_partitions(files: CelebAFiles) -> dict[str, int]:
    """Read the official split: image id -> 0 (train), 1 (validation) or 2 (test);
    duplicates as for :func:`read_attributes`, a malformed row raises DataError."""
    rows = _list_rows(path := files.partition_file)
    if path.suffix.lower() == ".csv":
        if (header := next(rows, (1, []))[1]) != ["image_id", "partition"]:
            raise DataError(
                f"{path} line 1: expected the header 'image_id,partition', "
                f"got {','.join(header)[:60]!r}."
            )
    parsed = []
    for line_no, row in rows:
        if len(row) != 2 or row[1] not in {"0", "1", "2"}:
            raise DataError(
                f"{path} line {line_no}: expected 'IMAGE_ID PARTITION' with "
                f"partition 0, 1 or 2, got {' '.join(row)[:60]!r}."
            )
        parsed.append((line_no, row[0], int(row[1])))
    return _first_of_each(path, parsed)


def split_ids(ids: Iterable[str], partitions: dict[str, int]) -> dict[str, list[str]]:
    """Group image ids by split, in order: {"train": [...], ...}; DataError for an
    id that the partition file does not list."""
    names, out = list(SPLITS), {name: [] for name in SPLITS}
    for image_id in ids:
        if image_id not in partitions:
            raise DataError(
                f"image {image_id} has attributes but no partition entry: the "
                "attribute and partition files do not belong together."
            )
        out[names[partitions[image_id]]].append(image_id)
    return out


# vaelab.synthetic's cartoon faces in CelebA's layouts (CI, SMOKE=1) carry this file.
GENERATED_MARKER = "generated_slice.json"


def is_generated_slice(path: str | os.PathLike) -> bool:
    """True if ``path`` is a generated slice (not real CelebA)."""
    return (Path(path) / GENERATED_MARKER).is_file()
