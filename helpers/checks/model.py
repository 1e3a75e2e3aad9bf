"""Self-checks for 02_model: the sampling layer, the encoder and the decoder.

No reference code is imported: the architecture checks compare the student's model
with the design the notebook describes, computed from the config (layer types,
output shapes, parameter counts by formula); the sampling check measures the mean
and spread of many draws.
"""

from __future__ import annotations

import numpy as np

from helpers.checks._common import (
    CheckFailed,
    _activation_name,
    _build,
    _call,
    _name,
    _numpy,
    _passed,
    _producer,
    self_check,
)


# ------------------------------------------------------------------------ sampling
def _sampling_caller(sampling):
    import inspect

    import keras

    if isinstance(sampling, type):  # seeded, as the VAE builds it in 04
        try:
            sampling = sampling(seed=1337)
        except TypeError:
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


@self_check("Sampling")
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
    _check_noise(z - means, z, lambda: _call(call, z_mean, z_log_var, what=what))
    _check_moments(z, means, stds)
    _check_symbolic(layer)
    _passed(
        f"check_sampling passed: over {draws} draws z has mean z_mean and standard "
        f"deviation exp(0.5 * z_log_var), with fresh noise every call"
    )


def _check_noise(noise, z, draw_again) -> None:
    """eps is random, fresh every call, of the full (B, D) shape, and Gaussian."""
    if np.allclose(noise, 0, atol=1e-6):
        raise CheckFailed(
            "z equals z_mean: there is no noise; add "
            "exp(0.5 * z_log_var) * eps with eps ~ N(0, I)"
        )
    again = _numpy(draw_again())
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


def _check_moments(z, means, stds) -> None:
    """Over many draws z has mean z_mean and spread exp(0.5 * z_log_var)."""
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
        "sigma = exp(0.5 * z_log_var)": np.abs(2 * np.log(stds)),
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


def _check_symbolic(layer) -> None:
    """A layer must also work inside a functional model, as fit() runs it.

    Inside a model Keras traces ``call`` into a graph: NumPy or Python randomness
    is drawn once, at tracing, and baked in as a constant, so every step would
    reuse the same eps (or fail when the batch size changes).
    """
    import keras

    if not isinstance(layer, keras.layers.Layer):
        return
    mean, log_var = keras.Input((4,)), keras.Input((4,))
    draws = []
    try:
        model = keras.Model([mean, log_var], layer([mean, log_var]))
        for batch in (3, 3, 5):
            zeros = [np.zeros((batch, 4), np.float32)] * 2
            draws.append(model.predict(zeros, verbose=0))
    except Exception as error:
        first = (str(error).strip().splitlines() or [""])[0][:200]
        raise CheckFailed(
            f"works on arrays but not inside a Keras model "
            f"({type(error).__name__}: {first}): use keras.ops and "
            f"keras.random.normal(ops.shape(z_mean), "
            f"seed=self.seed_generator), not NumPy",
            student_error=error,
        ) from None
    if [np.shape(z) for z in draws] != [(3, 4), (3, 4), (5, 4)]:
        raise CheckFailed(
            f"inside a model the layer returned {np.shape(draws[0])} for 3 rows, "
            "expected (3, 4)"
        )
    if np.allclose(draws[0], draws[1], atol=1e-6):
        raise CheckFailed(
            "inside a model (as fit() runs it) two steps drew the same eps: the "
            "noise was drawn once when Keras traced call (NumPy, Python's random, "
            "or a fixed integer seed). Draw it with keras.random.normal(..., "
            "seed=self.seed_generator), a keras.random.SeedGenerator made in __init__"
        )


# ---------------------------------------------------------------- encoder, decoder
@self_check("build_encoder")
def check_encoder_heads(encoder, config) -> None:
    """Check the encoder ends in two separate linear Dense heads of size latent_dim.

    Args:
        encoder: the student's encoder ``keras.Model``, or a function
            ``build_encoder(config)`` returning it.
        config: the ``VAEConfig`` it was built for.

    Raises:
        CheckFailed: wrong inputs, outputs, head layers, names or values.
    """
    model = _build(encoder, config, "encoder")
    in_shape = _check_heads(model, config)
    dim = config.latent_dim
    _passed(
        f"check_encoder_heads passed: (B, {', '.join(map(str, in_shape))}) -> "
        f"z_mean (B, {dim}) and z_log_var (B, {dim}) from two linear Dense heads"
    )


def _check_heads(model, config) -> tuple:
    """The heads part of the encoder checks; returns the input shape."""
    import keras

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
    return in_shape


@self_check("build_decoder")
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
    _check_decoder_output(model, config)
    dim, shape = config.latent_dim, tuple(config.image_shape)
    want = config.output_activation
    low, high = config.value_range
    _passed(
        f"check_decoder_output passed: (B, {dim}) -> (B, {', '.join(map(str, shape))})"
        f", ending in {want} so pixels stay in [{low:g}, {high:g}]"
    )


def _check_decoder_output(model, config) -> None:
    """The output part of the decoder checks."""
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


# ------------------------------------------------------- the whole encoder, decoder
_NONLINEAR = ("LeakyReLU", "ReLU", "ELU", "PReLU", "Activation")


def _layers(model) -> list:
    """The model's layers in order, without the input layer."""
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _nonlinear_after(layers_, index: int) -> bool:
    """Is layers_[index] nonlinear itself, or followed by an activation layer?"""
    layer = layers_[index]
    if _activation_name(layer) not in (None, "linear"):
        return True
    if index + 1 < len(layers_):
        after = layers_[index + 1]
        if type(after).__name__ in _NONLINEAR and _activation_name(after) != "linear":
            return True
    return False


LEAKY_SLOPE = 0.2  # the design's LeakyReLU slope (the tables in 02)


def _leaky_problem(layers_, index: int) -> str | None:
    """What is wrong with the nonlinearity after layers_[index], or None.

    The design names LeakyReLU with slope 0.2: a LeakyReLU layer after the
    layer, or ``activation="leaky_relu"`` on it (Keras' default slope is 0.2).
    """
    layer = layers_[index]
    own = _activation_name(layer)
    if own not in (None, "linear"):
        return None if own == "leaky_relu" else f"a {own} activation"
    after = layers_[index + 1] if index + 1 < len(layers_) else None
    if after is None:
        return "nothing"
    kind = type(after).__name__
    if kind == "LeakyReLU":
        slope = getattr(after, "negative_slope", None)
        if slope is None:
            slope = getattr(after, "alpha", LEAKY_SLOPE)
        if abs(float(slope) - LEAKY_SLOPE) > 1e-6:
            return f"LeakyReLU with negative_slope={float(slope):g}"
        return None
    if kind == "Activation" and _activation_name(after) == "leaky_relu":
        return None
    return f"a {kind} layer" + (
        f" ({_activation_name(after)})" if kind == "Activation" else ""
    )


def _require_leaky(layers_, index: int, label: str) -> None:
    problem = _leaky_problem(layers_, index)
    if problem is not None:
        raise CheckFailed(
            f"{label} ({layers_[index].name}) is followed by {problem}, not "
            f"LeakyReLU(negative_slope={LEAKY_SLOPE:g}) as the design says: a ReLU "
            "passes no gradient for negative inputs, so units can switch off for "
            "good (dead units); the small slope keeps them learning, and the design "
            "keeps your numbers comparable with the guide's"
        )


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _check_conv(layer, label: str, filters: int, config, kind: str) -> None:
    """One strided (transposed) convolution of the encoder or decoder."""
    k = int(config.kernel_size)
    if layer.filters != filters:
        source = "config.filters" if kind == "encoder" else "the mirrored filters"
        raise CheckFailed(
            f"{label} ({layer.name}) has {layer.filters} filters, expected "
            f"{filters} ({source}; see the shapes above the exercise): take the "
            f"channel counts from the config, not hard-coded numbers"
        )
    if _pair(layer.kernel_size) != (k, k):
        raise CheckFailed(
            f"{label} ({layer.name}) has a {_pair(layer.kernel_size)} kernel, "
            f"expected ({k}, {k}): kernel_size=config.kernel_size"
        )


def _analytic_count(layers_) -> int:
    """Parameters of Dense / (transposed) conv layers, by formula from their shapes."""
    total = 0
    for layer in layers_:
        name = type(layer).__name__
        if name == "Dense":
            fan_in = int(layer.input.shape[-1])
            total += fan_in * layer.units + (layer.units if layer.use_bias else 0)
        elif name in ("Conv2D", "Conv2DTranspose"):
            kh, kw = _pair(layer.kernel_size)
            fan_in = int(layer.input.shape[-1])
            total += kh * kw * fan_in * layer.filters
            total += layer.filters if layer.use_bias else 0
    return total


def _check_extras(layers_, allowed: tuple, kind: str) -> None:
    extra = sorted({type(x).__name__ for x in layers_} - set(allowed))
    if extra:
        raise CheckFailed(
            f"the {kind} has layer types the design does not use: "
            f"{', '.join(extra)}. Build only the layers the exercise describes "
            f"(your numbers, and the lab's guide, then stay comparable)"
        )


@self_check("build_encoder")
def check_encoder(encoder, config) -> None:
    """Check the whole encoder: strided Conv2D + LeakyReLU per config.filters,
    Flatten, then two linear Dense heads z_mean and z_log_var.

    Args:
        encoder: the student's encoder ``keras.Model``, or ``build_encoder``
            (called with ``config``).
        config: the ``VAEConfig`` (filters, kernel_size, latent_dim, image_size).

    Raises:
        CheckFailed: naming the first layer that differs from the design (type,
            filters, kernel, stride, padding, missing nonlinearity, pooling) or
            the heads' mistake.
    """
    model = _build(encoder, config, "encoder")
    layers_ = _layers(model)
    if model.name != "encoder":
        raise CheckFailed(
            f"the model is named {model.name!r}: name it 'encoder' "
            f"(keras.Model(inputs, outputs, name='encoder')); the VAE and the "
            f"saved files refer to it by name"
        )
    in_shape = tuple(model.inputs[0].shape[1:])
    if in_shape != tuple(config.image_shape):
        raise CheckFailed(
            f"input shape {in_shape}, expected {config.image_shape}: "
            f"keras.Input(config.image_shape)"
        )
    kinds = [type(x).__name__ for x in layers_]
    if any("Pooling" in k for k in kinds):
        raise CheckFailed(
            "the encoder uses pooling: shrink the image with strides=2 in each "
            "Conv2D instead (the network learns how to down-sample)"
        )
    convs = [x for x in layers_ if type(x).__name__ == "Conv2D"]
    want = len(config.filters)
    if len(convs) != want:
        raise CheckFailed(
            f"{len(convs)} Conv2D layer(s), expected {want}: one per entry of "
            f"config.filters = {tuple(config.filters)} (loop over it)"
        )
    _check_down_stages(layers_, convs, config)
    if "Flatten" not in kinds:
        raise CheckFailed(
            "no Flatten layer: flatten the last feature map into one vector per "
            "image before the Dense heads"
        )
    _check_heads(model, config)
    _check_extras(layers_, ("Conv2D", "Flatten", "Dense") + _NONLINEAR, "encoder")
    expected = _analytic_count(layers_)
    count = model.count_params()
    if count != expected:  # pragma: no cover - a layer type the formula misses
        raise CheckFailed(
            f"{count:,} parameters, but its layers account for {expected:,}"
        )
    dim, b, top = config.latent_dim, config.bottleneck_size, config.filters[-1]
    _passed(
        f"check_encoder passed: {want} strided Conv2D + LeakyReLU({LEAKY_SLOPE:g}) "
        f"({' -> '.join(str(config.image_size >> i) for i in range(want + 1))} "
        f"pixels), Flatten ({b}*{b}*{top} = {b * b * top:,} features), linear "
        f"heads z_mean and z_log_var of size {dim}; {count:,} parameters"
    )


def _check_down_stages(layers_, convs, config) -> None:
    """Each Conv2D: its filters, stride 2, halving exactly, then a LeakyReLU."""
    size = config.image_size
    for i, (conv, filters) in enumerate(zip(convs, config.filters), start=1):
        label = f"convolution {i}"
        _check_conv(conv, label, filters, config, "encoder")
        got = tuple(conv.output.shape[1:3])
        if _pair(conv.strides) != (2, 2):
            raise CheckFailed(
                f"{label} ({conv.name}) has strides {_pair(conv.strides)}: each "
                f"Conv2D halves the image with strides=2 ({size} -> {size // 2})"
            )
        if got != (size // 2, size // 2):
            raise CheckFailed(
                f"{label} ({conv.name}) gives {got[0]}x{got[1]} feature maps, "
                f"expected {size // 2}x{size // 2}: padding='same', so stride 2 "
                f"halves the size exactly"
            )
        size //= 2
        if not _nonlinear_after(layers_, layers_.index(conv)):
            raise CheckFailed(
                f"{label} ({conv.name}) is not followed by a nonlinearity: put a "
                f"LeakyReLU after every Conv2D (stacked linear layers collapse "
                f"into one linear map)"
            )
        _require_leaky(layers_, layers_.index(conv), label)


def _stage_filters(config) -> list[int]:
    """Channels after each decoder up-sampling stage: the encoder's, mirrored."""
    return list(reversed(config.filters[:-1])) + [config.filters[0]]


def _check_activation_follows_config(decoder, config) -> None:
    """A builder's output activation is config.output_activation, not a constant:
    build it again for the other decoder range (the notebooks run one config)."""
    import keras

    if isinstance(decoder, keras.Model):
        return  # a model, not its builder: only the config it was built for counts
    other = "tanh" if config.output_activation == "sigmoid" else "sigmoid"
    model = _build(decoder, config.replace(output_activation=other), "decoder")
    got = _activation_name(_producer(model.outputs[0]))
    if got != other:
        raise CheckFailed(
            f"with config.output_activation={other!r} the last layer's activation "
            f"is {got or 'none'}: use activation=config.output_activation on the "
            f"last Conv2D, not a fixed {config.output_activation!r} (a "
            f"{'[-1, 1]' if other == 'tanh' else '[0, 1]'} run needs {other})"
        )


@self_check("build_decoder")
def check_decoder(decoder, config) -> None:
    """Check the whole decoder: Dense + Reshape to the bottleneck, one stride-2
    Conv2DTranspose + LeakyReLU per encoder stage, then an output layer with 3
    channels whose activation matches ``config.value_range``.

    Args:
        decoder: the student's decoder ``keras.Model``, or ``build_decoder``
            (called with ``config``).
        config: the ``VAEConfig``.

    Raises:
        CheckFailed: naming the first layer that differs from the design, or an
            output layer without the right activation.
    """
    model = _build(decoder, config, "decoder")
    layers_ = _layers(model)
    if model.name != "decoder":
        raise CheckFailed(
            f"the model is named {model.name!r}: name it 'decoder' "
            f"(keras.Model(inputs, outputs, name='decoder'))"
        )
    dim, b, top = config.latent_dim, config.bottleneck_size, config.filters[-1]
    in_shape = tuple(model.inputs[0].shape[1:])
    if in_shape != (dim,):
        raise CheckFailed(
            f"input shape {in_shape}, expected ({dim},): "
            f"keras.Input((config.latent_dim,))"
        )
    _check_projection(layers_, config)
    last = _producer(model.outputs[0])
    if type(last).__name__ == "Activation" and last in layers_:
        index = layers_.index(last) - 1  # Conv2D, then a separate activation
        last = layers_[index] if index >= 0 else last
    kinds_up = ("Conv2DTranspose", "UpSampling2D")
    ups = [x for x in layers_ if type(x).__name__ in kinds_up and x is not last]
    stages = _stage_filters(config)
    transposes = [x for x in ups if type(x).__name__ == "Conv2DTranspose"]
    if len(ups) != len(stages):
        raise CheckFailed(
            f"{len(ups)} up-sampling layer(s), expected {len(stages)}: one "
            f"stride-2 Conv2DTranspose per encoder Conv2D, doubling {b} back to "
            f"{config.image_size}"
        )
    if len(transposes) == len(stages):
        _check_up_stages(layers_, transposes, stages, config)
    _check_decoder_output(model, config)
    _check_activation_follows_config(decoder, config)
    if type(last).__name__ not in ("Conv2D", "Conv2DTranspose"):
        raise CheckFailed(
            f"the output comes from a {type(last).__name__} layer: end with a "
            f"convolution to 3 channels that keeps the {config.image_size}x"
            f"{config.image_size} size"
        )
    _check_extras(
        layers_,
        ("Dense", "Reshape", "Conv2DTranspose", "UpSampling2D", "Conv2D") + _NONLINEAR,
        "decoder",
    )
    count = model.count_params()
    low, high = config.value_range
    _passed(
        f"check_decoder passed: Dense + Reshape to {b}x{b}x{top}, {len(stages)} "
        f"up-sampling stages to {config.image_size}x{config.image_size}, a "
        f"3-channel {config.output_activation} output in [{low:g}, {high:g}]; "
        f"{count:,} parameters"
    )


def _check_projection(layers_, config) -> None:
    """Dense to the bottleneck's size, a LeakyReLU, a Reshape into the bottleneck."""
    b, top = config.bottleneck_size, config.filters[-1]
    kinds = [type(x).__name__ for x in layers_]
    if not kinds or kinds[0] != "Dense":
        raise CheckFailed(
            f"the first layer is {kinds[0] if kinds else 'missing'}: start with a "
            f"Dense layer of {b}*{b}*{top} = {b * b * top:,} units (the bottleneck's "
            f"size times config.filters[-1])"
        )
    dense = layers_[0]
    if dense.units != b * b * top:
        raise CheckFailed(
            f"the first Dense layer has {dense.units} units, expected "
            f"{b}*{b}*{top} = {b * b * top:,}: enough to reshape into the "
            f"{b}x{b}x{top} bottleneck (config.bottleneck_size, config.filters[-1])"
        )
    if not _nonlinear_after(layers_, 0):
        raise CheckFailed(
            "the Dense layer is not followed by a nonlinearity: add a LeakyReLU "
            "after it, as after every up-sampling stage"
        )
    _require_leaky(layers_, 0, "the Dense layer")
    reshapes = [x for x in layers_ if type(x).__name__ == "Reshape"]
    if not reshapes or tuple(reshapes[0].output.shape[1:]) != (b, b, top):
        got = tuple(reshapes[0].output.shape[1:]) if reshapes else None
        raise CheckFailed(
            f"reshape the Dense output to the bottleneck ({b}, {b}, {top}) "
            f"(got {got}): layers.Reshape((config.bottleneck_size, "
            f"config.bottleneck_size, config.filters[-1]))"
        )


def _check_up_stages(layers_, transposes, stages, config) -> None:
    """Each Conv2DTranspose: the stage's filters, stride 2, doubling, a LeakyReLU."""
    size = config.bottleneck_size
    for i, (layer, filters) in enumerate(zip(transposes, stages), start=1):
        label = f"up-sampling layer {i}"
        _check_conv(layer, label, filters, config, "decoder")
        if _pair(layer.strides) != (2, 2):
            raise CheckFailed(
                f"{label} ({layer.name}) has strides {_pair(layer.strides)}: "
                f"strides=2 doubles the size ({size} -> {2 * size})"
            )
        got = tuple(layer.output.shape[1:3])
        if got != (2 * size, 2 * size):
            raise CheckFailed(
                f"{label} ({layer.name}) gives {got[0]}x{got[1]}, expected "
                f"{2 * size}x{2 * size}: padding='same'"
            )
        size *= 2
        if not _nonlinear_after(layers_, layers_.index(layer)):
            raise CheckFailed(
                f"{label} ({layer.name}) is not followed by a nonlinearity: "
                f"a LeakyReLU after every Conv2DTranspose"
            )
        _require_leaky(layers_, layers_.index(layer), label)


def design_layers(config, output_kernel: int = 3) -> list[tuple]:
    """The assignment's design, layer by layer, by formula (no model is built).

    One row per weighted layer: (part, kind, input side, output side, input
    channels, output channels, kernel side); Dense rows have sides 1. The
    parameter counts the checks expect and the FLOPs the time estimates use both
    come from here.
    """
    k, size, channels, rows = config.kernel_size, config.image_size, 3, []
    for filters in config.filters:
        rows.append(("encoder", "Conv2D", size, size // 2, channels, filters, k))
        size, channels = size // 2, filters
    flat = size * size * channels
    rows += [("encoder", "Dense", 1, 1, flat, config.latent_dim, 1)] * 2  # two heads
    rows.append(("decoder", "Dense", 1, 1, config.latent_dim, flat, 1))
    for filters in _stage_filters(config):
        rows.append(
            ("decoder", "Conv2DTranspose", size, size * 2, channels, filters, k)
        )
        size, channels = size * 2, filters
    rows.append(("decoder", "Conv2D", size, size, channels, 3, output_kernel))
    return rows


def _parameters(row) -> int:
    _, _, _, _, c_in, c_out, k = row
    return k * k * c_in * c_out + c_out


def design_flops(config) -> int:
    """Forward FLOPs per image of the design: 2 x every layer's multiply-adds."""
    macs = 0
    for _, kind, side_in, side_out, c_in, c_out, k in design_layers(config):
        side = side_in if kind == "Conv2DTranspose" else side_out  # per input pixel
        macs += side * side * k * k * c_in * c_out
    return 2 * macs


def decoder_parameter_count(config, output_kernel: int = 3) -> int:
    """The decoder design's parameter count: Dense (D -> b*b*f[-1]), one k x k
    Conv2DTranspose per stage, an ``output_kernel`` convolution to 3 channels."""
    rows = design_layers(config, output_kernel)
    return sum(_parameters(r) for r in rows if r[0] == "decoder")


def encoder_parameter_count(config) -> int:
    """The encoder design's parameter count: strided convs and two Dense heads."""
    return sum(_parameters(r) for r in design_layers(config) if r[0] == "encoder")
