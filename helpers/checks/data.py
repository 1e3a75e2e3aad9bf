"""Self-checks for 01_setup: crop-resize-normalise (against ``fixtures/
preprocess.npz``, from ``tests/make_check_fixtures.py``) and the tf.data pipeline."""

import math
import operator
from pathlib import Path

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, _reworded
from helpers.checks._common import _target_name, self_check
from helpers.preprocess import DEFAULT_CROP, normalize as _scale  # to value_range

FIXTURES = Path(__file__).with_name("fixtures")
# A 1-pixel checkerboard: antialiased it resizes to flat grey, nearest to stripes.
CHECKER_ROWS, CHECKER_COLS = (120, 170), (40, 140)
_SETTINGS = operator.attrgetter("value_range", "crop", "image_size")


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


def _checker_box(crop, size: int, margin: int = -2):
    """The checkerboard's output rows/columns, grown by ``margin`` (None: < 3x3)."""
    (lo, hi), (left, top, width, height) = zip(CHECKER_ROWS, CHECKER_COLS), crop
    start, length = np.array([top, left]), np.array([height, width])
    a = np.maximum(np.ceil((lo - start) * size / length) - margin, 0).astype(int)
    b = np.minimum(np.floor((hi - start) * size / length) + margin, size).astype(int)
    return None if min(b - a) < 3 else (slice(a[0], b[0]), slice(a[1], b[1]))


@self_check("crop_resize_normalize")
def check_preprocess(
    fn,
    value_range=(0.0, 1.0),
    crop=DEFAULT_CROP,
    image_size=64,
    batch=False,
    config=None,
) -> None:
    """Check ``fn(frame)`` (``fn(frame, config)``: its settings): a (218, 178, 3) uint8
    frame -> (size, size, 3) float32 in value_range, ``crop`` antialiased; batches."""
    what = _target_name(fn, "crop_resize_normalize")

    def face(frames, cfg=config):
        extra = () if cfg is None else (cfg,)
        return _numpy(_call(fn, frames.copy(), *extra, what=what))

    if config is not None:
        value_range, crop, image_size = _SETTINGS(config)
    frame = _test_frame()
    out = face(frame)
    _check_face(out, frame, value_range, crop, image_size)
    if config is not None:  # the box and size come from the config, not constants
        size = 32 if image_size != 32 else 64
        box = tuple(int(v) + d for v, d in zip(crop, (10, 10, -20, -20)))
        hint = ". Take the box and the size from config.crop and config.image_size"
        for field, value in (("image_size", size), ("crop", box)):
            probe = config.replace(**{field: value})
            with _reworded(f"with a config whose {field}={value}: ", hint):
                _check_face(face(frame, probe), frame, *_SETTINGS(probe))
    if batch:
        frames = np.stack([frame, _test_frame(invert=True)])
        shape = (2, image_size, image_size, 3)
        with _reworded(f"a batch {frames.shape}: ", ": handle a leading batch axis"):
            out = face(frames)
            if out.shape != shape:
                raise CheckFailed(f"output shape {out.shape}, expected {shape}")
        for image, source, invert in zip(out, frames, (False, True)):
            _check_face(image, source, value_range, crop, image_size, invert)
    _passed(
        f"check_preprocess passed: {out.shape} float32 in {value_range}, box {crop}"
    )


def _check_face(out, frame, value_range, crop, size, invert=False) -> None:
    """One preprocessed frame: shape, range, pixels, then the mistake it shows."""
    span, size = float(value_range[1]) - float(value_range[0]), int(size)
    crop = left, top, width, height = tuple(int(v) for v in crop)
    if out.shape != (size, size, 3):
        if out.shape == (3, size, size):
            hint = "channels come first: return (H, W, 3), channels last"
        elif out.shape[:2] == (height, width):
            hint = f"you cropped but did not resize: resize the box to {size}x{size}"
        elif out.shape[:2] == frame.shape[:2]:
            hint = f"neither cropped nor resized: cut the box {crop} and resize"
        elif out.ndim == 4 and out.shape[0] == 1:
            hint = "a single frame should give a single image: drop the batch axis"
        elif out.shape[:2] == (size, size):
            hint = "images need exactly 3 channels (RGB): use image.convert('RGB')"
        else:
            hint = f"crop the box {crop} and resize it to {size}x{size}"
        raise CheckFailed(
            f"output shape {out.shape}, expected {(size, size, 3)}: {hint}"
        )
    _check_scaled(out, value_range)
    box = reference = _resize(frame[top : top + height, left : left + width], size)
    if crop == DEFAULT_CROP and size == 64:  # the reference's face
        with np.load(FIXTURES / "preprocess.npz") as data:
            reference = data["inverted" if invert else "face"]
    grey = np.abs(out - _scale(reference, value_range)) * (255.0 / span)
    if (checker := _checker_box(crop, size)) is not None:
        outside = np.ones(grey.shape[:2], bool)
        outside[_checker_box(crop, size, margin=2)] = False
        striped = float(np.std(out[checker]) * 255.0 / span)
        if striped > 10.0 and float(grey[outside].mean()) <= 3.0:  # the right box
            raise CheckFailed(
                f"the right box, but resized without antialiasing: a fine test pattern "
                f"comes out as stripes (spread {striped:.0f} grey levels), as hair "
                "would. Use PIL's BILINEAR or tf.image.resize(..., antialias=True)"
            )
    if grey.mean() <= 0.02 * 255:  # ~5 grey levels: any antialiased resize
        return
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
    raise CheckFailed(
        f"pixels differ from the expected face by {grey.mean():.1f} grey levels on "
        f"average: cut the box image[{top}:{top + height}, {left}:{left + width}] "
        f"and resize it to {size}x{size} with antialiasing"
    )


def _check_scaled(values, value_range) -> None:
    """``values`` are float32 pixels scaled from 0..255 to ``value_range``."""
    low, high = (float(v) for v in value_range)
    unit = (low, high) == (0.0, 1.0)
    span, got = high - low, f"[{values.min():.2f}, {values.max():.2f}]"
    wanted = f"[{low:g}, {high:g}] ({'x / 255' if unit else 'x / 127.5 - 1'})"
    if values.dtype == np.uint8:
        raise CheckFailed(f"output is uint8: convert to float32 and scale to {wanted}")
    if values.dtype != np.float32:
        raise CheckFailed(f"output dtype is {values.dtype}, expected float32")
    if values.max() > high + 0.05 * span and values.max() > 2:
        raise CheckFailed(
            f"values go up to {values.max():.0f}: the pixels were not scaled, {wanted}"
        )
    if (low, high) == (-1.0, 1.0) and values.min() >= -0.01:
        raise CheckFailed(
            f"values in {got}, but this run wants [-1, 1]: you forgot the shift to "
            "[-1, 1], x / 127.5 - 1"
        )
    if unit and values.min() < -0.05:
        raise CheckFailed("values below 0: this run wants [0, 1], x / 255")
    if values.min() < low - 0.02 * span or values.max() > high + 0.02 * span:
        raise CheckFailed(f"values are in {got}, expected {wanted}")


def _prefetches(dataset) -> bool:
    """Whether a tf.data pipeline prefetches at some stage."""
    found = "Prefetch" in type(dataset).__name__
    return found or any(_prefetches(ds) for ds in dataset._inputs())


@self_check("make_pipeline")
def check_pipeline(fn, config) -> None:
    """Check ``make_pipeline(images, config, training)``: a tf.data.Dataset of float32
    batches in config's range and size, seeded shuffle if training, prefetched."""
    import tensorflow as tf

    size = int(config.batch_size)
    n = 4 * size + size // 2 + 3  # four full batches and a smaller last one
    # The first two values of each image spell its index; each holds a 0 and a 255.
    rng = np.random.default_rng(0)
    images = rng.integers(1, 255, (n, *config.image_shape), dtype=np.uint8)
    images[:, 0, 0, 0], images[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    images[:, -1, -1, 0], images[:, -1, -1, 1] = 0, 255
    low, high = (float(v) for v in config.value_range)
    what = _target_name(fn, "make_pipeline")

    def epoch(cfg, training=True, dataset=None):
        """One pass: batch sizes, values, image order, whether scaled to cfg's range."""
        batches, (lo, hi) = [], cfg.value_range
        if dataset is None:
            dataset = _call(fn, images.copy(), cfg, training, what=what)
        for batch in dataset:
            batches.append(np.asarray(batch))
            if sum(map(len, batches)) > n:
                raise CheckFailed(
                    f"one pass gave over {n} images: do not .repeat() the dataset "
                    "(fit() starts a new pass every epoch)"
                )
        values = np.concatenate(batches or [np.zeros((0, *cfg.image_shape))])
        order = np.rint((values[:, 0, 0, :2] - lo) * 255.0 / (hi - lo)) @ [1, 256]
        order = order.astype(int)  # an index outside 0..n-1 makes the values differ
        want = _scale(images[order % n], (lo, hi))
        scaled = np.allclose(values, want, atol=(hi - lo) / 500)
        return [len(b) for b in batches], values, order, scaled

    ds = _call(fn, images.copy(), config, True, what=what)
    if not isinstance(ds, tf.data.Dataset):
        raise CheckFailed(
            f"returned {type(ds).__name__}, not a tf.data.Dataset: start from "
            f"tf.data.Dataset.from_tensor_slices(images)"
        )
    spec = ds.element_spec
    if isinstance(spec, (tuple, list, dict)):
        raise CheckFailed(
            "each element is a tuple/dict: yield the image batch alone (a VAE's "
            "target is its own input, so fit() needs no labels)"
        )
    if spec.dtype != tf.float32:
        dtype = "still uint8 (0..255)" if spec.dtype == tf.uint8 else spec.dtype.name
        raise CheckFailed(
            f"the batches are {dtype}: map a function that converts them to float32 "
            f"(tf.cast) and scales them to [{low:g}, {high:g}]"
        )
    if spec.shape.rank == 3:
        raise CheckFailed("the elements are single images: .batch(config.batch_size)")
    if spec.shape.rank != 4 or tuple(spec.shape[1:]) != tuple(config.image_shape):
        raise CheckFailed(
            f"element shape {tuple(spec.shape)}, expected (batch, "
            f"{', '.join(map(str, config.image_shape))})"
        )
    sizes, values, order, scaled = epoch(config, dataset=ds)
    if len(order) not in (n, n - n % size):
        raise CheckFailed(f"one pass gave {len(order)} of {n} images: keep them all")
    if max(sizes) != size:
        raise CheckFailed(f"batches of {max(sizes)}: batch config.batch_size = {size}")
    _check_scaled(values, (low, high))
    if len(set(order.tolist())) != len(order) or order.min() < 0 or order.max() >= n:
        raise CheckFailed("some images came twice: shuffle once, before batching")
    if not scaled:
        raise CheckFailed(
            f"the pixel values are not the images scaled to [{low:g}, {high:g}]: "
            "x * (high - low) / 255 + low"
        )
    if np.array_equal(order, np.arange(len(order))):
        raise CheckFailed("batches come in the array's order: shuffle before .batch")
    split = np.split(order, np.cumsum(sizes)[:-1])
    if all(np.all(np.diff(np.sort(b)) == 1) for b in split):
        raise CheckFailed(
            "neighbours share a batch: you shuffled after batching; shuffle, then batch"
        )
    if len(split[0]) == size and split[0].max() < 0.6 * n:
        raise CheckFailed(
            f"the first batch holds images up to {split[0].max()} of {n}: the shuffle "
            "buffer is too small; use .shuffle(len(images))"
        )
    if np.array_equal(order, epoch(config, dataset=ds)[2]):
        raise CheckFailed(
            "two epochs came in the same order: reshuffle_each_iteration=True"
        )
    if not _prefetches(ds):
        raise CheckFailed("no prefetch: end with .prefetch(tf.data.AUTOTUNE)")
    val = epoch(config, training=False)[2]
    if len(val) != n:
        raise CheckFailed(f"training=False gave {len(val)} of {n} images: keep all")
    if not np.array_equal(val, np.arange(n)):
        raise CheckFailed(
            "with training=False the images come shuffled: shuffle only when training"
        )
    # The pipeline follows the config it is given: range, batch size, seed.
    act = "tanh" if config.value_range == (0.0, 1.0) else "sigmoid"
    other = config.replace(output_activation=act, reconstruction_loss="mse")
    sizes, values, _, scaled = epoch(other.replace(batch_size=size + 3))
    lo, hi = other.value_range
    if max(sizes) != size + 3:
        raise CheckFailed(
            f"with batch_size={size + 3} the batches hold up to {max(sizes)} images: "
            "use config.batch_size"
        )
    if not scaled:
        raise CheckFailed(
            f"with value_range ({lo:g}, {hi:g}) the pixels are in [{values.min():.2f}, "
            f"{values.max():.2f}]: scale by config.value_range"
        )
    if not np.array_equal(order, epoch(config)[2]):
        raise CheckFailed("one config, two orders: seed the shuffle with config.seed")
    if np.array_equal(order, epoch(config.replace(seed=config.seed + 1))[2]):
        raise CheckFailed(
            f"seeds {config.seed} and {config.seed + 1} gave one order: use config.seed"
        )
    _passed(
        f"check_pipeline passed: float32 batches of {size} in [{low:g}, {high:g}], "
        "each image once per epoch, reshuffled when training, in order otherwise"
    )
