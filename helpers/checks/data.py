"""Self-checks for 01_setup: crop-resize-normalise and the tf.data pipeline.

Faces are compared with ``fixtures/preprocess.npz`` (from
``tests/make_check_fixtures.py``), pipelines with properties.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, _reword
from helpers.checks._common import _target_name, self_check

FIXTURES = Path(__file__).with_name("fixtures")
DEFAULT_CROP = (19, 39, 140, 140)
# A 1-pixel checkerboard: an antialiased resize averages it to flat grey (a spread
# under 2 grey levels), a nearest-neighbour one aliases it into stripes (over 30).
CHECKER_ROWS, CHECKER_COLS = (120, 170), (40, 140)
ALIASING_STD = 10.0


# ---------------------------------------------------------------------- preprocess
def _test_frame(invert: bool = False) -> np.ndarray:
    """A 218x178 frame of smooth gradients (every crop differs) and a checkerboard."""
    rows, cols = np.mgrid[0:218, 0:178].astype(np.float64)
    blue = 127.5 + 100 * np.sin(2 * np.pi * rows / 70) * np.cos(2 * np.pi * cols / 55)
    frame = np.stack([255 * rows / 217, 255 * cols / 177, blue], axis=-1)
    patch = (slice(*CHECKER_ROWS), slice(*CHECKER_COLS))
    frame[patch] = (40 + 175 * ((rows + cols) % 2)[patch])[..., None]
    frame = np.clip(np.rint(frame), 0, 255).astype(np.uint8)
    return 255 - frame if invert else frame


def _resize(pixels: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(pixels))
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), np.uint8)


def _scale(pixels: np.ndarray, value_range) -> np.ndarray:
    low, high = (float(v) for v in value_range)
    scale = np.float32((high - low) / 255.0)
    return pixels.astype(np.float32) * scale + np.float32(low)


def _checker_box(crop, size: int, margin: int = -2):
    """The checkerboard's output rows/columns, grown by ``margin`` (None: < 3x3)."""
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


@self_check("crop_resize_normalize")
def check_preprocess(
    fn,
    value_range=(0.0, 1.0),
    crop=DEFAULT_CROP,
    image_size: int = 64,
    batch: bool = False,
    config=None,
) -> None:
    """Check ``fn(frame)`` (or ``fn(frame, config)``, whose crop, image_size and
    value_range then apply): a (218, 178, 3) uint8 frame -> (image_size, image_size,
    3) float32 in value_range, the box ``crop`` (left, top, width, height) resized
    with antialiasing; ``batch``: (N, 218, 178, 3) frames too."""
    call = fn
    if config is not None:
        crop, image_size = config.crop, int(config.image_size)
        value_range = config.value_range
        call = lambda frames: fn(frames, config)  # noqa: E731 (fn needs config)
    crop = tuple(int(v) for v in crop)
    what = _target_name(fn, "crop_resize_normalize")
    frame = _test_frame()
    out = _numpy(_call(call, frame.copy(), what=what))
    _check_face(out, frame, value_range, crop, image_size)
    if config is not None:  # the box and size come from the config, not constants
        left, top, width, height = (int(v) for v in config.crop)
        size = 32 if config.image_size != 32 else 64
        box = (left + 10, top + 10, width - 20, height - 20)
        for probe, changed in (
            (config.replace(image_size=size), f"image_size={size}"),
            (config.replace(crop=box), f"crop={box}"),
        ):
            probed = _numpy(_call(fn, frame.copy(), probe, what=what))
            probe_crop = tuple(int(v) for v in probe.crop)
            try:
                _check_face(
                    probed, frame, probe.value_range, probe_crop, int(probe.image_size)
                )
            except CheckFailed as error:
                raise _reword(
                    error,
                    f"with a config whose {changed}: ",
                    ". Take the box and the size from config.crop and "
                    "config.image_size, not from numbers that match the lab's default",
                ) from None
    if batch:
        frames = np.stack([frame, _test_frame(invert=True)])
        try:
            out = _numpy(_call(call, frames.copy(), what=what))
        except CheckFailed as error:
            if error.message.startswith("You have not"):
                raise
            axis = f"a batch of frames {frames.shape} failed: handle a leading batch "
            raise _reword(error, axis + "axis. ") from None
        if out.shape != (2, image_size, image_size, 3):
            raise CheckFailed(
                f"a batch of frames {frames.shape} gave shape {out.shape}, expected "
                f"{(2, image_size, image_size, 3)}: handle a leading batch axis"
            )
        for image, source, invert in zip(out, frames, (False, True)):
            _check_face(image, source, value_range, crop, image_size, invert)
    low, high = (float(v) for v in value_range)
    _passed(
        f"check_preprocess passed: (218, 178, 3) uint8 -> {out.shape} float32 in "
        f"[{low:g}, {high:g}], the box {crop} resized with antialiasing"
    )


def _check_face(out, frame, value_range, crop, size: int, invert=False) -> None:
    """One preprocessed frame against the reference: shape, range, then pixels."""
    low, high = (float(v) for v in value_range)
    left, top, width, height = crop
    _check_shape(out, frame, crop, size)
    _check_scaled(out, value_range)
    span = high - low
    if tuple(crop) == DEFAULT_CROP and size == 64:  # the reference's face
        with np.load(FIXTURES / "preprocess.npz") as data:
            reference = data["inverted" if invert else "face"]
    else:
        reference = _resize(frame[top : top + height, left : left + width], size)
    grey = np.abs(out - _scale(reference, value_range)) * (255.0 / span)
    checker = _checker_box(crop, size)
    if checker is not None:
        outside = np.ones(grey.shape[:2], bool)
        outside[_checker_box(crop, size, margin=2)] = False
        striped = float(np.std(out[checker]) * 255.0 / span)
        if striped > ALIASING_STD and float(grey[outside].mean()) <= 3.0:
            raise CheckFailed(
                f"the right box, but resized without antialiasing: a fine pattern "
                f"in the test frame comes out as stripes (spread {striped:.0f} grey "
                f"levels, not a flat grey), as hair and texture would. Use an "
                f"antialiased resize (PIL's BILINEAR, BICUBIC or LANCZOS, or "
                f"tf.image.resize(..., antialias=True)), not nearest neighbour"
            )
    if grey.mean() <= 0.02 * 255:  # ~5 grey levels: any antialiased resize
        return
    _name_a_known_mistake(out, frame, value_range, crop, size)
    raise CheckFailed(
        f"pixels differ from the expected face by {grey.mean():.1f} grey levels on "
        f"average: cut the box image[{top}:{top + height}, {left}:{left + width}] "
        f"(left={left}, top={top}, width={width}, height={height}), then resize it "
        f"to {size}x{size} with antialiasing"
    )


def _check_scaled(values, value_range) -> None:
    """``values`` are float32 pixels scaled from 0..255 to ``value_range``."""
    low, high = (float(v) for v in value_range)
    scale_hint = "x / 255" if (low, high) == (0.0, 1.0) else "x / 127.5 - 1"
    wanted, span = f"[{low:g}, {high:g}] ({scale_hint})", high - low
    if values.dtype == np.uint8:
        raise CheckFailed(f"output is uint8: convert to float32 and scale to {wanted}")
    if values.dtype != np.float32:
        raise CheckFailed(
            f"output dtype is {values.dtype}, expected float32 (the dtype of Keras "
            f"layers): .astype(np.float32)"
        )
    if values.max() > high + 0.05 * span and values.max() > 2:
        raise CheckFailed(
            f"values go up to {values.max():.0f}: the pixels were not scaled from "
            f"0..255 to {wanted}"
        )
    got = f"[{values.min():.2f}, {values.max():.2f}]"
    if (low, high) == (-1.0, 1.0) and values.min() >= -0.01:
        raise CheckFailed(
            f"values are in {got}, but this configuration wants [-1, 1] (a tanh "
            f"decoder): you forgot the shift to [-1, 1], x / 127.5 - 1"
        )
    if (low, high) == (0.0, 1.0) and values.min() < -0.05:
        raise CheckFailed(
            f"values go down to {values.min():.2f}: this configuration wants [0, 1] "
            f"(sigmoid decoder), not [-1, 1]: x / 255"
        )
    if values.min() < low - 0.02 * span or values.max() > high + 0.02 * span:
        raise CheckFailed(f"values are in {got}, expected {wanted}")


def _check_shape(out, frame, crop, size: int) -> None:
    _, _, width, height = crop
    if out.shape == (size, size, 3):
        return
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
    raise CheckFailed(f"output shape {out.shape}, expected {(size, size, 3)}: {hint}")


def _name_a_known_mistake(out, frame, value_range, crop, size: int) -> None:
    """Raise naming the mistake (no crop, swapped axes, BGR, ...) the output shows."""
    left, top, width, height = crop
    span = float(value_range[1]) - float(value_range[0])
    box = _resize(frame[top : top + height, left : left + width], size)
    swapped = _resize(frame[left : left + height, top : top + width], size)
    alternatives = {
        "not cropped: you resized the whole 178x218 frame, which stretches every "
        "face; cut the face box first": _resize(frame, size),
        "rows and columns swapped: NumPy indexes image[row, column], so the box is "
        "image[top:top + height, left:left + width]": swapped,
        "colour channels in BGR order (OpenCV?): return RGB": box[..., ::-1],
        "the image is transposed (height and width swapped)": np.swapaxes(box, 0, 1),
        "upside down: do not flip the image": box[::-1],
    }
    for hint, pixels in alternatives.items():
        if np.mean(np.abs(out - _scale(pixels, value_range))) / span <= 0.03:
            raise CheckFailed(f"{hint} (box (left, top, width, height) = {crop})")


# ------------------------------------------------------------------------ pipeline
def _transformations(dataset) -> list[str]:
    """Class names of a tf.data pipeline's transformations, output first."""
    try:
        inputs = dataset._inputs()
    except Exception:  # pragma: no cover - private API changed
        inputs = []
    names = [type(dataset).__name__.lstrip("_")]
    return names + [name for ds in inputs for name in _transformations(ds)]


def _epoch(dataset, n: int, value_range):
    """Read one epoch: the list of batches (as arrays) and the image order."""
    batches, (low, high) = [], value_range
    for batch in dataset:
        batches.append(np.asarray(batch))
        if sum(map(len, batches)) > n:
            raise CheckFailed(
                f"one pass gave more than the {n} images of the array: do not "
                f".repeat() the dataset (fit() starts a new pass every epoch)"
            )
    order = []
    for batch in batches:
        pixels = np.rint((batch[:, 0, 0, :2] - low) * 255.0 / (high - low))
        order.extend((pixels[:, 0] + 256 * pixels[:, 1]).astype(int).tolist())
    return batches, np.array(order)


@self_check("make_pipeline")
def check_pipeline(fn, config) -> None:
    """Check ``make_pipeline(images, config, training)``: uint8 (N, H, W, 3) ->
    a tf.data.Dataset of float32 batches of config.batch_size in config.value_range,
    shuffled with config.seed when training, in order otherwise, prefetched."""
    import tensorflow as tf

    size = int(config.batch_size)
    n = 4 * size + size // 2 + 3  # four full batches and a smaller last one
    # The first two values of each image spell its index; each holds a 0 and a 255.
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, (n, *config.image_shape), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    images[:, -1, -1, 0], images[:, -1, -1, 1] = 0, 255
    low, high = (float(v) for v in config.value_range)

    def make(cfg, training=True):
        what = _target_name(fn, "make_pipeline")
        return _call(fn, images.copy(), cfg, training, what=what)

    ds = make(config)
    if not isinstance(ds, tf.data.Dataset):
        raise CheckFailed(
            f"returned {type(ds).__name__}, not a tf.data.Dataset: start from "
            f"tf.data.Dataset.from_tensor_slices(images)"
        )
    spec = ds.element_spec
    if isinstance(spec, (tuple, list, dict)):
        raise CheckFailed(
            "each element is a tuple or dict: yield the image batch alone; a VAE's "
            "target is its own input, so fit() needs no labels"
        )
    if spec.dtype != tf.float32:
        dtype = "still uint8 (0..255)" if spec.dtype == tf.uint8 else spec.dtype.name
        raise CheckFailed(
            f"the batches are {dtype}: map a function that converts them to float32 "
            f"(tf.cast) and scales them to [{low:g}, {high:g}]"
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
    batches, order = _epoch(ds, n, (low, high))
    sizes = [len(b) for b in batches]
    if batches and max(sizes) != size:
        raise CheckFailed(
            f"the batches hold up to {max(sizes)} images: batch config.batch_size "
            f"= {size} images (a hard-coded size breaks when the preset changes)"
        )
    values = np.concatenate(batches) if batches else np.full(1, low, np.float32)
    _check_scaled(values, (low, high))
    if len(order) not in (n, n - n % size):
        raise CheckFailed(
            f"one pass gave {len(order)} images, expected all {n}: every image once "
            f"per epoch (do not .take() or .skip() part of it)"
        )
    if len(set(order.tolist())) != len(order) or order.min() < 0 or order.max() >= n:
        raise CheckFailed(
            "some images came twice in one pass and others not at all: shuffle "
            "the images once, before batching"
        )
    want = _scale(images[order], (low, high))
    if not np.allclose(values, want, atol=2e-3 * (high - low)):
        raise CheckFailed(
            "the pixel values do not match the images scaled linearly from "
            f"0..255 to [{low:g}, {high:g}]: x * (high - low) / 255 + low"
        )
    if np.array_equal(order, np.arange(len(order))):
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
    if len(split[0]) == size and split[0].max() < 0.6 * n:
        raise CheckFailed(
            f"the first batch only holds images from the start of the array (the "
            f"largest index is {split[0].max()} of {n}): the shuffle buffer is too "
            f"small; use (nearly) the whole array, e.g. .shuffle(len(images))"
        )
    if np.array_equal(order, _epoch(ds, n, (low, high))[1]):
        raise CheckFailed(
            "two epochs came in the same order: let the shuffle draw a new order "
            "every pass (reshuffle_each_iteration=True, the default)"
        )
    if not any("Prefetch" in name for name in _transformations(ds)):
        raise CheckFailed(
            "no prefetch: end the pipeline with .prefetch(tf.data.AUTOTUNE), so "
            "the next batch is prepared while the model trains on this one"
        )
    _, val_order = _epoch(make(config, False), n, (low, high))
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
    _check_config_used(make, config, images, order)
    _passed(
        f"check_pipeline passed: uint8 {images.shape[1:]} -> float32 batches of "
        f"{size} in [{low:g}, {high:g}], every image once per epoch, a fresh "
        f"shuffle each epoch when training, the array's order otherwise, prefetched"
    )


def _check_config_used(make, config, images, order) -> None:
    """The pipeline follows the config it is given: range, batch size, seed."""
    n, size = len(images), int(config.batch_size) + 3
    other = config.replace(
        output_activation="tanh" if config.value_range == (0.0, 1.0) else "sigmoid",
        reconstruction_loss="mse",
        batch_size=size,
    )
    low, high = other.value_range
    batches, other_order = _epoch(make(other), n, (low, high))
    values = np.concatenate(batches)
    if max(map(len, batches)) != size:
        raise CheckFailed(
            f"with batch_size={size} the batches hold up to "
            f"{max(map(len, batches))} images: use config.batch_size"
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
    if not np.array_equal(order, _epoch(make(config), n, config.value_range)[1]):
        raise CheckFailed(
            "two pipelines made with the same config shuffled differently: seed the "
            "shuffle with config.seed, so a run (and its resume) is repeatable"
        )
    reseeded = make(config.replace(seed=config.seed + 1))
    if np.array_equal(order, _epoch(reseeded, n, config.value_range)[1]):
        raise CheckFailed(
            f"config.seed {config.seed} and {config.seed + 1} gave the same order: "
            "seed the shuffle with config.seed, not a fixed number"
        )
