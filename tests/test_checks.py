"""Self-checks: pass on the reference, name the mistake on typical wrong answers."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers, ops
from PIL import Image

from helpers import checks
from helpers.checks import CheckFailed
from helpers.config import VAEConfig
from helpers.losses import kl_divergence, vae_loss
from helpers.model import VAE, Sampling, build_decoder, build_encoder
from helpers.preprocess import crop_resize, normalize

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
        match="beta is ignored",
    )

    def minus_kl(x, r, m, v, beta):
        parts = vae_loss(x, r, m, v, beta)
        return parts["reconstruction"] - beta * parts["kl"]

    fails(checks.check_total_loss, minus_kl, match="the KL enters with the wrong sign")


# ----------------------------------------------------------------------- callbacks
def lab_callbacks(run_dir):
    from helpers.callbacks import SampleGrid

    return [
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"), monitor="val_loss", save_best_only=True
        ),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        SampleGrid(np.zeros((4, 4), "float32"), lambda e: run_dir / f"{e}.png"),
    ]


def test_callbacks(tmp_path, capsys):
    checks.check_callbacks(lab_callbacks(tmp_path), tmp_path)
    assert capsys.readouterr().out.startswith("✅ check_callbacks passed")
    wrong = lab_callbacks(tmp_path)
    wrong[0] = keras.callbacks.ModelCheckpoint(
        str(tmp_path / "best.keras"), monitor="loss"
    )
    wrong[2] = keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))
    del wrong[3:5]
    with pytest.raises(CheckFailed) as info:
        checks.check_callbacks(wrong + [keras.callbacks.EarlyStopping], tmp_path)
    message = str(info.value)
    for hint in (
        "missing TerminateOnNaN: TerminateOnNaN() stops at the first NaN loss",
        "missing BackupAndRestore: BackupAndRestore(run_dir / 'backup') lets an "
        "interrupted run",
        "ModelCheckpoint monitors 'loss': use monitor='val_loss'",
        "ModelCheckpoint needs save_best_only=True",
        f"CSVLogger writes {tmp_path / 'log.csv'}: use {tmp_path / 'history.csv'}",
        "CSVLogger needs append=True",
        "the class EarlyStopping, not an instance",
    ):
        assert hint in message
    fails(
        checks.check_callbacks,
        lab_callbacks(tmp_path)[:-1],
        tmp_path,
        match="missing SampleGrid: SampleGrid",
    )
    checks.check_callbacks(lambda: lab_callbacks(tmp_path), tmp_path)

    def untouched_todo():
        raise NotImplementedError()

    fails(
        checks.check_callbacks,
        untouched_todo,
        tmp_path,
        match="You have not filled in the TODO yet: `make_callbacks`",
    )


# -------------------------------------------------------------------- prior samples
@pytest.fixture(scope="module")
def tiny_vae():
    keras.utils.set_random_seed(0)
    return VAE.from_vae_config(TINY)


def reference_samples(vae, n, seed):
    z = keras.random.normal((n, 4), seed=seed)
    return vae.decode(z), z


def test_prior_samples(tiny_vae, capsys):
    checks.check_prior_samples(reference_samples, tiny_vae)
    checks.check_prior_samples(
        lambda vae, n, seed: reference_samples(vae, n, seed)[0], tiny_vae
    )
    from helpers.generate import sample_prior

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
