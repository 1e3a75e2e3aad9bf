"""Check that a saved model or weights file is whole before trusting it.

A checkpoint is verified right after it is written (before it is renamed into
place) and again before a resume loads it, so a file damaged on disk (a full disk,
a sync client, a hand edit) is never used silently:

* ``.keras`` (a zip): it opens, every member's CRC-32 matches, and it holds the
  members Keras reads (``config.json``, ``model.weights.h5``);
* ``.weights.h5`` (HDF5): it opens and every dataset in it can be read.

Both read the whole file once: about a second for the largest preset's model.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from helpers.errors import DamagedFileError

KERAS_MEMBERS = ("config.json", "model.weights.h5")


def keras_file_problem(path: str | os.PathLike) -> str | None:
    """Return what is wrong with a ``.keras`` file, or None when it is whole."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
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
    """Return what is wrong with a ``.weights.h5`` file, or None when it is whole."""
    import h5py

    path = Path(path)
    try:
        if path.stat().st_size == 0:
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
    """Raise ``DamagedFileError(path, problem, fix)`` unless the .keras file is whole."""
    problem = keras_file_problem(path)
    if problem is not None:
        raise DamagedFileError(path, problem, fix)


def check_weights_file(path: str | os.PathLike, fix: str) -> None:
    """Raise ``DamagedFileError(path, problem, fix)`` unless the weights file is whole."""
    problem = weights_file_problem(path)
    if problem is not None:
        raise DamagedFileError(path, problem, fix)
