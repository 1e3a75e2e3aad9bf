"""Self-checks: pass on the reference, name the mistake on typical wrong answers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops
from PIL import Image

from helpers import checks
from helpers.checks import CheckFailed
from helpers.config import VAEConfig, preset
from helpers.student import build_student_vae, solution_module
from vaelab.solution import (
    VAE,
    Sampling,
    build_decoder,
    build_encoder,
    kl_divergence,
    vae_loss,
)
from pil_crop import crop_resize



def normalize(images, value_range=(0.0, 1.0)):
    """The tests' own scaling (a part may not call the lab's helpers.preprocess)."""
    low, high = value_range
    return np.asarray(images, np.float32) * np.float32((high - low) / 255) + low


TINY = VAEConfig(latent_dim=4, filters=(4, 4, 4), image_size=32)
TODO = "You have not filled in the TODO yet"


def todo(*args, **kwargs):
    raise NotImplementedError()


def fails(check, *args, match):
    with pytest.raises(CheckFailed, match=match):
        check(*args)


# ---------------------------------------------------------------------- preprocess
def reference_preprocess(frame, value_range=(0.0, 1.0)):
    return normalize(crop_resize(Image.fromarray(frame)), value_range)


def test_preprocess_passes_reference_and_a_tf_version(capsys):
    import tensorflow as tf

    checks.check_preprocess(reference_preprocess)
    assert capsys.readouterr().out.startswith("✅ check_preprocess passed")

    def tf_version(frame):
        box = tf.image.crop_to_bounding_box(frame, 39, 19, 140, 140)
        return tf.image.resize(box, (64, 64), antialias=True).numpy() / 255.0

    checks.check_preprocess(tf_version)
    with pytest.raises(CheckFailed, match="dtype is float64, expected float32"):
        checks.check_preprocess(lambda f: tf_version(f).astype("float64"))
    checks.check_preprocess(lambda f: reference_preprocess(f, (-1.0, 1.0)), (-1.0, 1.0))


def test_preprocess_batch():
    batch_fn = lambda frames: np.stack(
        [reference_preprocess(f) for f in frames]
    )  # noqa
    single_or_batch = lambda x: (
        batch_fn(x) if x.ndim == 4 else reference_preprocess(x)
    )  # noqa
    checks.check_preprocess(single_or_batch, batch=True)
    fails(
        checks.check_preprocess,
        reference_preprocess,
        (0.0, 1.0),
        (19, 39, 140, 140),
        64,
        True,
        match="handle a leading batch axis",
    )


def stretched(frame):
    return np.asarray(Image.fromarray(frame).resize((64, 64)), np.float32) / 255


@pytest.mark.parametrize(
    "fn, value_range, hint",
    [
        (todo, (0, 1), TODO + ": `todo` still raises NotImplementedError"),
        (stretched, (0, 1), "not cropped: you resized the whole 178x218 frame"),
        (
            lambda f: reference_preprocess(f) * 255,
            (0, 1),
            "values go up to 2[0-9][0-9]: the pixels were not scaled",
        ),
        (lambda f: reference_preprocess(f), (-1, 1), "forgot the shift to \\[-1, 1\\]"),
        (lambda f: reference_preprocess(f, (-1, 1)), (0, 1), "wants \\[0, 1\\]"),
        (lambda f: crop_resize(Image.fromarray(f)), (0, 1), "output is uint8"),
        (lambda f: f[39:179, 19:159].astype("float32") / 255, (0, 1), "did not resize"),
        (lambda f: reference_preprocess(f)[..., ::-1], (0, 1), "BGR order"),
        (
            lambda f: normalize(
                np.asarray(Image.fromarray(f[19:159, 39:179]).resize((64, 64))), (0, 1)
            ),
            (0, 1),
            "rows and columns swapped",
        ),
    ],
)
def test_preprocess_hints(fn, value_range, hint):
    fails(checks.check_preprocess, fn, value_range, match=hint)


# ------------------------------------------------------------------------ sampling
class Mistake(layers.Layer):
    """Sampling with one deliberate bug."""

    def __init__(self, bug):
        super().__init__()
        self.bug = bug
        self.seed_generator = keras.random.SeedGenerator(0)

    def call(self, inputs):
        mean, log_var = inputs
        shape = ops.shape(mean)
        if self.bug == "same_eps":
            eps = keras.random.normal(shape, seed=7)
        elif self.bug == "shared_rows":
            eps = keras.random.normal(shape[-1:], seed=self.seed_generator)
        elif self.bug == "uniform":
            eps = keras.random.uniform(shape, seed=self.seed_generator)
        else:
            eps = keras.random.normal(shape, seed=self.seed_generator)
        scale = {
            "no_half": ops.exp(log_var),
            "half_outside": 0.5 * ops.exp(log_var),
            "log_var": log_var,
        }.get(self.bug, ops.exp(0.5 * log_var))
        if self.bug == "no_mean":
            return scale * eps
        return mean + scale * eps


def test_sampling_passes_reference_layer_class_and_function(capsys):
    checks.check_sampling(Sampling(seed=1))
    checks.check_sampling(Sampling)
    rng = np.random.default_rng(0)
    checks.check_sampling(
        lambda m, v: np.asarray(m)
        + np.exp(0.5 * np.asarray(v)) * rng.normal(size=np.shape(m))
    )
    assert capsys.readouterr().out.count("✅ check_sampling passed") == 3


@pytest.mark.parametrize(
    "bug, hint",
    [
        ("no_half", "forgot the 0.5 in the exponent"),
        ("half_outside", "the 0.5 belongs inside the exponent"),
        ("log_var", "multiplied eps by z_log_var itself"),
        ("no_mean", "z_mean is missing"),
        ("same_eps", "two calls returned the same z: eps is not random"),
        ("shared_rows", "every example got the same eps"),
        ("uniform", "eps looks uniform"),
    ],
)
def test_sampling_hints(bug, hint):
    fails(checks.check_sampling, Mistake(bug), match=hint)


def test_sampling_todo_and_numpy_layer():
    class TodoSampling(layers.Layer):
        def call(self, inputs):
            raise NotImplementedError()

    fails(checks.check_sampling, TodoSampling(), match=TODO)

    class NumpySampling(layers.Layer):
        def call(self, inputs):
            mean, log_var = inputs
            return mean + np.exp(0.5 * log_var) * np.random.normal(size=mean.shape)

    fails(checks.check_sampling, NumpySampling(), match="not inside a Keras model")


# ---------------------------------------------------------------- encoder, decoder
def shared_head_encoder(config):
    images = keras.Input(config.image_shape)
    x = layers.Flatten()(layers.Conv2D(4, 4, strides=8)(images))
    both = layers.Dense(2 * config.latent_dim, name="both")(x)
    return keras.Model(images, both)


def relu_head_encoder(config):
    images = keras.Input(config.image_shape)
    x = layers.Flatten()(layers.Conv2D(4, 4, strides=8)(images))
    z_mean = layers.Dense(config.latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(config.latent_dim, activation="relu", name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var])


def test_encoder_heads(capsys):
    checks.check_encoder_heads(build_encoder, TINY)
    checks.check_encoder_heads(build_encoder(TINY), TINY)
    assert capsys.readouterr().out.count("✅ check_encoder_heads passed") == 2
    fails(checks.check_encoder_heads, todo, TINY, match=TODO)
    fails(
        checks.check_encoder_heads,
        shared_head_encoder,
        TINY,
        match="one output of size 2 \\* latent_dim = 8: use two separate heads",
    )
    fails(
        checks.check_encoder_heads,
        relu_head_encoder,
        TINY,
        match="z_log_var has a relu activation: the heads must be linear",
    )
    fails(
        checks.check_encoder_heads,
        build_encoder(TINY.replace(latent_dim=8)),
        TINY,
        match="z_mean has shape \\(None, 8\\), expected \\(None, 4\\)",
    )


def decoder_ending(activation, channels=3):
    def build(config):
        z = keras.Input((config.latent_dim,))
        x = layers.Reshape((4, 4, 1))(layers.Dense(16)(z))
        x = layers.UpSampling2D(8)(x)
        return keras.Model(
            z, layers.Conv2D(channels, 3, padding="same", activation=activation)(x)
        )

    return build


def test_decoder_output(capsys):
    checks.check_decoder_output(build_decoder, TINY)
    checks.check_decoder_output(decoder_ending("sigmoid"), TINY)
    tanh_config = TINY.replace(output_activation="tanh")
    checks.check_decoder_output(build_decoder(tanh_config), tanh_config)
    assert capsys.readouterr().out.count("✅ check_decoder_output passed") == 3
    fails(checks.check_decoder_output, todo, TINY, match=TODO)
    fails(
        checks.check_decoder_output,
        decoder_ending("tanh"),
        TINY,
        match="a \\[0, 1\\] decoder must end in sigmoid: tanh gives values in "
        "\\[-1, 1\\]",
    )
    fails(
        checks.check_decoder_output,
        decoder_ending(None),
        TINY,
        match="activation is linear: a \\[0, 1\\] decoder must end in sigmoid",
    )
    fails(
        checks.check_decoder_output,
        decoder_ending("sigmoid", 1),
        TINY,
        match="outputs 1 channel\\(s\\)",
    )
    fails(
        checks.check_decoder_output,
        build_decoder(TINY.replace(image_size=64)),
        TINY,
        match="output shape \\(64, 64, 3\\), expected \\(32, 32, 3\\)",
    )


# -------------------------------------------------------------------------- losses
def test_kl(capsys):
    checks.check_kl(kl_divergence)
    assert "KL = [0.0, 2.5, 2.7376" in capsys.readouterr().out
    fails(checks.check_kl, todo, match=TODO)
    fails(checks.check_kl, lambda m, v: -kl_divergence(m, v), match="sign is flipped")
    fails(checks.check_kl, lambda m, v: 2 * kl_divergence(m, v), match="forgot the 0.5")
    fails(
        checks.check_kl,
        lambda m, v: ops.sum(kl_divergence(m, v)),
        match="one number, the KL summed over the batch",
    )
    fails(
        checks.check_kl,
        lambda m, v: kl_divergence(m, v) / 3,
        match="averaged over the latent dimensions",
    )
    fails(
        checks.check_kl,
        lambda m, v: ops.sum(0.5 * (v + m**2 - 1 - ops.log(v)), axis=-1),
        match="used z_log_var as the variance",
    )
    fails(
        checks.check_kl,
        lambda m, v: -0.5 * (1 + v - m**2 - ops.exp(v)),
        match="one KL per latent dimension",
    )


def test_total_loss(capsys):
    checks.check_total_loss(vae_loss)
    checks.check_total_loss(
        lambda x, r, m, v, beta: vae_loss(x, r, m, v, beta)["total"]
    )
    assert capsys.readouterr().out.count("✅ check_total_loss passed") == 2
    fails(checks.check_total_loss, todo, match=TODO)

    def per_pixel_mean(x, r, m, v, beta):
        return ops.mean((x - r) ** 2) + beta * ops.mean(kl_divergence(m, v))

    fails(
        checks.check_total_loss,
        per_pixel_mean,
        match="averaged the reconstruction over the pixels.*posterior collapses",
    )
    fails(
        checks.check_total_loss,
        lambda x, r, m, v, beta: vae_loss(x, r, m, v)["total"],
        match="ignores beta",
    )

    def minus_kl(x, r, m, v, beta):
        parts = vae_loss(x, r, m, v, beta)
        return parts["reconstruction"] - beta * parts["kl"]

    fails(
        checks.check_total_loss, minus_kl, match="the KL enters the loss with the wrong sign"
    )


# -------------------------------------------------------------------- prior samples
@pytest.fixture(scope="module")
def tiny_vae():
    keras.utils.set_random_seed(0)
    return build_student_vae(solution_module(), TINY)


def reference_samples(vae, n, seed):
    z = keras.random.normal((n, 4), seed=seed)
    return vae.decode(z), z


def test_prior_samples(tiny_vae, capsys):
    checks.check_prior_samples(reference_samples, tiny_vae)
    checks.check_prior_samples(
        lambda vae, n, seed: reference_samples(vae, n, seed)[0], tiny_vae
    )
    from vaelab.solution import sample_faces as sample_prior

    checks.check_prior_samples(sample_prior, tiny_vae)
    assert capsys.readouterr().out.count("✅ check_prior_samples passed") == 3
    fails(checks.check_prior_samples, todo, tiny_vae, match=TODO)
    fails(
        checks.check_prior_samples,
        lambda vae, n, seed: vae.decode(keras.random.normal((n, 4)) * 0 + 1),
        tiny_vae,
        match="all faces are identical",
    )
    fails(
        checks.check_prior_samples,
        lambda vae, n, seed: reference_samples(vae, n, None),
        tiny_vae,
        match="the same seed gave different faces",
    )
    fails(
        checks.check_prior_samples,
        lambda vae, n, seed: reference_samples(vae, n, seed)[1],
        tiny_vae,
        match="you returned z",
    )

    def uniform(vae, n, seed):
        z = keras.random.uniform((n, 4), seed=seed)
        return vae.decode(z), z

    fails(
        checks.check_prior_samples,
        uniform,
        tiny_vae,
        match="sample the prior N\\(0, I\\)",
    )


# ------------------------------------------------- failures: short, named, no helpers
def test_failure_names_check_and_function_and_renders_short():
    def kl_divergence(m, v):
        return -globals()["kl_divergence"](m, v)

    with pytest.raises(CheckFailed) as info:
        checks.check_kl(kl_divergence)
    error = info.value
    assert str(error).startswith("check_kl failed for `kl_divergence`: the sign")
    assert error.__cause__ is None and error.__suppress_context__
    lines = error._render_traceback_()
    assert len(lines) == 1 and "❌ check_kl failed for `kl_divergence`" in lines[0]
    with pytest.raises(CheckFailed, match="check_kl failed for `kl_divergence`"):
        checks.check_kl(lambda m, v: -globals()["kl_divergence"](m, v))  # default


def test_student_error_shows_only_the_students_lines():
    def student_kl(z_mean, z_log_var):
        return z_mean @ "not a tensor"  # TypeError in the student's code

    with pytest.raises(CheckFailed) as info:
        checks.check_kl(student_kl)
    lines = info.value._render_traceback_()
    assert "`student_kl` raised" in lines[0]
    shown = "\n".join(lines[1:])
    assert "student_kl" in shown and "test_checks.py" in shown
    assert "helpers/checks" not in shown


def test_checks_run_without_the_reference_implementation(monkeypatch):
    """The student release strips the reference: no check may import it."""
    import sys

    encoder, decoder = build_encoder(TINY), build_decoder(TINY)
    lab_vae_loss = vae_loss

    def losses_fn(x, r, m, v, beta, kind="mse", value_range=(0.0, 1.0)):
        return lab_vae_loss(x, r, m, v, beta, kind, value_range)

    for name in ("helpers.preprocess", "helpers.solution", "vaelab.solution"):
        monkeypatch.setitem(sys.modules, name, None)  # importing it now fails
    checks.check_preprocess(lambda f: normalize(crop_resize(Image.fromarray(f))))
    checks.check_encoder(encoder, TINY)
    checks.check_decoder(decoder, TINY)
    checks.check_kl(kl_divergence)
    checks.check_total_loss(losses_fn)
    checks.check_reconstruction_loss(reconstruction_loss_ok)


def test_preprocess_fixture_matches_the_reference():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name("make_check_fixtures.py")
    spec = importlib.util.spec_from_file_location("make_check_fixtures", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from helpers.checks.data import FIXTURES

    with np.load(FIXTURES / "preprocess.npz") as stored:
        for key, value in module.preprocess_fixture().items():
            assert np.array_equal(stored[key], value), key


# ------------------------------------------------ preprocess with config, aliasing
def config_preprocess(frame, config):
    face = crop_resize(Image.fromarray(frame), config.crop, config.image_size)
    return normalize(face, config.value_range)


def test_preprocess_with_config(capsys):
    config = VAEConfig()
    checks.check_preprocess(config_preprocess, config=config)
    checks.check_preprocess(
        config_preprocess, config=config.replace(output_activation="tanh")
    )
    assert capsys.readouterr().out.count("✅ check_preprocess passed") == 2
    with pytest.raises(CheckFailed, match="forgot the shift"):
        checks.check_preprocess(
            lambda f, c: reference_preprocess(f),
            config=config.replace(output_activation="tanh"),
        )


@pytest.mark.parametrize("method", ["pil_nearest", "tf_nearest", "tf_bilinear"])
def test_preprocess_catches_resizing_without_antialiasing(method):
    import tensorflow as tf

    def resize(frame):
        box = frame[39:179, 19:159]
        if method == "pil_nearest":
            face = Image.fromarray(box).resize((64, 64), Image.Resampling.NEAREST)
            return np.asarray(face, np.float32) / 255
        tf_method = "nearest" if method == "tf_nearest" else "bilinear"
        face = tf.image.resize(box, (64, 64), method=tf_method, antialias=False)
        return face.numpy().astype(np.float32) / 255

    fails(checks.check_preprocess, resize, match="resized without antialiasing")


@pytest.mark.parametrize("method", ["BICUBIC", "LANCZOS", "BOX"])
def test_preprocess_accepts_other_antialiased_resizes(method):
    def resize(frame):
        box = Image.fromarray(frame[39:179, 19:159])
        face = box.resize((64, 64), getattr(Image.Resampling, method))
        return np.asarray(face, np.float32) / 255

    checks.check_preprocess(resize)


# ------------------------------------------------------------------------ pipeline
def pipeline(
    images,
    config,
    training,
    shuffle_first=True,
    buffer=None,
    batch=None,
    scale=True,
    prefetch=True,
    shuffle_validation=False,
    reshuffle=True,
    repeat=False,
    labels=False,
):
    import tensorflow as tf

    low, high = config.value_range
    ds = tf.data.Dataset.from_tensor_slices(images)
    do_shuffle = training or shuffle_validation
    size = buffer or len(images)
    if do_shuffle and shuffle_first:
        ds = ds.shuffle(size, seed=config.seed, reshuffle_each_iteration=reshuffle)
    ds = ds.batch(batch or config.batch_size)
    if do_shuffle and not shuffle_first:
        ds = ds.shuffle(size, seed=config.seed)
    if scale:
        ds = ds.map(lambda x: tf.cast(x, tf.float32) * ((high - low) / 255.0) + low)
    if labels:
        ds = ds.map(lambda x: (x, x))
    if repeat:
        ds = ds.repeat()
    return ds.prefetch(tf.data.AUTOTUNE) if prefetch else ds


PIPE = VAEConfig(batch_size=16)


def test_pipeline_passes(capsys):
    from functools import partial

    checks.check_pipeline(pipeline, PIPE)
    checks.check_pipeline(pipeline, PIPE.replace(output_activation="tanh"))
    checks.check_pipeline(partial(pipeline, buffer=10_000), PIPE)
    assert capsys.readouterr().out.count("✅ check_pipeline passed") == 3
    fails(checks.check_pipeline, todo, PIPE, match=TODO)


@pytest.mark.parametrize(
    "options, hint",
    [
        ({"scale": False}, "still uint8"),
        ({"shuffle_first": False}, "you shuffled after batching"),
        ({"buffer": 8}, "shuffle buffer is too small"),
        ({"batch": 8}, "batch config.batch_size = 16"),
        ({"prefetch": False}, "no prefetch"),
        ({"shuffle_validation": True}, "with training=False the images come shuffled"),
        ({"reshuffle": False}, "two epochs came in the same order"),
        ({"repeat": True}, "do not .repeat"),
        ({"labels": True}, "yield the image batch alone"),
    ],
)
def test_pipeline_hints(options, hint):
    from functools import partial

    fails(checks.check_pipeline, partial(pipeline, **options), PIPE, match=hint)


def test_pipeline_unshuffled_and_wrong_range():
    import tensorflow as tf

    def no_shuffle(images, config, training):
        return pipeline(images, config, False)

    fails(checks.check_pipeline, no_shuffle, PIPE, match="array's order: shuffle")

    def unit_range(images, config, training):
        return pipeline(images, PIPE, training)  # ignores the tanh config

    fails(
        checks.check_pipeline,
        unit_range,
        PIPE.replace(output_activation="tanh"),
        match="wants \\[-1, 1\\]",
    )
    fails(
        checks.check_pipeline,
        lambda images, config, training: tf.constant(images),
        PIPE,
        match="not a tf.data.Dataset",
    )


# --------------------------------------------------------- the whole encoder/decoder
def encoder_variant(
    config,
    strides=2,
    padding="same",
    act=True,
    filters=None,
    pool=False,
    name="encoder",
):
    images = keras.Input(config.image_shape)
    x = images
    for f in filters or config.filters:
        x = layers.Conv2D(f, config.kernel_size, strides=strides, padding=padding)(x)
        if act:
            x = layers.LeakyReLU(negative_slope=0.2)(x)
        if pool:
            x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    z_mean = layers.Dense(config.latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var], name=name)


def test_encoder(capsys):
    from functools import partial

    from helpers.checks.model import encoder_parameter_count

    checks.check_encoder(build_encoder, TINY)
    checks.check_encoder(encoder_variant, TINY)
    assert capsys.readouterr().out.count("✅ check_encoder passed") == 2
    assert build_encoder(TINY).count_params() == encoder_parameter_count(TINY)
    fails(checks.check_encoder, todo, TINY, match=TODO)
    for options, hint in (
        ({"strides": 1, "pool": True}, "uses pooling"),
        ({"strides": 1}, "has strides \\(1, 1\\)"),
        ({"padding": "valid"}, "gives 15x15 feature maps, expected 16x16"),
        ({"act": False}, "not followed by a nonlinearity"),
        ({"filters": (4, 8, 4)}, "convolution 2 .* has 8 filters, expected 4"),
        ({"filters": (4, 4)}, "2 Conv2D layer\\(s\\), expected 3"),
        ({"name": "functional"}, "name it 'encoder'"),
    ):
        fails(
            checks.check_encoder, partial(encoder_variant, **options), TINY, match=hint
        )
    fails(checks.check_encoder, relu_head_encoder, TINY, match="name it 'encoder'")


def decoder_variant(
    config,
    out_act="config",
    strides=2,
    units=None,
    stages=None,
    act=True,
    name="decoder",
):
    b, top = config.bottleneck_size, config.filters[-1]
    z = keras.Input((config.latent_dim,))
    x = layers.Dense(units or b * b * top)(z)
    x = layers.LeakyReLU(negative_slope=0.2)(x)
    x = layers.Reshape((b, b, (units or b * b * top) // (b * b)))(x)
    for f in stages or (list(reversed(config.filters[:-1])) + [config.filters[0]]):
        x = layers.Conv2DTranspose(
            f, config.kernel_size, strides=strides, padding="same"
        )(x)
        if act:
            x = layers.LeakyReLU(negative_slope=0.2)(x)
    if out_act == "config":
        out_act = config.output_activation
    images = layers.Conv2D(3, 5, padding="same", activation=out_act)(x)
    return keras.Model(z, images, name=name)


def test_decoder(capsys):
    from functools import partial

    from helpers.checks.model import decoder_parameter_count

    checks.check_decoder(build_decoder, TINY)
    checks.check_decoder(decoder_variant, TINY)  # a 5x5 output kernel is fine
    tanh = TINY.replace(output_activation="tanh")
    checks.check_decoder(decoder_variant, tanh)
    assert capsys.readouterr().out.count("✅ check_decoder passed") == 3
    assert build_decoder(TINY).count_params() == decoder_parameter_count(TINY)
    fails(checks.check_decoder, todo, TINY, match=TODO)
    for options, config, hint in (
        ({"out_act": None}, TINY, "activation is linear: a \\[0, 1\\] decoder"),
        ({"out_act": "sigmoid"}, TINY, "with config.output_activation='tanh' the last "
         "layer's activation is sigmoid: use activation=config.output_activation"),
        ({"out_act": "sigmoid"}, tanh, "a \\[-1, 1\\] decoder must end in tanh"),
        ({"strides": 1}, TINY, "has strides \\(1, 1\\)"),
        ({"units": 32}, TINY, "has 32 units, expected 4\\*4\\*4 = 64"),
        ({"stages": (4, 4)}, TINY, "2 up-sampling layer\\(s\\), expected 3"),
        ({"stages": (4, 8, 4)}, TINY, "up-sampling layer 2 .* has 8 filters"),
        ({"act": False}, TINY, "not followed by a nonlinearity"),
        ({"name": "functional"}, TINY, "name it 'decoder'"),
    ):
        fails(
            checks.check_decoder,
            partial(decoder_variant, **options),
            config,
            match=hint,
        )


# -------------------------------------------------------------- reconstruction loss
def reconstruction_loss_ok(x, r, kind="mse", value_range=(0.0, 1.0)):
    low, high = value_range
    x = (ops.cast(x, "float32") - low) / (high - low)
    r = (ops.cast(r, "float32") - low) / (high - low)
    per_pixel = ops.square(x - r) if kind == "mse" else ops.binary_crossentropy(x, r)
    return ops.sum(per_pixel, axis=(1, 2, 3))


def test_reconstruction_loss(capsys):
    checks.check_reconstruction_loss(reconstruction_loss_ok)
    assert capsys.readouterr().out.startswith("✅ check_reconstruction_loss passed")
    fails(checks.check_reconstruction_loss, todo, match=TODO)

    def keras_mse(x, r, kind="mse", value_range=(0.0, 1.0)):
        per = keras.losses.mean_squared_error(x, r)  # averages the channels
        return ops.sum(ops.reshape(per, (ops.shape(per)[0], -1)), axis=-1)

    def keras_mse_unreduced(x, r, kind="mse", value_range=(0.0, 1.0)):
        return keras.losses.mean_squared_error(x, r)

    def pixel_mean(x, r, kind="mse", value_range=(0.0, 1.0)):
        return ops.mean(ops.square(x - r), axis=(1, 2, 3))

    def raw_scale(x, r, kind="mse", value_range=(0.0, 1.0)):
        if kind == "mse":
            return ops.sum(ops.square(x - r), axis=(1, 2, 3))
        return reconstruction_loss_ok(x, r, kind, value_range)

    def bce_by_hand(x, r, kind="mse", value_range=(0.0, 1.0)):
        if kind == "mse":
            return reconstruction_loss_ok(x, r, kind, value_range)
        terms = x * ops.log(r) + (1 - x) * ops.log(1 - r)
        return -ops.sum(terms, axis=(1, 2, 3))

    def bce_swapped(x, r, kind="mse", value_range=(0.0, 1.0)):
        if kind == "mse":
            return reconstruction_loss_ok(x, r, kind, value_range)
        return ops.sum(ops.binary_crossentropy(r, x), axis=(1, 2, 3))

    def bce_logits(x, r, kind="mse", value_range=(0.0, 1.0)):
        if kind == "mse":
            return reconstruction_loss_ok(x, r, kind, value_range)
        return ops.sum(ops.binary_crossentropy(x, r, from_logits=True), (1, 2, 3))

    def batch_sum(x, r, kind="mse", value_range=(0.0, 1.0)):
        return ops.sum(reconstruction_loss_ok(x, r, kind, value_range))

    for fn, hint in (
        (keras_mse, "averaged over the colour channels: Keras' mean_squared_error"),
        (keras_mse_unreduced, "shape \\(2, 64, 64\\).*average the last axis"),
        (pixel_mean, "averaged over the pixels instead of summing"),
        (raw_scale, "measured on the \\[-1, 1\\] scale"),
        (bce_by_hand, "exactly 0 or 1 gives log\\(0\\)"),
        (bce_swapped, "target and prediction are swapped"),
        (bce_logits, "from_logits=True"),
        (batch_sum, "one number, the loss summed over the batch too"),
    ):
        fails(checks.check_reconstruction_loss, fn, match=hint)


def test_total_loss_names_the_upstream_mistake():
    def with_parts(kl_factor=1.0, rec_factor=1.0):
        def fn(x, r, m, v, beta, kind="mse", value_range=(0.0, 1.0)):
            rec = rec_factor * ops.mean(reconstruction_loss_ok(x, r, kind, value_range))
            kl = kl_factor * ops.mean(kl_divergence(m, v))
            return {"total": rec + beta * kl, "reconstruction": rec, "kl": kl}

        return fn

    checks.check_total_loss(with_parts())
    checks.check_total_loss(with_parts(), kind="bce")
    fails(
        checks.check_total_loss,
        with_parts(kl_factor=-1.0),
        match="because of kl_divergence: the sign is flipped",
    )
    fails(
        checks.check_total_loss,
        with_parts(rec_factor=1 / 3),
        match="reconstruction term is off: it is averaged over the colour channels",
    )

    def keras_mse_total(x, r, m, v, beta):
        per = keras.losses.mean_squared_error(x, r)
        rec = ops.mean(ops.sum(ops.reshape(per, (ops.shape(per)[0], -1)), axis=-1))
        return rec + beta * ops.mean(kl_divergence(m, v))

    fails(checks.check_total_loss, keras_mse_total, match="Keras' mean_squared_error")


# ----------------------------------------------------------------------- VAE model
class ForgetsKL(VAE):
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        total = super().compute_loss(x, y, y_pred, sample_weight, training)
        kl = kl_divergence(y_pred["z_mean"], y_pred["z_log_var"])
        return total - self.kl_weight * ops.mean(kl)


class MinusKL(VAE):
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        total = super().compute_loss(x, y, y_pred, sample_weight, training)
        kl = kl_divergence(y_pred["z_mean"], y_pred["z_log_var"])
        return total - 2 * self.kl_weight * ops.mean(kl)


class FixedBeta(VAE):
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        total = super().compute_loss(x, y, y_pred, sample_weight, training)
        kl = ops.mean(kl_divergence(y_pred["z_mean"], y_pred["z_log_var"]))
        return total + (self.beta - self.kl_weight) * kl


class DecodesMean(VAE):
    def call(self, images, training=False):
        z_mean, z_log_var = self.encoder(images, training=training)
        return {
            "reconstruction": self.decoder(z_mean, training=training),
            "z_mean": z_mean,
            "z_log_var": z_log_var,
        }


class NoTrackers(VAE):
    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        from vaelab.solution import vae_loss as lab_loss

        return lab_loss(
            x,
            y_pred["reconstruction"],
            y_pred["z_mean"],
            y_pred["z_log_var"],
            self.kl_weight,
        )["total"]

    @property
    def metrics(self):
        return [m for m in super().metrics if m.name == "loss"]


class Unregistered(VAE):  # not registered: a .keras file cannot rebuild it
    pass


class StubCall(VAE):
    def call(self, images, training=False):
        raise NotImplementedError()


class StubLoss(VAE):
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, **kw):
        raise NotImplementedError()


def test_vae_model(capsys):
    checks.check_vae_model(VAE)
    assert capsys.readouterr().out.startswith("✅ check_vae_model passed")
    fails(checks.check_vae_model, todo, match=TODO)
    for cls, hint in (
        (ForgetsKL, "the loss forgets the KL"),
        (MinusKL, "the KL enters the loss with the wrong sign"),
        (FixedBeta, "weights the KL by the fixed self.beta"),
        (DecodesMean, "decodes z_mean, not a sample"),
        (NoTrackers, "keep two keras.metrics.Mean trackers"),
        (Unregistered, "Unregistered is not registered"),
        (StubCall, TODO + ": `StubCall.call`"),
        (StubLoss, TODO + ": `StubLoss.fit \\(your compute_loss or train_step\\)`"),
    ):
        fails(checks.check_vae_model, cls, match=hint)


def test_decoder_output_layer_may_be_a_transpose_or_a_separate_activation():
    def build(config, separate=False):
        b, top = config.bottleneck_size, config.filters[-1]
        z = keras.Input((config.latent_dim,))
        x = layers.LeakyReLU(negative_slope=0.2)(layers.Dense(b * b * top)(z))
        x = layers.Reshape((b, b, top))(x)
        for f in list(reversed(config.filters[:-1])) + [config.filters[0]]:
            x = layers.Conv2DTranspose(
                f, config.kernel_size, strides=2, padding="same"
            )(x)
            x = layers.LeakyReLU(negative_slope=0.2)(x)
        act = config.output_activation
        if separate:
            x = layers.Conv2D(3, 3, padding="same")(x)
            return keras.Model(z, layers.Activation(act)(x), name="decoder")
        x = layers.Conv2DTranspose(3, 3, padding="same", activation=act)(x)
        return keras.Model(z, x, name="decoder")

    checks.check_decoder(build, TINY)
    checks.check_decoder(lambda c: build(c, separate=True), TINY)


class _IntegerSeedSampling(Sampling):
    """Draws with the int seed it was given: the same eps every call in 04."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


class _NumpyNoiseSampling(Sampling):
    """NumPy noise: right in eager, baked into the graph (or broken) in fit()."""

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = np.random.normal(size=tuple(z_mean.shape)).astype("float32")
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def test_sampling_is_checked_seeded_and_inside_a_model_as_04_runs_it():
    """A fixed integer seed and NumPy noise pass eager calls without a seed; the
    check builds the layer with a seed and runs it inside a model, as 04 does."""
    fails(checks.check_sampling, _IntegerSeedSampling, match="two calls returned the same z")
    fails(checks.check_sampling, _NumpyNoiseSampling, match="not NumPy|traced call")
    checks.check_sampling(Sampling, draws=2000)


def _pipeline(scale_by_config=True, seeded=True):
    import tensorflow as tf

    def make_pipeline(images, config, training):
        low, high = config.value_range if scale_by_config else (0.0, 1.0)
        dataset = tf.data.Dataset.from_tensor_slices(images)
        if training:
            dataset = dataset.shuffle(len(images), seed=config.seed if seeded else None)
        dataset = dataset.batch(config.batch_size)
        dataset = dataset.map(lambda b: tf.cast(b, tf.float32) * ((high - low) / 255) + low)
        return dataset.prefetch(2)

    return make_pipeline


def test_the_pipeline_follows_the_config_it_is_given():
    """A pipeline that hard-codes [0, 1] passes a sigmoid config alone; one with an
    unseeded shuffle cannot repeat a run. Both are named."""
    config = preset("smoke")
    checks.check_pipeline(_pipeline(), config)
    fails(checks.check_pipeline, _pipeline(scale_by_config=False), config,
          match=r"with value_range \(-1, 1\) the pixels are in \[0.00, 1.00\]")
    fails(checks.check_pipeline, _pipeline(seeded=False), config,
          match="seed the shuffle with config.seed")


def test_total_loss_passes_value_range_on():
    """vae_loss that called reconstruction_loss without value_range passed (the
    check fed [0, 1] images only); a [-1, 1] run then measured the error 4x."""

    def forgets_range(x, r, m, v, beta=1.0, kind="mse", value_range=(0.0, 1.0)):
        rec = ops.mean(reconstruction_loss_ok(x, r, kind))  # value_range not passed
        kl = ops.mean(kl_divergence(m, v))
        return {"total": rec + beta * kl, "reconstruction": rec, "kl": kl}

    fails(checks.check_total_loss, forgets_range,
          match="with \\[-1, 1\\] images and value_range=\\(-1, 1\\) the total is .*"
          "pass value_range on to reconstruction_loss")
    checks.check_total_loss(vae_loss)
    checks.check_total_loss(lambda x, r, m, v, beta: vae_loss(x, r, m, v, beta))


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda f, c: reference_preprocess(f, c.value_range),  # 64 and the box fixed
         "with a config whose image_size=32: output shape \\(64, 64, 3\\), expected "
         "\\(32, 32, 3\\).*Take the box and the size from config.crop and "
         "config.image_size"),
        (lambda f, c: normalize(
            np.asarray(Image.fromarray(f[39:179, 19:159]).resize(
                (c.image_size, c.image_size), Image.Resampling.BILINEAR)),
            c.value_range),
         "with a config whose crop=\\(29, 49, 120, 120\\): .*from config.crop"),
    ],
)
def test_preprocess_takes_the_box_and_size_from_the_config(fn, match):
    """A hard-coded (19, 39, 140, 140) box or 64x64 size equals the lab's default,
    so the check passed it; the check also asks for another box and size."""
    with pytest.raises(CheckFailed, match=match):
        checks.check_preprocess(fn, config=VAEConfig())


def test_total_loss_failures_name_the_check_and_vae_loss():
    """The benchmark's precision column: a failure starts "check_total_loss failed
    for `vae_loss`" (not a helper's name), for a hint and for an upstream part."""

    def vae_loss(x, r, m, v, beta):  # beta ignored
        return lab_vae_loss(x, r, m, v)["total"]

    def vae_loss_sum(x, r, m, v, beta):  # reconstruction summed over the batch
        rec = ops.sum(reconstruction_loss_ok(x, r))
        kl = ops.mean(kl_divergence(m, v))
        return {"total": rec + beta * kl, "reconstruction": rec, "kl": kl}

    for fn in (vae_loss, vae_loss_sum):
        with pytest.raises(CheckFailed) as info:
            checks.check_total_loss(fn)
        assert str(info.value).startswith(f"check_total_loss failed for `{fn.__name__}`: ")


lab_vae_loss = vae_loss
