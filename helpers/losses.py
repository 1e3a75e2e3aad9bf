"""The VAE's loss: reconstruction + beta * KL, written with ``keras.ops`` only.

Pure functions of tensors, so they run under every Keras backend (TensorFlow on CPU,
JAX on a GPU) and can be checked by hand in ``03_loss``. Every term is computed in
float32 whatever the inputs' dtype, so the loss is the same under mixed precision.

Why sum over pixels and average over the batch
-----------------------------------------------
The ELBO of one image is ``log p(x|z) - KL(q(z|x) || p(z))``. ``log p(x|z)`` is a sum
over its 64*64*3 = 12,288 pixel values; the KL is a sum over the latent dimensions.
Summing both per image and then averaging over the batch keeps the two terms on the
scale the maths gives them, so ``beta = 1`` is the real VAE and the loss does not
depend on the batch size. Averaging the reconstruction over pixels instead divides it
by 12,288 while the KL keeps its size: that silently multiplies beta by 12,288, the KL
wins, the posterior collapses onto the prior and every sample is the same blurry
average face (a bug in several popular repositories).

Why the reconstruction is measured on the [0, 1] scale
------------------------------------------------------
Beta weighs the KL against the reconstruction, so it only means something if the
reconstruction's scale is fixed. A squared error on [-1, 1] pixels is 4 times the
same error on [0, 1] pixels: a tanh decoder at beta 1 would be a sigmoid decoder at
beta 0.25. Here both the images and the reconstructions are mapped to [0, 1] first,
whatever ``value_range`` is, so the same beta means the same trade-off for both
decoders (and BCE, a likelihood of [0, 1] values, needs that scale anyway).
"""

from __future__ import annotations

from keras import ops

RECONSTRUCTION_LOSSES = ("mse", "bce")


# BEGIN REFERENCE (losses)
def kl_divergence(z_mean, z_log_var):
    """Return KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example.

    For a diagonal Gaussian the closed form, per latent dimension, is
    ``-0.5 * (1 + log_var - mean**2 - exp(log_var))``; it is >= 0 and exactly 0 when
    mean = 0 and log_var = 0.

    Args:
        z_mean: (B, D) posterior means.
        z_log_var: (B, D) posterior log-variances.

    Returns:
        (B,) float32 KL in nats, summed over the D latent dimensions.
    """
    return ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1)


# END REFERENCE
# kl_per_dimension stays in the student release: the analysis (helpers.metrics)
# measures active units with it.


def kl_per_dimension(z_mean, z_log_var):
    """Return the KL term of each latent dimension, (B, D) float32, in nats."""
    z_mean = ops.cast(z_mean, "float32")
    z_log_var = ops.cast(z_log_var, "float32")
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


# BEGIN REFERENCE (losses)
def reconstruction_loss(
    images, reconstructions, kind="mse", value_range=(0.0, 1.0), logits=None
):
    """Return the reconstruction error per example, summed over pixels.

    Both images and reconstructions are first mapped from ``value_range`` to
    [0, 1], so the loss (and with it beta) means the same for a sigmoid and a tanh
    decoder (see the module docstring).

    Args:
        images: (B, H, W, C) targets in ``value_range``.
        reconstructions: (B, H, W, C) decoder outputs in the same range.
        kind: "mse" (squared error: a Gaussian likelihood up to a constant) or "bce"
            (binary cross-entropy: a Bernoulli likelihood of the [0, 1] values).
        value_range: (low, high) of the pixels.
        logits: optional (B, H, W, C) logits of the [0, 1]-scaled reconstruction,
            ``sigmoid(logits) == (reconstructions - low) / (high - low)``. BCE then
            uses the numerically stable ``from_logits`` form: a confidently wrong
            pixel costs its true (large) loss and still gets a gradient, where the
            probability form clips it at about 16 nats with zero gradient.

    Returns:
        (B,) float32 tensor.
    """
    low, high = (float(v) for v in value_range)
    scale = 1.0 / (high - low)
    targets = (ops.cast(images, "float32") - low) * scale
    if kind == "mse":
        outputs = (ops.cast(reconstructions, "float32") - low) * scale
        per_pixel = ops.square(targets - outputs)
    elif kind == "bce":
        if logits is not None:
            per_pixel = ops.binary_crossentropy(
                targets, ops.cast(logits, "float32"), from_logits=True
            )
        else:
            outputs = (ops.cast(reconstructions, "float32") - low) * scale
            per_pixel = ops.binary_crossentropy(targets, outputs, from_logits=False)
    else:
        raise ValueError(
            f"reconstruction loss {kind!r}: choose one of {RECONSTRUCTION_LOSSES}"
        )
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


def vae_loss(
    images,
    reconstructions,
    z_mean,
    z_log_var,
    beta=1.0,
    kind="mse",
    value_range=(0.0, 1.0),
    logits=None,
):
    """Return the batch-mean losses as a dict: ``total``, ``reconstruction``, ``kl``.

    ``total = reconstruction + beta * kl``, each summed per image and averaged over
    the batch (see the module docstring for why); the reconstruction is measured on
    the [0, 1] pixel scale, so beta means the same whatever ``value_range`` is.
    ``logits`` is passed to ``reconstruction_loss`` (BCE's stable path). ``beta``
    may be a number or a scalar tensor (a warm-up's variable). All three are
    float32 scalars.
    """
    reconstruction = ops.mean(
        reconstruction_loss(images, reconstructions, kind, value_range, logits)
    )
    kl = ops.mean(kl_divergence(z_mean, z_log_var))
    beta = ops.cast(beta, "float32")
    return {
        "total": reconstruction + beta * kl,
        "reconstruction": reconstruction,
        "kl": kl,
    }


# END REFERENCE
