"""Self-checks the student notebooks call after each TODO.

Each check runs the student's function or model on small inputs, compares it with
the lab's reference (``helpers.preprocess``, ``helpers.model``, ``helpers.losses``)
and either prints ``✅ <check> passed: ...`` or raises :class:`CheckFailed` (an
``AssertionError``) whose message names the likely mistake and the fix. A TODO that
still raises ``NotImplementedError`` gives "You have not filled in the TODO yet: ...".

==========================================  =====================================
check                                        the student's object
==========================================  =====================================
``check_preprocess(fn, value_range)``        ``fn(frame uint8 (218, 178, 3))`` ->
                                             ``(64, 64, 3) float32``
``check_sampling(sampling)``                 ``Sampling`` layer (instance or class)
                                             or ``fn(z_mean, z_log_var)``
``check_encoder_heads(encoder, config)``     encoder model or ``build(config)``
``check_decoder_output(decoder, config)``    decoder model or ``build(config)``
``check_kl(fn)``                             ``fn(z_mean, z_log_var)`` -> (B,)
``check_total_loss(fn)``                     ``fn(images, reconstructions, z_mean,
                                             z_log_var, beta)`` -> scalar or dict
``check_callbacks(callbacks, run_dir)``      list of Keras callbacks
``check_prior_samples(fn, vae)``             ``fn(vae, n, seed=s)`` -> images or
                                             (images, z)
==========================================  =====================================

Importing this module does not import Keras; each check does, when called.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PIXELS_64 = 64 * 64 * 3  # 12,288 values in one 64x64 RGB image


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says which and how to fix it."""


# ------------------------------------------------------------------------- helpers
def _name(obj) -> str:
    return (
        getattr(obj, "__name__", None)
        or getattr(obj, "name", None)
        or type(obj).__name__
    )


def _call(fn, *args, what: str | None = None, **kwargs):
    """Call the student's code; turn a left-over TODO into a one-line message."""
    what = what or _name(fn)
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(
            f"You have not filled in the TODO yet: `{what}` still raises "
            f"NotImplementedError. Replace `raise NotImplementedError()` with your "
            f"code, run that cell, then run this check again."
        ) from None
    except CheckFailed:
        raise
    except Exception as error:
        raise CheckFailed(
            f"`{what}` raised {type(error).__name__}: {error} (the traceback above "
            f"shows the line in your code)"
        ) from error


def _numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        from keras import ops

        return np.asarray(ops.convert_to_numpy(value))
    except Exception:  # plain Python numbers, lists
        return np.asarray(value)


def _passed(message: str) -> None:
    print(f"✅ {message}")


def _build(model_or_fn, config, kind: str):
    import keras

    if isinstance(model_or_fn, keras.Model):
        return model_or_fn
    if callable(model_or_fn):
        model = _call(model_or_fn, config, what=_name(model_or_fn))
        if isinstance(model, keras.Model):
            return model
        raise CheckFailed(
            f"`{_name(model_or_fn)}(config)` returned {type(model).__name__}, "
            f"not a keras.Model: end with `return keras.Model(inputs, "
            f"outputs, name='{kind}')`"
        )
    raise CheckFailed(
        f"expected the {kind} (a keras.Model) or the function that builds "
        f"it, got {type(model_or_fn).__name__}"
    )


def _producer(tensor):
    """Return the layer that made a functional model's output tensor (or None)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None


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


# ------------------------------------------------------------------------ sampling
def _sampling_caller(sampling):
    import inspect

    import keras

    if isinstance(sampling, type):
        sampling = _call(sampling, what=f"{sampling.__name__}()")
    if isinstance(sampling, keras.layers.Layer):
        return sampling, lambda mean, log_var: sampling([mean, log_var])
    if not callable(sampling):
        raise CheckFailed(
            f"expected a Sampling layer or function, got " f"{type(sampling).__name__}"
        )
    try:
        params = inspect.signature(sampling).parameters.values()
        required = [
            p
            for p in params
            if p.default is p.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        required = []
    if len(required) >= 2:
        return sampling, sampling
    return sampling, lambda mean, log_var: sampling([mean, log_var])


def check_sampling(sampling, draws: int = 4000) -> None:
    """Check the reparameterisation ``z = z_mean + exp(0.5 * z_log_var) * eps``.

    Args:
        sampling: a ``Sampling`` layer instance or class (called as
            ``layer([z_mean, z_log_var])``), or a function called as
            ``fn(z_mean, z_log_var)`` (or ``fn([z_mean, z_log_var])``); inputs are
            (B, D) float32 tensors, the output must be (B, D).
        draws: rows B used to measure the mean and spread.

    Raises:
        CheckFailed: wrong shape, no noise, repeated noise, wrong mean or scale.
    """
    from keras import ops

    layer, call = _sampling_caller(sampling)
    what = _name(layer)
    means = np.array([0.0, 1.0, -2.0, 3.0], np.float32)
    stds = np.array([1.5, 2.0, 0.5, 3.0], np.float32)
    log_vars = 2 * np.log(stds)
    z_mean = ops.convert_to_tensor(np.tile(means, (draws, 1)))
    z_log_var = ops.convert_to_tensor(np.tile(log_vars, (draws, 1)))
    z = _numpy(_call(call, z_mean, z_log_var, what=what)).astype(np.float64)
    if z.shape != (draws, 4):
        raise CheckFailed(
            f"z has shape {z.shape}, expected {(draws, 4)} (the shape of "
            f"z_mean): one sample per example and latent dimension"
        )
    if not np.all(np.isfinite(z)):
        raise CheckFailed("z contains NaN or inf: sigma = exp(0.5 * z_log_var)")
    noise = z - means
    if np.allclose(noise, 0, atol=1e-6):
        raise CheckFailed(
            "z equals z_mean: there is no noise; add "
            "exp(0.5 * z_log_var) * eps with eps ~ N(0, I)"
        )
    again = _numpy(_call(call, z_mean, z_log_var, what=what))
    if np.allclose(again, z, atol=1e-6):
        raise CheckFailed(
            "two calls returned the same z: eps is not random each call. "
            "Draw it with keras.random.normal(ops.shape(z_mean), "
            "seed=self.seed_generator) (a SeedGenerator, not a fixed "
            "integer seed or a constant)"
        )
    if np.allclose(noise, noise[:1], atol=1e-6):
        raise CheckFailed(
            "every example got the same eps: draw eps with the full shape "
            "of z_mean, (B, D), e.g. keras.random.normal(ops.shape(z_mean))"
        )
    moving = noise[:, noise.std(0) > 1e-6]
    if moving.shape[1] >= 2 and abs(np.corrcoef(moving[:, :2].T)[0, 1]) > 0.99:
        raise CheckFailed(
            "all latent dimensions share one eps per example (shape "
            "(B, 1)?): eps needs the shape of z_mean, (B, D)"
        )
    centred = (moving - moving.mean(0)) / moving.std(0)
    if np.mean(centred**4) - 3 < -0.8:  # excess kurtosis: -1.2 uniform, 0 normal
        raise CheckFailed(
            "eps looks uniform, not Gaussian: use keras.random.normal, "
            "not keras.random.uniform"
        )
    measured_mean, measured_std = z.mean(0), z.std(0)
    if np.any(np.abs(measured_mean - means) > 0.1 * stds + 0.02):
        if np.all(np.abs(measured_mean) < 0.1 * stds + 0.02):
            raise CheckFailed(
                "the average of z is 0, not z_mean: z_mean is missing "
                "(z = z_mean + sigma * eps)"
            )
        raise CheckFailed(
            f"over many draws z should average to z_mean {means.tolist()}, "
            f"got {np.round(measured_mean, 2).tolist()}: "
            f"z = z_mean + exp(0.5 * z_log_var) * eps"
        )
    scales = {
        "right": stds,
        "your spread is the variance exp(z_log_var), not the standard deviation: you "
        "forgot the 0.5 in the exponent (or the square root); "
        "sigma = exp(0.5 * z_log_var)": stds**2,
        "the 0.5 belongs inside the exponent: exp(0.5 * z_log_var), not "
        "0.5 * exp(z_log_var)": 0.5 * stds**2,
        "you multiplied eps by z_log_var itself; it is a log-variance, so "
        "sigma = exp(0.5 * z_log_var)": np.abs(log_vars),
        "the noise ignores z_log_var: multiply eps by "
        "sigma = exp(0.5 * z_log_var)": np.ones_like(stds),
        "the sign in the exponent is flipped: exp(0.5 * z_log_var), not "
        "exp(-0.5 * z_log_var)": 1 / stds,
    }
    for hint, scale in scales.items():
        if np.all(np.abs(measured_std - scale) < 0.08 * scale + 0.02):
            if hint == "right":
                break
            raise CheckFailed(hint)
    else:
        raise CheckFailed(
            f"the spread of z should be exp(0.5 * z_log_var) = "
            f"{stds.tolist()}, got {np.round(measured_std, 2).tolist()}"
        )
    _check_symbolic(layer)
    _passed(
        f"check_sampling passed: over {draws} draws z has mean z_mean and standard "
        f"deviation exp(0.5 * z_log_var), with fresh noise every call"
    )


def _check_symbolic(layer) -> None:
    """A layer must also work inside a functional model (symbolic inputs)."""
    import keras

    if not isinstance(layer, keras.layers.Layer):
        return
    mean, log_var = keras.Input((4,)), keras.Input((4,))
    try:
        model = keras.Model([mean, log_var], layer([mean, log_var]))
        z = model.predict([np.zeros((3, 4), np.float32)] * 2, verbose=0)
    except Exception as error:
        raise CheckFailed(
            f"works on arrays but not inside a Keras model "
            f"({type(error).__name__}: {error}): use keras.ops and "
            f"keras.random.normal(ops.shape(z_mean), "
            f"seed=self.seed_generator), not NumPy"
        ) from error
    if np.shape(z) != (3, 4):
        raise CheckFailed(
            f"inside a model the layer returned {np.shape(z)}, expected " f"(3, 4)"
        )


# ---------------------------------------------------------------- encoder, decoder
def check_encoder_heads(encoder, config) -> None:
    """Check the encoder ends in two separate linear Dense heads of size latent_dim.

    Args:
        encoder: the student's encoder ``keras.Model``, or a function
            ``build_encoder(config)`` returning it.
        config: the ``VAEConfig`` it was built for.

    Raises:
        CheckFailed: wrong inputs, outputs, head layers, names or values.
    """
    import keras

    model = _build(encoder, config, "encoder")
    dim = config.latent_dim
    outputs = model.outputs
    if len(outputs) == 1 and outputs[0].shape[-1] == 2 * dim:
        raise CheckFailed(
            f"one output of size 2 * latent_dim = {2 * dim}: use two "
            f"separate heads, Dense({dim}, name='z_mean') and "
            f"Dense({dim}, name='z_log_var'), each on the features"
        )
    if len(outputs) == 3:
        raise CheckFailed(
            "three outputs: return [z_mean, z_log_var] only; the VAE "
            "draws z itself with its Sampling layer"
        )
    if len(outputs) != 2:
        raise CheckFailed(
            f"{len(outputs)} output(s): the encoder returns " f"[z_mean, z_log_var]"
        )
    in_shape = tuple(model.inputs[0].shape[1:])
    if in_shape != tuple(config.image_shape):
        raise CheckFailed(
            f"input shape {in_shape}, expected {config.image_shape}: "
            f"keras.Input(config.image_shape)"
        )
    heads = [_producer(t) for t in outputs]
    names = ("z_mean", "z_log_var")
    for name, tensor, layer in zip(names, outputs, heads):
        if tuple(tensor.shape[1:]) != (dim,):
            raise CheckFailed(
                f"{name} has shape {tuple(tensor.shape)}, expected "
                f"(None, {dim}): Dense(config.latent_dim), not a "
                f"hard-coded size"
            )
        if not isinstance(layer, keras.layers.Dense):
            raise CheckFailed(
                f"{name} comes from a {type(layer).__name__} layer: each "
                f"head must be its own Dense({dim}) layer"
            )
    if heads[0] is heads[1]:
        raise CheckFailed(
            "z_mean and z_log_var come from the same layer: use two "
            "separate Dense layers (one shared layer ties them together)"
        )
    if [layer.name for layer in heads] == list(reversed(names)):
        raise CheckFailed(
            "the outputs are in the wrong order: return " "[z_mean, z_log_var]"
        )
    for name, layer in zip(names, heads):
        if layer.name != name:
            raise CheckFailed(
                f"name the head layers: Dense({dim}, name='{name}') "
                f"(got '{layer.name}'), so summary() and the VAE show "
                f"which is which"
            )
        if _activation_name(layer) != "linear":
            raise CheckFailed(
                f"{name} has a {_activation_name(layer)} activation: the "
                f"heads must be linear (no activation), because means and "
                f"log-variances can be any real number"
            )
    low, high = config.value_range
    rng = np.random.default_rng(0)
    images = rng.uniform(low, high, (2, *config.image_shape)).astype(np.float32)
    z_mean, z_log_var = (_numpy(v) for v in _call(model, images, what=model.name))
    if z_mean.shape != (2, dim) or z_log_var.shape != (2, dim):
        raise CheckFailed(
            f"on a batch of 2 images the heads gave {z_mean.shape} and "
            f"{z_log_var.shape}, expected (2, {dim}) each"
        )
    if np.allclose(z_mean, z_log_var):
        raise CheckFailed("z_mean and z_log_var are identical: two separate heads")
    _passed(
        f"check_encoder_heads passed: (B, {', '.join(map(str, in_shape))}) -> "
        f"z_mean (B, {dim}) and z_log_var (B, {dim}) from two linear Dense heads"
    )


def check_decoder_output(decoder, config) -> None:
    """Check the decoder maps (B, latent_dim) to images of the input's shape and range.

    Args:
        decoder: the student's decoder ``keras.Model``, or a function
            ``build_decoder(config)`` returning it.
        config: the ``VAEConfig`` (its ``output_activation`` gives the range).

    Raises:
        CheckFailed: wrong input/output shape, channels, final activation or range.
    """
    model = _build(decoder, config, "decoder")
    dim, shape = config.latent_dim, tuple(config.image_shape)
    in_shape = tuple(model.inputs[0].shape[1:])
    if in_shape != (dim,):
        raise CheckFailed(
            f"input shape {in_shape}, expected ({dim},): "
            f"keras.Input((config.latent_dim,))"
        )
    out_shape = tuple(model.outputs[0].shape[1:])
    if len(out_shape) == 3 and out_shape[:2] == shape[:2] and out_shape[2] != 3:
        raise CheckFailed(
            f"the decoder outputs {out_shape[2]} channel(s): images are "
            f"RGB, so the last Conv2D needs 3 filters"
        )
    if out_shape != shape:
        raise CheckFailed(
            f"output shape {out_shape}, expected {shape} (the input "
            f"images' shape): start at {config.bottleneck_size}x"
            f"{config.bottleneck_size} and double the size once per "
            f"encoder layer ({len(config.filters)} up-sampling stages)"
        )
    want = config.output_activation
    low, high = config.value_range
    got = _activation_name(_producer(model.outputs[0]))
    if got != want:
        if want == "sigmoid":
            hint = "a [0, 1] decoder must end in sigmoid" + (
                ": tanh gives values in [-1, 1]"
                if got == "tanh"
                else f": with {got or 'no'} activation the values are out of range"
            )
        else:
            hint = "a [-1, 1] decoder must end in tanh" + (
                ": sigmoid only reaches [0, 1]"
                if got == "sigmoid"
                else f": with {got or 'no'} activation the values are out of range"
            )
        raise CheckFailed(
            f"the last layer's activation is {got or 'none'}: {hint} "
            f"(activation='{want}' on the last Conv2D)"
        )
    z = np.random.default_rng(0).normal(0, 3, (4, dim)).astype(np.float32)
    images = _numpy(_call(model, z, what=model.name))
    if images.shape != (4, *shape):
        raise CheckFailed(
            f"4 latent vectors gave shape {images.shape}, expected " f"{(4, *shape)}"
        )
    if images.min() < low - 1e-6 or images.max() > high + 1e-6:
        raise CheckFailed(
            f"values in [{images.min():.2f}, {images.max():.2f}], outside "
            f"[{low:g}, {high:g}]: end the decoder in {want}"
        )
    _passed(
        f"check_decoder_output passed: (B, {dim}) -> (B, {', '.join(map(str, shape))})"
        f", ending in {want} so pixels stay in [{low:g}, {high:g}]"
    )


# -------------------------------------------------------------------------- losses
# Hand-checkable inputs: row 0 is N(0, I) (KL 0), row 1 only moves the mean
# (KL = 0.5 * (1 + 4) = 2.5), rows 2-3 change the variance too.
KL_Z_MEAN = np.array([[0, 0, 0], [1, 2, 0], [0, 0, 0], [0.5, -1, 1]], np.float32)
KL_Z_LOG_VAR = np.array([[0, 0, 0], [0, 0, 0], [1, -1, 2], [0.5, -0.5, 0]], np.float32)


def _kl_numpy(mean, log_var, variance=None, square=True):
    variance = np.exp(log_var) if variance is None else variance
    term = mean**2 if square else mean
    return -0.5 * (1 + log_var - term - variance)


def check_kl(fn) -> None:
    """Check a per-example KL(N(z_mean, exp(z_log_var)) || N(0, I)).

    Args:
        fn: the student's ``kl_divergence(z_mean, z_log_var)``; inputs (B, D)
            float32 tensors, returns (B,) KL summed over the D latent dimensions.

    Raises:
        CheckFailed: wrong shape, sign, factor, reduction or formula.
    """
    from keras import ops

    from helpers.losses import kl_divergence

    mean, log_var = KL_Z_MEAN.astype(np.float64), KL_Z_LOG_VAR.astype(np.float64)
    per_dim = _kl_numpy(mean, log_var)
    expected = per_dim.sum(-1)
    reference = _numpy(kl_divergence(KL_Z_MEAN, KL_Z_LOG_VAR))
    assert np.allclose(reference, expected, rtol=1e-5), "helpers.losses disagrees"
    out = _numpy(
        _call(fn, ops.convert_to_tensor(KL_Z_MEAN), ops.convert_to_tensor(KL_Z_LOG_VAR))
    ).astype(np.float64)
    batch, dims = mean.shape
    if not np.all(np.isfinite(out)):
        raise CheckFailed(
            "the KL has NaN or inf: you probably used z_log_var as the "
            "variance (the log of 0 or of a negative number). z_log_var "
            "is log(sigma^2), so the variance is exp(z_log_var)"
        )
    if out.size == 1:
        value = float(out.reshape(()))
        for hint, number in (
            ("summed over the batch", expected.sum()),
            ("averaged over the batch", expected.mean()),
            ("averaged over every value", per_dim.mean()),
        ):
            if np.isclose(value, number, rtol=1e-4):
                raise CheckFailed(
                    f"you returned one number, the KL {hint}: return one "
                    f"KL per example, shape (B,), summing over the latent "
                    f"axis only (axis=-1); the loss averages the batch"
                )
        raise CheckFailed(
            f"you returned one number ({value:.4g}): return one KL per "
            f"example, shape (B,) = ({batch},)"
        )
    if out.shape == (batch, dims):
        raise CheckFailed(
            f"shape {out.shape} is one KL per latent dimension: sum over "
            f"them (axis=-1) to get one KL per example, shape (B,)"
        )
    if out.shape != (batch,):
        raise CheckFailed(f"shape {out.shape}, expected (B,) = ({batch},)")
    if np.allclose(out, expected, rtol=1e-4, atol=1e-5):
        _passed(
            f"check_kl passed: KL = {np.round(expected, 4).tolist()} for the hand "
            f"examples, 0 at N(0, I), never negative"
        )
        return
    variants = {
        "the sign is flipped (a negative KL): the KL is >= 0, "
        "-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var))": -expected,
        "your KL is twice the right value: you forgot the 0.5": 2 * expected,
        "you averaged over the latent dimensions: sum them (axis=-1)": expected / dims,
        "you used exp(0.5 * z_log_var), the standard deviation, where the formula "
        "needs the variance exp(z_log_var)": _kl_numpy(
            mean, log_var, np.exp(0.5 * log_var)
        ).sum(-1),
        "square z_mean: the term is z_mean**2": _kl_numpy(
            mean, log_var, square=False
        ).sum(-1),
    }
    for hint, values in variants.items():
        if np.allclose(out, values, rtol=1e-4, atol=1e-5):
            raise CheckFailed(
                f"{hint} (expected {np.round(expected, 4).tolist()}, got "
                f"{np.round(out, 4).tolist()})"
            )
    raise CheckFailed(
        f"KL differs from the hand-computed values: expected "
        f"{np.round(expected, 4).tolist()}, got {np.round(out, 4).tolist()}"
        f"; per dimension it is -0.5 * (1 + log_var - mean**2 - "
        f"exp(log_var)), summed over the latent axis"
    )


def _scalar_total(result) -> np.ndarray:
    if isinstance(result, dict):
        for key in ("total", "loss", "total_loss"):
            if key in result:
                return _numpy(result[key]).astype(np.float64)
        raise CheckFailed(
            f"the returned dict has keys {sorted(result)}: put the total "
            f"loss under 'total'"
        )
    if isinstance(result, (tuple, list)):
        result = result[0]
    return _numpy(result).astype(np.float64)


def check_total_loss(fn, kind: str = "mse") -> None:
    """Check ``total = reconstruction + beta * kl``, each summed per image, batch mean.

    Args:
        fn: the student's ``vae_loss(images, reconstructions, z_mean, z_log_var,
            beta)`` (positional); images (B, 64, 64, 3) float32 in [0, 1], latents
            (B, D). Returns the scalar total, a dict with a "total" key (like
            ``helpers.losses.vae_loss``) or a tuple whose first item is the total.
        kind: the reconstruction loss the notebook uses, "mse" or "bce".

    Raises:
        CheckFailed: beta ignored, pixel-averaged reconstruction, KL sign, reduction.
    """
    from keras import ops

    from helpers.losses import kl_divergence, reconstruction_loss

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    noisy = np.clip(images + rng.normal(0, 0.1, images.shape), 0.01, 0.99)
    recons = noisy.astype(np.float32)
    z_mean = rng.normal(0, 1, (2, 8)).astype(np.float32)
    z_log_var = rng.normal(0, 0.5, (2, 8)).astype(np.float32)
    rec_each = _numpy(reconstruction_loss(images, recons, kind)).astype(np.float64)
    kl_each = _numpy(kl_divergence(z_mean, z_log_var)).astype(np.float64)
    rec, kl = rec_each.mean(), kl_each.mean()
    args = [ops.convert_to_tensor(v) for v in (images, recons, z_mean, z_log_var)]
    results = {}
    for beta in (1.0, 4.0):
        total = _scalar_total(_call(fn, *args, beta))
        if total.size != 1:
            raise CheckFailed(
                f"the total has shape {total.shape}: return one number, "
                f"the batch mean of reconstruction + beta * kl"
            )
        results[beta] = float(total.reshape(()))
    variants = {
        None: lambda b: rec + b * kl,
        "beta is ignored: total = reconstruction + beta * kl": lambda b: rec + kl,
        f"you averaged the reconstruction over the pixels, which divides it by "
        f"{PIXELS_64:,} (64*64*3): an effective beta of {PIXELS_64:,}. The KL then "
        f"wins, the posterior collapses onto the prior and every sample is the same "
        f"blurry face. Sum the reconstruction over the pixels, then average over the "
        f"batch": lambda b: rec / PIXELS_64 + b * kl,
        f"you averaged the reconstruction over the pixels and the KL over the latent "
        f"dimensions: the reconstruction shrinks {PIXELS_64:,}-fold and the posterior "
        f"collapses (all samples one blurry face). Sum both per image, then average "
        f"over the batch": lambda b: rec / PIXELS_64 + b * kl / 8,
        "the KL is added with the wrong sign: total = reconstruction + beta * kl "
        "(minus the ELBO)": lambda b: rec - b * kl,
        "beta multiplies the KL, not the reconstruction": lambda b: b * rec + kl,
        "you summed over the batch: average it, so the loss does not depend on the "
        "batch size": lambda b: 2 * (rec + b * kl),
        "the KL term is missing: total = reconstruction + beta * kl": lambda b: rec,
        "the reconstruction term is missing: total = reconstruction "
        "+ beta * kl": lambda b: b * kl,
    }
    for hint, formula in variants.items():
        if all(np.isclose(results[b], formula(b), rtol=1e-3) for b in results):
            if hint is None:
                _passed(
                    f"check_total_loss passed: total = reconstruction ({rec:.1f}, "
                    f"summed over {PIXELS_64:,} pixel values) + beta * KL "
                    f"({kl:.3f}), averaged over the batch"
                )
                return
            raise CheckFailed(hint)
    raise CheckFailed(
        f"total loss {results[1.0]:.4g} (beta=1) and {results[4.0]:.4g} "
        f"(beta=4), expected {rec + kl:.4g} and {rec + 4 * kl:.4g}: "
        f"reconstruction summed per image + beta * KL per image, "
        f"averaged over the batch"
    )


# ----------------------------------------------------------------------- callbacks
def _same_path(value, want: Path) -> bool:
    return value is not None and Path(str(value)).resolve() == want.resolve()


def _inside(value, root: Path) -> bool:
    if value is None:
        return False
    path, root = Path(str(value)).resolve(), root.resolve()
    return path == root or root in path.parents


def check_callbacks(callbacks, run_dir) -> None:
    """Check the training callbacks write everything a run directory needs.

    Looks for ModelCheckpoint (val_loss, best only, run_dir/best.keras),
    TensorBoard (under run_dir), CSVLogger (run_dir/history.csv, append=True),
    TerminateOnNaN, BackupAndRestore (under run_dir) and the lab's SampleGrid
    (matched by class name). Subclasses count.

    Args:
        callbacks: the list passed to ``fit(callbacks=...)``, or a function of no
            arguments that returns it (``lambda: make_callbacks(...)``), so a TODO
            left as ``raise NotImplementedError()`` gets the friendly message.
        run_dir: the run directory they should write to.

    Raises:
        CheckFailed: listing every missing or misconfigured callback.
    """
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if callable(callbacks) and not isinstance(callbacks, (list, tuple)):
        callbacks = _call(
            callbacks, what="make_callbacks"
        )  # lambda: make_callbacks(...)
    if not isinstance(callbacks, (list, tuple)):
        raise CheckFailed(
            f"expected a list of callbacks, got {type(callbacks).__name__}"
        )
    found: dict[str, object] = {}
    problems = []
    for index, item in enumerate(callbacks):
        if isinstance(item, type):
            problems.append(
                f"item {index} is the class {item.__name__}, not an "
                f"instance: add the parentheses and arguments"
            )
            continue
        names = [cls.__name__ for cls in type(item).__mro__]
        if "Callback" not in names:
            problems.append(
                f"item {index} is a {type(item).__name__}, not a Keras " f"callback"
            )
        for name in names:
            found.setdefault(name, item)
    needs = {
        "ModelCheckpoint": "ModelCheckpoint(run_dir / 'best.keras', "
        "monitor='val_loss', save_best_only=True) keeps the best model for evaluation",
        "TensorBoard": "TensorBoard(log_dir=run_dir / 'tensorboard') to watch the "
        "losses live",
        "CSVLogger": "CSVLogger(run_dir / 'history.csv', append=True) writes the loss "
        "table that plots and the report read",
        "TerminateOnNaN": "TerminateOnNaN() stops at the first NaN loss instead of "
        "training on garbage",
        "BackupAndRestore": "BackupAndRestore(run_dir / 'backup') lets an interrupted "
        "run (a Colab disconnect) resume where it stopped",
        "SampleGrid": "SampleGrid(...) from helpers.callbacks decodes the fixed latent "
        "vectors into run_dir/samples/ so you can watch faces appear",
    }
    for name, hint in needs.items():
        if name not in found:
            problems.append(f"missing {name}: {hint}")
    checkpoint = found.get("ModelCheckpoint")
    if checkpoint is not None:
        if getattr(checkpoint, "monitor", None) != "val_loss":
            problems.append(
                f"ModelCheckpoint monitors {checkpoint.monitor!r}: use "
                f"monitor='val_loss' so the best model is chosen on "
                f"held-out images"
            )
        if not getattr(checkpoint, "save_best_only", False):
            problems.append(
                "ModelCheckpoint needs save_best_only=True, or it keeps the "
                "last epoch instead of the best"
            )
        if not _same_path(getattr(checkpoint, "filepath", None), paths.best_model):
            problems.append(
                f"ModelCheckpoint writes {checkpoint.filepath}: save to "
                f"{paths.best_model} (evaluate and sample load it)"
            )
    logger = found.get("CSVLogger")
    if logger is not None:
        if not _same_path(getattr(logger, "filename", None), paths.history):
            problems.append(f"CSVLogger writes {logger.filename}: use {paths.history}")
        if not getattr(logger, "append", False):
            problems.append(
                "CSVLogger needs append=True, or a resumed run overwrites "
                "the epochs before the interruption"
            )
    for name, attribute in (
        ("TensorBoard", "log_dir"),
        ("BackupAndRestore", "backup_dir"),
    ):
        callback = found.get(name)
        if callback is not None and not _inside(
            getattr(callback, attribute, None), paths.root
        ):
            problems.append(
                f"{name} writes to {getattr(callback, attribute, None)}: "
                f"keep it inside the run directory {paths.root}"
            )
    if problems:
        raise CheckFailed("callbacks to fix:\n- " + "\n- ".join(problems))
    _passed(
        "check_callbacks passed: best model, TensorBoard, history.csv, NaN guard, "
        "resume backup and sample grids all go to " + str(paths.root)
    )


# -------------------------------------------------------------------- prior samples
def _split_samples(result):
    if isinstance(result, dict):
        return _numpy(result.get("images")), (
            _numpy(result["z"]) if "z" in result else None
        )
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return _numpy(result[0]), _numpy(result[1])
    return _numpy(result), None


def check_prior_samples(fn, vae, n: int = 16) -> None:
    """Check "sample z from the prior N(0, I) and decode it".

    Args:
        fn: the student's ``sample_faces(vae, n, seed)``, called as
            ``fn(vae, n, seed=s)``; returns (n, H, W, 3) images in
            ``vae.value_range``, or ``(images, z)`` with z of shape (n, latent_dim)
            (then z itself is tested against N(0, I)).
        vae: a ``helpers.model.VAE`` (trained or not; only ``decoder`` and
            ``value_range`` are used).
        n: faces per call.

    Raises:
        CheckFailed: wrong shape or range, identical faces, seed ignored or not
            repeatable, z not from N(0, I).
    """
    decoder = vae.decoder
    dim = int(decoder.inputs[0].shape[-1])
    shape = tuple(decoder.outputs[0].shape[1:])
    low, high = getattr(vae, "value_range", (0.0, 1.0))
    images, z = _split_samples(_call(fn, vae, n, seed=0))
    if images.shape == (n, dim):
        raise CheckFailed(
            f"you returned z, shape {images.shape}: decode it into images "
            f"with vae.decoder(z) (or vae.decode(z))"
        )
    if images.shape != (n, *shape):
        raise CheckFailed(
            f"images have shape {images.shape}, expected {(n, *shape)}: "
            f"draw z with shape (n, latent_dim) = ({n}, {dim}), decode it"
        )
    if images.min() < low - 1e-5 or images.max() > high + 1e-5:
        raise CheckFailed(
            f"values in [{images.min():.2f}, {images.max():.2f}], outside "
            f"[{low:g}, {high:g}]: return the decoder's output unchanged"
        )
    if np.allclose(images, images[:1], atol=1e-6):
        raise CheckFailed(
            "all faces are identical: draw a different z for every face, "
            "shape (n, latent_dim)"
        )
    same, _ = _split_samples(_call(fn, vae, n, seed=0))
    if not np.allclose(same, images, atol=1e-5):
        raise CheckFailed(
            "the same seed gave different faces: pass the seed on, e.g. "
            "keras.random.normal((n, latent_dim), seed=seed)"
        )
    other, _ = _split_samples(_call(fn, vae, n, seed=1))
    if np.allclose(other, images, atol=1e-6):
        raise CheckFailed(
            "seeds 0 and 1 gave the same faces: the seed is ignored or z "
            "is not random"
        )
    many, z = _split_samples(_call(fn, vae, 256, seed=2))
    if z is not None:
        if z.shape != (256, dim):
            raise CheckFailed(
                f"z has shape {z.shape}, expected (n, latent_dim) = " f"(256, {dim})"
            )
        mean, std = float(z.mean()), float(z.std())
        if abs(mean) > 0.1 or abs(std - 1) > 0.1:
            raise CheckFailed(
                f"z has mean {mean:.2f} and std {std:.2f}: sample the "
                f"prior N(0, I) with keras.random.normal((n, latent_dim))"
                f", unscaled (not uniform, not the encoder's codes)"
            )
    else:
        rng = np.random.default_rng(3)
        reference = _numpy(decoder(rng.normal(size=(256, dim)).astype(np.float32)))
        ratio = float(many.std(0).mean() / max(reference.std(0).mean(), 1e-12))
        if not 0.6 < ratio < 1.6:
            raise CheckFailed(
                f"the faces vary {ratio:.2f} times as much as faces "
                f"decoded from N(0, I): sample z with "
                f"keras.random.normal((n, latent_dim)), mean 0, std 1"
            )
    _passed(
        f"check_prior_samples passed: {n} different faces {shape} in "
        f"[{low:g}, {high:g}] from z ~ N(0, I), repeatable for a seed"
    )
