"""Figures: image grids and loss curves (matplotlib figures or PNG files)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.errors import LabError
from helpers.files import atomic_write_bytes
from helpers.preprocess import denormalize


def make_grid(images, ncols=None, value_range=(0.0, 1.0), pad=2, pad_value=255):
    """Tile (N, H, W, 3) images (uint8 or floats in ``value_range``) into one uint8
    image, row by row, ``ncols`` a row (default: the smallest square that fits N)."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = denormalize(images, value_range)
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {images.shape}")
    n, h, w, c = images.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    grid = np.full(
        (nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), pad_value, dtype=np.uint8
    )
    for index, image in enumerate(images):
        row, col = divmod(index, ncols)
        top, left = pad + row * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid


def png_bytes(image_uint8: np.ndarray) -> bytes:
    """Encode a (H, W, 3) uint8 image as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(image_uint8).save(buffer, format="PNG")
    return buffer.getvalue()


def _write(path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, data)


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W, 3) image as PNG atomically; return the path."""
    return _write(path, png_bytes(image))


def save_grid(images, path, ncols=None, value_range=(0.0, 1.0)) -> Path:
    """Tile ``images`` with ``make_grid`` and write the PNG to ``path``."""
    return save_png(make_grid(images, ncols, value_range), path)


def image_rows(rows, value_range=(0.0, 1.0), pad: int = 2) -> np.ndarray:
    """Stack equally long strips of (N, H, W, 3) images into one uint8 image."""
    rows = [np.asarray(row) for row in rows]
    if not rows:
        raise ValueError("image_rows needs at least one row of images")
    lengths = {len(row) for row in rows}
    if len(lengths) != 1:
        raise ValueError(
            f"every row needs the same number of images, got {sorted(lengths)}"
        )
    rows = [r if r.dtype == np.uint8 else denormalize(r, value_range) for r in rows]
    return make_grid(np.concatenate(rows), ncols=len(rows[0]), pad=pad)


def save_image_rows(rows, path, value_range=(0.0, 1.0)) -> Path:
    """Tile ``rows`` with ``image_rows`` and write the PNG to ``path``."""
    return save_png(image_rows(rows, value_range), path)


def _show(grid, title, scale, labels=None, n_rows=1):
    """A figure of one image grid, with a label left of each of its n_rows rows."""
    import matplotlib.pyplot as plt

    height, width = grid.shape[:2]
    fig, ax = plt.subplots(
        figsize=(scale * width / 64 + (1.2 if labels else 0), scale * height / 64)
    )
    ax.imshow(grid)
    if labels:
        tile = (height - 2) / n_rows
        ax.set_xticks([])
        ax.set_yticks([2 + tile * (i + 0.5) for i in range(n_rows)], list(labels))
        for side in ax.spines.values():
            side.set_visible(False)
    else:
        ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def show_grid(images, ncols=None, value_range=(0.0, 1.0), title=None, scale=1.5):
    """Return a matplotlib figure showing ``images`` as one grid."""
    return _show(make_grid(images, ncols, value_range), title, scale)


def show_image_rows(rows, labels=None, value_range=(0.0, 1.0), title=None, scale=1.5):
    """Return a matplotlib figure of ``image_rows`` with a label left of each row."""
    return _show(image_rows(rows, value_range), title, scale, labels, len(rows))


def read_history_rows(path: str | Path) -> list[dict[str, float]]:
    """Read history.csv (Keras ``CSVLogger``) into one {column: value} per epoch;
    [] without the file, and a half-written last line (a crash) is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    out = []
    for row in rows:
        try:
            out.append(
                {k: float(v) for k, v in row.items() if k and v not in ("", None)}
            )
        except ValueError:
            continue  # a half-written last line
    return out


def read_history(csv_path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a Keras ``CSVLogger`` file into {column: per-epoch values}."""
    rows = read_history_rows(csv_path)
    columns = rows[0].keys() if rows else []
    return {key: [row.get(key, float("nan")) for row in rows] for key in columns}


def plot_history(history, path=None, title="Training"):
    """Plot total, reconstruction and KL loss (train and validation) side by side.

    ``history``: {name: per-epoch values}; ``path``: a PNG to save (optional).
    Returns the figure; raises LabError when there are no epochs.
    """
    import matplotlib.pyplot as plt

    if not len(history.get("loss", [])):
        raise LabError(
            "no epochs to plot: the history holds no 'loss' values. The training "
            "cell above has not run, or it failed: run it first"
        )
    titles = {"loss": "total", "reconstruction_loss": "reconstruction", "kl_loss": "KL"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    n = len(next(iter(history.values()), []))
    epochs = [int(e) + 1 for e in history.get("epoch", range(n))]
    points = {"marker": "o", "markersize": 3}
    for ax, (key, name) in zip(axes, titles.items()):
        for prefix, line, who in (("", "-", "train"), ("val_", "--", "validation")):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], line, label=who, **points)
        ax.set_title(f"{name} loss")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=100, format="png")
        _write(path, buffer.getvalue())
    return fig
