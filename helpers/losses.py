"""The VAE's loss: reconstruction + beta * KL, written with ``keras.ops`` only.

Pure functions of tensors, so they run under every Keras backend (TensorFlow on CPU,
JAX on a GPU) and can be checked by hand in ``03_loss``.

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
"""

from __future__ import annotations

from keras import ops

RECONSTRUCTION_LOSSES = ("mse", "bce")


def kl_divergence(z_mean, z_log_var):
    """Return KL(N(z_mean, exp(z_log_var)) || N(0, I)) per example.

    For a diagonal Gaussian the closed form, per latent dimension, is
    ``-0.5 * (1 + log_var - mean**2 - exp(log_var))``; it is >= 0 and exactly 0 when
    mean = 0 and log_var = 0.

    Args:
        z_mean: (B, D) posterior means.
        z_log_var: (B, D) posterior log-variances.

    Returns:
        (B,) KL in nats, summed over the D latent dimensions.
    """
    return ops.sum(kl_per_dimension(z_mean, z_log_var), axis=-1)


def kl_per_dimension(z_mean, z_log_var):
    """Return the KL term of each latent dimension, (B, D), in nats."""
    return -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def reconstruction_loss(images, reconstructions, kind="mse", value_range=(0.0, 1.0)):
    """Return the reconstruction error per example, summed over pixels.

    Args:
        images: (B, H, W, C) targets in ``value_range``.
        reconstructions: (B, H, W, C) decoder outputs in the same range.
        kind: "mse" (squared error: a Gaussian likelihood up to a constant) or "bce"
            (binary cross-entropy: a Bernoulli likelihood; needs [0, 1] data).
        value_range: (low, high) of the pixels; BCE rescales to [0, 1] first.

    Returns:
        (B,) float tensor.
    """
    if kind == "mse":
        per_pixel = ops.square(images - reconstructions)
    elif kind == "bce":
        low, high = value_range
        scale = 1.0 / (high - low)
        targets = (images - low) * scale
        outputs = (reconstructions - low) * scale
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
):
    """Return the batch-mean losses as a dict: ``total``, ``reconstruction``, ``kl``.

    ``total = reconstruction + beta * kl``, each summed per image and averaged over
    the batch (see the module docstring for why).
    """
    reconstruction = ops.mean(
        reconstruction_loss(images, reconstructions, kind, value_range)
    )
    kl = ops.mean(kl_divergence(z_mean, z_log_var))
    return {
        "total": reconstruction + beta * kl,
        "reconstruction": reconstruction,
        "kl": kl,
    }
