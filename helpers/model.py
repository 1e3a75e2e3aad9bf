"""The convolutional VAE: encoder, sampling layer, decoder and the trainable model.

``build_encoder`` and ``build_decoder`` return named functional models that students
can ``summary()``; ``VAE`` wraps them and trains with plain ``fit()``. Everything inside
the model uses ``keras.ops`` / ``keras.random`` only (plus, under TensorFlow, the
``tf.distribute`` replica number in ``_replica``), so it runs under TensorFlow and JAX
alike, and it saves to and loads from the ``.keras`` format. It also runs under a
mixed-precision policy: the posterior heads, the sampling, the output activation and
the loss stay in float32.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from helpers.config import VAEConfig
from helpers.losses import vae_loss

try:  # Keras' own helper: divides the loss by the replica count under tf.distribute.
    from keras.src.losses.loss import scale_loss_for_distribution
except ImportError:  # pragma: no cover - older/newer Keras without it: single device

    def scale_loss_for_distribution(value):
        return value


PACKAGE = "vae_lab"


def _replica() -> tuple:
    """Return (this replica's index, the replica count); (0, 1) off tf.distribute.

    Under ``tf.distribute`` (MirroredStrategy, TPUStrategy) every replica runs the
    same code on its slice of the batch, with the same copy of the noise state: it
    must know which replica it is to draw different noise. Other backends shard one
    program over devices, so there is nothing to tell apart.
    """
    if keras.backend.backend() != "tensorflow":
        return 0, 1
    import tensorflow as tf  # the only TensorFlow in this module: tf.distribute

    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: one caller
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


# BEGIN REFERENCE (sampling)
@keras.saving.register_keras_serializable(package=PACKAGE)
class Sampling(layers.Layer):
    """Draw ``z = z_mean + exp(0.5 * z_log_var) * eps`` with ``eps ~ N(0, I)``.

    The reparameterisation trick: the randomness is moved into ``eps``, so gradients
    flow through ``z_mean`` and ``z_log_var``. ``exp(0.5 * log_var)`` is the standard
    deviation. The noise comes from a ``SeedGenerator``, so runs are repeatable; its
    state is a variable that ``VAE`` saves with the weights, so a resumed run draws
    the noise the uninterrupted run would have drawn. Under ``tf.distribute`` each
    replica takes its own row of a (replicas, B, D) draw, so no two replicas share
    noise. The layer computes in float32 (also under mixed precision).
    """

    def __init__(self, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs):
        z_mean, z_log_var = (ops.cast(t, "float32") for t in inputs)
        shape = ops.shape(z_mean)
        replica, replicas = _replica()
        if replicas == 1:
            eps = keras.random.normal(shape, seed=self.seed_generator)
        else:
            eps = keras.random.normal((replicas, *shape), seed=self.seed_generator)
            eps = ops.take(eps, replica, axis=0)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


# END REFERENCE


def _activation(config: VAEConfig, name: str) -> layers.Layer:
    if config.activation == "relu":
        return layers.ReLU(name=name)
    return layers.LeakyReLU(negative_slope=0.2, name=name)


# BEGIN REFERENCE (encoder)
def build_encoder(config: VAEConfig) -> keras.Model:
    """Build the encoder: strided convs halve the image, two heads give q(z|x).

    The two heads compute in float32 (``dtype="float32"``), so under mixed
    precision the posterior, the KL and the sampling stay in full precision.

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
    z_mean = layers.Dense(config.latent_dim, dtype="float32", name="z_mean")(x)
    z_log_var = layers.Dense(config.latent_dim, dtype="float32", name="z_log_var")(x)
    return keras.Model(images, [z_mean, z_log_var], name="encoder")


# END REFERENCE


# BEGIN REFERENCE (decoder)
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
    (channels in reverse order), optional residual blocks, a final linear 3x3 conv
    "logits", and the output ``Activation`` "reconstruction" (sigmoid or tanh, to
    match the data's value range). Keeping the activation a layer of its own lets
    the VAE read the logits before it, for the numerically stable BCE; the
    activation runs in float32, so the images are float32 under mixed precision.

    Returns:
        ``keras.Model`` named "decoder": (B, D) latents -> (B, H, W, 3) float32
        images in ``config.value_range``.
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
    logits = layers.Conv2D(3, 3, padding="same", name="logits")(x)
    outputs = layers.Activation(
        config.output_activation, dtype="float32", name="reconstruction"
    )(logits)
    return keras.Model(z, outputs, name="decoder")


# END REFERENCE


def _output_activation(decoder) -> str | None:
    """Return the activation's name if a functional decoder's output is made by a
    separate ``Activation`` layer (as ``build_decoder``'s is), else None."""
    try:
        last = decoder.layers[-1]
        if not isinstance(last, layers.Activation) or decoder.outputs[0] is not (
            last.output
        ):
            return None
    except (AttributeError, IndexError, ValueError, TypeError):
        return None  # a subclassed or unbuilt decoder: no graph to read
    return getattr(last.activation, "__name__", None)


# BEGIN REFERENCE (vae_model)
@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    """A variational autoencoder that trains with plain ``fit()``.

    ``call(images)`` returns a dict with ``reconstruction``, ``z_mean`` and
    ``z_log_var`` (and ``logits``, see below); ``compute_loss`` hands it to
    ``helpers.losses.vae_loss`` (the formula of ``03_loss``) as
    ``reconstruction + kl_weight * kl`` and tracks both terms. Keras reports
    ``loss``, ``reconstruction_loss`` and ``kl_loss`` (with ``val_`` versions) in the
    history, the progress bar and every callback.

    Overriding ``compute_loss`` instead of ``train_step`` keeps one code path for every
    backend and for ``tf.distribute``: Keras still does the gradient step.

    The reconstruction is summed over pixels and averaged over the batch: summing
    keeps the likelihood and the KL on the scales the ELBO gives them, so ``beta=1``
    is the real VAE and ``beta`` means the same at every image size and batch size.
    Averaging over pixels instead would shrink the reconstruction 12,288-fold at
    64x64x3, an effective beta of 12,288: the KL wins and the posterior collapses (all
    samples the same blurry face). It is measured on the [0, 1] pixel scale, so beta
    also means the same for a sigmoid and a tanh decoder.

    When the decoder ends in a separate sigmoid or tanh ``Activation`` layer (as
    ``build_decoder``'s does), ``call`` also returns ``logits``: the logits of the
    [0, 1]-scaled image (for tanh, twice the activation's input). BCE is computed
    from them, the numerically stable way. The sampling layer's noise state is
    saved with the weights, so a run resumed from a backup draws the same noise as
    an uninterrupted one. The loss is float32 under any precision policy.

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
        activation = _output_activation(decoder)
        self.logit_scale = {"sigmoid": 1.0, "tanh": 2.0}.get(activation)
        # z -> the final activation's input (the same layers as the decoder's).
        self.decoder_logits = (
            keras.Model(decoder.inputs, decoder.layers[-1].input, name="logits")
            if self.logit_scale
            else None
        )
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
    def from_vae_config(cls, config: VAEConfig) -> VAE:
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
        outputs = {"z_mean": z_mean, "z_log_var": z_log_var}
        if self.decoder_logits is None:
            outputs["reconstruction"] = self.decoder(z, training=training)
        else:  # the decoder in two steps: its logits, then its output activation
            activation_input = self.decoder_logits(z, training=training)
            outputs["reconstruction"] = self.decoder.layers[-1](activation_input)
            outputs["logits"] = self.logit_scale * ops.cast(activation_input, "float32")
        return outputs

    def compute_loss(
        self, x=None, y=None, y_pred=None, sample_weight=None, training=True
    ):
        losses = vae_loss(
            x if y is None else y,
            y_pred["reconstruction"],
            y_pred["z_mean"],
            y_pred["z_log_var"],
            beta=self.kl_weight,
            kind=self.reconstruction,
            value_range=self.value_range,
            logits=y_pred.get("logits") if self.reconstruction == "bce" else None,
        )
        # Batch means weighted by the batch size: the epoch's figure is the mean
        # over images, whatever the size of the last batch.
        images = ops.cast(ops.shape(y_pred["z_mean"])[0], "float32")
        self.reconstruction_tracker.update_state(
            losses["reconstruction"], sample_weight=images
        )
        self.kl_tracker.update_state(losses["kl"], sample_weight=images)
        total = losses["total"]
        if self.losses:
            total = total + ops.cast(ops.sum(self.losses), "float32")
        return scale_loss_for_distribution(total)

    # The sampling layer's noise state travels with the weights -------------------
    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, variable in enumerate(self.sampling.variables):
            store[f"sampling_{i}"] = variable

    def load_own_variables(self, store):
        keys = list(store.keys())
        own = [k for k in keys if not k.startswith("sampling_")]
        super().load_own_variables({k: store[k] for k in own})
        for i, variable in enumerate(self.sampling.variables):
            if f"sampling_{i}" in keys:  # files saved before the state was kept
                variable.assign(store[f"sampling_{i}"])

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


# END REFERENCE


def build_vae(config: VAEConfig) -> VAE:
    """Build and compile a VAE for ``config`` (Adam at ``config.learning_rate``)."""
    vae = VAE.from_vae_config(config)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    return vae
