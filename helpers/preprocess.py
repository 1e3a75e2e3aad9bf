"""Cut the face box out of a CelebA frame, shrink it, and scale its pixels:
:func:`load_image` (PIL + NumPy, no TensorFlow) builds the uint8 cache once,
:func:`normalize` maps it to the model's value range."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import BinaryIO, Sequence

import numpy as np
from PIL import Image

from helpers.celeba import IMAGE_SIZE as CELEBA_FRAME

# (left, top, width, height) of the central face box in the 178x218 frame.
DEFAULT_CROP: tuple[int, int, int, int] = (19, 39, 140, 140)
DEFAULT_IMAGE_SIZE = 64
PIL_RESAMPLE = Image.Resampling.BILINEAR  # its support widened by the shrink factor
MAX_PIXELS = 40_000_000  # refused before decoding (CelebA frames are 38,804 pixels)
# Modes converted to 8-bit RGB by PIL itself (16-bit, I and F are scaled by to_rgb).
_CONVERTIBLE = "1 L LA La P PA RGBA RGBa RGBX CMYK YCbCr LAB HSV".split()


def check_crop(crop: Sequence[int], frame_size: tuple[int, int] | None = None) -> tuple:
    """Return ``crop`` (left, top, width, height) as four ints, or raise ValueError;
    ``frame_size`` is the (width, height) the box must fit in, if known."""
    if len(crop) != 4:
        raise ValueError(
            f"crop {crop!r} must be (left, top, width, height): exactly 4 numbers"
        )
    left, top, width, height = (int(v) for v in crop)
    if left < 0 or top < 0 or width < 1 or height < 1:
        raise ValueError(
            f"crop {crop!r} needs left, top >= 0 and a positive size (width, height)"
        )
    if frame_size and (left + width > frame_size[0] or top + height > frame_size[1]):
        raise ValueError(
            f"crop box {crop!r} does not fit inside a "
            f"{frame_size[0]}x{frame_size[1]} image"
        )
    return left, top, width, height


def frame_box(crop: Sequence[int], size: tuple[int, int], frame=CELEBA_FRAME) -> tuple:
    """The box (left, top, right, bottom) to cut from an image of ``size`` (w, h) for
    ``crop`` (left, top, width, height) in ``frame``: in another size it keeps its
    relative centre and shape, scaled by ``min(w / 178, h / 218)``, inside the image."""
    left, top, width, height = check_crop(crop, frame)
    size, frame = np.asarray(size, float), np.asarray(frame, float)
    box = np.array([width, height]) * min(size / frame)
    centre = (np.array([left, top]) + np.array([width, height]) / 2) * size / frame
    x0, y0 = np.minimum(np.maximum(centre - box / 2, 0.0), size - box)
    return x0, y0, x0 + box[0], y0 + box[1]


class UnsupportedModeError(ValueError):
    """An image whose pixel format cannot be turned into 8-bit RGB faithfully."""


def to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Return ``image`` as 8-bit RGB, and its original mode when it was converted:
    16-bit (and ``I`` in 0..65535) scaled by 255 / 65535, ``F`` read as 0..1 or 0..255,
    transparency over black; UnsupportedModeError where no conversion is faithful."""
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("I", "F") or mode.startswith("I;16"):
        values = np.asarray(image.convert("F" if mode == "F" else "I"), np.float64)
        low, top = (values.min(), values.max()) if values.size else (0.0, 0.0)
        limit = 255.0 if mode == "F" else 65535.0
        if not (0 <= low and top <= limit):  # NaN fails both
            raise UnsupportedModeError(
                f"image mode {mode} with values {low:g} to {top:g}, outside "
                f"0..{limit:g}: no faithful 8-bit conversion"
            )
        full = 65535.0 if mode != "F" else (1.0 if top <= 1.0 else 255.0)
        gray = np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB"), mode
    if "transparency" in image.info or mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        label = f"{mode} with transparency" if mode in ("P", "L") else mode
        return Image.alpha_composite(black, rgba).convert("RGB"), label
    if mode in _CONVERTIBLE:
        return image.convert("RGB"), mode
    raise UnsupportedModeError(f"image mode {mode}: no faithful conversion to RGB")


def load_image(
    source: str | os.PathLike | bytes | BinaryIO,
    crop: Sequence[int] = DEFAULT_CROP,
    image_size: int = DEFAULT_IMAGE_SIZE,
    draft: bool = True,
    notes: list | None = None,
    modes: list | None = None,
) -> np.ndarray:
    """Decode one image (a path, its bytes or a binary file), cut ``crop`` (in the
    178x218 frame; another frame by :func:`frame_box`, noted in ``notes``), resize:
    uint8 (image_size, image_size, 3). A mode not RGB is appended to ``modes``.
    ``draft``: libjpeg decodes at 1/2 to 1/8 size (twice as fast, nearly identical).
    OSError, SyntaxError or ValueError: missing, not an image, truncated, too large
    or small, or an unsupported mode."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data = source.read() if hasattr(source, "read") else Path(source).read_bytes()
    # A JPEG starts with FFD8 and ends with FFD9 (a few writers pad after it).
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise OSError("JPEG end marker missing: the file is truncated")
    with Image.open(io.BytesIO(data)) as image:
        full_w, full_h = image.size
        if full_w * full_h > MAX_PIXELS:
            raise ValueError(f"image is {full_w}x{full_h}, larger than any face photo")
        left, top, right, bottom = frame_box(crop, image.size)
        if image.size != CELEBA_FRAME and notes is not None:
            notes.append(f"frame {full_w}x{full_h}, not 178x218: face box scaled to it")
        if right - left < 1 or bottom - top < 1:
            raise ValueError(f"image is {full_w}x{full_h}, too small for a face box")
        scale = 1.0
        if draft and image.format == "JPEG":
            # The smallest size at which the box keeps >= image_size pixels.
            want = (
                -(-full_w * image_size // int(right - left)),
                -(-full_h * image_size // int(bottom - top)),
            )
            if (result := image.draft("RGB", want)) is not None:
                scale = full_w / result[1][2]
        image.load()
        image, converted = to_rgb(image)
        if converted is not None and modes is not None:
            modes.append(converted)
        box = (left / scale, top / scale, right / scale, bottom / scale)
        out = image.resize((image_size, image_size), PIL_RESAMPLE, box=box)
        return np.asarray(out, dtype=np.uint8)


def _scale_offset(value_range: Sequence[float]) -> tuple[float, float]:
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(
            f"value_range must be (low, high) with high > low, got {value_range!r}"
        )
    return (high - low) / 255.0, low


def normalize(images, value_range: Sequence[float] = (0.0, 1.0)):
    """Map uint8 pixels 0..255 to float32 in ``value_range`` (low, high): a NumPy
    array gives an array, a TensorFlow tensor a tensor."""
    scale, offset = _scale_offset(value_range)
    if isinstance(images, np.ndarray):
        return images.astype(np.float32) * np.float32(scale) + np.float32(offset)
    import tensorflow as tf

    return tf.cast(images, tf.float32) * scale + offset


def denormalize(images, value_range: Sequence[float] = (0.0, 1.0)) -> np.ndarray:
    """Map floats in ``value_range`` back to uint8 pixels (clipped) for display."""
    scale, offset = _scale_offset(value_range)
    pixels = (np.asarray(images, dtype=np.float32) - offset) / scale
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
