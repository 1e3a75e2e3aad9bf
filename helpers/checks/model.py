"""Self-checks for 02_model: the sampling layer, encoder heads, decoder output."""

from __future__ import annotations


import numpy as np

from helpers.checks._common import (
    CheckFailed,
    _name,
    _call,
    _numpy,
    _passed,
    _build,
    _producer,
    _activation_name,
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
