"""Check that a saved model or weights file is whole before trusting it.

Checked right after writing (before the rename into place) and before a resume
loads it. Both checks read the whole file once (about a second at most).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from helpers.errors import DamagedFileError

KERAS_MEMBERS = ("config.json", "model.weights.h5")


def keras_file_problem(path: str | os.PathLike) -> str | None:
    """Say what is wrong with a ``.keras`` file, or None when it is whole.

    Whole: a zip whose every member's CRC-32 matches, holding ``KERAS_MEMBERS``.
    """
    try:
        if Path(path).stat().st_size == 0:
            return "the file is empty"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                return f"its member {bad} fails its checksum"
            missing = [m for m in KERAS_MEMBERS if m not in archive.namelist()]
            if missing:
                return f"it lacks {', '.join(missing)}"
    except zipfile.BadZipFile as error:
        return f"not a readable zip: {error}"
    except (OSError, EOFError, ValueError, RuntimeError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def weights_file_problem(path: str | os.PathLike) -> str | None:
    """Say what is wrong with a ``.weights.h5`` file (HDF5), or None when every
    dataset in it can be read."""
    import h5py

    try:
        if Path(path).stat().st_size == 0:
            return "the file is empty"
        with h5py.File(path, "r") as handle:
            datasets = []
            handle.visititems(
                lambda name, item: (
                    datasets.append(item) if isinstance(item, h5py.Dataset) else None
                )
            )
            for dataset in datasets:
                dataset[()]
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as error:
        return f"not a readable HDF5 file: {error}"
    return None


def check_keras_file(path: str | os.PathLike, fix: str) -> None:
    """Raise ``DamagedFileError(path, problem, fix)`` unless the file is whole."""
    problem = keras_file_problem(path)
    if problem is not None:
        raise DamagedFileError(path, problem, fix)
