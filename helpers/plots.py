"""Figures: image grids and loss curves, with matplotlib.

Functions take NumPy arrays (or tensors) and either return a ``matplotlib`` figure or
write a PNG; none of them touches global state or the working directory.
"""

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


def make_grid(
    images,
    ncols: int | None = None,
    value_range=(0.0, 1.0),
    pad: int = 2,
    pad_value: int = 255,
) -> np.ndarray:
    """Tile a batch of images into one image, row by row.

    Args:
        images: (N, H, W, 3) float in ``value_range`` or uint8.
        ncols: images per row (default: the smallest square that fits N).
        value_range: range of float inputs.
        pad: pixels between tiles.
        pad_value: colour (0-255) of the padding.

    Returns:
        (rows * (H + pad) + pad, ncols * (W + pad) + pad, 3) uint8 array.
    """
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


def save_png(image: np.ndarray, path: str | os.PathLike) -> Path:
    """Write a uint8 (H, W, 3) image as PNG atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())


def save_grid(images, path, ncols=None, value_range=(0.0, 1.0)) -> Path:
    """Tile ``images`` with ``make_grid`` and write the PNG to ``path``."""
    return save_png(make_grid(images, ncols, value_range), path)


def show_grid(images, ncols=None, value_range=(0.0, 1.0), title=None, scale=1.5):
    """Return a matplotlib figure showing ``images`` as one grid."""
    import matplotlib.pyplot as plt

    grid = make_grid(images, ncols, value_range)
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(figsize=(scale * width / 64, scale * height / 64))
    ax.imshow(grid)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def read_history_rows(path: str | Path) -> list[dict[str, float]]:
    """Read history.csv (Keras ``CSVLogger``) into one {column: value} per epoch.

    A missing file gives []; a half-written last line (a crash while Keras wrote
    it) is skipped.
    """
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

    Args:
        history: {name: per-epoch values} as in ``keras.callbacks.History.history`` or
            ``read_history``; an ``epoch`` key, if present, gives the x axis.
        path: where to save a PNG (optional).
        title: figure title.

    Returns:
        The matplotlib figure.

    Raises:
        LabError: the history has no epochs (the training cell has not run).
    """
    import matplotlib.pyplot as plt

    if not len(history.get("loss", [])):
        raise LabError(
            "no epochs to plot: the history holds no 'loss' values. The training "
            "cell above has not run, or it failed: run it first"
        )
    keys = [
        ("loss", "total"),
        ("reconstruction_loss", "reconstruction"),
        ("kl_loss", "KL"),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    n = len(next(iter(history.values()), []))
    epochs = [int(e) + 1 for e in history.get("epoch", range(n))]
    for ax, (key, label) in zip(axes, keys):
        for prefix, style in (("", "-"), ("val_", "--")):
            if prefix + key in history:
                ax.plot(
                    epochs,
                    history[prefix + key],
                    style,
                    marker="o",
                    markersize=3,
                    label="validation" if prefix else "train",
                )
        ax.set_title(f"{label} loss")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig


def save_figure(fig, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write a matplotlib figure as PNG atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=dpi, format="png")
    return atomic_write_bytes(path, buffer.getvalue())


def image_rows(rows, value_range=(0.0, 1.0), pad: int = 2) -> np.ndarray:
    """Stack equally long strips of images, one strip per row, into one image.

    Used for originals above reconstructions, interpolation paths, traversals and
    attribute strips.

    Args:
        rows: sequence of (N, H, W, 3) arrays (float in ``value_range`` or uint8),
            every one with the same N.
        value_range: range of float inputs.
        pad: pixels between tiles.

    Returns:
        (len(rows) * (H + pad) + pad, N * (W + pad) + pad, 3) uint8 array.
    """
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


def show_image_rows(rows, labels=None, value_range=(0.0, 1.0), title=None, scale=1.5):
    """Return a matplotlib figure of ``image_rows`` with a label left of each row."""
    import matplotlib.pyplot as plt

    grid = image_rows(rows, value_range)
    height, width = grid.shape[:2]
    fig, ax = plt.subplots(
        figsize=(scale * width / 64 + (1.2 if labels else 0), scale * height / 64)
    )
    ax.imshow(grid)
    ax.set_xticks([])
    if labels:
        tile = (height - 2) / len(rows)
        ax.set_yticks([2 + tile * (i + 0.5) for i in range(len(rows))], list(labels))
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
