"""Check command-line values while parsing, before any command writes a file.

Each function here is an ``argparse`` ``type=``: a bad value stops the command
with argparse's one-line "argument --n: ..." message and exit code 2, before a
run directory, cache or figure is touched::

    parser.add_argument("--n", type=whole(1, MAX_GRID_FACES), default=64)
    parser.add_argument("--temperature", type=real(0.0, 10.0), default=1.0)
    parser.add_argument("--seed", type=SEED, default=0)
    parser.add_argument("--out", type=output_file, required=True)
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

# Seeds NumPy, Python and Keras accept alike.
SEED_MAX = 2**32 - 1
# Faces one `sample` grid holds: 32 x 32 (a million would exhaust memory first).
MAX_GRID_FACES = 1024
# Images `evaluate`, `explore` and the mixture fit hold in memory as float32 at once:
# 20,000 at 64 px is about 1 GB per copy (a whole validation or test split fits).
MAX_EVAL_IMAGES = 20_000


def whole(low: int, high: int | None = None):
    """Return an argparse type: a whole number in [low, high] (high None: no limit)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a whole number"
            ) from None
        if value < low or (high is not None and value > high):
            allowed = f"from {low:,} to {high:,}" if high is not None else f">= {low:,}"
            raise argparse.ArgumentTypeError(
                f"{value:,} is out of range: use {allowed}"
            )
        return value

    parse.__name__ = "whole number"
    return parse


def real(low: float, high: float):
    """Return an argparse type: a finite number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"{text} is out of range: use a number from {low:g} to {high:g}"
            )
        return value

    parse.__name__ = "number"
    return parse


SEED = whole(0, SEED_MAX)


def _writable_ancestor(path: Path) -> None:
    """Fail unless the nearest existing folder above ``path`` is a writable folder."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path}: {parent} is a file, so nothing can be written below it"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(
            f"{path}: the folder {parent} is read-only for you; choose another place"
        )


def output_file(text: str) -> Path:
    """argparse type: a file to write (not an existing folder, in a writable place)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is a folder: give a file name, e.g. {path / 'samples.png'}"
        )
    _writable_ancestor(path)
    return path


def output_dir(text: str) -> Path:
    """argparse type: a folder to write into (not an existing file, writable)."""
    path = Path(text).expanduser()
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{path} is a file: give a folder (it is created if missing)"
        )
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(
                f"{path} is read-only for you; choose another folder"
            )
    else:
        _writable_ancestor(path)
    return path


# A run's and a cache's own files: no output path may overwrite them.
RUN_FILES = {
    "config.json",
    "run.json",
    "best.keras",
    "instructor.keras",
    "history.csv",
    "fixed_z.npy",
    "architecture.json",
    "loss_curves.png",
    "student_parts.json",
}
RUN_FOLDERS = {"backup", "samples", "tensorboard"}
CACHE_SUFFIXES = ("_images.npy", "_attributes.npy", "_ids.txt")


def protected_file_reason(path: Path) -> str | None:
    """Say whose file ``path`` is when it belongs to a run or a cache, else None."""
    path = Path(path).expanduser().absolute()
    for folder in path.parents:
        relative = path.relative_to(folder)
        if (folder / "config.json").is_file() and (folder / "run.json").is_file():
            if relative.parts[0] in RUN_FOLDERS or str(relative) in RUN_FILES:
                return f"it is the run {folder}'s own {relative}"
        if (folder / "meta.json").is_file() and len(relative.parts) == 1:
            name = relative.name
            if name == "meta.json" or name.endswith(CACHE_SUFFIXES):
                return f"it is the cache {folder}'s own {name}"
    return None


def output_file_of(*suffixes: str):
    """argparse type: an ``output_file`` ending in one of ``suffixes`` that is not
    a run's or a cache's own file (a typo must not overwrite a trained model)."""

    def parse(text: str) -> Path:
        path = output_file(text)
        if path.suffix.lower() not in suffixes:
            wanted = " or ".join(suffixes)
            raise argparse.ArgumentTypeError(
                f"{path}: the file name must end in {wanted}, e.g. "
                f"{path.with_suffix(suffixes[0]).name}"
            )
        reason = protected_file_reason(path)
        if reason is not None:
            raise argparse.ArgumentTypeError(
                f"refusing to overwrite {path}: {reason}; choose another file "
                f"name, e.g. {path.parent.parent / ('new' + suffixes[0])}"
            )
        return path

    parse.__name__ = "output file"
    return parse
