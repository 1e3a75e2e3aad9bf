"""The lab's reference VAE: the solutions' %%export cells, in PARTS order.

Generated from solutions/*.ipynb by `python -m instructor make-student`: do not edit.
Edit the solution cell instead and run make-student again (a test fails when this
file is out of date). The student release leaves it out, or keeps only the parts
the instructor gives (`make-student --release DIR --give encoder,decoder`).
Classes are registered under package "lab", so students' own classes keep theirs.
"""


import os, math
import numpy as np
import keras
from keras import layers, ops
import tensorflow as tf
from helpers.config import VAEConfig


# ==================== preprocess: from solutions/01_setup.ipynb
from PIL import Image


def crop_resize_normalize(frame, config):
    """Cut the face box out of a CelebA frame, shrink it and scale its pixels.

    Args:
        frame: (218, 178, 3) uint8 RGB frame.
        config: the VAEConfig: its ``crop`` is the face box (left, top, width,
            height), ``image_size`` the side of the output, ``value_range`` the
            (low, high) that pixel values 0 and 255 map to.

    Returns:
        (image_size, image_size, 3) float32 in config.value_range.
    """
    left, top, width, height = config.crop
    box = np.ascontiguousarray(frame[top : top + height, left : left + width])
    size = (config.image_size, config.image_size)
    face = Image.fromarray(box).resize(size, Image.Resampling.BILINEAR)
    low, high = config.value_range
    return np.asarray(face, np.float32) * np.float32((high - low) / 255.0) + low


# ==================== pipeline: from solutions/01_setup.ipynb
def make_pipeline(images, config, training):
    """Stream float32 batches from the uint8 image cache.

    Args:
        images: (N, H, W, 3) uint8 array (from the cache).
        config: the VAEConfig (batch_size, value_range, seed).
        training: shuffle (a new order every epoch) when True; keep the order
            when False.

    Returns:
        tf.data.Dataset of (B, H, W, 3) float32 batches in config.value_range.
    """
    low, high = config.value_range

    def to_float(batch):
        """(B, H, W, 3) uint8 -> (B, H, W, 3) float32 in value_range."""
        return tf.cast(batch, tf.float32) * ((high - low) / 255.0) + low

    dataset = tf.data.Dataset.from_tensor_slices(images)
    if training:
        buffer = min(len(images), 50_000)  # 50,000 faces: 600 MB of uint8
        dataset = dataset.shuffle(buffer, seed=config.seed)
    dataset = dataset.batch(config.batch_size)
    dataset = dataset.map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


# ==================== encoder: from solutions/02_model.ipynb
def build_encoder(config):
    """Build the encoder: (B, H, W, 3) images -> [z_mean, z_log_var], each (B, D).

    Args:
        config: the VAEConfig (image_shape, filters, kernel_size, latent_dim).

    Returns:
        keras.Model named "encoder".
    """
    images = keras.Input(config.image_shape, name="images")
    x = images
    for i, filters in enumerate(config.filters, start=1):
        x = layers.Conv2D(
            filters,
            config.kernel_size,
            strides=2,
            padding="same",
            kernel_initializer=config.kernel_initializer,
            name=f"conv{i}",
        )(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"conv{i}_act")(x)
    x = layers.Flatten(name="flatten")(x)
    z_mean = layers.Dense(config.latent_dim, dtype="float32", name="z_mean")(x)
    z_log_var = layers.Dense(config.latent_dim, dtype="float32", name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var], name="encoder")


# ==================== sampling: from solutions/02_model.ipynb
@keras.saving.register_keras_serializable(package="lab")
class Sampling(layers.Layer):
    """Draw z ~ N(z_mean, exp(z_log_var)) so that gradients reach both inputs.

    Args:
        seed: seed of the SeedGenerator, so runs are repeatable.
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # noise and exp() in float32 under mixed precision
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        """Return z, (B, D), for inputs [z_mean (B, D), z_log_var (B, D)]."""
        z_mean, z_log_var = inputs
        eps = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


# ==================== decoder: from solutions/02_model.ipynb
def build_decoder(config):
    """Build the decoder: (B, D) latents -> (B, H, W, 3) images in value_range.

    Args:
        config: the VAEConfig (latent_dim, filters, kernel_size, bottleneck_size,
            output_activation).

    Returns:
        keras.Model named "decoder".
    """
    size, top = config.bottleneck_size, config.filters[-1]
    z = keras.Input((config.latent_dim,), name="z")
    x = layers.Dense(
        size * size * top, kernel_initializer=config.kernel_initializer, name="project"
    )(z)
    x = layers.LeakyReLU(negative_slope=0.2, name="project_act")(x)
    x = layers.Reshape((size, size, top), name="reshape")(x)
    stage_filters = list(reversed(config.filters[:-1])) + [config.filters[0]]
    for i, filters in enumerate(stage_filters, start=1):
        x = layers.Conv2DTranspose(
            filters,
            config.kernel_size,
            strides=2,
            padding="same",
            kernel_initializer=config.kernel_initializer,
            name=f"up{i}",
        )(x)
        x = layers.LeakyReLU(negative_slope=0.2, name=f"up{i}_act")(x)
    images = layers.Conv2D(
        3,
        3,
        padding="same",
        activation=config.output_activation,
        dtype="float32",
        name="reconstruction",
    )(x)
    return keras.Model(z, images, name="decoder")


# ==================== losses: from solutions/03_loss.ipynb
def reconstruction_loss(images, reconstructions, kind="mse", value_range=(0.0, 1.0)):
    """Return -log p(x|z) per image (up to a constant), summed over the pixels.

    Args:
        images: (B, H, W, 3) targets in value_range.
        reconstructions: (B, H, W, 3) decoder outputs in value_range.
        kind: "mse" (Gaussian decoder, variance 1/2) or "bce" (Bernoulli).
        value_range: (low, high) of the pixels; both are mapped to [0, 1] first.

    Returns:
        (B,) float32.
    """
    low, high = value_range
    x = (ops.cast(images, "float32") - low) / (high - low)
    x_hat = (ops.cast(reconstructions, "float32") - low) / (high - low)
    if kind == "mse":
        per_pixel = ops.square(x - x_hat)
    elif kind == "bce":
        per_pixel = ops.binary_crossentropy(x, x_hat)
    else:
        raise ValueError(f"reconstruction loss {kind!r}: choose 'mse' or 'bce'")
    return ops.sum(per_pixel, axis=(1, 2, 3))


def kl_divergence(z_mean, z_log_var):
    """Return KL(N(z_mean, exp(z_log_var)) || N(0, I)) per image.

    Args:
        z_mean: (B, D) posterior means.
        z_log_var: (B, D) posterior log-variances.

    Returns:
        (B,) float32 KL in nats, summed over the D latent dimensions.
    """
    z_mean = ops.cast(z_mean, "float32")
    z_log_var = ops.cast(z_log_var, "float32")
    per_dim = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
    return ops.sum(per_dim, axis=-1)


def vae_loss(
    images,
    reconstructions,
    z_mean,
    z_log_var,
    beta=1.0,
    kind="mse",
    value_range=(0.0, 1.0),
):
    """Return the batch-mean losses: total = reconstruction + beta * kl.

    Args:
        images, reconstructions: (B, H, W, 3) in value_range.
        z_mean, z_log_var: (B, D) encoder outputs.
        beta: weight of the KL term (a number or a scalar variable).
        kind, value_range: passed to reconstruction_loss.

    Returns:
        {"total": scalar, "reconstruction": scalar, "kl": scalar}, float32.
    """
    reconstruction = ops.mean(
        reconstruction_loss(images, reconstructions, kind, value_range)
    )
    kl = ops.mean(kl_divergence(z_mean, z_log_var))
    total = reconstruction + ops.cast(beta, "float32") * kl
    return {"total": total, "reconstruction": reconstruction, "kl": kl}


# ==================== vae_model: from solutions/03_loss.ipynb
@keras.saving.register_keras_serializable(package="lab")
class VAE(keras.Model):
    """Encoder + Sampling + decoder, trained with fit() on reconstruction + beta * KL.

    Args:
        encoder: images -> [z_mean, z_log_var].
        decoder: z -> images.
        beta: weight of the KL term (the starting value of self.kl_weight).
        reconstruction: "mse" or "bce".
        value_range: (low, high) of the pixels.
        seed: seed of the sampling noise.
    """

    def __init__(
        self,
        encoder,
        decoder,
        beta=1.0,
        reconstruction="mse",
        value_range=(0.0, 1.0),
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.beta, self.reconstruction = float(beta), reconstruction
        self.value_range = tuple(float(v) for v in value_range)
        self.seed = seed
        # A variable, so a KL warm-up callback can ramp it and a resumed run keeps it.
        self.kl_weight = self.add_weight(
            name="kl_weight",
            shape=(),
            trainable=False,
            initializer=keras.initializers.Constant(beta),
        )
        self.sampling = Sampling(seed=seed, name="sampling")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def call(self, images, training=False):
        """Return {"reconstruction", "z_mean", "z_log_var"} for (B, H, W, 3) images."""
        z_mean, z_log_var = self.encoder(images, training=training)
        z = self.sampling([z_mean, z_log_var])
        reconstruction = self.decoder(z, training=training)
        return {
            "reconstruction": reconstruction,
            "z_mean": z_mean,
            "z_log_var": z_log_var,
        }

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        """Return the scalar loss fit() minimises; y_pred is call()'s dict."""
        targets = x if y is None else y
        losses = vae_loss(
            targets,
            y_pred["reconstruction"],
            y_pred["z_mean"],
            y_pred["z_log_var"],
            self.kl_weight,
            self.reconstruction,
            self.value_range,
        )
        images = ops.cast(ops.shape(targets)[0], "float32")  # a batch counts per image
        self.reconstruction_tracker.update_state(
            losses["reconstruction"], sample_weight=images
        )
        self.kl_tracker.update_state(losses["kl"], sample_weight=images)
        total = losses["total"]
        return total

    # Given: what 05 and 06 use, and what saving to .keras files needs.
    def encode(self, images):
        """Return (z_mean, z_log_var), each (B, D)."""
        return self.encoder(images, training=False)

    def decode(self, z):
        """Return (B, H, W, 3) images for (B, D) latents."""
        return self.decoder(z, training=False)

    def reconstruct(self, images):
        """Return the decoded posterior means: deterministic reconstructions."""
        return self.decode(self.encode(images)[0])

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "beta": self.beta,
            "reconstruction": self.reconstruction,
            "value_range": list(self.value_range),
            "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("encoder", "decoder"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


# ==================== callbacks: from solutions/04_train.ipynb
from pathlib import Path

from helpers.plots import save_grid


class FaceGrid(keras.callbacks.Callback):
    """Decode the same latent vectors every `interval` epochs and save the grid.

    Args:
        fixed_z: (N, latent_dim) float32, the same for the whole run.
        folder: where the PNGs go (run_dir / "samples").
        interval: save after every `interval`-th epoch (counting from 1).
        value_range: the decoder's pixel range, for save_grid.
    """

    def __init__(self, fixed_z, folder, interval, value_range):
        super().__init__()
        self.fixed_z = np.asarray(fixed_z, dtype="float32")
        self.folder = Path(folder)
        self.interval = int(interval)
        self.value_range = tuple(value_range)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.interval:
            return
        faces = self.model.decoder(self.fixed_z, training=False)
        path = self.folder / f"epoch_{epoch + 1:03d}.png"
        save_grid(keras.ops.convert_to_numpy(faces), path, value_range=self.value_range)


def make_callbacks(config, run_dir, fixed_z):
    """Return [best-model checkpoint, TensorBoard, FaceGrid] for a run directory.

    Args:
        config: the VAEConfig (sample_interval, value_range).
        run_dir: the run directory.
        fixed_z: (N, latent_dim) float32 latents decoded into every sample grid.

    Returns:
        A list of keras.callbacks.Callback.
    """
    run_dir = Path(run_dir)
    return [
        keras.callbacks.ModelCheckpoint(
            str(run_dir / "best.keras"), monitor="val_loss_at_target_beta",
            mode="min", save_best_only=True,
        ),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
        FaceGrid(fixed_z, run_dir / "samples", config.sample_interval,
                 config.value_range),
    ]


# ==================== build_my_vae: from solutions/04_train.ipynb
def build_my_vae(parts, config):
    """Return your VAE, built from your parts for `config` and compiled (Adam)."""
    vae = parts.VAE(
        parts.build_encoder(config),
        parts.build_decoder(config),
        beta=config.beta,
        reconstruction=config.reconstruction_loss,
        value_range=config.value_range,
        seed=config.seed,
        name="vae",
    )
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    return vae


# ==================== sample_faces: from solutions/05_generate.ipynb
def sample_faces(vae, n, seed=0):
    """Decode n faces from latents drawn from the prior N(0, I).

    Args:
        vae: a trained VAE.
        n: number of faces.
        seed: seed of the draw (same seed, same faces).

    Returns:
        (images, z): (n, H, W, 3) images in vae.value_range and (n, D) latents.
    """
    latent_dim = vae.decoder.inputs[0].shape[-1]
    z = keras.random.normal((n, latent_dim), seed=seed)
    images = vae.decoder(z, training=False)
    return images, z


# ==================== interpolate_faces: from solutions/05_generate.ipynb
def interpolate_faces(vae, image_a, image_b, steps=8):
    """Decode `steps` faces on the straight line between two faces' codes.

    Args:
        vae: a trained VAE (vae.encoder gives [z_mean, z_log_var]).
        image_a, image_b: (H, W, 3) float32 faces in vae.value_range.
        steps: faces on the path, both ends included.

    Returns:
        (steps, H, W, 3) images, from face a's code to face b's.
    """
    z_mean, _ = vae.encoder(np.stack([image_a, image_b]), training=False)
    z_mean = keras.ops.convert_to_numpy(z_mean)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    z = (1 - t) * z_mean[0] + t * z_mean[1]
    images = vae.decoder(z.astype("float32"), training=False)
    return images


# ==================== latent_grid: from solutions/05_generate.ipynb
def latent_grid(vae, n=9, dims=(0, 1), span=2.0):
    """Decode an n x n grid over latent coordinates dims[0] (rows), dims[1] (cols).

    Returns:
        (n, n, H, W, 3) images.
    """
    latent_dim = vae.decoder.inputs[0].shape[-1]
    values = np.linspace(-span, span, n)
    rows, cols = np.meshgrid(values, values, indexing="ij")
    z = np.zeros((n * n, latent_dim), dtype="float32")
    z[:, dims[0]] = rows.ravel()
    z[:, dims[1]] = cols.ravel()
    images = keras.ops.convert_to_numpy(vae.decoder(z, training=False))
    return images.reshape(n, n, *images.shape[1:])
