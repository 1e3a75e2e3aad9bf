"""Self-checks for 03_loss: the KL term and the beta-weighted total."""

from __future__ import annotations


import numpy as np

from helpers.checks._common import (
    CheckFailed,
    PIXELS_64,
    _call,
    _numpy,
    _passed,
)

# -------------------------------------------------------------------------- losses
# Hand-checkable inputs: row 0 is N(0, I) (KL 0), row 1 only moves the mean
# (KL = 0.5 * (1 + 4) = 2.5), rows 2-3 change the variance too.
KL_Z_MEAN = np.array([[0, 0, 0], [1, 2, 0], [0, 0, 0], [0.5, -1, 1]], np.float32)
KL_Z_LOG_VAR = np.array([[0, 0, 0], [0, 0, 0], [1, -1, 2], [0.5, -0.5, 0]], np.float32)


def _kl_numpy(mean, log_var, variance=None, square=True):
    variance = np.exp(log_var) if variance is None else variance
    term = mean**2 if square else mean
    return -0.5 * (1 + log_var - term - variance)


def check_kl(fn) -> None:
    """Check a per-example KL(N(z_mean, exp(z_log_var)) || N(0, I)).

    Args:
        fn: the student's ``kl_divergence(z_mean, z_log_var)``; inputs (B, D)
            float32 tensors, returns (B,) KL summed over the D latent dimensions.

    Raises:
        CheckFailed: wrong shape, sign, factor, reduction or formula.
    """
    from keras import ops

    from helpers.losses import kl_divergence

    mean, log_var = KL_Z_MEAN.astype(np.float64), KL_Z_LOG_VAR.astype(np.float64)
    per_dim = _kl_numpy(mean, log_var)
    expected = per_dim.sum(-1)
    reference = _numpy(kl_divergence(KL_Z_MEAN, KL_Z_LOG_VAR))
    assert np.allclose(reference, expected, rtol=1e-5), "helpers.losses disagrees"
    out = _numpy(
        _call(fn, ops.convert_to_tensor(KL_Z_MEAN), ops.convert_to_tensor(KL_Z_LOG_VAR))
    ).astype(np.float64)
    batch, dims = mean.shape
    if not np.all(np.isfinite(out)):
        raise CheckFailed(
            "the KL has NaN or inf: you probably used z_log_var as the "
            "variance (the log of 0 or of a negative number). z_log_var "
            "is log(sigma^2), so the variance is exp(z_log_var)"
        )
    if out.size == 1:
        value = float(out.reshape(()))
        for hint, number in (
            ("summed over the batch", expected.sum()),
            ("averaged over the batch", expected.mean()),
            ("averaged over every value", per_dim.mean()),
        ):
            if np.isclose(value, number, rtol=1e-4):
                raise CheckFailed(
                    f"you returned one number, the KL {hint}: return one "
                    f"KL per example, shape (B,), summing over the latent "
                    f"axis only (axis=-1); the loss averages the batch"
                )
        raise CheckFailed(
            f"you returned one number ({value:.4g}): return one KL per "
            f"example, shape (B,) = ({batch},)"
        )
    if out.shape == (batch, dims):
        raise CheckFailed(
            f"shape {out.shape} is one KL per latent dimension: sum over "
            f"them (axis=-1) to get one KL per example, shape (B,)"
        )
    if out.shape != (batch,):
        raise CheckFailed(f"shape {out.shape}, expected (B,) = ({batch},)")
    if np.allclose(out, expected, rtol=1e-4, atol=1e-5):
        _passed(
            f"check_kl passed: KL = {np.round(expected, 4).tolist()} for the hand "
            f"examples, 0 at N(0, I), never negative"
        )
        return
    variants = {
        "the sign is flipped (a negative KL): the KL is >= 0, "
        "-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var))": -expected,
        "your KL is twice the right value: you forgot the 0.5": 2 * expected,
        "you averaged over the latent dimensions: sum them (axis=-1)": expected / dims,
        "you used exp(0.5 * z_log_var), the standard deviation, where the formula "
        "needs the variance exp(z_log_var)": _kl_numpy(
            mean, log_var, np.exp(0.5 * log_var)
        ).sum(-1),
        "square z_mean: the term is z_mean**2": _kl_numpy(
            mean, log_var, square=False
        ).sum(-1),
    }
    for hint, values in variants.items():
        if np.allclose(out, values, rtol=1e-4, atol=1e-5):
            raise CheckFailed(
                f"{hint} (expected {np.round(expected, 4).tolist()}, got "
                f"{np.round(out, 4).tolist()})"
            )
    raise CheckFailed(
        f"KL differs from the hand-computed values: expected "
        f"{np.round(expected, 4).tolist()}, got {np.round(out, 4).tolist()}"
        f"; per dimension it is -0.5 * (1 + log_var - mean**2 - "
        f"exp(log_var)), summed over the latent axis"
    )


def _scalar_total(result) -> np.ndarray:
    if isinstance(result, dict):
        for key in ("total", "loss", "total_loss"):
            if key in result:
                return _numpy(result[key]).astype(np.float64)
        raise CheckFailed(
            f"the returned dict has keys {sorted(result)}: put the total "
            f"loss under 'total'"
        )
    if isinstance(result, (tuple, list)):
        result = result[0]
    return _numpy(result).astype(np.float64)


def check_total_loss(fn, kind: str = "mse") -> None:
    """Check ``total = reconstruction + beta * kl``, each summed per image, batch mean.

    Args:
        fn: the student's ``vae_loss(images, reconstructions, z_mean, z_log_var,
            beta)`` (positional); images (B, 64, 64, 3) float32 in [0, 1], latents
            (B, D). Returns the scalar total, a dict with a "total" key (like
            ``helpers.losses.vae_loss``) or a tuple whose first item is the total.
        kind: the reconstruction loss the notebook uses, "mse" or "bce".

    Raises:
        CheckFailed: beta ignored, pixel-averaged reconstruction, KL sign, reduction.
    """
    from keras import ops

    from helpers.losses import kl_divergence, reconstruction_loss

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    noisy = np.clip(images + rng.normal(0, 0.1, images.shape), 0.01, 0.99)
    recons = noisy.astype(np.float32)
    z_mean = rng.normal(0, 1, (2, 8)).astype(np.float32)
    z_log_var = rng.normal(0, 0.5, (2, 8)).astype(np.float32)
    rec_each = _numpy(reconstruction_loss(images, recons, kind)).astype(np.float64)
    kl_each = _numpy(kl_divergence(z_mean, z_log_var)).astype(np.float64)
    rec, kl = rec_each.mean(), kl_each.mean()
    args = [ops.convert_to_tensor(v) for v in (images, recons, z_mean, z_log_var)]
    results = {}
    for beta in (1.0, 4.0):
        total = _scalar_total(_call(fn, *args, beta))
        if total.size != 1:
            raise CheckFailed(
                f"the total has shape {total.shape}: return one number, "
                f"the batch mean of reconstruction + beta * kl"
            )
        results[beta] = float(total.reshape(()))
    variants = {
        None: lambda b: rec + b * kl,
        "beta is ignored: total = reconstruction + beta * kl": lambda b: rec + kl,
        f"you averaged the reconstruction over the pixels, which divides it by "
        f"{PIXELS_64:,} (64*64*3): an effective beta of {PIXELS_64:,}. The KL then "
        f"wins, the posterior collapses onto the prior and every sample is the same "
        f"blurry face. Sum the reconstruction over the pixels, then average over the "
        f"batch": lambda b: rec / PIXELS_64 + b * kl,
        f"you averaged the reconstruction over the pixels and the KL over the latent "
        f"dimensions: the reconstruction shrinks {PIXELS_64:,}-fold and the posterior "
        f"collapses (all samples one blurry face). Sum both per image, then average "
        f"over the batch": lambda b: rec / PIXELS_64 + b * kl / 8,
        "the KL is added with the wrong sign: total = reconstruction + beta * kl "
        "(minus the ELBO)": lambda b: rec - b * kl,
        "beta multiplies the KL, not the reconstruction": lambda b: b * rec + kl,
        "you summed over the batch: average it, so the loss does not depend on the "
        "batch size": lambda b: 2 * (rec + b * kl),
        "the KL term is missing: total = reconstruction + beta * kl": lambda b: rec,
        "the reconstruction term is missing: total = reconstruction "
        "+ beta * kl": lambda b: b * kl,
    }
    for hint, formula in variants.items():
        if all(np.isclose(results[b], formula(b), rtol=1e-3) for b in results):
            if hint is None:
                _passed(
                    f"check_total_loss passed: total = reconstruction ({rec:.1f}, "
                    f"summed over {PIXELS_64:,} pixel values) + beta * KL "
                    f"({kl:.3f}), averaged over the batch"
                )
                return
            raise CheckFailed(hint)
    raise CheckFailed(
        f"total loss {results[1.0]:.4g} (beta=1) and {results[4.0]:.4g} "
        f"(beta=4), expected {rec + kl:.4g} and {rec + 4 * kl:.4g}: "
        f"reconstruction summed per image + beta * KL per image, "
        f"averaged over the batch"
    )
