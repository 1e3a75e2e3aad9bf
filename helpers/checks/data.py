"""Self-checks for 01_setup: crop-resize-normalise and the tf.data pipeline.

Neither check imports the lab's reference code: the preprocessing check compares
with ``fixtures/preprocess.npz`` (the reference's output on the synthetic test
frame, written by ``tests/make_check_fixtures.py``); the pipeline check tests
properties (dtype, range, batch size, every image once per epoch, shuffling).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from helpers.checks._common import (
    CheckFailed,
    _call,
    _numpy,
    _passed,
    _target_name,
    self_check,
)

FIXTURES = Path(__file__).with_name("fixtures")
DEFAULT_CROP = (19, 39, 140, 140)
# A 1-pixel checkerboard in these frame rows and columns: any antialiased resize
# averages it to flat grey, a nearest-neighbour (or non-antialiased) one aliases it
# into stripes.
CHECKER_ROWS, CHECKER_COLS = (120, 170), (40, 140)
ALIASING_STD = 10.0  # grey levels; antialiased resizes give < 2, aliased ones > 30


# ---------------------------------------------------------------------- preprocess
def _test_frame(invert: bool = False) -> np.ndarray:
    """A synthetic 218x178 frame: smooth gradients (every crop or stretch looks
    different) and a fine checkerboard patch (aliasing shows)."""
    rows, cols = np.mgrid[0:218, 0:178].astype(np.float64)
    red = 255 * rows / 217
    green = 255 * cols / 177
    blue = 127.5 + 100 * np.sin(2 * np.pi * rows / 70) * np.cos(2 * np.pi * cols / 55)
    frame = np.stack([red, green, blue], axis=-1)
    patch = (slice(*CHECKER_ROWS), slice(*CHECKER_COLS))
    frame[patch] = (40 + 175 * ((rows + cols) % 2)[patch])[..., None]
    frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return 255 - frame if invert else frame


def _resize(pixels: np.ndarray, size: int, method=None) -> np.ndarray:
    """Antialiased (bilinear) resize with PIL, or another PIL ``method``."""
    from PIL import Image

    method = Image.Resampling.BILINEAR if method is None else method
    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((size, size), method), dtype=np.uint8)


def _expected_uint8(frame: np.ndarray, crop, size: int, invert: bool) -> np.ndarray:
    """The reference's (size, size, 3) uint8 face for the test frame.

    The default box and size come from the committed fixture; any other box is
    computed the same way (an antialiased bilinear resize of the box).
    """
    if tuple(crop) == DEFAULT_CROP and size == 64:
        with np.load(FIXTURES / "preprocess.npz") as data:
            return data["inverted" if invert else "face"]
    left, top, width, height = crop
    return _resize(frame[top : top + height, left : left + width], size)


def _scale(pixels: np.ndarray, value_range) -> np.ndarray:
    low, high = (float(v) for v in value_range)
    return pixels.astype(np.float32) * np.float32((high - low) / 255.0) + np.float32(
        low
    )


def _checker_box(crop, size: int, margin: int = -2):
    """Output rows/columns of the checkerboard patch, grown by ``margin`` pixels
    (shrunk when negative), or None when less than 3x3 of it is left."""
    left, top, width, height = crop

    def span(lo, hi, start, length):
        a = math.ceil((lo - start) * size / length) - margin
        b = math.floor((hi - start) * size / length) + margin
        return max(a, 0), min(b, size)

    r0, r1 = span(*CHECKER_ROWS, top, height)
    c0, c1 = span(*CHECKER_COLS, left, width)
    if r1 - r0 < 3 or c1 - c0 < 3:
        return None
    return slice(r0, r1), slice(c0, c1)


def _check_config_followed(fn, config, frame, what) -> None:
    """``fn(frame, config)`` takes the face box and the size from the config it is
    given, not from constants that happen to equal the lab's (19, 39, 140, 140), 64."""
    left, top, width, height = (int(v) for v in config.crop)
    size = 32 if config.image_size != 32 else 64
    probes = (
        (config.replace(image_size=size), f"image_size={size}"),
        (config.replace(crop=(left + 10, top + 10, width - 20, height - 20)),
         f"crop={(left + 10, top + 10, width - 20, height - 20)}"),
    )
    for probe, changed in probes:
        crop, image_size = tuple(int(v) for v in probe.crop), int(probe.image_size)
        reference = _scale(
            _expected_uint8(frame, crop, image_size, False), probe.value_range
        )
        out = _numpy(_call(fn, frame.copy(), probe, what=what))
        try:
            _check_one_preprocessed(
                out, reference, frame, probe.value_range, crop, image_size
            )
        except CheckFailed as error:
            raise CheckFailed(
                f"with a config whose {changed}: {error.message}. Take the box and "
                f"the size from config.crop and config.image_size, not from "
                f"numbers that match the lab's default",
                student_error=error.student_error,
            ) from None


@self_check("crop_resize_normalize")
def check_preprocess(
    fn,
    value_range=(0.0, 1.0),
    crop=DEFAULT_CROP,
    image_size: int = 64,
    batch: bool = False,
    config=None,
) -> None:
    """Check a crop-resize-normalise function on a synthetic CelebA-sized frame.

    Args:
        fn: the student's function. With ``config``, called as ``fn(frame,
            config)``; without, as ``fn(frame)``. A (218, 178, 3) uint8 frame ->
            (image_size, image_size, 3) float32 in ``value_range``; with
            ``batch=True`` it must also map (N, 218, 178, 3) -> (N, size, size, 3).
        value_range: (0, 1) for a sigmoid decoder, (-1, 1) for tanh.
        crop: the face box (left, top, width, height) the notebook asked for.
        image_size: side of the output.
        batch: also check a batch of two frames.
        config: a ``VAEConfig``; when given, its ``crop``, ``image_size`` and
            ``value_range`` replace the three arguments above.

    Raises:
        CheckFailed: wrong shape, dtype, range, crop, resampling or pixel values.
    """
    if config is not None:
        crop, image_size = tuple(config.crop), int(config.image_size)
        value_range = config.value_range
        call = lambda frames: fn(frames, config)  # noqa: E731 (fn needs config)
    else:
        call = fn
    crop = tuple(int(v) for v in crop)
    what = _target_name(fn, "crop_resize_normalize")
    frame = _test_frame()
    low, high = (float(v) for v in value_range)
    reference = _scale(_expected_uint8(frame, crop, image_size, False), value_range)
    out = _numpy(_call(call, frame.copy(), what=what))
    _check_one_preprocessed(out, reference, frame, value_range, crop, image_size)
    if config is not None:
        _check_config_followed(fn, config, frame, what)
    if batch:
        frames = np.stack([frame, _test_frame(invert=True)])
        try:
            out = _numpy(_call(call, frames.copy(), what=what))
        except CheckFailed as error:
            if error.message.startswith("You have not"):
                raise
            raise CheckFailed(
                f"a batch of frames {frames.shape} failed: handle a "
                f"leading batch axis. {error.message}",
                student_error=error.student_error,
            ) from None
        want = (2, image_size, image_size, 3)
        if out.shape != want:
            raise CheckFailed(
                f"a batch of frames {frames.shape} gave shape {out.shape}, "
                f"expected {want}: handle a leading batch axis"
            )
        second = _scale(_expected_uint8(frames[1], crop, image_size, True), value_range)
        for image, ref, source in zip(out, (reference, second), frames):
            _check_one_preprocessed(image, ref, source, value_range, crop, image_size)
    _passed(
        f"check_preprocess passed: (218, 178, 3) uint8 -> {out.shape} float32 in "
        f"[{low:g}, {high:g}], the face box {tuple(crop)} resized to "
        f"{image_size}x{image_size} with antialiasing"
    )


def _check_one_preprocessed(out, reference, frame, value_range, crop, size) -> None:
    """One preprocessed frame against the reference: shape, range, then pixels."""
    low, high = (float(v) for v in value_range)
    left, top, width, height = crop
    _check_preprocessed_shape(out, frame, crop, size)
    _check_preprocessed_range(out, value_range)
    span = high - low
    grey = np.abs(out - reference) * (255.0 / span)  # error in grey levels
    checker = _checker_box(crop, size)
    if checker is not None:
        outside = np.ones(grey.shape[:2], bool)
        outside[_checker_box(crop, size, margin=2)] = False
        striped = float(np.std(out[checker]) * 255.0 / span)
        if striped > ALIASING_STD and float(grey[outside].mean()) <= 3.0:
            raise CheckFailed(
                f"the right box, but resized without antialiasing: a fine pattern "
                f"in the test frame comes out as stripes (spread {striped:.0f} grey "
                f"levels where an antialiased resize gives a flat grey). Shrinking "
                f"{width} to {size} pixels by picking pixels (nearest neighbour, or "
                f"bilinear without antialias) aliases hair and texture into noise: "
                f"use an antialiased resize (PIL's BILINEAR, BICUBIC or LANCZOS, "
                f"or tf.image.resize(..., antialias=True))"
            )
    error = float(grey.mean()) / 255.0
    if error <= 0.02:  # ~5 grey levels: any antialiased resize of the right box
        return
    _name_a_known_mistake(out, frame, value_range, crop, size)
    raise CheckFailed(
        f"pixels differ from the expected face by {error * 255:.1f} grey "
        f"levels on average: cut the box (left={left}, top={top}, "
        f"width={width}, height={height}), i.e. "
        f"image[{top}:{top + height}, {left}:{left + width}], then resize "
        f"it to {size}x{size} with antialiasing"
    )


def _check_preprocessed_shape(out, frame, crop, size: int) -> None:
    """(size, size, 3), or what the shape says went wrong."""
    _, _, width, height = crop
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


def _check_preprocessed_range(out, value_range) -> None:
    """float32 values in value_range, or which scaling went wrong."""
    low, high = (float(v) for v in value_range)
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


def _name_a_known_mistake(out, frame, value_range, crop, size: int) -> None:
    """Raise naming the mistake (no crop, swapped axes, BGR, ...) the output shows."""
    left, top, width, height = crop
    span = float(value_range[1]) - float(value_range[0])
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
        candidate = _scale(pixels, value_range)
        if float(np.mean(np.abs(out - candidate))) / span <= 0.03:
            raise CheckFailed(
                f"{hint} (box (left, top, width, height) = {tuple(crop)})"
            )


# ------------------------------------------------------------------------ pipeline
def _numbered_images(n: int, shape) -> np.ndarray:
    """``n`` uint8 images whose first two values spell their index (i % 256,
    i // 256); each holds a 0 and a 255, so the range of every batch is known."""
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, (n, *shape), dtype=np.uint8)
    index = np.arange(n)
    images[:, 0, 0, 0] = index % 256
    images[:, 0, 0, 1] = index // 256
    images[:, -1, -1, 0] = 0
    images[:, -1, -1, 1] = 255
    return images


def _transformations(dataset) -> list[str]:
    """Class names of a tf.data pipeline, last transformation first."""
    names, todo, seen = [], [dataset], set()
    while todo:
        ds = todo.pop()
        if id(ds) in seen:
            continue
        seen.add(id(ds))
        names.append(type(ds).__name__.lstrip("_"))
        try:
            todo.extend(ds._inputs())
        except Exception:  # pragma: no cover - private API changed
            pass
    return names


def _epoch(dataset, n: int, batch_size: int, value_range):
    """Read one epoch: the list of batches (as arrays) and the image order."""
    batches, count = [], 0
    for batch in dataset:
        batches.append(np.asarray(batch))
        count += len(batches[-1])
        if count > n:
            raise CheckFailed(
                f"one pass gave more than the {n} images of the array: do not "
                f".repeat() the dataset (fit() starts a new pass every epoch)"
            )
    low, high = value_range
    order = []
    for batch in batches:
        pixels = np.rint((batch[:, 0, 0, :2] - low) * 255.0 / (high - low))
        order.extend((pixels[:, 0] + 256 * pixels[:, 1]).astype(int).tolist())
    return batches, np.array(order)


def _check_pipeline_arguments(fn, config, images, order, what) -> None:
    """The pipeline must follow the config it is given: range, batch size, seed."""
    n, size = len(images), int(config.batch_size)
    other = config.replace(
        output_activation="tanh" if config.value_range == (0.0, 1.0) else "sigmoid",
        reconstruction_loss="mse",
        batch_size=size + 3,
    )
    low, high = other.value_range
    batches, other_order = _epoch(
        _call(fn, images.copy(), other, True, what=what), n, size + 3, (low, high)
    )
    values = np.concatenate(batches)
    if max(len(b) for b in batches) != size + 3:
        raise CheckFailed(
            f"with batch_size={size + 3} the batches hold up to "
            f"{max(len(b) for b in batches)} images: use config.batch_size"
        )
    readable = (
        len(other_order) == len(values)
        and other_order.min() >= 0
        and other_order.max() < n
    )
    if not readable or not np.allclose(
        values, _scale(images[other_order], (low, high)), atol=2e-3 * (high - low)
    ):
        raise CheckFailed(
            f"with value_range ({low:g}, {high:g}) the pixels are in "
            f"[{values.min():.2f}, {values.max():.2f}]: scale by config.value_range "
            "(x * (high - low) / 255 + low), not by fixed numbers"
        )
    same = _call(fn, images.copy(), config, True, what=what)
    _, again = _epoch(same, n, size, config.value_range)
    if not np.array_equal(order, again):
        raise CheckFailed(
            "two pipelines made with the same config shuffled differently: seed the "
            "shuffle with config.seed, so a run (and its resume) is repeatable"
        )
    reseeded = config.replace(seed=config.seed + 1)
    other_seed = _call(fn, images.copy(), reseeded, True, what=what)
    _, third = _epoch(other_seed, n, size, config.value_range)
    if np.array_equal(order, third):
        raise CheckFailed(
            f"config.seed {config.seed} and {config.seed + 1} gave the same order: "
            "seed the shuffle with config.seed, not a fixed number"
        )


@self_check("make_pipeline")
def check_pipeline(fn, config) -> None:
    """Check a tf.data pipeline from uint8 images to shuffled float32 batches.

    Args:
        fn: the student's ``make_pipeline(images, config, training)``: a uint8
            (N, H, W, 3) array -> ``tf.data.Dataset`` of float32 (B, H, W, 3)
            batches in ``config.value_range``, shuffled when ``training``,
            ``config.batch_size`` images a batch, prefetched.
        config: the ``VAEConfig``.

    Raises:
        CheckFailed: not a dataset, labels, dtype, range, batch size, missing or
            repeated images, shuffling (missing, after batching, on validation data,
            a small buffer, the same order every epoch), no prefetch.
    """
    import tensorflow as tf

    what = _target_name(fn, "make_pipeline")
    size = int(config.batch_size)
    n = 4 * size + size // 2 + 3  # four full batches and a smaller last one
    images = _numbered_images(n, config.image_shape)
    low, high = (float(v) for v in config.value_range)
    ds = _call(fn, images.copy(), config, True, what=what)
    if not isinstance(ds, tf.data.Dataset):
        raise CheckFailed(
            f"returned {type(ds).__name__}, not a tf.data.Dataset: start from "
            f"tf.data.Dataset.from_tensor_slices(images)"
        )
    _check_element_spec(ds.element_spec, config)
    batches, order = _epoch(ds, n, size, (low, high))
    sizes = [len(b) for b in batches]
    values = _check_batch_values(batches, size, (low, high))
    _check_one_pass(order, n, size)
    want = _scale(images[order], (low, high))
    if not np.allclose(values, want, atol=2e-3 * (high - low)):
        raise CheckFailed(
            "the pixel values do not match the images scaled linearly from "
            f"0..255 to [{low:g}, {high:g}]: x * (high - low) / 255 + low"
        )
    _check_shuffled(ds, order, sizes, n, size, (low, high))
    names = _transformations(ds)
    if not any("Prefetch" in name for name in names):
        raise CheckFailed(
            "no prefetch: end the pipeline with .prefetch(tf.data.AUTOTUNE), so "
            "the next batch is prepared while the model trains on this one"
        )
    val = _call(fn, images.copy(), config, False, what=what)
    _, val_order = _epoch(val, n, size, (low, high))
    if len(val_order) != n:
        raise CheckFailed(
            f"with training=False one pass gave {len(val_order)} of {n} images: "
            f"keep every validation image (no drop_remainder)"
        )
    if not np.array_equal(val_order, np.arange(n)):
        raise CheckFailed(
            "with training=False the images come shuffled: shuffle only when "
            "training, so validation losses and pictures are comparable run to run"
        )
    _check_pipeline_arguments(fn, config, images, order, what)
    _passed(
        f"check_pipeline passed: uint8 {images.shape[1:]} -> float32 batches of "
        f"{size} in [{low:g}, {high:g}], every image once per epoch, a fresh "
        f"shuffle each epoch when training, the array's order otherwise, prefetched"
    )


def _check_element_spec(spec, config) -> None:
    """Each element is one float32 batch of images: no labels, the config's shape."""
    import tensorflow as tf

    low, high = (float(v) for v in config.value_range)
    if isinstance(spec, (tuple, list, dict)):
        raise CheckFailed(
            "each element is a tuple or dict: yield the image batch alone; a VAE's "
            "target is its own input, so fit() needs no labels"
        )
    if spec.dtype == tf.uint8:
        raise CheckFailed(
            "the batches are still uint8 (0..255): map a function that converts "
            f"to float32 and scales to [{low:g}, {high:g}]"
        )
    if spec.dtype != tf.float32:
        raise CheckFailed(
            f"the batches are {spec.dtype.name}: the model wants float32 "
            f"(tf.cast(x, tf.float32))"
        )
    if spec.shape.rank == 3:
        raise CheckFailed(
            "the elements are single images (H, W, 3): group them into batches "
            "with .batch(config.batch_size)"
        )
    if spec.shape.rank != 4 or tuple(spec.shape[1:]) != tuple(config.image_shape):
        raise CheckFailed(
            f"element shape {tuple(spec.shape)}, expected (batch, "
            f"{', '.join(map(str, config.image_shape))})"
        )


def _check_batch_values(batches, size: int, value_range) -> np.ndarray:
    """config.batch_size images a batch, scaled into value_range; the values."""
    low, high = value_range
    sizes = [len(b) for b in batches]
    if batches and max(sizes) != size:
        raise CheckFailed(
            f"the batches hold up to {max(sizes)} images: batch "
            f"config.batch_size = {size} images (a hard-coded size breaks when the "
            f"preset changes)"
        )
    values = np.concatenate(batches) if batches else np.zeros((0,))
    if values.size and values.max() > high + 0.5 and values.max() > 2:
        raise CheckFailed(
            f"values go up to {values.max():.0f}: scale the 0..255 pixels to "
            f"[{low:g}, {high:g}] in the map"
        )
    if values.size and (values.min() < low - 1e-3 or values.max() > high + 1e-3):
        raise CheckFailed(
            f"values are in [{values.min():.2f}, {values.max():.2f}], expected "
            f"[{low:g}, {high:g}]"
        )
    if (low, high) == (-1.0, 1.0) and values.size and values.min() > -0.5:
        raise CheckFailed(
            "values are in [0, 1] but this configuration wants [-1, 1] (tanh "
            "decoder): x / 127.5 - 1"
        )
    return values


def _check_one_pass(order, n: int, size: int) -> None:
    """One pass holds every image once (a dropped last batch is allowed)."""
    count = len(order)
    if count not in (n, n - n % size):
        raise CheckFailed(
            f"one pass gave {count} images, expected all {n}: every image once "
            f"per epoch (do not .take() or .skip() part of it)"
        )
    if len(set(order.tolist())) != count or order.min() < 0 or order.max() >= n:
        raise CheckFailed(
            "some images came twice in one pass and others not at all: shuffle "
            "the images once, before batching"
        )


def _check_shuffled(ds, order, sizes, n: int, size: int, value_range) -> None:
    """Shuffled images (not batches), over the whole array, afresh every epoch."""
    count = len(order)
    if np.array_equal(order, np.arange(count)):
        raise CheckFailed(
            "the training batches come in the array's order: shuffle when "
            "training is True (.shuffle(buffer_size) before .batch)"
        )
    split = np.split(order, np.cumsum(sizes)[:-1])
    if all(np.all(np.diff(np.sort(b)) == 1) for b in split):
        raise CheckFailed(
            "each batch holds neighbouring images (only the order of the batches "
            "changes): you shuffled after batching; shuffle the images, then batch"
        )
    first = np.sort(split[0])
    if len(first) == size and first.max() < 0.6 * n:
        raise CheckFailed(
            f"the first batch only holds images from the start of the array (the "
            f"largest index is {first.max()} of {n}): the shuffle buffer is too "
            f"small to mix the data; use a buffer of (nearly) the whole array, "
            f"e.g. .shuffle(len(images))"
        )
    _, again = _epoch(ds, n, size, value_range)
    if np.array_equal(order, again):
        raise CheckFailed(
            "two epochs came in the same order: let the shuffle draw a new order "
            "every pass (reshuffle_each_iteration=True, the default)"
        )
