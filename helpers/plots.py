"""Figures: image grids and loss curves (matplotlib figures or PNG files)."""

from __future__ import annotations

import contextlib
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
    nrows = -(-n // ncols)
    tiles = np.full((nrows * ncols, h + pad, w + pad, c), pad_value, np.uint8)
    tiles[:n, pad:, pad:] = images  # each tile: the image below and right of a pad
    grid = tiles.reshape(nrows, ncols, h + pad, w + pad, c).swapaxes(1, 2)
    grid = grid.reshape(nrows * (h + pad), ncols * (w + pad), c)
    return np.pad(grid, ((0, pad), (0, pad), (0, 0)), constant_values=pad_value)


def png_bytes(image) -> bytes:
    """Encode a (H, W, 3) uint8 image (or a matplotlib figure) as PNG bytes."""
    buffer = io.BytesIO()
    if isinstance(image, np.ndarray):
        Image.fromarray(image).save(buffer, format="PNG")
    else:
        image.savefig(buffer, dpi=100, format="png")
    return buffer.getvalue()


def save_png(image, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W, 3) image (or a matplotlib figure) as PNG atomically."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_bytes(path, png_bytes(image))


def save_grid(images, path, ncols=None, value_range=(0.0, 1.0)) -> Path:
    """Tile ``images`` with ``make_grid`` and write the PNG to ``path``."""
    return save_png(make_grid(images, ncols, value_range), path)


def image_rows(rows, value_range=(0.0, 1.0), pad: int = 2) -> np.ndarray:
    """Stack equally long strips of (N, H, W, 3) images into one uint8 image."""
    rows = [np.asarray(row) for row in rows]
    lengths = sorted({len(row) for row in rows})
    if len(lengths) != 1:
        raise ValueError(f"need rows, each the same number of images, got {lengths}")
    rows = [r if r.dtype == np.uint8 else denormalize(r, value_range) for r in rows]
    return make_grid(np.concatenate(rows), ncols=len(rows[0]), pad=pad)


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
        ax.spines[:].set_visible(False)
    else:
        ax.axis("off")
    ax.set_title(title or "")
    fig.tight_layout()
    return fig


def show_grid(images, ncols=None, value_range=(0.0, 1.0), title=None, scale=1.5):
    """Return a matplotlib figure showing ``images`` as one grid."""
    return _show(make_grid(images, ncols, value_range), title, scale)


def show_image_rows(rows, labels=None, value_range=(0.0, 1.0), title=None, scale=1.5):
    """Return a matplotlib figure of ``image_rows`` with a label left of each row."""
    return _show(image_rows(rows, value_range), title, scale, labels, len(rows))


def read_history_rows(path: str | Path) -> list[dict[str, float]]:
    """Read history.csv (Keras ``CSVLogger``) into one {column: value} per epoch."""
    out = []
    if Path(path).exists():
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle):
                with contextlib.suppress(ValueError):  # a crash's half-written line
                    out.append({k: float(v) for k, v in row.items() if k and v})
    return out


def read_history(csv_path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a Keras ``CSVLogger`` file into {column: per-epoch values}."""
    rows = read_history_rows(csv_path)
    return {k: [r.get(k, float("nan")) for r in rows] for k in (rows or [{}])[0]}


def plot_history(history, path=None, title="Training"):
    """Plot total, reconstruction and KL loss per epoch; save to ``path`` if given."""
    import matplotlib.pyplot as plt

    if not len(history.get("loss", [])):
        raise LabError(
            "no epochs to plot: the history holds no 'loss' values. The training "
            "cell above has not run, or it failed: run it first"
        )
    titles = {"loss": "total", "reconstruction_loss": "reconstruction", "kl_loss": "KL"}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    epochs = [int(e) + 1 for e in history.get("epoch", range(len(history["loss"])))]
    points = {"marker": "o", "markersize": 3}
    for ax, (key, name) in zip(axes, titles.items()):
        for prefix, line, who in (("", "-", "train"), ("val_", "--", "validation")):
            if prefix + key in history:
                ax.plot(epochs, history[prefix + key], line, label=who, **points)
        ax.set(title=f"{name} loss", xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_png(fig, path)
    return fig
