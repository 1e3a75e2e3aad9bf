"""Self-check for 01_setup: the crop-resize-normalise function."""

from __future__ import annotations


import numpy as np

from helpers.checks._common import (
    CheckFailed,
    _call,
    _numpy,
    _passed,
)


# ---------------------------------------------------------------------- preprocess
def _test_frame(invert: bool = False) -> np.ndarray:
    """A smooth synthetic 218x178 frame: every crop or stretch looks different."""
    rows, cols = np.mgrid[0:218, 0:178].astype(np.float64)
    red = 255 * rows / 217
    green = 255 * cols / 177
    blue = 127.5 + 100 * np.sin(2 * np.pi * rows / 70) * np.cos(2 * np.pi * cols / 55)
    frame = np.clip(np.rint(np.stack([red, green, blue], axis=-1)), 0, 255)
    frame = frame.astype(np.uint8)
    return 255 - frame if invert else frame


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    from helpers.preprocess import PIL_RESAMPLE

    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((size, size), PIL_RESAMPLE), dtype=np.uint8)


def check_preprocess(
    fn,
    value_range=(0.0, 1.0),
    crop=(19, 39, 140, 140),
    image_size: int = 64,
    batch: bool = False,
) -> None:
    """Check a crop-resize-normalise function against ``helpers.preprocess``.

    Args:
        fn: the student's function: (218, 178, 3) uint8 frame -> (image_size,
            image_size, 3) float32 in ``value_range``; with ``batch=True`` it must
            also map (N, 218, 178, 3) -> (N, image_size, image_size, 3).
        value_range: (0, 1) for a sigmoid decoder, (-1, 1) for tanh.
        crop: the face box (left, top, width, height) the notebook asked for.
        image_size: side of the output.
        batch: also check a batch of two frames.

    Raises:
        CheckFailed: wrong shape, dtype, range, crop, or pixel values.
    """
    from PIL import Image

    from helpers.preprocess import crop_resize, normalize

    frame = _test_frame()
    low, high = (float(v) for v in value_range)
    reference = normalize(
        crop_resize(Image.fromarray(frame), crop, image_size), value_range
    )
    out = _numpy(_call(fn, frame.copy()))
    _check_one_preprocessed(out, reference, frame, value_range, crop, image_size)
    if batch:
        frames = np.stack([frame, _test_frame(invert=True)])
        try:
            out = _numpy(_call(fn, frames.copy()))
        except CheckFailed as error:
            if str(error).startswith("You have not"):
                raise
            raise CheckFailed(
                f"a batch of frames {frames.shape} failed: handle a "
                f"leading batch axis. {error}"
            ) from error.__cause__
        want = (2, image_size, image_size, 3)
        if out.shape != want:
            raise CheckFailed(
                f"a batch of frames {frames.shape} gave shape {out.shape}, "
                f"expected {want}: handle a leading batch axis"
            )
        second = normalize(
            crop_resize(Image.fromarray(frames[1]), crop, image_size), value_range
        )
        for image, ref in zip(out, (reference, second)):
            _check_one_preprocessed(
                image, ref, frames[0], value_range, crop, image_size
            )
    _passed(
        f"check_preprocess passed: (218, 178, 3) uint8 -> {out.shape} float32 in "
        f"[{low:g}, {high:g}], the face box {tuple(crop)} resized to "
        f"{image_size}x{image_size}"
    )


def _check_one_preprocessed(out, reference, frame, value_range, crop, size) -> None:
    from helpers.preprocess import normalize

    low, high = (float(v) for v in value_range)
    left, top, width, height = crop
    want = (size, size, 3)
    if out.shape != want:
        if out.shape == (3, size, size):
            hint = "channels come first: return (H, W, 3), channels last"
        elif out.shape[:2] == (height, width):
            hint = f"you cropped but did not resize: resize the box to {size}x{size}"
        elif out.shape[:2] == frame.shape[:2]:
            hint = f"neither cropped nor resized: cut the box {tuple(crop)} and resize"
        elif out.ndim == 4 and out.shape[0] == 1:
            hint = "a single frame should give a single image: drop the batch axis"
        elif out.shape[:2] == (size, size):
            hint = "images need exactly 3 channels (RGB): use image.convert('RGB')"
        else:
            hint = f"crop the box {tuple(crop)} and resize it to {size}x{size}"
        raise CheckFailed(f"output shape {out.shape}, expected {want}: {hint}")
    scale_hint = "x / 255" if (low, high) == (0.0, 1.0) else "x / 127.5 - 1"
    if out.dtype == np.uint8:
        raise CheckFailed(
            f"output is uint8: convert to float32 and scale to "
            f"[{low:g}, {high:g}] ({scale_hint})"
        )
    if out.dtype != np.float32:
        raise CheckFailed(
            f"output dtype is {out.dtype}, expected float32 (the dtype "
            f"of Keras layers; float64 doubles the memory): "
            f".astype(np.float32)"
        )
    span = high - low
    if out.max() > high + 0.05 * span and out.max() > 2:
        raise CheckFailed(
            f"values go up to {out.max():.0f}: the pixels were not "
            f"scaled from 0..255 to [{low:g}, {high:g}] ({scale_hint})"
        )
    if (low, high) == (-1.0, 1.0) and out.min() >= -0.01:
        raise CheckFailed(
            f"values are in [{out.min():.2f}, {out.max():.2f}]: you "
            f"forgot the shift to [-1, 1] that a tanh decoder needs: "
            f"x / 127.5 - 1"
        )
    if (low, high) == (0.0, 1.0) and out.min() < -0.05:
        raise CheckFailed(
            f"values go down to {out.min():.2f}: this configuration wants "
            f"[0, 1] (sigmoid decoder), not [-1, 1]: x / 255"
        )
    if out.min() < low - 0.02 * span or out.max() > high + 0.02 * span:
        raise CheckFailed(
            f"values are in [{out.min():.2f}, {out.max():.2f}], expected "
            f"[{low:g}, {high:g}] ({scale_hint})"
        )
    error = float(np.mean(np.abs(out - reference))) / span
    if error <= 0.02:  # ~5 grey levels: any antialiased resize of the right box
        return
    box = frame[top : top + height, left : left + width]
    swapped = frame[left : left + height, top : top + width]
    alternatives = {
        "not cropped: you resized the whole 178x218 frame, which stretches every "
        "face; cut the face box first": _resize(frame, size),
        "rows and columns swapped: NumPy indexes image[row, column], so the box is "
        "image[top:top + height, left:left + width]": _resize(swapped, size),
        "colour channels in BGR order (OpenCV?): return RGB": _resize(box, size)[
            ..., ::-1
        ],
        "the image is transposed (height and width swapped)": np.swapaxes(
            _resize(box, size), 0, 1
        ),
        "upside down: do not flip the image": _resize(box, size)[::-1],
    }
    for hint, pixels in alternatives.items():
        candidate = normalize(pixels, value_range)
        if float(np.mean(np.abs(out - candidate))) / span <= 0.03:
            raise CheckFailed(
                f"{hint} (box (left, top, width, height) = {tuple(crop)})"
            )
    raise CheckFailed(
        f"pixels differ from the reference by {error * 255:.1f} grey "
        f"levels on average: cut the box (left={left}, top={top}, "
        f"width={width}, height={height}), i.e. "
        f"image[{top}:{top + height}, {left}:{left + width}], then resize "
        f"it to {size}x{size} with antialiasing"
    )
