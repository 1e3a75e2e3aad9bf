"""Cut the face box out of a CelebA frame, shrink it, and scale its pixels.

Two paths do the same thing and agree to within about one grey level:

* :func:`load_image` (PIL + NumPy) is what ``prepare`` uses to build the uint8
  cache once. It asks libjpeg to decode at half (or quarter) size when the crop
  will be shrunk that much anyway ("draft" mode), which is about twice as fast.
* :func:`tf_decode_crop_resize` (TensorFlow ops) is the per-epoch JPEG pipeline,
  kept for comparison.

Typical use::

    from helpers.preprocess import load_image, normalize
    face = load_image("img_align_celeba/000001.jpg")   # (64, 64, 3) uint8
    x = normalize(face[None], (0.0, 1.0))              # (1, 64, 64, 3) float32

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO, Sequence

import numpy as np
from PIL import Image

# (left, top, width, height) of the central face box in the 178x218 frame.
DEFAULT_CROP: tuple[int, int, int, int] = (19, 39, 140, 140)
DEFAULT_IMAGE_SIZE = 64

# Bilinear (triangle filter) with its support widened by the shrink factor:
# antialiased in both PIL and TensorFlow, so the two paths match.
PIL_RESAMPLE = Image.Resampling.BILINEAR
TF_RESIZE_METHOD = "bilinear"

# Refuse anything this large before decoding it (CelebA frames are 38,804 pixels).
MAX_PIXELS = 40_000_000


def check_crop(
    crop: Sequence[int], frame_size: tuple[int, int] | None = None
) -> tuple[int, int, int, int]:
    """Return ``crop`` as four ints, or raise ``ValueError`` saying what is wrong.

    Args:
        crop: (left, top, width, height) in pixels.
        frame_size: (width, height) of the image it is cut from, if known.

    Returns:
        (left, top, width, height) as a tuple of ints.
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


# The frame every crop box is given in: CelebA's aligned 178x218 images.
CELEBA_FRAME = (178, 218)


def frame_box(
    crop: Sequence[int], size: tuple[int, int], frame: tuple[int, int] = CELEBA_FRAME
) -> tuple[float, float, float, float]:
    """Return the crop box (left, top, right, bottom) to cut from an image of ``size``.

    Policy for an image that is not CelebA's 178x218 frame (a photo added by hand,
    a re-saved or re-scaled copy): the box keeps its relative centre and its shape,
    and its side scales by ``min(width / 178, height / 218)``, so a square box stays
    square (faces are not stretched) and covers the same share of the face; it is
    then shifted to lie inside the image. For a 178x218 image this is the crop box
    itself.

    Args:
        crop: (left, top, width, height) in the 178x218 frame.
        size: (width, height) of the image.
        frame: the frame ``crop`` is given in.
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


def _gray_to_rgb(values: np.ndarray, full_scale: float) -> Image.Image:
    """An RGB image of grayscale ``values`` scaled so ``full_scale`` becomes 255."""
    scaled = np.rint(values.astype(np.float64) * (255.0 / full_scale))
    gray = np.clip(scaled, 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")


def to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Return ``image`` as 8-bit RGB, and its original mode when it was converted.

    Policies: 16-bit grayscale (``I;16`` and its byte orders) is scaled by
    255 / 65535, never clipped; 32-bit integer grayscale (``I``) is read as 16-bit
    when its values fit 0..65535; float grayscale (``F``) is read as 0..1 when
    its values fit, else 0..255; transparency (``LA``, ``PA``, ``RGBA``, a ``P``
    or ``L`` image with a transparent colour) is composited over black; ``1``,
    ``L``, ``P``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` and ``RGBX`` go through
    PIL's conversion.

    Raises:
        UnsupportedModeError: a mode with no faithful conversion (e.g. signed
            16-bit, or integer / float values outside those ranges); the message
            names the mode.
    """
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in _SIXTEEN_BIT:
        values = np.asarray(image.convert("I"), dtype=np.int64)
        return _gray_to_rgb(values, 65535.0), mode
    if mode == "I":
        values = np.asarray(image, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise UnsupportedModeError(
                f"image mode I (32-bit integer) with values {values.min()} to "
                f"{values.max()}, outside 0..65535: no faithful 8-bit conversion"
            )
        return _gray_to_rgb(values, 65535.0), mode
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if not np.all(np.isfinite(values)) or (values.size and values.min() < 0):
            raise UnsupportedModeError(
                "image mode F (32-bit float) with negative or non-finite values: "
                "no faithful 8-bit conversion"
            )
        top = float(values.max()) if values.size else 0.0
        if top > 255.0:
            raise UnsupportedModeError(
                f"image mode F (32-bit float) with values up to {top:g}, above "
                "255: no faithful 8-bit conversion"
            )
        return _gray_to_rgb(values, 1.0 if top <= 1.0 else 255.0), mode
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
    """Decode one image file, cut the face box and resize it, antialiased.

    With ``draft`` the JPEG decoder scales by 1/2, 1/4 or 1/8 while decoding,
    as far as the crop box still has at least ``image_size`` pixels a side; the
    box is then resized with sub-pixel coordinates, so the geometry is exact.

    Policies for real-world files: a JPEG without its end marker, or one that PIL
    finds truncated, raises ``OSError`` (``prepare`` skips and reports it); an
    image that is not 178x218 is cut with :func:`frame_box` (same relative centre,
    square kept square) and noted in ``notes``.

    Args:
        source: a path, the file's bytes, or an open binary file.
        crop: (left, top, width, height) in pixels of the 178x218 frame.
        image_size: side of the square output.
        draft: allow reduced-size JPEG decoding (faster, nearly identical).
        notes: if given, a line is appended for an image handled by a policy
            (e.g. "frame 250x250, not 178x218: face box scaled").
        modes: if given, the original mode of an image that was not 8-bit RGB
            is appended (e.g. "I;16"); see :func:`to_rgb` for the conversions.

    Returns:
        (image_size, image_size, 3) uint8.

    Raises:
        OSError, SyntaxError, ValueError: the file is missing, not an image,
            truncated or corrupt, too large, smaller than the crop box, or in a
            pixel format with no faithful RGB conversion (UnsupportedModeError).
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
    """Map uint8 pixels to float32 in ``value_range`` (sigmoid: (0, 1); tanh: (-1, 1)).

    Works on NumPy arrays and on TensorFlow tensors (returns the same kind).

    Args:
        images: (..., H, W, 3) uint8, values 0..255.
        value_range: (low, high) that 0 and 255 map to.

    Returns:
        (..., H, W, 3) float32 in [low, high].
    """
    scale, offset = _scale_offset(value_range)
    if isinstance(images, np.ndarray):
        return images.astype(np.float32) * np.float32(scale) + np.float32(offset)
    import tensorflow as tf

    return tf.cast(images, tf.float32) * scale + offset


def denormalize(images, value_range: Sequence[float] = (0.0, 1.0)) -> np.ndarray:
    """Map floats in ``value_range`` back to uint8 pixels for display (clipped).

    Args:
        images: (..., H, W, 3) floats (NumPy, TensorFlow or any array-like).
        value_range: (low, high) that maps to 0 and 255.

    Returns:
        (..., H, W, 3) uint8 NumPy array.
    """
    scale, offset = _scale_offset(value_range)
    pixels = (np.asarray(images, dtype=np.float32) - offset) / scale
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8)
