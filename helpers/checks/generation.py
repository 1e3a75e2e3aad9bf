"""Self-check for 05_generate: sampling from the prior and decoding."""

from __future__ import annotations

import numpy as np

from helpers.checks._common import (
    CheckFailed,
    _call,
    _numpy,
    _passed,
)


# -------------------------------------------------------------------- prior samples
def _split_samples(result):
    if isinstance(result, dict):
        return _numpy(result.get("images")), (
            _numpy(result["z"]) if "z" in result else None
        )
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return _numpy(result[0]), _numpy(result[1])
    return _numpy(result), None


def check_prior_samples(fn, vae, n: int = 16) -> None:
    """Check "sample z from the prior N(0, I) and decode it".

    Args:
        fn: the student's ``sample_faces(vae, n, seed)``, called as
            ``fn(vae, n, seed=s)``; returns (n, H, W, 3) images in
            ``vae.value_range``, or ``(images, z)`` with z of shape (n, latent_dim)
            (then z itself is tested against N(0, I)).
        vae: a ``helpers.model.VAE`` (trained or not; only ``decoder`` and
            ``value_range`` are used).
        n: faces per call.

    Raises:
        CheckFailed: wrong shape or range, identical faces, seed ignored or not
            repeatable, z not from N(0, I).
    """
    decoder = vae.decoder
    dim = int(decoder.inputs[0].shape[-1])
    shape = tuple(decoder.outputs[0].shape[1:])
    low, high = getattr(vae, "value_range", (0.0, 1.0))
    images, z = _split_samples(_call(fn, vae, n, seed=0))
    if images.shape == (n, dim):
        raise CheckFailed(
            f"you returned z, shape {images.shape}: decode it into images "
            f"with vae.decoder(z) (or vae.decode(z))"
        )
    if images.shape != (n, *shape):
        raise CheckFailed(
            f"images have shape {images.shape}, expected {(n, *shape)}: "
            f"draw z with shape (n, latent_dim) = ({n}, {dim}), decode it"
        )
    if images.min() < low - 1e-5 or images.max() > high + 1e-5:
        raise CheckFailed(
            f"values in [{images.min():.2f}, {images.max():.2f}], outside "
            f"[{low:g}, {high:g}]: return the decoder's output unchanged"
        )
    if np.allclose(images, images[:1], atol=1e-6):
        raise CheckFailed(
            "all faces are identical: draw a different z for every face, "
            "shape (n, latent_dim)"
        )
    same, _ = _split_samples(_call(fn, vae, n, seed=0))
    if not np.allclose(same, images, atol=1e-5):
        raise CheckFailed(
            "the same seed gave different faces: pass the seed on, e.g. "
            "keras.random.normal((n, latent_dim), seed=seed)"
        )
    other, _ = _split_samples(_call(fn, vae, n, seed=1))
    if np.allclose(other, images, atol=1e-6):
        raise CheckFailed(
            "seeds 0 and 1 gave the same faces: the seed is ignored or z "
            "is not random"
        )
    many, z = _split_samples(_call(fn, vae, 256, seed=2))
    if z is not None:
        if z.shape != (256, dim):
            raise CheckFailed(
                f"z has shape {z.shape}, expected (n, latent_dim) = " f"(256, {dim})"
            )
        mean, std = float(z.mean()), float(z.std())
        if abs(mean) > 0.1 or abs(std - 1) > 0.1:
            raise CheckFailed(
                f"z has mean {mean:.2f} and std {std:.2f}: sample the "
                f"prior N(0, I) with keras.random.normal((n, latent_dim))"
                f", unscaled (not uniform, not the encoder's codes)"
            )
    else:
        rng = np.random.default_rng(3)
        reference = _numpy(decoder(rng.normal(size=(256, dim)).astype(np.float32)))
        ratio = float(many.std(0).mean() / max(reference.std(0).mean(), 1e-12))
        if not 0.6 < ratio < 1.6:
            raise CheckFailed(
                f"the faces vary {ratio:.2f} times as much as faces "
                f"decoded from N(0, I): sample z with "
                f"keras.random.normal((n, latent_dim)), mean 0, std 1"
            )
    _passed(
        f"check_prior_samples passed: {n} different faces {shape} in "
        f"[{low:g}, {high:g}] from z ~ N(0, I), repeatable for a seed"
    )
