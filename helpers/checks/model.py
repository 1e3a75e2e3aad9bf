"""Self-checks for 02_model: the sampling layer, the encoder and the decoder.

Models are compared with the design, computed from the config (layer types,
shapes, parameter counts by formula); sampling with the spread of many draws.
"""

from __future__ import annotations

import inspect

import numpy as np

from helpers.checks._common import CheckFailed, _call, _describe, _matching, _name
from helpers.checks._common import _numpy, _passed, self_check

LEAKY_SLOPE = 0.2  # the design's LeakyReLU slope (the tables in 02)
_NONLINEAR = ("LeakyReLU", "ReLU", "ELU", "PReLU", "Activation")


# ------------------------------------------------------------------------ sampling
def _sampling_caller(sampling):
    """(the layer or function, a call ``(z_mean, z_log_var) -> z``)."""
    import keras

    if isinstance(sampling, type):  # seeded, as the VAE builds it in 04
        try:
            sampling = sampling(seed=1337)
        except TypeError:
            sampling = _call(sampling, what=f"{sampling.__name__}()")
    if not callable(sampling):
        raise CheckFailed(
            f"expected a Sampling layer or function, got {type(sampling).__name__}"
        )
    if not isinstance(sampling, keras.layers.Layer):
        try:
            params = inspect.signature(sampling).parameters.values()
        except (TypeError, ValueError):
            params = []
        positional = ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")
        if sum(p.default is p.empty and p.kind.name in positional for p in params) > 1:
            return sampling, sampling
    return sampling, lambda mean, log_var: sampling([mean, log_var])


@self_check("Sampling")
def check_sampling(sampling, draws: int = 4000) -> None:
    """Check ``z = z_mean + exp(0.5 * z_log_var) * eps`` on (draws, 4) inputs: a
    ``Sampling`` layer or class (``layer([z_mean, z_log_var])``) or ``fn(z_mean,
    z_log_var)``; also inside a Keras model."""
    from keras import ops

    layer, call = _sampling_caller(sampling)
    means = np.array([0.0, 1.0, -2.0, 3.0], np.float32)
    stds = np.array([1.5, 2.0, 0.5, 3.0], np.float32)
    z_mean = ops.convert_to_tensor(np.tile(means, (draws, 1)))
    z_log_var = ops.convert_to_tensor(np.tile(2 * np.log(stds), (draws, 1)))

    def draw():
        z = _call(call, z_mean, z_log_var, what=_name(layer))
        return _numpy(z).astype(np.float64)

    z, again = draw(), draw()
    if z.shape != (draws, 4):
        raise CheckFailed(
            f"z has shape {z.shape}, expected {(draws, 4)} (the shape of z_mean): "
            f"one sample per example and latent dimension"
        )
    if not np.all(np.isfinite(z)):
        raise CheckFailed("z contains NaN or inf: sigma = exp(0.5 * z_log_var)")
    noise = z - means
    if np.allclose(noise, 0, atol=1e-6):
        raise CheckFailed(
            "z equals z_mean: there is no noise; add exp(0.5 * z_log_var) * eps "
            "with eps ~ N(0, I)"
        )
    if np.allclose(again, z, atol=1e-6):
        raise CheckFailed(
            "two calls returned the same z: eps is not random each call. Draw it "
            "with keras.random.normal(ops.shape(z_mean), seed=self.seed_generator) "
            "(a SeedGenerator, not a fixed integer seed or a constant)"
        )
    if np.allclose(noise, noise[:1], atol=1e-6):
        raise CheckFailed(
            "every example got the same eps: draw eps with the full shape of "
            "z_mean, (B, D), e.g. keras.random.normal(ops.shape(z_mean))"
        )
    moving = noise[:, noise.std(0) > 1e-6]
    if moving.shape[1] >= 2 and abs(np.corrcoef(moving[:, :2].T)[0, 1]) > 0.99:
        raise CheckFailed(
            "all latent dimensions share one eps per example (shape (B, 1)?): eps "
            "needs the shape of z_mean, (B, D)"
        )
    centred = (moving - moving.mean(0)) / moving.std(0)
    if np.mean(centred**4) - 3 < -0.8:  # excess kurtosis: -1.2 uniform, 0 normal
        raise CheckFailed(
            "eps looks uniform, not Gaussian: use keras.random.normal, not "
            "keras.random.uniform"
        )
    _check_moments(z.mean(0), z.std(0), means, stds)
    _check_symbolic(layer)
    _passed(
        f"check_sampling passed: over {draws} draws z has mean z_mean and standard "
        f"deviation exp(0.5 * z_log_var), with fresh noise every call"
    )


def _check_moments(mean, std, means, stds) -> None:
    """Over many draws z has mean z_mean and spread exp(0.5 * z_log_var)."""
    if np.any(np.abs(mean - means) > 0.1 * stds + 0.02):
        if np.all(np.abs(mean) < 0.1 * stds + 0.02):
            raise CheckFailed(
                "the average of z is 0, not z_mean: z_mean is missing (z = z_mean "
                "+ sigma * eps)"
            )
        raise CheckFailed(
            f"over many draws z should average to z_mean {means.tolist()}, got "
            f"{np.round(mean, 2).tolist()}: z = z_mean + exp(0.5 * z_log_var) * eps"
        )
    sigma = "sigma = exp(0.5 * z_log_var)"
    hint = _matching(
        std,
        {
            "right": stds,
            "your spread is the variance exp(z_log_var), not the standard deviation: "
            f"you forgot the 0.5 in the exponent (or the square root); {sigma}": stds
            ** 2,
            "the 0.5 belongs inside the exponent: exp(0.5 * z_log_var), not 0.5 * "
            "exp(z_log_var)": 0.5 * stds**2,
            "you multiplied eps by z_log_var itself; it is a log-variance, so "
            f"{sigma}": np.abs(2 * np.log(stds)),
            f"the noise ignores z_log_var: multiply eps by {sigma}": np.ones_like(stds),
            "the sign in the exponent is flipped: exp(0.5 * z_log_var), not "
            "exp(-0.5 * z_log_var)": 1 / stds,
        },
        rtol=0.08,
        atol=0.02,
    )
    if hint is None:
        raise CheckFailed(
            f"the spread of z should be exp(0.5 * z_log_var) = {stds.tolist()}, got "
            f"{np.round(std, 2).tolist()}"
        )
    if hint != "right":
        raise CheckFailed(hint)


def _check_symbolic(layer) -> None:
    """The layer also works inside a model, as fit() traces it into a graph."""
    import keras

    if not isinstance(layer, keras.layers.Layer):
        return
    mean, log_var = keras.Input((4,)), keras.Input((4,))
    try:
        model = keras.Model([mean, log_var], layer([mean, log_var]))
        draws = [
            model.predict([np.zeros((batch, 4), np.float32)] * 2, verbose=0)
            for batch in (3, 3, 5)
        ]
    except Exception as error:
        raise CheckFailed(
            f"works on arrays but not inside a Keras model ({_describe(error)}): "
            f"use keras.ops and keras.random.normal(ops.shape(z_mean), "
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


# ------------------------------------------------------------------ model helpers
def _build(model_or_fn, config, kind: str, named: bool = False):
    """The student's model, or what their builder returns for ``config``."""
    import keras

    model = model_or_fn
    if not isinstance(model, keras.Model):
        if not callable(model_or_fn):
            raise CheckFailed(
                f"expected the {kind} (a keras.Model) or the function that builds "
                f"it, got {type(model_or_fn).__name__}"
            )
        model = _call(model_or_fn, config, what=_name(model_or_fn))
        if not isinstance(model, keras.Model):
            raise CheckFailed(
                f"`{_name(model_or_fn)}(config)` returned {type(model).__name__}, "
                f"not a keras.Model: end with `return keras.Model(inputs, "
                f"outputs, name='{kind}')`"
            )
    if named and model.name != kind:
        raise CheckFailed(
            f"the model is named {model.name!r}: name it '{kind}' (keras.Model("
            f"inputs, outputs, name='{kind}')); the VAE and saved files use the name"
        )
    return model


def _check_input(model, want, code: str) -> None:
    got = tuple(model.inputs[0].shape[1:])
    if got != tuple(want):
        raise CheckFailed(f"input shape {got}, expected {tuple(want)}: {code}")


def _producer(tensor):
    """The layer that made a functional model's output tensor (or None)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _activation_name(layer) -> str | None:
    return getattr(getattr(layer, "activation", None), "__name__", None)


def _layers(model) -> list:
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def _check_leaky(layers_, index: int, label: str) -> None:
    """layers_[index] is followed by LeakyReLU(0.2) (or is leaky_relu itself)."""
    own = _activation_name(layers_[index])
    after = layers_[index + 1] if index + 1 < len(layers_) else None
    kind, activation = type(after).__name__, _activation_name(after)
    problem = None
    if own not in (None, "linear"):
        problem = None if own == "leaky_relu" else f"a {own} activation"
    elif kind not in _NONLINEAR or activation == "linear":
        raise CheckFailed(
            f"{label} is not followed by a nonlinearity: put a LeakyReLU after it "
            "(stacked linear layers collapse into one linear map)"
        )
    elif kind == "LeakyReLU":
        slope = getattr(after, "negative_slope", None)
        slope = float(getattr(after, "alpha", LEAKY_SLOPE) if slope is None else slope)
        if abs(slope - LEAKY_SLOPE) > 1e-6:
            problem = f"LeakyReLU with negative_slope={slope:g}"
    elif activation != "leaky_relu":
        shown = f" ({activation})" if kind == "Activation" else ""
        problem = f"a {kind} layer{shown}"
    if problem is not None:
        raise CheckFailed(
            f"{label} is followed by {problem}, not LeakyReLU(negative_slope="
            f"{LEAKY_SLOPE:g}) as the design says: a ReLU passes no gradient for "
            "negative inputs, so units can die; the slope keeps them learning"
        )


def _check_stages(layers_, convs, filters, config, kind: str) -> None:
    """Each strided (transposed) convolution: filters, kernel, stride 2, the size
    halved (encoder) or doubled (decoder), then a LeakyReLU."""
    encoder = kind == "encoder"
    size = config.image_size if encoder else config.bottleneck_size
    k, verb = int(config.kernel_size), "halves" if encoder else "doubles"
    noun = "convolution" if encoder else "up-sampling layer"
    for i, (conv, want) in enumerate(zip(convs, filters), start=1):
        label, new = f"{noun} {i} ({conv.name})", size // 2 if encoder else size * 2
        if conv.filters != want:
            source = "config.filters" if encoder else "the mirrored filters"
            raise CheckFailed(
                f"{label} has {conv.filters} filters, expected {want} ({source}; "
                f"see the shapes above the exercise): take them from the config"
            )
        if _pair(conv.kernel_size) != (k, k):
            raise CheckFailed(
                f"{label} has a {_pair(conv.kernel_size)} kernel, expected "
                f"({k}, {k}): kernel_size=config.kernel_size"
            )
        if _pair(conv.strides) != (2, 2):
            raise CheckFailed(
                f"{label} has strides {_pair(conv.strides)}: strides=2 {verb} the "
                f"size ({size} -> {new})"
            )
        got = tuple(conv.output.shape[1:3])
        if got != (new, new):
            raise CheckFailed(
                f"{label} gives {got[0]}x{got[1]} feature maps, expected "
                f"{new}x{new}: padding='same', so stride 2 {verb} the size exactly"
            )
        _check_leaky(layers_, layers_.index(conv), label)
        size = new


def _check_extras(layers_, allowed: tuple, kind: str) -> None:
    extra = sorted({type(x).__name__ for x in layers_} - {*allowed, *_NONLINEAR})
    if extra:
        raise CheckFailed(
            f"the {kind} has layer types the design does not use: {', '.join(extra)}"
            f". Build only the layers the exercise describes"
        )


# ------------------------------------------------------------------------- encoder
@self_check("build_encoder")
def check_encoder_heads(encoder, config) -> None:
    """Check the encoder (a model or ``build_encoder``) ends in two linear Dense
    heads, z_mean and z_log_var, of size latent_dim."""
    _check_heads(_build(encoder, config, "encoder"), config)
    dim, shape = config.latent_dim, ", ".join(map(str, config.image_shape))
    _passed(
        f"check_encoder_heads passed: (B, {shape}) -> z_mean (B, {dim}) and "
        f"z_log_var (B, {dim}) from two linear Dense heads"
    )


def _check_heads(model, config) -> None:
    import keras

    dim, outputs = config.latent_dim, model.outputs
    if len(outputs) == 1 and outputs[0].shape[-1] == 2 * dim:
        raise CheckFailed(
            f"one output of size 2 * latent_dim = {2 * dim}: use two separate "
            f"heads, Dense({dim}, name='z_mean') and Dense({dim}, name='z_log_var')"
        )
    if len(outputs) != 2:
        raise CheckFailed(
            f"{len(outputs)} output(s): return [z_mean, z_log_var] only (the VAE "
            f"draws z itself with its Sampling layer)"
        )
    _check_input(model, config.image_shape, "keras.Input(config.image_shape)")
    heads, names = [_producer(t) for t in outputs], ("z_mean", "z_log_var")
    for name, tensor, layer in zip(names, outputs, heads):
        if tuple(tensor.shape[1:]) != (dim,):
            raise CheckFailed(
                f"{name} has shape {tuple(tensor.shape)}, expected (None, {dim}): "
                f"Dense(config.latent_dim), not a hard-coded size"
            )
        if not isinstance(layer, keras.layers.Dense):
            raise CheckFailed(
                f"{name} comes from a {type(layer).__name__} layer: each head must "
                f"be its own Dense({dim}) layer"
            )
    if heads[0] is heads[1]:
        raise CheckFailed(
            "z_mean and z_log_var come from the same layer: use two separate Dense "
            "layers (one shared layer ties them together)"
        )
    if [layer.name for layer in heads] == list(reversed(names)):
        raise CheckFailed(
            "the outputs are in the wrong order: return [z_mean, z_log_var]"
        )
    for name, layer in zip(names, heads):
        if layer.name != name:
            raise CheckFailed(
                f"name the head layers: Dense({dim}, name='{name}') (got "
                f"'{layer.name}'), so summary() and the VAE show which is which"
            )
        if _activation_name(layer) != "linear":
            raise CheckFailed(
                f"{name} has a {_activation_name(layer)} activation: the heads must "
                f"be linear (no activation): means and log-variances can be any number"
            )
    low, high = config.value_range
    images = np.random.default_rng(0).uniform(low, high, (2, *config.image_shape))
    codes = _call(model, images.astype(np.float32), what=model.name)
    z_mean, z_log_var = (_numpy(v) for v in codes)
    if z_mean.shape != (2, dim) or z_log_var.shape != (2, dim):
        raise CheckFailed(
            f"on a batch of 2 images the heads gave {z_mean.shape} and "
            f"{z_log_var.shape}, expected (2, {dim}) each"
        )
    if np.allclose(z_mean, z_log_var):
        raise CheckFailed("z_mean and z_log_var are identical: two separate heads")


@self_check("build_encoder")
def check_encoder(encoder, config) -> None:
    """Check the whole encoder (a model or ``build_encoder``): strided Conv2D +
    LeakyReLU per config.filters, Flatten, two linear Dense heads; the first layer
    that differs from the design is named."""
    model = _build(encoder, config, "encoder", named=True)
    layers_ = _layers(model)
    _check_input(model, config.image_shape, "keras.Input(config.image_shape)")
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
    _check_stages(layers_, convs, config.filters, config, "encoder")
    if "Flatten" not in kinds:
        raise CheckFailed(
            "no Flatten layer: flatten the last feature map into one vector per "
            "image before the Dense heads"
        )
    _check_heads(model, config)
    _check_extras(layers_, ("Conv2D", "Flatten", "Dense"), "encoder")
    count, formula = model.count_params(), 0
    for layer in layers_:  # by formula: PReLU or grouped convolutions differ
        units = getattr(layer, "units", None) or getattr(layer, "filters", 0)
        if type(layer).__name__ in ("Dense", "Conv2D"):
            kernel = _pair(getattr(layer, "kernel_size", 1))
            formula += kernel[0] * kernel[1] * int(layer.input.shape[-1]) * units
            formula += units if layer.use_bias else 0
    if count != formula:
        raise CheckFailed(
            f"{count:,} parameters, but the design's layers account for "
            f"{formula:,}: use plain Conv2D, Dense and LeakyReLU layers"
        )
    b, top = config.bottleneck_size, config.filters[-1]
    _passed(
        f"check_encoder passed: {want} strided Conv2D + LeakyReLU({LEAKY_SLOPE:g}) "
        f"({' -> '.join(str(config.image_size >> i) for i in range(want + 1))} "
        f"pixels), Flatten ({b}*{b}*{top} = {b * b * top:,} features), linear "
        f"heads z_mean and z_log_var of size {config.latent_dim}; {count:,} "
        f"parameters"
    )


# ------------------------------------------------------------------------- decoder
@self_check("build_decoder")
def check_decoder_output(decoder, config) -> None:
    """Check the decoder (a model or ``build_decoder``) maps (B, latent_dim) to
    images of the input's shape in ``config.value_range``."""
    _check_decoder_output(_build(decoder, config, "decoder"), config)
    shape, (low, high) = ", ".join(map(str, config.image_shape)), config.value_range
    _passed(
        f"check_decoder_output passed: (B, {config.latent_dim}) -> (B, {shape}), "
        f"ending in {config.output_activation} so pixels stay in [{low:g}, {high:g}]"
    )


def _check_decoder_output(model, config) -> None:
    dim, shape = config.latent_dim, tuple(config.image_shape)
    _check_input(model, (dim,), "keras.Input((config.latent_dim,))")
    out_shape = tuple(model.outputs[0].shape[1:])
    if len(out_shape) == 3 and out_shape[:2] == shape[:2] and out_shape[2] != 3:
        raise CheckFailed(
            f"the decoder outputs {out_shape[2]} channel(s): images are RGB, so the "
            f"last Conv2D needs 3 filters"
        )
    if out_shape != shape:
        raise CheckFailed(
            f"output shape {out_shape}, expected {shape} (the images' shape): start "
            f"at {config.bottleneck_size}x{config.bottleneck_size} and double the "
            f"size in each of the {len(config.filters)} up-sampling stages"
        )
    want, (low, high) = config.output_activation, config.value_range
    got = _activation_name(_producer(model.outputs[0]))
    if got != want:
        reason = {
            "tanh": "tanh gives values in [-1, 1]",  # for a sigmoid config
            "sigmoid": "sigmoid only reaches [0, 1]",
        }.get(got, f"with {got or 'no'} activation the values are out of range")
        raise CheckFailed(
            f"the last layer's activation is {got or 'none'}: a [{low:g}, {high:g}] "
            f"decoder must end in {want}: {reason} (activation='{want}' on the "
            f"last Conv2D)"
        )
    z = np.random.default_rng(0).normal(0, 3, (4, dim)).astype(np.float32)
    images = _numpy(_call(model, z, what=model.name))
    if images.shape != (4, *shape):
        raise CheckFailed(
            f"4 latent vectors gave shape {images.shape}, expected {(4, *shape)}"
        )
    if images.min() < low - 1e-6 or images.max() > high + 1e-6:
        raise CheckFailed(
            f"values in [{images.min():.2f}, {images.max():.2f}], outside "
            f"[{low:g}, {high:g}]: end the decoder in {want}"
        )


def _stage_filters(config) -> list[int]:
    """Channels after each decoder up-sampling stage: the encoder's, mirrored."""
    return list(reversed(config.filters[:-1])) + [config.filters[0]]


@self_check("build_decoder")
def check_decoder(decoder, config) -> None:
    """Check the whole decoder (a model or ``build_decoder``): Dense + LeakyReLU +
    Reshape to the bottleneck, a stride-2 Conv2DTranspose + LeakyReLU per encoder
    stage, a 3-channel output in ``config.output_activation``; the first layer that
    differs from the design is named."""
    import keras

    model = _build(decoder, config, "decoder", named=True)
    layers_, b, top = _layers(model), config.bottleneck_size, config.filters[-1]
    _check_input(model, (config.latent_dim,), "keras.Input((config.latent_dim,))")
    first = type(layers_[0]).__name__ if layers_ else "missing"
    if first != "Dense" or layers_[0].units != b * b * top:
        got = f"has {layers_[0].units} units" if first == "Dense" else f"is {first}"
        raise CheckFailed(
            f"the first layer {got}, expected {b}*{b}*{top} = {b * b * top:,} units "
            f"in a Dense layer: enough to reshape into the {b}x{b}x{top} bottleneck "
            f"(config.bottleneck_size, config.filters[-1])"
        )
    _check_leaky(layers_, 0, f"the Dense layer ({layers_[0].name})")
    reshapes = [x for x in layers_ if type(x).__name__ == "Reshape"]
    got = tuple(reshapes[0].output.shape[1:]) if reshapes else None
    if got != (b, b, top):
        raise CheckFailed(
            f"reshape the Dense output to the bottleneck ({b}, {b}, {top}) (got "
            f"{got}): layers.Reshape((config.bottleneck_size, "
            f"config.bottleneck_size, config.filters[-1]))"
        )
    last = _producer(model.outputs[0])
    if type(last).__name__ == "Activation" and last in layers_:
        index = layers_.index(last) - 1  # Conv2D, then a separate activation
        last = layers_[index] if index >= 0 else last
    kinds_up = ("Conv2DTranspose", "UpSampling2D")
    ups = [x for x in layers_ if type(x).__name__ in kinds_up and x is not last]
    transposes = [x for x in ups if type(x).__name__ == "Conv2DTranspose"]
    stages = _stage_filters(config)
    if len(ups) != len(stages):
        raise CheckFailed(
            f"{len(ups)} up-sampling layer(s), expected {len(stages)}: one stride-2 "
            f"Conv2DTranspose per encoder Conv2D, doubling {b} back to "
            f"{config.image_size}"
        )
    if len(transposes) == len(stages):
        _check_stages(layers_, transposes, stages, config, "decoder")
    _check_decoder_output(model, config)
    if not isinstance(decoder, keras.Model):  # a builder: build the other range
        other = "tanh" if config.output_activation == "sigmoid" else "sigmoid"
        rebuilt = _build(decoder, config.replace(output_activation=other), "decoder")
        got = _activation_name(_producer(rebuilt.outputs[0]))
        if got != other:
            raise CheckFailed(
                f"with config.output_activation={other!r} the last layer's "
                f"activation is {got or 'none'}: use activation=config."
                f"output_activation on the last Conv2D, not a fixed "
                f"{config.output_activation!r}"
            )
    if type(last).__name__ not in ("Conv2D", "Conv2DTranspose"):
        raise CheckFailed(
            f"the output comes from a {type(last).__name__} layer: end with a "
            f"convolution to 3 channels that keeps the size"
        )
    allowed = ("Dense", "Reshape", "Conv2D") + kinds_up
    _check_extras(layers_, allowed, "decoder")
    low, high = config.value_range
    _passed(
        f"check_decoder passed: Dense + Reshape to {b}x{b}x{top}, {len(stages)} "
        f"up-sampling stages to {config.image_size}x{config.image_size}, a "
        f"3-channel {config.output_activation} output in [{low:g}, {high:g}]; "
        f"{model.count_params():,} parameters"
    )


# ----------------------------------------------------------- the design, by formula
def design_layers(config, output_kernel: int = 3) -> list[tuple]:
    """The design's weighted layers: (part, kind, input side, output side, input
    channels, output channels, kernel side); Dense rows have sides 1."""
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


def design_flops(config) -> int:
    """Forward FLOPs per image of the design: 2 x every layer's multiply-adds."""
    macs = 0
    for _, kind, side_in, side_out, c_in, c_out, k in design_layers(config):
        side = side_in if kind == "Conv2DTranspose" else side_out  # per input pixel
        macs += side * side * k * k * c_in * c_out
    return 2 * macs


def _design_count(config, part: str, output_kernel: int = 3) -> int:
    rows = [r for r in design_layers(config, output_kernel) if r[0] == part]
    return sum(k * k * c_in * c_out + c_out for *_, c_in, c_out, k in rows)


def decoder_parameter_count(config, output_kernel: int = 3) -> int:
    """The decoder design's parameter count (``output_kernel``: the last conv's)."""
    return _design_count(config, "decoder", output_kernel)


def encoder_parameter_count(config) -> int:
    """The encoder design's parameter count: strided convs and two Dense heads."""
    return _design_count(config, "encoder")
