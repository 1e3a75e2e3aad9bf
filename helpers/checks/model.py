"""Self-checks for 02_model: Sampling, encoder and decoder, against the design."""

from __future__ import annotations

import inspect

import numpy as np

from helpers.checks._common import CheckFailed, _call, _describe, _matching, _name
from helpers.checks._common import _numpy, _passed, self_check

LEAKY_SLOPE = 0.2  # the design's LeakyReLU slope (the tables in 02)
_NONLINEAR = ("LeakyReLU", "ReLU", "ELU", "PReLU", "Activation")


def _raise_first(problems: dict) -> None:
    """Raise the first message (a key) whose condition (its value) holds."""
    for message, failed in problems.items():
        if failed:
            raise CheckFailed(message)


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
        params = inspect.signature(sampling).parameters.values()
        if sum(p.default is p.empty and p.kind <= 1 for p in params) > 1:  # 2 args
            return sampling, sampling
    return sampling, lambda mean, log_var: sampling([mean, log_var])


@self_check("Sampling")
def check_sampling(sampling, draws: int = 4000) -> None:
    """Check a Sampling layer (or class, or function) draws z_mean + sigma * eps."""
    from keras import ops

    layer, call = _sampling_caller(sampling)
    means, stds = np.array([[0.0, 1.0, -2.0, 3.0], [1.5, 2.0, 0.5, 3.0]], np.float32)
    args = [np.tile(v, (draws, 1)) for v in (means, 2 * np.log(stds))]
    args = [ops.convert_to_tensor(v) for v in args]
    z, again = (_numpy(_call(call, *args, what=_name(layer))) for _ in range(2))
    if z.shape != (draws, 4):
        raise CheckFailed(f"z has shape {z.shape}, expected z_mean's {(draws, 4)}")
    if not np.all(np.isfinite(z)):
        raise CheckFailed("z contains NaN or inf: sigma = exp(0.5 * z_log_var)")
    noise = z - means
    moving = noise[:, noise.std(0) > 1e-6]
    shared = moving.shape[1] >= 2 and abs(np.corrcoef(moving[:, :2].T)[0, 1]) > 0.99
    same_z, same_eps = np.allclose(again, z, atol=1e-6), np.allclose(noise, noise[0])
    centred = (moving - moving.mean(0)) / moving.std(0) if moving.size else 0
    shape_hint = "draw eps with the shape of z_mean, (B, D): keras.random.normal("
    _raise_first(
        {
            "z equals z_mean: add exp(0.5 * z_log_var) * eps, with eps ~ "
            "N(0, I)": np.allclose(noise, 0, atol=1e-6),
            "two calls returned the same z: eps is not random each call. Draw it "
            "with keras.random.normal(ops.shape(z_mean), seed=self.seed_generator) "
            "(a SeedGenerator, not a fixed integer seed or a constant)": same_z,
            f"every example got the same eps: {shape_hint}ops.shape(z_mean))": same_eps,
            "all latent dimensions share one eps per example (shape (B, 1)?): "
            f"{shape_hint}ops.shape(z_mean))": shared,
            "eps looks uniform, not Gaussian: use keras.random.normal, not "
            "keras.random.uniform": np.mean(centred**4) < 2.2,  # 1.8 uniform, 3 normal
        }
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
        missing = np.all(np.abs(mean) < 0.1 * stds + 0.02)
        raise CheckFailed(
            "z averages to 0: z_mean is missing (z = z_mean + sigma * eps)"
            if missing
            else f"over many draws z should average to z_mean {means.tolist()}, got "
            f"{np.round(mean, 2).tolist()}: z = z_mean + exp(0.5 * z_log_var) * eps"
        )
    sigma = "sigma = exp(0.5 * z_log_var)"
    hint = _matching(
        std,
        {
            "right": stds,
            "your spread is the variance exp(z_log_var), not the standard deviation: "
            "you forgot the 0.5 in the exponent (or the square root); "
            f"{sigma}": stds**2,
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
    if hint != "right":
        raise CheckFailed(
            hint
            or f"the spread of z should be exp(0.5 * z_log_var) = {stds.tolist()}, "
            f"got {np.round(std, 2).tolist()}"
        )


def _check_symbolic(layer) -> None:
    """The layer also works inside a model, as fit() traces it into a graph."""
    import keras

    if not isinstance(layer, keras.layers.Layer):
        return
    inputs, zeros = [keras.Input((4,)), keras.Input((4,))], np.zeros((5, 4), "float32")
    try:
        model = keras.Model(inputs, layer(inputs))
        draws = [model.predict([zeros[:n]] * 2, verbose=0) for n in (3, 3, 5)]
    except Exception as error:
        raise CheckFailed(
            f"works on arrays but not inside a Keras model ({_describe(error)}): "
            f"use keras.ops and keras.random.normal(ops.shape(z_mean), "
            f"seed=self.seed_generator), not NumPy",
            student_error=error,
        ) from None
    shapes = [np.shape(z) for z in draws]
    _raise_first(
        {
            f"inside a model the layer returned {shapes[0]} for 3 rows, expected "
            "(3, 4)": shapes != [(3, 4), (3, 4), (5, 4)],
            "inside a model (as fit() runs it) two steps drew the same eps: the "
            "noise was drawn once when Keras traced call (NumPy, Python's random, "
            "or a fixed integer seed). Draw it with keras.random.normal(..., "
            "seed=self.seed_generator), a keras.random.SeedGenerator made in "
            "__init__": np.allclose(draws[0], draws[1], atol=1e-6),
        }
    )


def _build(model, config, kind: str, named: bool = False):
    """The student's model (or their builder's), with the design's input."""
    import keras

    if callable(model) and not isinstance(model, keras.Model):
        model = _call(model, config, what=_name(model))
    if not isinstance(model, keras.Model):
        raise CheckFailed(
            f"got a {type(model).__name__}, not a keras.Model: pass the {kind} or its "
            f"builder, ending in `return keras.Model(inputs, outputs, name='{kind}')`"
        )
    if named and model.name != kind:
        raise CheckFailed(
            f"the model is named {model.name!r}: name it '{kind}' (keras.Model("
            f"inputs, outputs, name='{kind}')); the VAE and saved files use the name"
        )
    want = (config.latent_dim,) if kind == "decoder" else config.image_shape
    code = "(config.latent_dim,)" if kind == "decoder" else "config.image_shape"
    if (got := tuple(model.inputs[0].shape[1:])) != want:
        raise CheckFailed(f"input shape {got}, expected {want}: keras.Input({code})")
    return model


def _producer(tensor):
    """The layer that made a functional model's output tensor."""
    return tensor._keras_history[0]


def _activation_name(layer) -> str | None:
    return getattr(getattr(layer, "activation", None), "__name__", None)


def _check_leaky(layers_, index: int, label: str) -> None:
    """layers_[index] is followed by LeakyReLU(0.2) (or is leaky_relu itself)."""
    own = _activation_name(layers_[index])
    after = layers_[index + 1] if index + 1 < len(layers_) else None
    kind, activation, problem = type(after).__name__, _activation_name(after), None
    if own not in (None, "linear"):
        if own != "leaky_relu":
            problem = f"a {own} activation"
    elif kind not in _NONLINEAR or activation == "linear":
        raise CheckFailed(
            f"{label} is not followed by a nonlinearity: put a LeakyReLU after it "
            "(stacked linear layers collapse into one linear map)"
        )
    elif kind == "LeakyReLU" and abs(after.negative_slope - LEAKY_SLOPE) > 1e-6:
        problem = f"LeakyReLU with negative_slope={after.negative_slope:g}"
    elif kind != "LeakyReLU" and activation != "leaky_relu":
        problem = f"a {kind} layer" + (f" ({activation})" if activation else "")
    if problem:
        raise CheckFailed(
            f"{label} is followed by {problem}, not LeakyReLU(negative_slope="
            f"{LEAKY_SLOPE:g}) as the design says: a ReLU passes no gradient for "
            "negative inputs, so units can die; the slope keeps them learning"
        )


def _check_stages(layers_, convs, filters, config, kind: str) -> None:
    """Each strided (transposed) convolution's filters, kernel, stride and LeakyReLU."""
    encoder, k = kind == "encoder", int(config.kernel_size)
    size = config.image_size if encoder else config.bottleneck_size
    verb = "halves" if encoder else "doubles"
    noun = "convolution" if encoder else "up-sampling layer"
    source = "config.filters" if encoder else "the mirrored filters"
    for i, (conv, want) in enumerate(zip(convs, filters), start=1):
        label, new = f"{noun} {i} ({conv.name})", size // 2 if encoder else size * 2
        got = tuple(conv.output.shape[1:3])
        _raise_first(
            {
                f"{label} has {conv.filters} filters, expected {want} ({source}; "
                "see the shapes above the exercise): take them from the "
                "config": conv.filters != want,
                f"{label} has a {conv.kernel_size} kernel, expected ({k}, {k}): "
                "kernel_size=config.kernel_size": conv.kernel_size != (k, k),
                f"{label} has strides {conv.strides}: strides=2 {verb} the size "
                f"({size} -> {new})": conv.strides != (2, 2),
                f"{label} gives {got[0]}x{got[1]} feature maps, expected "
                f"{new}x{new}: padding='same', so stride 2 {verb} the size "
                "exactly": got != (new, new),
            }
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


@self_check("build_encoder")
def check_encoder_heads(encoder, config) -> None:
    """Check the encoder (or its builder) ends in linear heads z_mean and z_log_var."""
    _check_heads(_build(encoder, config, "encoder"), config)
    dim, shape = config.latent_dim, ", ".join(map(str, config.image_shape))
    _passed(
        f"check_encoder_heads passed: (B, {shape}) -> z_mean (B, {dim}) and "
        f"z_log_var (B, {dim}) from two linear Dense heads"
    )


def _check_heads(model, config) -> None:
    import keras

    dim, outputs, n = config.latent_dim, model.outputs, len(model.outputs)
    merged = n == 1 and outputs[0].shape[-1] == 2 * dim
    _raise_first(
        {
            f"one output of size 2 * latent_dim = {2 * dim}: use two separate heads, "
            f"Dense({dim}, name='z_mean') and Dense({dim}, name='z_log_var')": merged,
            f"{n} output(s): return [z_mean, z_log_var] only (the VAE draws z "
            "itself with its Sampling layer)": n != 2,
        }
    )
    heads = [_producer(t) for t in outputs]
    _raise_first(
        {
            "z_mean and z_log_var come from the same layer: use two separate Dense "
            "layers (one shared layer ties them together)": heads[0] is heads[1],
            "the outputs are in the wrong order: return "
            "[z_mean, z_log_var]": [h.name for h in heads] == ["z_log_var", "z_mean"],
        }
    )
    for name, tensor, layer in zip(("z_mean", "z_log_var"), outputs, heads):
        shape, kind = tuple(tensor.shape), type(layer).__name__
        activation = _activation_name(layer)
        _raise_first(
            {
                f"{name} has shape {shape}, expected (None, {dim}): use "
                "Dense(config.latent_dim), not a fixed size": shape[1:] != (dim,),
                f"{name} comes from a {kind} layer: each head must be its own "
                f"Dense({dim}) layer": not isinstance(layer, keras.layers.Dense),
                f"name the head layers: Dense({dim}, name='{name}') (got "
                f"'{layer.name}'), so summary() and the VAE show which "
                "is which": layer.name != name,
                f"{name} has a {activation} activation: the heads must be linear "
                "(no activation): they can be any number": activation != "linear",
            }
        )
    low, high = config.value_range
    images = np.random.default_rng(0).uniform(low, high, (2, *config.image_shape))
    codes = _call(model, images.astype(np.float32), what=model.name)
    if np.allclose(*(_numpy(v) for v in codes)):
        raise CheckFailed("z_mean and z_log_var are identical: two separate heads")


@self_check("build_encoder")
def check_encoder(encoder, config) -> None:
    """Check the encoder (or ``build_encoder``) layer by layer against the design."""
    model = _build(encoder, config, "encoder", named=True)
    layers_ = [x for x in model.layers if type(x).__name__ != "InputLayer"]
    kinds = [type(x).__name__ for x in layers_]
    convs = [x for x, kind in zip(layers_, kinds) if kind == "Conv2D"]
    want, pooling = len(config.filters), any("Pooling" in k for k in kinds)
    _raise_first(
        {
            "the encoder uses pooling: shrink the image with strides=2 in each "
            "Conv2D instead (the network learns how to down-sample)": pooling,
            f"{len(convs)} Conv2D layer(s), expected {want}: one per entry of "
            f"config.filters = {tuple(config.filters)} (loop over "
            "it)": len(convs) != want,
            "no Flatten layer: flatten the last feature map into one vector per "
            "image before the Dense heads": "Flatten" not in kinds,
        }
    )
    _check_stages(layers_, convs, config.filters, config, "encoder")
    _check_heads(model, config)
    _check_extras(layers_, ("Conv2D", "Flatten", "Dense"), "encoder")
    count, formula = model.count_params(), 0
    for x in layers_:  # by formula: PReLU or grouped convolutions differ
        if type(x).__name__ in ("Dense", "Conv2D"):
            fan_in = np.prod(getattr(x, "kernel_size", 1)) * x.input.shape[-1]
            formula += int(fan_in + x.use_bias) * (getattr(x, "units", 0) or x.filters)
    if count != formula:
        raise CheckFailed(
            f"{count:,} parameters, but the design's layers account for "
            f"{formula:,}: use plain Conv2D, Dense and LeakyReLU layers"
        )
    sizes = " -> ".join(str(config.image_size >> i) for i in range(want + 1))
    _passed(
        f"check_encoder passed: {want} strided Conv2D + LeakyReLU({LEAKY_SLOPE:g}) "
        f"({sizes} pixels), Flatten, linear heads z_mean and z_log_var of size "
        f"{config.latent_dim}; {count:,} parameters"
    )


@self_check("build_decoder")
def check_decoder_output(decoder, config) -> None:
    """Check the decoder (or ``build_decoder``) maps codes to images in value_range."""
    _check_decoder_output(_build(decoder, config, "decoder"), config)
    shape, (low, high) = ", ".join(map(str, config.image_shape)), config.value_range
    _passed(
        f"check_decoder_output passed: (B, {config.latent_dim}) -> (B, {shape}), "
        f"ending in {config.output_activation} so pixels stay in [{low:g}, {high:g}]"
    )


def _check_decoder_output(model, config) -> None:
    dim, shape = config.latent_dim, tuple(config.image_shape)
    out = tuple(model.outputs[0].shape[1:])
    want, (low, high) = config.output_activation, config.value_range
    got = _activation_name(_producer(model.outputs[0]))
    reasons = {"tanh": "tanh gives values in [-1, 1]"}
    reasons["sigmoid"] = "sigmoid only reaches [0, 1]"
    reason = reasons.get(got, f"with {got or 'no'} activation values leave the range")
    rgb = out[:2] == shape[:2] and out[2:] != (3,)
    _raise_first(
        {
            f"the decoder outputs {out[-1]} channel(s): images are RGB, so the last "
            "Conv2D needs 3 filters": rgb,
            f"output shape {out}, expected {shape} (the images' shape): start at "
            f"{config.bottleneck_size}x{config.bottleneck_size} and double the size "
            f"in each of the {len(config.filters)} up-sampling stages": out != shape,
            f"the last layer's activation is {got or 'none'}: a [{low:g}, {high:g}] "
            f"decoder must end in {want}: {reason} (activation='{want}' on the last "
            "Conv2D)": got != want,
        }
    )
    z = np.random.default_rng(0).normal(0, 3, (4, dim)).astype(np.float32)
    images = _numpy(_call(model, z, what=model.name))
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
    """Check the decoder (or ``build_decoder``) layer by layer against the design."""
    import keras

    model = _build(decoder, config, "decoder", named=True)
    layers_ = [x for x in model.layers if type(x).__name__ != "InputLayer"]
    kinds = [type(x).__name__ for x in layers_]
    b, top = config.bottleneck_size, config.filters[-1]
    first = kinds[0] if layers_ else "missing"
    if first != "Dense" or layers_[0].units != b * b * top:
        got = f"has {layers_[0].units} units" if first == "Dense" else f"is {first}"
        raise CheckFailed(
            f"the first layer {got}, expected {b}*{b}*{top} = {b * b * top:,} units "
            f"in a Dense layer: enough to reshape into the {b}x{b}x{top} bottleneck "
            f"(config.bottleneck_size, config.filters[-1])"
        )
    _check_leaky(layers_, 0, f"the Dense layer ({layers_[0].name})")
    reshapes = [x for x, kind in zip(layers_, kinds) if kind == "Reshape"]
    got = tuple(reshapes[0].output.shape[1:]) if reshapes else None
    if got != (b, b, top):
        raise CheckFailed(
            f"reshape the Dense output to the bottleneck ({b}, {b}, {top}) (got "
            f"{got}): layers.Reshape((config.bottleneck_size, "
            f"config.bottleneck_size, config.filters[-1]))"
        )
    last = _producer(model.outputs[0])
    if type(last).__name__ == "Activation" and layers_.index(last) > 0:
        last = layers_[layers_.index(last) - 1]  # Conv2D, then a separate activation
    kinds_up = ("Conv2DTranspose", "UpSampling2D")
    ups = [x for x, kind in zip(layers_, kinds) if kind in kinds_up and x is not last]
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
                f"with config.output_activation={other!r} the last layer's activation "
                f"is {got or 'none'}: use activation=config.output_activation, not a "
                f"fixed {config.output_activation!r}"
            )
    if type(last).__name__ not in ("Conv2D", "Conv2DTranspose"):
        raise CheckFailed(
            f"the output comes from a {type(last).__name__} layer: end with a "
            f"convolution to 3 channels that keeps the size"
        )
    _check_extras(layers_, ("Dense", "Reshape", "Conv2D") + kinds_up, "decoder")
    _passed(
        f"check_decoder passed: Dense + Reshape to {b}x{b}x{top}, {len(stages)} "
        f"up-sampling stages, a {config.output_activation} RGB output; "
        f"{model.count_params():,} parameters"
    )


def design_layers(config, output_kernel: int = 3) -> list[tuple]:
    """The design's weighted layers: (part, kind, side in, side out, c_in, c_out, k)."""
    k, size, c, rows = config.kernel_size, config.image_size, 3, []
    for filters in config.filters:
        rows.append(("encoder", "Conv2D", size, size // 2, c, filters, k))
        size, c = size // 2, filters
    flat = size * size * c
    rows += [("encoder", "Dense", 1, 1, flat, config.latent_dim, 1)] * 2  # two heads
    rows.append(("decoder", "Dense", 1, 1, config.latent_dim, flat, 1))
    for filters in _stage_filters(config):
        rows.append(("decoder", "Conv2DTranspose", size, size * 2, c, filters, k))
        size, c = size * 2, filters
    return rows + [("decoder", "Conv2D", size, size, c, 3, output_kernel)]


def design_flops(config) -> int:
    """Forward FLOPs per image of the design: 2 x every layer's multiply-adds."""
    return 2 * sum(
        (side_in if kind == "Conv2DTranspose" else side_out) ** 2 * k * k * c_in * c_out
        for _, kind, side_in, side_out, c_in, c_out, k in design_layers(config)
    )  # a transposed convolution's multiply-adds are per input pixel


def _design_count(config, part: str, output_kernel: int = 3) -> int:
    rows = [r for r in design_layers(config, output_kernel) if r[0] == part]
    return sum(k * k * c_in * c_out + c_out for *_, c_in, c_out, k in rows)


def decoder_parameter_count(config, output_kernel: int = 3) -> int:
    """The decoder design's parameter count (``output_kernel``: the last conv's)."""
    return _design_count(config, "decoder", output_kernel)


def encoder_parameter_count(config) -> int:
    """The encoder design's parameter count: strided convs and two Dense heads."""
    return _design_count(config, "encoder")
