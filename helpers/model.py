"""The convolutional VAE: encoder, sampling layer, decoder and the trainable model.

``build_encoder`` and ``build_decoder`` return named functional models that students
can ``summary()``; ``VAE`` wraps them and trains with plain ``fit()``. Everything inside
the model uses ``keras.ops`` / ``keras.random`` only, so it runs under TensorFlow and
JAX alike, and it saves to and loads from the ``.keras`` format.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from helpers.config import VAEConfig
from helpers.losses import kl_divergence, reconstruction_loss

try:  # Keras' own helper: divides the loss by the replica count under tf.distribute.
    from keras.src.losses.loss import scale_loss_for_distribution
except ImportError:  # pragma: no cover - older/newer Keras without it: single device

    def scale_loss_for_distribution(value):
        return value


PACKAGE = "vae_lab"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """Draw ``z = z_mean + exp(0.5 * z_log_var) * eps`` with ``eps ~ N(0, I)``.

    The reparameterisation trick: the randomness is moved into ``eps``, so gradients
    flow through ``z_mean`` and ``z_log_var``. ``exp(0.5 * log_var)`` is the standard
    deviation. The noise comes from a ``SeedGenerator``, so runs are repeatable.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(
            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator
        )
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


def _activation(config: VAEConfig, name: str) -> layers.Layer:
    if config.activation == "relu":
        return layers.ReLU(name=name)
    return layers.LeakyReLU(negative_slope=0.2, name=name)


def build_encoder(config: VAEConfig) -> keras.Model:
    """Build the encoder: strided convs halve the image, two heads give q(z|x).

    Returns:
        ``keras.Model`` named "encoder": (B, H, W, 3) images -> [z_mean (B, D),
        z_log_var (B, D)], with H = W = ``config.image_size`` and
        D = ``config.latent_dim``.
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
        x = _activation(config, f"conv{i}_act")(x)
    x = layers.Flatten(name="flatten")(x)
    z_mean = layers.Dense(config.latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(config.latent_dim, name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var], name="encoder")


def _upsample(x, filters: int, config: VAEConfig, name: str):
    if config.upsampling == "transpose":
        return layers.Conv2DTranspose(
            filters,
            config.kernel_size,
            strides=2,
            padding="same",
            kernel_initializer=config.kernel_initializer,
            name=name,
        )(x)
    x = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(x)
    return layers.Conv2D(
        filters,
        config.kernel_size,
        padding="same",
        kernel_initializer=config.kernel_initializer,
        name=name,
    )(x)


def _residual_block(x, config: VAEConfig, name: str):
    channels = x.shape[-1]
    skip = x
    x = _activation(config, f"{name}_act1")(x)
    x = layers.Conv2D(
        channels,
        3,
        padding="same",
        name=f"{name}_conv1",
        kernel_initializer=config.kernel_initializer,
    )(x)
    x = _activation(config, f"{name}_act2")(x)
    x = layers.Conv2D(
        channels, 3, padding="same", name=f"{name}_conv2", kernel_initializer="zeros"
    )(
        x
    )  # starts as the identity
    return layers.Add(name=f"{name}_add")([skip, x])


def build_decoder(config: VAEConfig) -> keras.Model:
    """Build the decoder: mirror of the encoder, from z back to an image.

    ``Dense`` + ``Reshape`` to the bottleneck, one up-sampling stage per encoder layer
    (channels in reverse order), optional residual blocks, and a final 3x3 conv whose
    activation (sigmoid or tanh) matches the data's value range.

    Returns:
        ``keras.Model`` named "decoder": (B, D) latents -> (B, H, W, 3) images.
    """
    size, top = config.bottleneck_size, config.filters[-1]
    z = keras.Input((config.latent_dim,), name="z")
    x = layers.Dense(
        size * size * top, kernel_initializer=config.kernel_initializer, name="project"
    )(z)
    x = _activation(config, "project_act")(x)
    x = layers.Reshape((size, size, top), name="reshape")(x)
    stage_filters = list(reversed(config.filters[:-1])) + [config.filters[0]]
    for i, filters in enumerate(stage_filters, start=1):
        x = _upsample(x, filters, config, name=f"up{i}")
        x = _activation(config, f"up{i}_act")(x)
        for r in range(config.residual_blocks):
            x = _residual_block(x, config, name=f"up{i}_res{r + 1}")
    outputs = layers.Conv2D(
        3, 3, padding="same", activation=config.output_activation, name="reconstruction"
    )(x)
    return keras.Model(z, outputs, name="decoder")


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    """A variational autoencoder that trains with plain ``fit()``.

    ``call(images)`` returns a dict with ``reconstruction``, ``z_mean`` and
    ``z_log_var``; ``compute_loss`` turns it into ``reconstruction + kl_weight * kl``
    and tracks both terms. Keras reports ``loss``, ``reconstruction_loss`` and
    ``kl_loss`` (with ``val_`` versions) in the history, the progress bar and every
    callback.

    Overriding ``compute_loss`` instead of ``train_step`` keeps one code path for every
    backend and for ``tf.distribute``: Keras still does the gradient step.

    The reconstruction is summed over pixels and averaged over the batch: summing
    keeps the likelihood and the KL on the scales the ELBO gives them, so ``beta=1``
    is the real VAE and ``beta`` means the same at every image size and batch size.
    Averaging over pixels instead would shrink the reconstruction 12,288-fold at
    64x64x3, an effective beta of 12,288: the KL wins and the posterior collapses (all
    samples the same blurry face).

    Args:
        encoder: images -> [z_mean, z_log_var] (see ``build_encoder``).
        decoder: z -> images (see ``build_decoder``).
        beta: weight of the KL term (the target if a warm-up ramps it).
        reconstruction: "mse" or "bce".
        value_range: (low, high) of the pixels the decoder produces.
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
        self.encoder = encoder
        self.decoder = decoder
        self.beta = float(beta)
        self.reconstruction = reconstruction
        self.value_range = tuple(float(v) for v in value_range)
        self.seed = seed
        self.sampling = Sampling(seed=seed, name="sampling")
        # The KL weight is a variable so a warm-up callback can ramp it and a resumed
        # run restores it with the other weights.
        self.kl_weight = self.add_weight(
            name="kl_weight",
            shape=(),
            trainable=False,
            initializer=keras.initializers.Constant(beta),
        )
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    @classmethod
    def from_vae_config(cls, config: VAEConfig) -> "VAE":
        """Build encoder, decoder and VAE from a ``VAEConfig``."""
        return cls(
            build_encoder(config),
            build_decoder(config),
            beta=config.beta,
            reconstruction=config.reconstruction_loss,
            value_range=config.value_range,
            seed=config.seed,
            name="vae",
        )

    def call(self, images, training=False):
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
        targets = x if y is None else y
        reconstruction = reconstruction_loss(
            targets, y_pred["reconstruction"], self.reconstruction, self.value_range
        )
        kl = kl_divergence(y_pred["z_mean"], y_pred["z_log_var"])
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        weight = ops.cast(self.kl_weight, kl.dtype)
        total = ops.mean(reconstruction) + weight * ops.mean(kl)
        if self.losses:
            total = total + ops.sum(self.losses)
        return scale_loss_for_distribution(total)

    # Convenience for generation and evaluation -----------------------------------
    def encode(self, images):
        """Return (z_mean, z_log_var), each (B, D), for (B, H, W, 3) images."""
        return self.encoder(images, training=False)

    def decode(self, z):
        """Return (B, H, W, 3) images for (B, D) latents."""
        return self.decoder(z, training=False)

    def reconstruct(self, images):
        """Return the decoded posterior means: the deterministic reconstructions."""
        z_mean, _ = self.encode(images)
        return self.decode(z_mean)

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
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def build_vae(config: VAEConfig) -> VAE:
    """Build and compile a VAE for ``config`` (Adam at ``config.learning_rate``)."""
    vae = VAE.from_vae_config(config)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    return vae
