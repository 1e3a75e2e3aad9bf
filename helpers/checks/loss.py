"""Self-checks for 03_loss (the losses and the VAE) against values computed by hand."""

from __future__ import annotations

import inspect
import os
import tempfile
from functools import partial
from itertools import product

import numpy as np

from helpers.checks._common import PIXELS_64, CheckFailed, _call, _describe
from helpers.checks._common import _matching, _name, _numpy, _passed, _target_name
from helpers.checks._common import self_check

# Hand-checkable inputs: row 0 is N(0, I) (KL 0), row 1 only moves the mean
# (KL = 0.5 * (1 + 4) = 2.5), rows 2-3 change the variance too.
KL_Z_MEAN = np.array([[0, 0, 0], [1, 2, 0], [0, 0, 0], [0.5, -1, 1]], np.float32)
KL_Z_LOG_VAR = np.array([[0, 0, 0], [0, 0, 0], [1, -1, 2], [0.5, -0.5, 0]], np.float32)
EPSILON = 1e-7  # Keras' clip for probabilities in binary cross-entropy
SUM_THEN_MEAN = "sum per image, then average over the batch"
RANGES = ((0.0, 1.0), (-1.0, 1.0))
TOTAL_FIX = "total = reconstruction + beta * kl"
VAE_FIX = "loss = reconstruction + self.kl_weight * kl (vae_loss's 'total')"


def _kl_each(mean, log_var, variance=np.exp, power=2) -> np.ndarray:
    """(B,) KL in float64 (``variance`` and ``power`` make wrong variants)."""
    mean, log_var = np.asarray(mean, np.float64), np.asarray(log_var, np.float64)
    return (-0.5 * (1 + log_var - mean**power - variance(log_var))).sum(-1)


def _to_unit(x, value_range) -> np.ndarray:
    low, high = value_range
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


def _per_example(out, expected, shape, noun, reduce, where="") -> None:
    """Raise unless ``out`` is (B,) for inputs of ``shape`` (one number, axes left)."""
    batch = len(expected)
    if out.size == 1:
        value = float(out.reshape(()))
        hint = _matching(
            value,
            {
                "summed over the batch too": expected.sum(),
                "averaged over the batch": expected.mean(),
                "averaged over every value": expected.mean() / np.prod(shape[1:]),
            },
            rtol=1e-3,
        )
        said = f", the {noun} {hint}" if hint else f" ({value:.4g})"
        raise CheckFailed(
            f"{where}you returned one number{said}: return one {noun} per example, "
            f"{reduce}, shape (B,) = ({batch},); vae_loss averages the batch later"
        )
    if out.shape != (batch,):
        keras = ""
        if out.shape == shape[:-1]:
            keras = " (Keras' losses average the last axis only)"
        raise CheckFailed(
            f"{where}shape {out.shape}, expected (B,) = ({batch},): {reduce}{keras}"
        )


def _rec_hint(out, expected, images, recons, kind, value_range) -> str:
    """What a wrong per-image reconstruction ``out`` most likely got wrong."""
    x, p = _to_unit(images, value_range), _to_unit(recons, value_range)
    swapped, wide = _rec_each(recons, images, kind, value_range), 4 * expected
    logits = np.maximum(p, 0) - p * x + np.log1p(np.exp(-np.abs(p)))
    hints = {
        f"you averaged over the pixels instead of summing: that acts like beta = "
        f"{PIXELS_64:,} (posterior collapse: every face the same blur). Sum over "
        f"height, width and channels": expected / PIXELS_64,
        "you averaged over the colour channels: Keras' mean_squared_error and "
        "binary_crossentropy average the LAST axis, a third of the loss. Sum "
        "the per-pixel errors over all three axes yourself": expected / 3,
    }
    if kind == "mse":
        hints |= {
            "you did not square the error: the Gaussian likelihood's term is "
            "(x - x_hat)**2": np.abs(x - p).reshape(len(x), -1).sum(-1),
            "take the square root away: the Gaussian likelihood is a sum of "
            "squared errors": np.sqrt(expected),
            "the error is measured on the [-1, 1] scale (4 times the squares): map "
            "images and reconstructions to [0, 1] first, (x - low) / (high - low), "
            "so beta means the same for a tanh and a sigmoid "
            "decoder": wide if value_range[0] < 0 else None,
        }
    else:
        hints |= {
            "target and prediction are swapped: binary_crossentropy(images, "
            "reconstructions), the images are the targets": swapped,
            "from_logits=True treats the decoder's sigmoid outputs as logits: they "
            "are probabilities already (from_logits="
            "False)": logits.reshape(len(x), -1).sum(-1),
        }
    hint = _matching(out, hints, rtol=1e-3, atol=1e-3)
    if hint is None and value_range[0] < 0:
        return (
            "it is right on [0, 1] data but not here: map images and "
            "reconstructions to [0, 1] first, (x - low) / (high - low)"
        )
    return hint or "sum the error per image"


@self_check("reconstruction_loss")
def check_reconstruction_loss(fn, kinds=("mse", "bce")) -> None:
    """Check ``reconstruction_loss``: (B, H, W, 3) -> (B,), pixel sums on [0, 1]."""
    from keras import ops

    what = _target_name(fn, "reconstruction_loss")
    rng = np.random.default_rng(0)  # two images, noisy copies, pixels of 1 and 0
    unit = rng.uniform(0.05, 0.95, (2, 64, 64, 3))
    noisy = np.clip(unit + rng.normal(0, 0.1, unit.shape), 0.02, 0.98)
    unit[:, 0, :2] = noisy[:, 0, :2] = [[1.0], [0.0]]
    unit, noisy = unit.astype(np.float32), noisy.astype(np.float32)
    for kind, value_range in product(kinds, RANGES):
        low, high = value_range
        images, recons = (low + (high - low) * v for v in (unit, noisy))
        expected = _rec_each(images, recons, kind, value_range)
        tensors = [ops.convert_to_tensor(v) for v in (images, recons)]
        out = _numpy(_call(fn, *tensors, kind, value_range, what=what)).astype(float)
        where = f"(kind={kind!r}, value_range={value_range})"
        if not np.all(np.isfinite(out)):
            hint = "check for divisions or logs"
            if kind == "bce" and low < 0:
                hint = "BCE needs values in [0, 1]: map both to [0, 1] first"
            elif kind == "bce":
                hint = "a pixel that is exactly 0 or 1 gives log(0): clip the "
                hint += "predictions to [eps, 1 - eps] (ops.binary_crossentropy does)"
            raise CheckFailed(f"{where} the loss has NaN or inf: {hint}")
        reduce = "sum the per-pixel error over height, width and channels"
        _per_example(out, expected, images.shape, "loss", reduce, f"{where} ")
        if np.allclose(out, expected, rtol=1e-3, atol=1e-2):
            continue
        hint = _rec_hint(out, expected, images, recons, kind, value_range)
        raise CheckFailed(
            f"{where} expected {np.round(expected, 2).tolist()}, got "
            f"{np.round(out, 2).tolist()}: {hint}"
        )
    _passed(
        f"check_reconstruction_loss passed: {' and '.join(kinds)}, summed over the "
        f"{PIXELS_64:,} values on the [0, 1] scale, finite at pixels of 0 and 1"
    )


def _kl_variants(mean, log_var) -> dict:
    expected = _kl_each(mean, log_var)
    std = _kl_each(mean, log_var, variance=lambda v: np.exp(0.5 * v))
    return {
        "the sign is flipped (a negative KL): the KL is >= 0, "
        "-0.5 * sum(1 + z_log_var - z_mean**2 - exp(z_log_var))": -expected,
        "your KL is twice the right value: you forgot the 0.5": 2 * expected,
        "your KL is half the right value: the factor in front is 0.5, once "
        "(-0.5 * (1 + ...)), not 0.25": 0.5 * expected,
        "you averaged over the latent dimensions: sum them "
        "(axis=-1)": expected / mean.shape[-1],
        "you used exp(0.5 * z_log_var), the standard deviation, where the formula "
        "needs the variance exp(z_log_var)": std,
        "square z_mean: the term is z_mean**2": _kl_each(mean, log_var, power=1),
    }


@self_check("kl_divergence")
def check_kl(fn) -> None:
    """Check ``kl_divergence(z_mean, z_log_var)``: (B, D) -> (B,) KL to N(0, I)."""
    from keras import ops

    expected = _kl_each(KL_Z_MEAN, KL_Z_LOG_VAR)
    tensors = [ops.convert_to_tensor(v) for v in (KL_Z_MEAN, KL_Z_LOG_VAR)]
    out = _numpy(_call(fn, *tensors, what=_target_name(fn, "kl_divergence")))
    out = out.astype(float)
    if not np.all(np.isfinite(out)):
        raise CheckFailed(
            "the KL has NaN or inf: you probably used z_log_var as the variance (the "
            "log of 0 or of a negative number); the variance is exp(z_log_var)"
        )
    if out.shape == KL_Z_MEAN.shape:
        raise CheckFailed(
            f"shape {out.shape} is one KL per latent dimension: sum over them "
            f"(axis=-1) to get one KL per example, shape (B,)"
        )
    _per_example(
        out, expected, KL_Z_MEAN.shape, "KL", "summed over the latent axis only"
    )
    if not np.allclose(out, expected, rtol=1e-4, atol=1e-5):
        variants = _kl_variants(KL_Z_MEAN, KL_Z_LOG_VAR)
        hint = _matching(out, variants, rtol=1e-4, atol=1e-5)
        raise CheckFailed(
            f"{hint or 'sum -0.5 * (1 + log_var - mean**2 - exp(log_var))'} (expected "
            f"{np.round(expected, 4).tolist()}, got {np.round(out, 4).tolist()})"
        )
    _passed(
        f"check_kl passed: KL = {np.round(expected, 4).tolist()} for the hand "
        f"examples, 0 at N(0, I), never negative"
    )


def _scalar(value, what: str) -> float:
    array = _numpy(value).astype(np.float64)
    if array.size != 1:
        raise CheckFailed(f"{what} has shape {array.shape}: return the batch mean")
    return float(array.reshape(()))


def _upstream_kl_hint(mean, log_var, kl_value: float) -> str | None:
    """If a batch-mean KL matches a known kl_divergence mistake, say which."""
    variants = _kl_variants(mean, log_var).items()
    matches = [h for h, v in variants if np.isclose(kl_value, np.mean(v), rtol=1e-3)]
    what = f": {matches[0]}." if matches else None
    if len(matches) > 1:  # two mistakes give the same number here: name neither
        right = float(np.mean(_kl_each(mean, log_var)))
        what = f" (it is {kl_value / right:.3g} times the right value):"
    return what and (
        f"the KL term comes out wrong because of kl_divergence{what} Fix "
        "kl_divergence first (its check_kl fails too), then run this check again"
    )


def _upstream_rec_hint(images, recons, kind, rec_value: float) -> str | None:
    """If a batch-mean reconstruction matches a known mistake, say which."""
    right = _rec_each(images, recons, kind).mean()
    text = _matching(
        rec_value,
        {
            f"it is averaged over the pixels, divided by {PIXELS_64:,} (posterior "
            f"collapse: every sample the same blurry face)": right / PIXELS_64,
            "it is averaged over the colour channels (Keras' mean_squared_error "
            "averages the last axis)": right / 3,
            "it is summed over the batch instead of averaged": right * len(images),
        },
        rtol=1e-3,
    )
    return text and (
        f"the reconstruction term is off: {text}. It comes from reconstruction_loss "
        f"(see check_reconstruction_loss) or from vae_loss: {SUM_THEN_MEAN}"
    )


def _the_total(result) -> float:
    """A number, a tuple's first item, or a dict's "total" (or "loss", ...)."""
    if isinstance(result, (tuple, list)):
        result = result[0]
    if not isinstance(result, dict):
        return _scalar(result, "the total")
    for key in ("total", "loss", "total_loss"):
        if key in result:
            return _scalar(result[key], f"result[{key!r}]")
    raise CheckFailed(
        f"the returned dict has keys {sorted(result)}: put the total under 'total'"
    )


@self_check("vae_loss")
def check_total_loss(fn, kind: str = "mse") -> None:
    """Check ``vae_loss``: batch means of reconstruction + beta * KL per image."""
    from keras import ops

    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 64, 64, 3)).astype(np.float32)
    noisy = np.clip(images + rng.normal(0, 0.1, images.shape), 0.01, 0.99)
    recons = noisy.astype(np.float32)
    z_mean = rng.normal(0, 1, (2, 8)).astype(np.float32)
    z_log_var = rng.normal(0, 0.5, (2, 8)).astype(np.float32)
    rec, kl = _rec_each(images, recons, kind).mean(), _kl_each(z_mean, z_log_var).mean()
    args = [ops.convert_to_tensor(v) for v in (images, recons, z_mean, z_log_var)]
    extra, what = () if kind == "mse" else (kind,), _target_name(fn, "vae_loss")
    for beta in (1.0, 4.0):  # beta = 4 tells where beta went
        result = _call(fn, *args, beta, *extra, what=what)
        parts = result if isinstance(result, dict) else {}
        for key, want, upstream in (
            ("kl", kl, partial(_upstream_kl_hint, z_mean, z_log_var)),
            ("reconstruction", rec, partial(_upstream_rec_hint, images, recons, kind)),
        ):
            got = _scalar(parts[key], f"result[{key!r}]") if key in parts else want
            if not np.isclose(got, want, rtol=1e-3):
                raise CheckFailed(
                    upstream(got)
                    or f"result[{key!r}] is {got:.4g}, expected {want:.4g} (batch mean)"
                )
        total, where = _the_total(result), f"{what} with beta={beta:g}"
        _check_loss(total, rec, kl, beta, beta, images, where, 1e-3, 8, TOTAL_FIX)
    if kind == "mse" and "value_range" in inspect.signature(fn).parameters:
        wide = [ops.convert_to_tensor(2 * v - 1) for v in (images, recons)]
        result = _call(fn, *wide, *args[2:], 1.0, value_range=RANGES[1], what=what)
        if not np.isclose(got := _the_total(result), rec + kl, rtol=1e-3):
            raise CheckFailed(
                f"with [-1, 1] images and value_range=(-1, 1) the total is {got:.4g}, "
                f"expected {rec + kl:.4g} as on [0, 1]: pass value_range on to "
                "reconstruction_loss(images, reconstructions, kind, value_range)"
            )
    _passed(
        f"check_total_loss passed: total = reconstruction ({rec:.1f}, summed over "
        f"{PIXELS_64:,} pixel values) + beta * KL ({kl:.3f}), averaged over the batch"
    )


def _tiny_parts(log_var: float = 0.0):
    """A seeded 8x8 RGB encoder and decoder, latent 2, z_log_var = ``log_var``."""
    import keras
    from keras import layers
    from keras.initializers import Constant, RandomNormal

    images, z = keras.Input((8, 8, 3)), keras.Input((2,))
    x = layers.Flatten()(images)
    init = RandomNormal(stddev=0.3, seed=1)
    z_mean = layers.Dense(2, kernel_initializer=init, name="z_mean")(x)
    head = {"kernel_initializer": "zeros", "bias_initializer": Constant(log_var)}
    z_log_var = layers.Dense(2, name="z_log_var", **head)(x)
    init = RandomNormal(stddev=0.5, seed=2)
    pixels = layers.Dense(192, "sigmoid", kernel_initializer=init, name="pixels")(z)
    encoder = keras.Model(images, [z_mean, z_log_var], name="encoder")
    return encoder, keras.Model(z, layers.Reshape((8, 8, 3))(pixels), name="decoder")


def _tiny_vae(vae_class, encoder, decoder, beta: float, what: str, **settings):
    """The student's VAE around the tiny parts, MSE on [0, 1] unless ``settings``."""
    settings = {"reconstruction": "mse", "value_range": (0.0, 1.0), **settings}
    return _call(vae_class, encoder, decoder, beta=beta, seed=0, what=what, **settings)


def _by_hand(encoder, decoder, images, kind="mse", value_range=(0.0, 1.0)):
    """(reconstruction, KL) batch means with z = z_mean, and (z_mean, z_log_var)."""
    z_mean, z_log_var = (_numpy(v) for v in encoder(images))
    rec = _rec_each(images, _numpy(decoder(z_mean)), kind, value_range).mean()
    return float(rec), float(_kl_each(z_mean, z_log_var).mean()), z_mean, z_log_var


def _evaluate(vae, name: str, images, batch_size: int) -> dict:
    settings = {"batch_size": batch_size, "verbose": 0, "return_dict": True}
    what = f"{name}.compute_loss (or test_step)"
    return _call(vae.evaluate, images, what=what, **settings)


def _weighted_means(vae, name: str, images) -> None:
    """The trackers give the mean over the images when batch sizes differ."""
    reported = float(_evaluate(vae, name, images, 16).get("kl_loss", np.nan))
    per_image = _kl_each(*(_numpy(t) for t in vae.encoder(images)))
    unweighted = np.mean([per_image[:16].mean(), per_image[16:].mean()])
    if not np.isclose(reported, per_image.mean(), rtol=2e-3, atol=2e-3):
        why = ""
        if np.isclose(reported, unweighted, rtol=2e-3, atol=2e-3):
            why = ": it is the mean of the two batch means; weigh each batch by its "
            why += "size (update_state(value, sample_weight=batch_size))"
        raise CheckFailed(
            f"over 20 images in batches of 16 and 4, kl_loss reports {reported:.4g}, "
            f"not the mean KL over the images ({per_image.mean():.4g}){why}"
        )


@self_check("VAE")
def check_vae_model(vae_class, beta: float = 3.0) -> None:
    """Check ``VAE`` on tiny networks: sampling, loss, trackers, settings, reload."""
    import keras

    name = _name(vae_class)
    images = np.random.default_rng(0).uniform(0.05, 0.95, (4, 8, 8, 3))
    images, built = images.astype(np.float32), f"{name}(...)"
    encoder, decoder = _tiny_parts()
    vae = _tiny_vae(vae_class, encoder, decoder, beta, what=built)
    if not isinstance(vae, keras.Model):
        raise CheckFailed(f"{built} is a {type(vae).__name__}, not a keras.Model")
    _check_call_samples(vae, name, images)
    encoder.get_layer("z_log_var").bias.assign([-12.0, -12.0])  # now z = z_mean
    rec, kl, z_mean, z_log_var = _by_hand(encoder, decoder, images)
    weight = beta / 2 if hasattr(getattr(vae, "kl_weight", None), "assign") else beta
    if weight != beta:  # a KL warm-up moves kl_weight, not beta
        vae.kl_weight.assign(weight)
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=1e-3))
    watched = {"encoder": encoder.get_layer("z_mean")}
    watched["decoder"] = decoder.get_layer("pixels")
    before = {k: _numpy(v.kernel).copy() for k, v in watched.items()}
    fit = f"{name}.fit (your compute_loss or train_step)"
    history = _call(vae.fit, images, batch_size=4, verbose=0, shuffle=False, what=fit)
    logs = {k: float(np.ravel(v)[-1]) for k, v in history.history.items()}
    _check_trackers(logs, rec, kl, z_mean, z_log_var, images, "fit()")
    _check_loss(logs["loss"], rec, kl, weight, beta, images, "fit()", rtol=1e-2)
    for part, layer in watched.items():
        if np.allclose(before[part], _numpy(layer.kernel)):
            raise CheckFailed(
                f"one training step left the {part}'s weights unchanged: compute the "
                "loss from call()'s outputs in compute_loss (or your train_step's tape)"
            )
    _check_reloads(vae, encoder, images)
    _weighted_means(vae, name, np.concatenate([images] * 4 + [images * 0.5]))
    # The settings reach the loss: the same [0, 1] pixels as BCE, or as [-1, 1].
    for field, value in (("reconstruction", "bce"), ("value_range", RANGES[1])):
        encoder, decoder = _tiny_parts(-12.0)
        other = _tiny_vae(vae_class, encoder, decoder, beta, built, **{field: value})
        kind, value_range = ("bce", RANGES[0]) if value == "bce" else ("mse", value)
        want, *_ = _by_hand(encoder, decoder, images, kind, value_range)
        other.compile(optimizer=keras.optimizers.SGD(learning_rate=0.0))
        logs = _evaluate(other, name, images, len(images))
        got = float(logs.get("reconstruction_loss", np.nan))
        if not np.isclose(got, want, rtol=1e-2):
            raise CheckFailed(
                f"built with {field}={value!r} the reconstruction_loss tracker reads "
                f"{got:.4g}, expected {want:.4g}: pass the model's self.{field} on "
                "to vae_loss in compute_loss"
            )
    _passed(
        f"check_vae_model passed: call() samples z and returns the dict; fit() "
        f"reports loss = reconstruction ({rec:.2f}) + kl_weight ({weight:g}) * KL "
        f"({kl:.2f}) and both trackers, batches weighed by size; gradients reach "
        "both networks; the .keras file reloads"
    )


def _check_call_samples(vae, name: str, images) -> None:
    """call() returns the dict of 03, and samples z (sigma is 1 here)."""
    out = _call(vae, images, what=f"{name}.call")
    keys = {"reconstruction", "z_mean", "z_log_var"}
    if not isinstance(out, dict) or keys - set(out):
        got = sorted(out) if isinstance(out, dict) else type(out).__name__
        raise CheckFailed(
            f"call() returned {got}: return a dict with the keys 'reconstruction', "
            f"'z_mean' and 'z_log_var', which compute_loss reads"
        )
    if (shape := tuple(out["reconstruction"].shape)) != images.shape:
        raise CheckFailed(
            f"call()['reconstruction'] has shape {shape}, expected the images' "
            f"{images.shape}: decode z"
        )
    again = _numpy(_call(vae, images, what=f"{name}.call")["reconstruction"])
    if np.allclose(_numpy(out["reconstruction"]), again, atol=1e-6):
        raise CheckFailed(
            "two calls gave the same reconstruction although sigma = 1: call() decodes"
            " z_mean, not a sample; decode z = self.sampling([z_mean, z_log_var])"
        )


def _check_trackers(logs, rec, kl, z_mean, z_log_var, images, where: str) -> None:
    """``logs`` hold the loss and both trackers, each reading its term."""
    missing = [k for k in ("loss", "reconstruction_loss", "kl_loss") if k not in logs]
    if missing:
        raise CheckFailed(
            f"{where} reported {sorted(logs)} but not {missing}: keep two "
            "keras.metrics.Mean trackers, 'reconstruction_loss' and 'kl_loss', update "
            "them in compute_loss and list them in metrics (return them from a "
            "train_step of your own)"
        )
    if not np.isclose(got := float(logs["kl_loss"]), kl, rtol=1e-3, atol=1e-4):
        raise CheckFailed(
            _upstream_kl_hint(z_mean, z_log_var, got)
            or f"kl_loss reports {got:.4g}, the batch mean of the KL is {kl:.4g}: "
            f"update its tracker with vae_loss's 'kl' itself (not beta * KL)"
        )
    if not np.isclose(got := float(logs["reconstruction_loss"]), rec, rtol=1e-2):
        fix = "update its tracker with vae_loss's 'reconstruction'"
        if np.isclose(got, rec / images[0].size, rtol=1e-2):
            fix = "it is averaged over the pixels"
        raise CheckFailed(
            f"reconstruction_loss reports {got:.4g}, expected {rec:.4g} (the error "
            f"summed per image, batch mean): {fix}"
        )


def _check_loss(
    loss, rec, kl, weight, beta, images, where: str, rtol, latent=2, fix=VAE_FIX
) -> None:
    """``loss`` is rec + weight * KL (``latent``: the KL's size); a mistake is named."""
    if not np.isfinite(loss):
        raise CheckFailed(f"{where} reported the loss {loss}: make it finite")
    pixels = images[0].size
    collapse = f"it shrinks {pixels:,}-fold, the KL wins and the posterior collapses "
    collapse += f"(every sample the same blurry face). {SUM_THEN_MEAN.capitalize()}"
    variants = {
        "right": rec + weight * kl,
        f"the loss ignores beta: {fix}": rec + kl,
        "you averaged the reconstruction over the pixels: "
        f"{collapse}": rec / pixels + weight * kl,
        "you averaged the reconstruction over the pixels and the KL over the latent "
        f"dimensions: {collapse}": rec / pixels + weight * kl / latent,
        "the reconstruction is averaged over the colour channels (Keras' "
        "mean_squared_error averages the last axis): sum the squared error over "
        "every pixel value": rec / 3 + weight * kl,
        "the KL enters the loss with the wrong sign (kl_divergence returns -KL, "
        "check_kl fails too, or the loss subtracts it): the optimiser then pushes "
        f"the codes AWAY from the prior; {fix}": rec - weight * kl,
        f"beta multiplies the KL, not the reconstruction: {fix}": weight * rec + kl,
        "the loss is summed over the batch: average it over the images, so it does "
        "not depend on the batch size": len(images) * (rec + weight * kl),
        "the loss forgets the KL: training then only reconstructs and the codes "
        f"drift away from N(0, I); {fix}": rec,
        f"the loss forgets the reconstruction; {fix}": weight * kl,
        "the loss weights the KL by the fixed self.beta: use the variable "
        "self.kl_weight, which a KL warm-up callback ramps from 0 to "
        "beta": None if weight == beta else rec + beta * kl,
    }
    hint = _matching(loss, variants, rtol=rtol)
    if hint != "right":
        raise CheckFailed(
            f"{hint} ({where} reported loss {loss:.4g})"
            if hint
            else f"{where} reported loss {loss:.4g}, expected reconstruction {rec:.4g} "
            f"+ {weight:g} * KL {kl:.4g} = {rec + weight * kl:.4g}: {fix}"
        )


def _check_reloads(vae, encoder, images) -> None:
    """The class is registered, and a saved .keras file reloads the same encoder."""
    import keras

    # Unregistered classes reload from a module (Keras 3.8), not from __main__: ask.
    if keras.saving.get_registered_name(type(vae)) == type(vae).__name__:
        raise CheckFailed(
            f"{type(vae).__name__} is not registered, so a saved .keras file cannot be "
            "reloaded: keep @keras.saving.register_keras_serializable on the class"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "vae.keras")
        try:
            vae.save(path)
            codes = keras.saving.load_model(path).encoder(images)[0]
        except Exception as error:
            raise CheckFailed(
                f"saving and reloading the model failed ({_describe(error)}): keep "
                "the class registered and its get_config / from_config methods",
                student_error=error,
            ) from None
    if not np.allclose(_numpy(codes), _numpy(encoder(images)[0])):
        raise CheckFailed(
            "the reloaded model's encoder gives different codes: get_config must "
            "save the encoder and decoder, from_config rebuild them"
        )
