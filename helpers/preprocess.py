"""Cut the face box out of a CelebA frame, shrink it, and scale its pixels.

:func:`load_image` (PIL + NumPy, no TensorFlow) builds the uint8 cache once;
:func:`normalize` maps it to the model's value range.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Sequence

import numpy as np
from PIL import Image

from helpers.celeba import IMAGE_SIZE as CELEBA_FRAME

# (left, top, width, height) of the central face box in the 178x218 frame.
DEFAULT_CROP: tuple[int, int, int, int] = (19, 39, 140, 140)
DEFAULT_IMAGE_SIZE = 64

# Bilinear (a triangle filter) with its support widened by the shrink factor.
PIL_RESAMPLE = Image.Resampling.BILINEAR

# Refuse anything this large before decoding it (CelebA frames are 38,804 pixels).
MAX_PIXELS = 40_000_000


def check_crop(
    crop: Sequence[int], frame_size: tuple[int, int] | None = None
) -> tuple[int, int, int, int]:
    """Return ``crop`` (left, top, width, height) as four ints, or raise ValueError.

    ``frame_size`` is the (width, height) the box must fit in, if known.
    """
    if len(crop) != 4:
        raise ValueError(
            f"crop {crop!r} must be (left, top, width, height): exactly 4 numbers"
        )
    left, top, width, height = (int(v) for v in crop)
    if left < 0 or top < 0 or width < 1 or height < 1:
        raise ValueError(
            f"crop {crop!r} needs left, top >= 0 and a positive size (width, height)"
        )
    if frame_size is not None:
        frame_w, frame_h = frame_size
        if left + width > frame_w or top + height > frame_h:
            raise ValueError(
                f"crop box {crop!r} does not fit inside a {frame_w}x{frame_h} image"
            )
    return left, top, width, height


def frame_box(
    crop: Sequence[int], size: tuple[int, int], frame: tuple[int, int] = CELEBA_FRAME
) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom) to cut from an image of ``size`` (w, h).

    ``crop`` is (left, top, width, height) in ``frame``. In another size the box
    keeps its relative centre and its shape (faces are not stretched), scaled by
    ``min(width / 178, height / 218)`` and shifted to lie inside the image.
    """
    left, top, width, height = check_crop(crop, frame)
    (img_w, img_h), (frame_w, frame_h) = size, frame
    if (img_w, img_h) == (frame_w, frame_h):
        return float(left), float(top), float(left + width), float(top + height)
    scale = min(img_w / frame_w, img_h / frame_h)
    box_w, box_h = width * scale, height * scale
    centre_x = (left + width / 2) * img_w / frame_w
    centre_y = (top + height / 2) * img_h / frame_h
    x0 = min(max(centre_x - box_w / 2, 0.0), img_w - box_w)
    y0 = min(max(centre_y - box_h / 2, 0.0), img_h - box_h)
    return x0, y0, x0 + box_w, y0 + box_h


def _read_checked(source) -> io.BytesIO:
    """Read a JPEG's bytes and refuse one that lacks its end marker (truncated)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "read"):
        data = source.read()
    else:
        with open(source, "rb") as handle:
            data = handle.read()
    # A JPEG starts with FFD8 and ends with FFD9 (a few writers pad after it).
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise OSError("JPEG end marker missing: the file is truncated")
    return io.BytesIO(data)


# What each converted mode is called in meta.json and in prepare's summary.
MODE_NAMES = {
    "1": "1-bit black and white",
    "L": "8-bit grayscale",
    "LA": "grayscale with transparency",
    "La": "grayscale with transparency",
    "P": "palette",
    "PA": "palette with transparency",
    "RGBA": "RGB with transparency",
    "RGBa": "RGB with transparency",
    "RGBX": "RGB with padding",
    "CMYK": "CMYK",
    "YCbCr": "YCbCr",
    "LAB": "Lab",
    "HSV": "HSV",
    "I": "32-bit integer grayscale",
    "F": "32-bit float grayscale",
}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class UnsupportedModeError(ValueError):
    """An image whose pixel format cannot be turned into 8-bit RGB faithfully."""


def to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Return ``image`` as 8-bit RGB, and its original mode when it was converted.

    16-bit (and ``I`` within 0..65535) is scaled by 255 / 65535; ``F`` is read as
    0..1 or 0..255; transparency is composited over black. Raises
    UnsupportedModeError (naming the mode) where no conversion is faithful.
    """
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("I", "F") or mode in _SIXTEEN_BIT:
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
    transparent = "transparency" in image.info or mode in ("LA", "La", "PA")
    if transparent or mode in ("RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        label = f"{mode} with transparency" if mode in ("P", "L", "RGB") else mode
        return Image.alpha_composite(black, rgba).convert("RGB"), label
    if mode in MODE_NAMES:
        return image.convert("RGB"), mode
    raise UnsupportedModeError(
        f"image mode {mode} has no faithful conversion to 8-bit RGB"
    )


def load_image(
    source: str | os.PathLike | bytes | BinaryIO,
    crop: Sequence[int] = DEFAULT_CROP,
    image_size: int = DEFAULT_IMAGE_SIZE,
    draft: bool = True,
    notes: list | None = None,
    modes: list | None = None,
) -> np.ndarray:
    """Decode one image (a path, its bytes or a binary file), cut, resize: uint8.

    Returns (image_size, image_size, 3). ``crop`` is in the 178x218 frame; another
    frame is cut with :func:`frame_box` and noted in ``notes``; a mode that was not
    RGB is appended to ``modes``. ``draft`` lets libjpeg decode at 1/2 to 1/8 size
    where the box keeps ``image_size`` pixels (twice as fast, nearly identical).
    Raises OSError, SyntaxError or ValueError for a file that is missing, not an
    image, truncated, too large or too small, or in an unsupported mode.
    """
    with Image.open(_read_checked(source)) as image:
        full_w, full_h = image.size
        if full_w * full_h > MAX_PIXELS:
            raise ValueError(f"image is {full_w}x{full_h}, larger than any face photo")
        left, top, right, bottom = frame_box(crop, image.size)
        if image.size != CELEBA_FRAME and notes is not None:
            notes.append(
                f"frame {full_w}x{full_h}, not {CELEBA_FRAME[0]}x{CELEBA_FRAME[1]}: "
                "face box scaled to it"
            )
        width, height = right - left, bottom - top
        if width < 1 or height < 1:
            raise ValueError(f"image is {full_w}x{full_h}, too small for a face box")
        scale = 1.0
        if draft and image.format == "JPEG":
            # Ask for the smallest size at which the box keeps >= image_size pixels.
            want = (
                -(-full_w * image_size // int(width)),
                -(-full_h * image_size // int(height)),
            )
            result = image.draft("RGB", want)
            if result is not None:
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
    """Map uint8 pixels 0..255 to float32 in ``value_range`` (low, high).

    A NumPy array gives an array, a TensorFlow tensor a tensor.
    """
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
