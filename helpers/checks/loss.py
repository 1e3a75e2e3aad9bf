"""Self-checks for 03_loss: reconstruction, KL, the beta-weighted total, the VAE.

Expected values are computed here by hand (NumPy on fixed inputs), never with the
lab's reference ``helpers.losses``, which the student release does not ship. Each
check also names the upstream function when a mistake comes from there: a flipped
KL sign found by ``check_total_loss`` or ``check_vae_model`` says "kl_divergence",
not only "the total is wrong".
"""

from __future__ import annotations

import numpy as np

from helpers.checks._common import (
    PIXELS_64,
    CheckFailed,
    _call,
    _name,
    _numpy,
    _passed,
    _target_name,
    self_check,
)

# Hand-checkable inputs: row 0 is N(0, I) (KL 0), row 1 only moves the mean
# (KL = 0.5 * (1 + 4) = 2.5), rows 2-3 change the variance too.
KL_Z_MEAN = np.array([[0, 0, 0], [1, 2, 0], [0, 0, 0], [0.5, -1, 1]], np.float32)
KL_Z_LOG_VAR = np.array([[0, 0, 0], [0, 0, 0], [1, -1, 2], [0.5, -0.5, 0]], np.float32)
EPSILON = 1e-7  # Keras' clip for probabilities in binary cross-entropy


def _kl_numpy(mean, log_var, variance=None, square=True):
    variance = np.exp(log_var) if variance is None else variance
    term = mean**2 if square else mean
    return -0.5 * (1 + log_var - term - variance)


def _kl_each(mean, log_var) -> np.ndarray:
    """(B,) KL per example, summed over the latent axis, in float64."""
    return _kl_numpy(mean.astype(np.float64), log_var.astype(np.float64)).sum(-1)


def _to_unit(x, value_range) -> np.ndarray:
    low, high = (float(v) for v in value_range)
    return (np.asarray(x, np.float64) - low) / (high - low)


def _rec_each(images, recons, kind="mse", value_range=(0.0, 1.0)) -> np.ndarray:
    """(B,) reconstruction loss summed over pixels, on the [0, 1] scale."""
    x, p = _to_unit(images, value_range), _to_unit(recons, value_range)
    if kind == "mse":
        per_pixel = (x - p) ** 2
    else:
        p = np.clip(p, EPSILON, 1 - EPSILON)
        per_pixel = -(x * np.log(p) + (1 - x) * np.log(1 - p))
    return per_pixel.reshape(len(x), -1).sum(-1)


# ---------------------------------------------------------------- reconstruction
def _reconstruction_inputs(value_range, seed=0):
    """Two 64x64 RGB images and noisy reconstructions in ``value_range``; each has
    a pixel that is exactly 0 and one exactly 1 (on the [0, 1] scale) in both."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.05, 0.95, (2, 64, 64, 3))
    p = np.clip(x + rng.normal(0, 0.1, x.shape), 0.02, 0.98)
    x[:, 0, 0, :], p[:, 0, 0, :] = 1.0, 1.0
    x[:, 0, 1, :], p[:, 0, 1, :] = 0.0, 0.0
    low, high = (float(v) for v in value_range)
    scale = lambda v: (v * (high - low) + low).astype(np.float32)  # noqa: E731
    return scale(x), scale(p)


def _diagnose_reconstruction(out, images, recons, kind, value_range) -> str | None:
    """A hint for a wrong per-image reconstruction ``out`` (None: no idea)."""
    expected = _rec_each(images, recons, kind, value_range)
    batch = len(expected)
    candidates = {
        f"you averaged over the pixels instead of summing: that divides the "
        f"likelihood by {PIXELS_64:,} (64*64*3) and acts like beta = {PIXELS_64:,} "
        f"(posterior collapse: every face the same blur). Sum over "
        f"height, width and channels": expected / PIXELS_64,
        "you averaged over the colour channels: Keras' mean_squared_error and "
        "binary_crossentropy average the LAST axis (the 3 channels), so summing "
        "their result gives a third of the loss. Sum the per-pixel errors over "
        "all three axes yourself": expected / 3,
    }
    if kind == "mse":
        candidates[
            "you did not square the error: the Gaussian likelihood's term is "
            "(x - x_hat)**2"
        ] = (
            np.abs(_to_unit(images, value_range) - _to_unit(recons, value_range))
            .reshape(batch, -1)
            .sum(-1)
        )
        candidates[
            "take the square root away: the Gaussian likelihood is a sum of "
            "squared errors, not their root"
        ] = np.sqrt(expected)
    else:
        x, p = _to_unit(images, value_range), _to_unit(recons, value_range)
        x_clip = np.clip(x, EPSILON, 1 - EPSILON)
        swapped = -(p * np.log(x_clip) + (1 - p) * np.log(1 - x_clip))
        candidates[
            "target and prediction are swapped: binary_crossentropy(images, "
            "reconstructions), the images are the targets"
        ] = swapped.reshape(batch, -1).sum(-1)
        logit_bce = np.maximum(p, 0) - p * x + np.log1p(np.exp(-np.abs(p)))
        candidates[
            "from_logits=True treats the decoder's sigmoid outputs as logits: they "
            "are probabilities already (from_logits=False)"
        ] = logit_bce.reshape(batch, -1).sum(-1)
    if kind == "mse" and tuple(value_range) == (-1.0, 1.0):
        candidates[
            "the error is measured on the [-1, 1] scale, where every difference is "
            "twice as big and its square 4 times: map images and reconstructions "
            "to [0, 1] first ((x - low) / (high - low)), so beta means the same "
            "for a tanh and a sigmoid decoder"
        ] = (4 * expected)
    for hint, values in candidates.items():
        if np.allclose(out, values, rtol=1e-3, atol=1e-3):
            return hint
    return None


@self_check("reconstruction_loss")
def check_reconstruction_loss(fn, kinds=("mse", "bce")) -> None:
    """Check ``reconstruction_loss(images, reconstructions, kind, value_range)``.

    Args:
        fn: the student's function: (B, H, W, 3) images and reconstructions in
            ``value_range`` -> (B,) losses summed over the pixels, measured on the
            [0, 1] scale; ``kind`` is "mse" or "bce".
        kinds: which kinds to check.

    Raises:
        CheckFailed: shape (one number, per pixel, per channel), averaging instead
            of summing (by hand or through Keras' ``mean_squared_error``), no
            square, BCE's arguments swapped or from_logits, NaN at pixels of
            exactly 0 or 1, the [-1, 1] scale.
    """
    from keras import ops

    for kind in kinds:
        for value_range in ((0.0, 1.0), (-1.0, 1.0)):
            images, recons = _reconstruction_inputs(value_range)
            expected = _rec_each(images, recons, kind, value_range)
            out = _numpy(
                _call(
                    fn,
                    ops.convert_to_tensor(images),
                    ops.convert_to_tensor(recons),
                    kind,
                    value_range,
                    what=_target_name(fn, "reconstruction_loss"),
                )
            ).astype(np.float64)
            where = f"kind={kind!r}, value_range={value_range}"
            if not np.all(np.isfinite(out)):
                hint = _why_not_finite(kind, value_range)
                raise CheckFailed(f"({where}) the loss has NaN or inf: {hint}")
            if out.shape != expected.shape:
                raise CheckFailed(f"({where}) " + _wrong_shape(out, expected))
            if np.allclose(out, expected, rtol=1e-3, atol=1e-2):
                continue
            hint = _diagnose_reconstruction(out, images, recons, kind, value_range)
            if hint is None and value_range != (0.0, 1.0):
                hint = (
                    "it is right on [0, 1] data but not here: map images and "
                    "reconstructions to [0, 1] first, (x - low) / (high - low)"
                )
            raise CheckFailed(
                f"({where}) expected {np.round(expected, 2).tolist()}, got "
                f"{np.round(out, 2).tolist()}: "
                + (hint or "sum the per-pixel error over each image")
            )
    _passed(
        f"check_reconstruction_loss passed: {' and '.join(kinds)}, one value per "
        f"image summed over its {PIXELS_64:,} pixel values, on the [0, 1] scale "
        f"for (0, 1) and (-1, 1) data, finite at pixels of exactly 0 and 1"
    )


def _why_not_finite(kind: str, value_range) -> str:
    """What makes a reconstruction loss NaN or inf, for this kind and range."""
    if kind == "bce" and tuple(value_range) == (-1.0, 1.0):
        return (
            "BCE is only defined for values in [0, 1]: map images and "
            "reconstructions from value_range to [0, 1] first"
        )
    if kind == "bce":
        return (
            "a pixel that is exactly 0 or 1 gives log(0): clip the predictions to "
            "[eps, 1 - eps] (ops.binary_crossentropy does this for you)"
        )
    return "check for divisions or logs"


def _wrong_shape(out: np.ndarray, expected: np.ndarray) -> str:
    """Why the losses are not one per image: one number, or axes left over."""
    if out.size == 1:
        value = float(out.reshape(()))
        for hint, number in (
            ("summed over the batch too", expected.sum()),
            ("averaged over the batch", expected.mean()),
            ("averaged over every pixel", expected.mean() / PIXELS_64),
        ):
            if np.isclose(value, number, rtol=1e-3):
                return (
                    f"you returned one number, the loss {hint}: return one loss "
                    f"per image, shape (B,); the batch mean comes later, in vae_loss"
                )
        return (
            f"you returned one number ({value:.4g}): return one loss per image, "
            f"shape (B,) = ({len(expected)},)"
        )
    if out.shape == (2, 64, 64):
        hint = (
            "Keras' mean_squared_error / binary_crossentropy average the last axis "
            "(the colour channels) and keep the others"
        )
    else:
        hint = "you did not reduce over every pixel axis"
    return (
        f"shape {out.shape}, expected (B,) = ({len(expected)},): {hint}. Sum the "
        f"per-pixel error over height, width and channels"
    )


# ------------------------------------------------------------------------------ KL
def _kl_variants(mean, log_var) -> dict:
    expected = _kl_each(mean, log_var)
    dims = mean.shape[-1]
    mean, log_var = mean.astype(np.float64), log_var.astype(np.float64)
    return {
        "the sign is flipped (a negative KL): the KL is >= 0, "
        "-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var))": -expected,
        "your KL is twice the right value: you forgot the 0.5": 2 * expected,
        "your KL is half the right value: the factor in front is 0.5, once "
        "(-0.5 * (1 + ...)), not 0.25": 0.5 * expected,
        "you averaged over the latent dimensions: sum them (axis=-1)": expected / dims,
        "you used exp(0.5 * z_log_var), the standard deviation, where the formula "
        "needs the variance exp(z_log_var)": _kl_numpy(
            mean, log_var, np.exp(0.5 * log_var)
        ).sum(-1),
        "square z_mean: the term is z_mean**2": _kl_numpy(
            mean, log_var, square=False
        ).sum(-1),
    }


@self_check("kl_divergence")
def check_kl(fn) -> None:
    """Check a per-example KL(N(z_mean, exp(z_log_var)) || N(0, I)).

    Args:
        fn: the student's ``kl_divergence(z_mean, z_log_var)``; inputs (B, D)
            float32 tensors, returns (B,) KL summed over the D latent dimensions.

    Raises:
        CheckFailed: wrong shape, sign, factor, reduction or formula.
    """
    from keras import ops

    mean, log_var = KL_Z_MEAN.astype(np.float64), KL_Z_LOG_VAR.astype(np.float64)
    per_dim = _kl_numpy(mean, log_var)
    expected = per_dim.sum(-1)
    out = _numpy(
        _call(
            fn,
            ops.convert_to_tensor(KL_Z_MEAN),
            ops.convert_to_tensor(KL_Z_LOG_VAR),
            what=_target_name(fn, "kl_divergence"),
        )
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
    for hint, values in _kl_variants(KL_Z_MEAN, KL_Z_LOG_VAR).items():
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


# --------------------------------------------------------------------- total loss
def _scalar(value, what: str) -> float:
    array = _numpy(value).astype(np.float64)
    if array.size != 1:
        raise CheckFailed(
            f"{what} has shape {array.shape}: return one number, the batch mean"
        )
    return float(array.reshape(()))


def _upstream_kl_hint(kl_value: float, mean, log_var) -> str | None:
    """If a batch-mean KL matches a known kl_divergence mistake, say which."""
    matches = [
        hint
        for hint, values in _kl_variants(mean, log_var).items()
        if np.isclose(kl_value, float(np.mean(values)), rtol=1e-3)
    ]
    if len(matches) == 1:
        return (
            f"the KL term comes out wrong because of kl_divergence: {matches[0]}. "
            f"Fix kl_divergence (its check_kl above fails too), then run this "
            f"check again"
        )
    if matches:  # two mistakes give the same number on these inputs: name neither
        right = float(np.mean(_kl_each(mean, log_var)))
        return (
            f"the KL term comes out wrong because of kl_divergence (it is "
            f"{kl_value / right:.3g} times the right value): fix kl_divergence "
            f"first (its check_kl above fails too and names the mistake), then run "
            f"this check again"
        )
    return None


def _upstream_rec_hint(rec_value: float, images, recons, kind) -> str | None:
    """If a batch-mean reconstruction matches a known mistake, say which."""
    per_image = _rec_each(images, recons, kind)
    for text, factor in (
        (
            f"it is averaged over the pixels: that divides it by {PIXELS_64:,} "
            f"(an effective beta of {PIXELS_64:,}: posterior collapse, every "
            f"sample the same blurry face)",
            1 / PIXELS_64,
        ),
        (
            "it is averaged over the colour channels (Keras' mean_squared_error "
            "averages the last axis)",
            1 / 3,
        ),
        ("it is summed over the batch instead of averaged", len(per_image)),
    ):
        if np.isclose(rec_value, per_image.mean() * factor, rtol=1e-3):
            return (
                f"the reconstruction term is off: {text}. It comes from "
                f"reconstruction_loss (see check_reconstruction_loss) or from "
                f"how vae_loss reduces it: sum per image, then average the batch"
            )
    return None


def _value_range_passed_on(fn, args, want) -> None:
    """``fn`` with [-1, 1] images and value_range=(-1, 1) gives the [0, 1] total
    ``want`` (beta 1): value_range reaches reconstruction_loss. Skipped when ``fn``
    takes no value_range."""
    import inspect

    from keras import ops

    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if "value_range" not in parameters:
        return
    images, recons, z_mean, z_log_var = args
    result = _call(
        fn, ops.convert_to_tensor(2 * _numpy(images) - 1),
        ops.convert_to_tensor(2 * _numpy(recons) - 1), z_mean, z_log_var, 1.0,
        value_range=(-1.0, 1.0), what=_target_name(fn, "vae_loss"),
    )
    got = _the_total(result)
    if not np.isclose(got, want, rtol=1e-3):
        raise CheckFailed(
            f"with [-1, 1] images and value_range=(-1, 1) the total is {got:.4g}, "
            f"expected {want:.4g} (the same images on the [0, 1] scale): pass "
            f"value_range on to reconstruction_loss, e.g. reconstruction_loss("
            f"images, reconstructions, kind, value_range)"
        )


def _the_total(result) -> float:
    """The total loss in what vae_loss returned: a number, a tuple's first item, or
    a dict's "total" (or "loss", "total_loss")."""
    if isinstance(result, (tuple, list)):
        return _scalar(result[0], "the total")
    if not isinstance(result, dict):
        return _scalar(result, "the total")
    total = None
    for key in ("total", "loss", "total_loss"):
        if key in result:
            total = _scalar(result[key], f"result[{key!r}]")
    if total is None:
        raise CheckFailed(
            f"the returned dict has keys {sorted(result)}: put the total loss under "
            f"'total'"
        )
    return total


def _total_of(result, rec, kl, images, recons, z_mean, z_log_var, kind) -> float:
    """vae_loss's total from what it returned; a dict's 'kl'/'reconstruction' too."""
    total = _the_total(result)
    if not isinstance(result, dict):
        return total
    if "kl" in result:
        got = _scalar(result["kl"], "result['kl']")
        if not np.isclose(got, kl, rtol=1e-3):
            raise CheckFailed(
                _upstream_kl_hint(got, z_mean, z_log_var)
                or f"result['kl'] is {got:.4g}, expected the batch mean of "
                f"kl_divergence, {kl:.4g}"
            )
    if "reconstruction" in result:
        got = _scalar(result["reconstruction"], "result['reconstruction']")
        if not np.isclose(got, rec, rtol=1e-3):
            raise CheckFailed(
                _upstream_rec_hint(got, images, recons, kind)
                or f"result['reconstruction'] is {got:.4g}, expected the batch mean "
                f"of the per-image {kind}, {rec:.4g}"
            )
    return total


@self_check("vae_loss")
def check_total_loss(fn, kind: str = "mse") -> None:
    """Check ``total = reconstruction + beta * kl``, each summed per image, batch mean.

    Args:
        fn: the student's ``vae_loss(images, reconstructions, z_mean, z_log_var,
            beta, kind, value_range)``, called with the first five positionally
            (and ``kind`` when it is not "mse"); images (B, 64, 64, 3) float32 in
            [0, 1], latents (B, D). Returns the scalar total, a dict with a "total"
            key (and ideally "reconstruction" and "kl", which are then checked
            too) or a tuple whose first item is the total.
        kind: the reconstruction loss the notebook uses, "mse" or "bce".

    Raises:
        CheckFailed: beta ignored, pixel-averaged reconstruction, KL sign (in
            kl_divergence or in the sum), reduction, a missing term.
    """
    from keras import ops

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    noisy = np.clip(images + rng.normal(0, 0.1, images.shape), 0.01, 0.99)
    recons = noisy.astype(np.float32)
    z_mean = rng.normal(0, 1, (2, 8)).astype(np.float32)
    z_log_var = rng.normal(0, 0.5, (2, 8)).astype(np.float32)
    rec = _rec_each(images, recons, kind).mean()
    kl = _kl_each(z_mean, z_log_var).mean()
    args = [ops.convert_to_tensor(v) for v in (images, recons, z_mean, z_log_var)]
    extra = () if kind == "mse" else (kind,)
    results = {}
    for beta in (1.0, 4.0):
        result = _call(fn, *args, beta, *extra, what=_target_name(fn, "vae_loss"))
        results[beta] = _total_of(
            result, rec, kl, images, recons, z_mean, z_log_var, kind
        )
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
        "the reconstruction is averaged over the colour channels (Keras' "
        "mean_squared_error averages the last axis): a third of the real term. "
        "Sum the squared error over every pixel value": lambda b: rec / 3 + b * kl,
        "the KL enters with the wrong sign: either kl_divergence returns -KL (its "
        "check_kl above fails too) or vae_loss subtracts it. total = "
        "reconstruction + beta * kl (minus the ELBO)": lambda b: rec - b * kl,
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
                if kind == "mse":
                    _value_range_passed_on(fn, args, rec + kl)
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


# ---------------------------------------------------------------------- the model
def _tiny_parts(latent: int = 2):
    """A small encoder and decoder for 8x8 RGB images with fixed, seeded weights;
    z_log_var is the bias of a zero-kernel Dense, so the check can set it."""
    import keras
    from keras import layers

    images = keras.Input((8, 8, 3))
    x = layers.Flatten()(images)
    z_mean = layers.Dense(
        latent,
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.3, seed=1),
        name="z_mean",
    )(x)
    z_log_var = layers.Dense(latent, kernel_initializer="zeros", name="z_log_var")(x)
    encoder = keras.Model(images, [z_mean, z_log_var], name="encoder")
    z = keras.Input((latent,))
    pixels = layers.Dense(
        8 * 8 * 3,
        activation="sigmoid",
        kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=2),
        name="pixels",
    )(z)
    decoder = keras.Model(z, layers.Reshape((8, 8, 3))(pixels), name="decoder")
    return encoder, decoder


def _tiny_vae(vae_class, encoder, decoder, beta: float, what: str, **settings):
    """The student's VAE class around the tiny parts, MSE on [0, 1], seed 0 (or
    the ``settings`` given: reconstruction, value_range)."""
    settings = {"reconstruction": "mse", "value_range": (0.0, 1.0), **settings}
    return _call(
        vae_class, encoder, decoder, beta=beta, seed=0, what=what, **settings
    )


def _settings_reach_the_loss(vae_class, name: str, images, beta: float) -> None:
    """The reconstruction_loss tracker follows the model's reconstruction kind and
    value_range (a compute_loss that leaves them out uses vae_loss's defaults)."""
    import keras

    probes = (
        ({"reconstruction": "bce"}, "reconstruction", "self.reconstruction"),
        # The same [0, 1] pixels read as [-1, 1] values: a quarter of the MSE.
        ({"value_range": (-1.0, 1.0)}, "value_range", "self.value_range"),
    )
    for settings, field, attribute in probes:
        encoder, decoder = _tiny_parts()
        vae = _tiny_vae(vae_class, encoder, decoder, beta, f"{name}(...)", **settings)
        _set_log_var(encoder, -12.0)  # z = z_mean: the loss by hand
        recons = _numpy(decoder(_numpy(encoder(images)[0])))
        kind = settings.get("reconstruction", "mse")
        value_range = settings.get("value_range", (0.0, 1.0))
        want = float(_rec_each(images, recons, kind, value_range).mean())
        vae.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        logs = _call(
            lambda: vae.evaluate(images, batch_size=len(images), verbose=0,
                                 return_dict=True),
            what=f"{name}.compute_loss (or test_step)",
        )
        got = float(logs.get("reconstruction_loss", float("nan")))
        if not np.isclose(got, want, rtol=1e-2):
            value = settings[field]
            raise CheckFailed(
                f"built with {field}={value!r} the reconstruction_loss tracker reads "
                f"{got:.4g}, expected {want:.4g}: pass the model's {attribute} on "
                f"to vae_loss in compute_loss (without it vae_loss uses its default)"
            )


def _close(a, b, tol=2e-3) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def _weighted_means(vae, name: str, images) -> None:
    """Fail unless the trackers give the mean over images when batches differ."""
    logs = _call(
        lambda: vae.evaluate(images, batch_size=16, verbose=0, return_dict=True),
        what=f"{name}.compute_loss (or test_step)",
    )
    mean, log_var = (_numpy(t) for t in vae.encoder(images))
    per_image = (-0.5 * (1 + log_var - mean**2 - np.exp(log_var))).sum(1)
    kl, batches = float(per_image.mean()), [per_image[:16], per_image[16:]]
    unweighted = float(np.mean([b.mean() for b in batches]))
    reported = float(logs.get("kl_loss", float("nan")))
    if _close(reported, kl):
        return
    if _close(reported, unweighted):
        raise CheckFailed(
            f"over 20 images in batches of 16 and 4, kl_loss reports {reported:.4g}, "
            f"the mean of the two batch means; the mean over the images is {kl:.4g}: "
            "weigh each batch by its size when you update a tracker "
            "(update_state(value, sample_weight=batch_size))"
        )
    raise CheckFailed(
        f"over 20 images in batches of 16 and 4, kl_loss reports {reported:.4g}, "
        f"not the mean KL over the images ({kl:.4g})"
    )


def _set_log_var(encoder, value: float) -> None:
    bias = encoder.get_layer("z_log_var").bias
    bias.assign(np.full(bias.shape, value, np.float32))


@self_check("VAE")
def check_vae_model(vae_class, beta: float = 3.0) -> None:
    """Check the VAE model: its call, its loss inside ``fit``, trackers and saving.

    Builds the student's class around a tiny encoder and decoder (8x8 images, a
    2-d latent), then checks that ``call`` returns the dict and samples z, that one
    ``fit`` step reports ``loss = reconstruction + kl_weight * kl`` with the two
    trackers ``reconstruction_loss`` and ``kl_loss``, that the gradient reaches
    both networks, and that a ``.keras`` file reloads.

    Args:
        vae_class: the student's ``VAE`` class, ``VAE(encoder, decoder, beta,
            reconstruction, value_range, seed)``.
        beta: the beta it is built with.

    Raises:
        CheckFailed: naming the first problem; a KL or reconstruction term that is
            wrong because of ``kl_divergence`` or ``reconstruction_loss`` says so.
    """
    import keras

    name = _name(vae_class)
    rng = np.random.default_rng(0)
    images = rng.uniform(0.05, 0.95, (4, 8, 8, 3)).astype(np.float32)
    encoder, decoder = _tiny_parts()
    vae = _tiny_vae(vae_class, encoder, decoder, beta, what=f"{name}(...)")
    if not isinstance(vae, keras.Model):
        raise CheckFailed(f"{name}(...) is a {type(vae).__name__}, not a keras.Model")
    _set_log_var(encoder, 0.0)
    _check_call_samples(vae, name, images)
    # Now make sigma tiny, so z = z_mean and the loss can be computed by hand.
    _set_log_var(encoder, -12.0)
    z_mean, z_log_var = (_numpy(v) for v in encoder(images))
    rec = float(
        ((images - _numpy(decoder(z_mean))) ** 2)
        .reshape(len(images), -1)
        .sum(-1)
        .mean()
    )
    kl = float(_kl_each(z_mean, z_log_var).mean())
    weight = beta
    if hasattr(getattr(vae, "kl_weight", None), "assign"):
        weight = beta / 2
        vae.kl_weight.assign(weight)
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3))
    watched = {
        "encoder": encoder.get_layer("z_mean").kernel,
        "decoder": decoder.get_layer("pixels").kernel,
    }
    before = {k: _numpy(v).copy() for k, v in watched.items()}
    history = _call(
        vae.fit,
        images,
        epochs=1,
        batch_size=len(images),
        verbose=0,
        shuffle=False,
        what=f"{name}.fit (your compute_loss or train_step)",
    )
    logs = {k: float(np.ravel(v)[-1]) for k, v in history.history.items()}
    _check_trackers(logs, rec, kl, z_mean, z_log_var, pixels=images[0].size)
    _check_total(logs["loss"], rec, kl, weight, beta, pixels=images[0].size)
    for part, variable in watched.items():
        if np.allclose(before[part], _numpy(variable)):
            raise CheckFailed(
                f"one training step left the {part}'s weights unchanged: the loss "
                f"does not reach them. Compute it from call()'s outputs inside "
                f"compute_loss (or inside the GradientTape of your train_step)"
            )
    _check_reloads(vae, encoder, images)
    _weighted_means(vae, name, np.concatenate([images] * 4 + [images * 0.5]))
    _settings_reach_the_loss(vae_class, name, images, beta)
    _passed(
        f"check_vae_model passed: call() samples z and returns the dict; one fit() "
        f"step reports loss = reconstruction ({rec:.2f}) + kl_weight ({weight:g}) * "
        f"KL ({kl:.2f}) with both trackers (each batch weighed by its images); "
        f"gradients reach encoder and decoder; the .keras file reloads"
    )


def _check_call_samples(vae, name: str, images) -> None:
    """call() returns the dict of 03, and samples z (sigma is 1 here)."""
    out = _call(vae, images, what=f"{name}.call")
    keys = ("reconstruction", "z_mean", "z_log_var")
    if not isinstance(out, dict) or any(k not in out for k in keys):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise CheckFailed(
            f"call() returned {got}: return a dict with the keys "
            f"{', '.join(repr(k) for k in keys)}, which compute_loss reads"
        )
    if tuple(out["reconstruction"].shape) != images.shape:
        raise CheckFailed(
            f"call()['reconstruction'] has shape {tuple(out['reconstruction'].shape)}"
            f", expected the images' {images.shape}: decode z"
        )
    again = _numpy(_call(vae, images, what=f"{name}.call")["reconstruction"])
    if np.allclose(_numpy(out["reconstruction"]), again, atol=1e-6):
        raise CheckFailed(
            "two calls gave the same reconstruction although sigma = 1: call() "
            "decodes z_mean, not a sample. Draw z with the Sampling layer, "
            "z = self.sampling([z_mean, z_log_var]), then decode z"
        )


def _check_trackers(logs, rec, kl, z_mean, z_log_var, pixels: int) -> None:
    """fit() reports both trackers, and each reads its term of the loss."""
    missing = [k for k in ("loss", "reconstruction_loss", "kl_loss") if k not in logs]
    if missing:
        raise CheckFailed(
            f"fit() reported {sorted(logs)} but not {missing}: keep two "
            f"keras.metrics.Mean trackers, named 'reconstruction_loss' and "
            f"'kl_loss', update them in the loss computation, and (with your own "
            f"train_step) return the loss and both trackers' results"
        )
    got_kl = logs["kl_loss"]
    if not np.isclose(got_kl, kl, rtol=1e-3, atol=1e-4):
        raise CheckFailed(
            _upstream_kl_hint(got_kl, z_mean, z_log_var)
            or f"the kl_loss tracker reads {got_kl:.4g}, expected the batch mean "
            f"of the KL, {kl:.4g}: update it with vae_loss's 'kl'"
        )
    got_rec = logs["reconstruction_loss"]
    if not np.isclose(got_rec, rec, rtol=1e-2):
        raise CheckFailed(
            f"the reconstruction_loss tracker reads {got_rec:.4g}, expected "
            f"{rec:.4g} (the squared error summed per image, averaged over the "
            f"batch): "
            + (
                "it is averaged over the pixels (an effective beta of the pixel "
                "count)"
                if np.isclose(got_rec, rec / pixels, rtol=1e-2)
                else "compare the images with call()'s reconstruction, using the "
                "model's reconstruction kind and value_range"
            )
        )


def _check_total(loss, rec, kl, weight, beta, pixels: int) -> None:
    """fit()'s loss is reconstruction + kl_weight * KL; a known mistake is named."""
    variants = {
        None: rec + weight * kl,
        "the loss forgets the KL: training then only reconstructs, and the codes "
        "drift away from N(0, I) (samples from the prior become noise). Return "
        "reconstruction + kl_weight * kl (vae_loss's 'total')": rec,
        "the KL enters the loss with the wrong sign: the optimiser then pushes the "
        "codes AWAY from the prior. total = reconstruction + kl_weight * kl": rec
        - weight * kl,
        "the loss ignores beta: weight the KL by self.kl_weight": rec + kl,
        "the loss is averaged over the pixels: the reconstruction shrinks by the "
        "pixel count and the KL wins": rec / pixels + weight * kl,
    }
    if weight != beta:
        variants[
            "the loss weights the KL by the fixed self.beta: use the variable "
            "self.kl_weight, which a KL warm-up callback ramps from 0 to beta"
        ] = (rec + beta * kl)
    for hint, value in variants.items():
        if np.isclose(loss, value, rtol=1e-2):
            if hint is None:
                return
            raise CheckFailed(f"{hint} (fit() reported loss {loss:.4g})")
    raise CheckFailed(
        f"fit() reported loss {loss:.4g}, expected reconstruction {rec:.4g} + "
        f"kl_weight {weight:g} * KL {kl:.4g} = {rec + weight * kl:.4g}"
    )


def _check_reloads(vae, encoder, images) -> None:
    """The class is registered, and a saved .keras file reloads the same encoder."""
    import os
    import tempfile

    import keras

    # A class Keras cannot find by name reloads in some versions and contexts (an
    # importable module, Keras 3.8) but not from a notebook's __main__: ask directly.
    if keras.saving.get_registered_name(type(vae)) == type(vae).__name__:
        raise CheckFailed(
            f"{type(vae).__name__} is not registered, so a saved .keras file cannot "
            f"be reloaded in 05 and 06: keep the "
            f"@keras.saving.register_keras_serializable decorator on the class"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "vae.keras")
        try:
            vae.save(path)
            loaded = keras.saving.load_model(path)
            same = np.allclose(
                _numpy(loaded.encoder(images)[0]), _numpy(encoder(images)[0])
            )
        except Exception as error:
            first = (str(error).strip().splitlines() or [""])[0][:200]
            raise CheckFailed(
                f"saving and reloading the model failed ({type(error).__name__}: "
                f"{first}): keep the @keras.saving.register_keras_serializable "
                f"decorator and the get_config / from_config methods",
                student_error=error,
            ) from None
        if not same:
            raise CheckFailed(
                "the reloaded model's encoder gives different codes: get_config "
                "must save the encoder and decoder, from_config rebuild them"
            )
