"""Tests for helpers.losses against hand computations in NumPy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from keras import ops

from helpers.losses import (
    kl_divergence,
    kl_per_dimension,
    reconstruction_loss,
    vae_loss,
)


def _np(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def test_kl_matches_hand_computation():
    # Per dimension: 0.5 * (mean**2 + var - 1 - log var).
    # dim 1: mean 1, var 1 -> 0.5 * (1 + 1 - 1 - 0) = 0.5
    # dim 2: mean 0, var 4 -> 0.5 * (0 + 4 - 1 - ln 4) = 1.5 - ln 2
    z_mean = np.array([[1.0, 0.0]], dtype="float32")
    z_log_var = np.array([[0.0, math.log(4.0)]], dtype="float32")
    per_dim = _np(kl_per_dimension(z_mean, z_log_var))
    np.testing.assert_allclose(per_dim, [[0.5, 1.5 - math.log(2.0)]], rtol=1e-6)
    kl = _np(kl_divergence(z_mean, z_log_var))
    assert kl.shape == (1,)
    np.testing.assert_allclose(kl, [2.0 - math.log(2.0)], rtol=1e-6)  # 1.3068528


def test_kl_is_per_example_and_sums_over_dimensions():
    z_mean = np.array([[0.0, 0.0, 0.0], [2.0, -2.0, 0.0]], dtype="float32")
    z_log_var = np.zeros((2, 3), dtype="float32")
    np.testing.assert_allclose(_np(kl_divergence(z_mean, z_log_var)), [0.0, 4.0])


def test_kl_is_exactly_zero_at_the_prior():
    zeros = np.zeros((4, 16), dtype="float32")
    assert np.array_equal(_np(kl_divergence(zeros, zeros)), np.zeros(4))
    assert np.array_equal(_np(kl_per_dimension(zeros, zeros)), np.zeros((4, 16)))


def test_kl_is_non_negative_and_per_dimension_sums_to_total():
    rng = np.random.default_rng(0)
    z_mean = rng.normal(0, 2, (64, 8)).astype("float32")
    z_log_var = rng.normal(0, 2, (64, 8)).astype("float32")
    per_dim = _np(kl_per_dimension(z_mean, z_log_var))
    kl = _np(kl_divergence(z_mean, z_log_var))
    assert per_dim.shape == (64, 8) and kl.shape == (64,)
    assert (per_dim >= 0).all() and (kl > 0).all()
    np.testing.assert_allclose(per_dim.sum(axis=1), kl, rtol=1e-5)
    m, lv = z_mean.astype(np.float64), z_log_var.astype(np.float64)
    expected = 0.5 * (m**2 + np.exp(lv) - 1 - lv)
    np.testing.assert_allclose(per_dim, expected, rtol=1e-4, atol=1e-5)


def test_mse_is_summed_over_pixels_per_example():
    images = np.zeros((2, 2, 2, 3), dtype="float32")
    recon = np.zeros((2, 2, 2, 3), dtype="float32")
    recon[0] = np.arange(12, dtype="float32").reshape(2, 2, 3) / 12.0
    recon[1, 1, 1, 2] = 0.5
    loss = _np(reconstruction_loss(images, recon, "mse"))
    # sum(k**2 for k in 0..11) / 144 = 506 / 144; example 2: one pixel off by 0.5.
    assert loss.shape == (2,)
    np.testing.assert_allclose(loss, [506.0 / 144.0, 0.25], rtol=1e-6)


def test_mse_scale_for_a_64x64_image_is_in_the_thousands():
    # A mean over pixels would give 0.25 here; the ELBO needs the sum.
    images = np.zeros((3, 64, 64, 3), dtype="float32")
    recon = np.full((3, 64, 64, 3), 0.5, dtype="float32")
    np.testing.assert_allclose(_np(reconstruction_loss(images, recon)), [3072.0] * 3)


def _bce_numpy(t, p):
    t, p = t.astype(np.float64), p.astype(np.float64)
    per_pixel = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return per_pixel.reshape(len(t), -1).sum(axis=1)


def test_bce_matches_hand_computation():
    images = np.array([[[[1.0, 0.0, 0.5]]], [[[0.25, 0.75, 1.0]]]], dtype="float32")
    recon = np.array([[[[0.9, 0.2, 0.5]]], [[[0.5, 0.5, 0.99]]]], dtype="float32")
    loss = _np(reconstruction_loss(images, recon, "bce"))
    # Example 1: -ln 0.9 - ln 0.8 + ln 2 (the 0.5/0.5 pixel costs ln 2).
    first = -math.log(0.9) - math.log(0.8) + math.log(2.0)
    np.testing.assert_allclose(loss[0], first, rtol=1e-5)
    np.testing.assert_allclose(loss, _bce_numpy(images, recon), rtol=1e-5)


def test_bce_rescales_minus_one_to_one_data():
    rng = np.random.default_rng(1)
    images01 = rng.uniform(0, 1, (4, 3, 3, 3)).astype("float32")
    recon01 = rng.uniform(0.05, 0.95, (4, 3, 3, 3)).astype("float32")
    expected = _bce_numpy(images01, recon01)
    loss = _np(
        reconstruction_loss(
            images01 * 2 - 1, recon01 * 2 - 1, "bce", value_range=(-1.0, 1.0)
        )
    )
    np.testing.assert_allclose(loss, expected, rtol=1e-4)
    assert np.isfinite(loss).all()
    # And the [0, 1] path gives the same numbers on the unscaled data.
    np.testing.assert_allclose(
        _np(reconstruction_loss(images01, recon01, "bce")), expected, rtol=1e-4
    )


def test_bce_from_probabilities_stays_finite_at_saturated_outputs():
    images = np.array([[[[1.0, 0.0]]]], dtype="float32")
    recon = np.array([[[[0.0, 1.0]]]], dtype="float32")
    loss = _np(reconstruction_loss(images, recon, "bce"))
    assert np.isfinite(loss).all() and loss[0] > 20  # clipped at about -2 ln(1e-7)


def test_unknown_reconstruction_loss_is_rejected():
    x = np.zeros((1, 2, 2, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"reconstruction loss 'l1': choose one of"):
        reconstruction_loss(x, x, "l1")


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_vae_loss_total_is_recon_plus_beta_kl(beta):
    rng = np.random.default_rng(2)
    images = rng.uniform(0, 1, (5, 4, 4, 3)).astype("float32")
    recon = rng.uniform(0, 1, (5, 4, 4, 3)).astype("float32")
    z_mean = rng.normal(0, 1, (5, 6)).astype("float32")
    z_log_var = rng.normal(0, 0.5, (5, 6)).astype("float32")
    out = vae_loss(images, recon, z_mean, z_log_var, beta=beta)
    losses = {key: float(_np(value)) for key, value in out.items()}
    assert set(losses) == {"total", "reconstruction", "kl"}
    # Summed per image, averaged over the batch of 5.
    expected_recon = ((images - recon) ** 2).reshape(5, -1).sum(axis=1).mean()
    lv = z_log_var.astype(np.float64)
    expected_kl = (0.5 * (z_mean**2 + np.exp(lv) - 1 - lv)).sum(axis=1).mean()
    assert losses["reconstruction"] == pytest.approx(expected_recon, rel=1e-5)
    assert losses["kl"] == pytest.approx(expected_kl, rel=1e-5)
    assert losses["total"] == pytest.approx(
        losses["reconstruction"] + beta * losses["kl"], rel=1e-6
    )
    if beta == 0.0:
        assert losses["total"] == losses["reconstruction"]


def test_vae_loss_bce_kind_and_range_are_passed_through():
    images = np.full((2, 2, 2, 3), 0.5, dtype="float32")
    recon = np.full((2, 2, 2, 3), 0.5, dtype="float32")
    zeros = np.zeros((2, 3), dtype="float32")
    out = vae_loss(images, recon, zeros, zeros, beta=1.0, kind="bce")
    assert float(_np(out["reconstruction"])) == pytest.approx(12 * math.log(2.0), 1e-5)
    assert float(_np(out["kl"])) == 0.0
    out = vae_loss(
        images * 2 - 1, recon * 2 - 1, zeros, zeros, kind="bce", value_range=(-1, 1)
    )
    assert float(_np(out["total"])) == pytest.approx(12 * math.log(2.0), 1e-5)


# The [0, 1] scale, BCE from logits, float32 ------------------------------------------
def test_mse_is_measured_on_the_unit_scale_whatever_the_value_range():
    # The same faces and errors on [-1, 1] pixels: a plain squared error would be
    # 4 times the [0, 1] one, and beta would mean 4 times less for a tanh decoder.
    rng = np.random.default_rng(3)
    images01 = rng.uniform(0, 1, (3, 4, 4, 3)).astype("float32")
    recon01 = rng.uniform(0, 1, (3, 4, 4, 3)).astype("float32")
    unit = _np(reconstruction_loss(images01, recon01, "mse"))
    wide = _np(
        reconstruction_loss(images01 * 2 - 1, recon01 * 2 - 1, "mse", (-1.0, 1.0))
    )
    np.testing.assert_allclose(wide, unit, rtol=1e-5)
    expected = ((images01 - recon01) ** 2).reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(unit, expected, rtol=1e-5)
    zeros = np.zeros((3, 2), "float32")
    for beta in (1.0, 4.0):  # so the totals agree at every beta
        a = vae_loss(images01, recon01, zeros, zeros + 0.5, beta)
        b = vae_loss(
            images01 * 2 - 1, recon01 * 2 - 1, zeros, zeros + 0.5, beta, "mse", (-1, 1)
        )
        assert float(_np(a["total"])) == pytest.approx(float(_np(b["total"])), 1e-5)


def test_bce_from_logits_gives_a_saturated_wrong_pixel_its_loss_and_a_gradient():
    import tensorflow as tf

    images = np.zeros((1, 1, 1, 2), "float32")  # both pixels are black
    logits = tf.Variable(np.array([[[[30.0, -3.0]]]], "float32"))  # 1st: sure white
    with tf.GradientTape() as tape:
        probabilities = tf.sigmoid(logits)  # saturates to exactly 1.0 in float32
        loss = reconstruction_loss(images, probabilities, "bce", logits=logits)
    gradient = tape.gradient(loss, logits).numpy().ravel()
    # -log(1 - sigmoid(30)) = 30 + log(1 + e^-30); -log(1 - sigmoid(-3)) = log(1 + e^-3)
    expected = 30.0 + math.log1p(math.exp(-30.0)) + math.log1p(math.exp(-3.0))
    assert float(_np(loss)[0]) == pytest.approx(expected, rel=1e-5)
    # d/dlogit = sigmoid(logit) - target: 1 for the wrong pixel, not 0.
    np.testing.assert_allclose(gradient, [1.0, 1 / (1 + math.exp(3.0))], rtol=1e-5)
    # Through the probabilities the wrong pixel is clipped near 16 nats, flat.
    with tf.GradientTape() as tape:
        clipped = reconstruction_loss(images, tf.sigmoid(logits), "bce")
    assert float(_np(clipped)[0]) < 17.0
    assert tape.gradient(clipped, logits).numpy().ravel()[0] == 0.0


def test_bce_from_logits_agrees_with_probabilities_away_from_saturation():
    rng = np.random.default_rng(4)
    images = rng.uniform(0, 1, (3, 4, 4, 3)).astype("float32")
    logits = rng.normal(0, 2, (3, 4, 4, 3)).astype("float32")
    probabilities = 1 / (1 + np.exp(-logits))
    with_logits = _np(reconstruction_loss(images, probabilities, "bce", logits=logits))
    np.testing.assert_allclose(
        with_logits, _bce_numpy(images, probabilities), rtol=1e-4
    )
    # [-1, 1] data: the logits are those of the [0, 1]-scaled image.
    out = vae_loss(
        images * 2 - 1,
        probabilities * 2 - 1,
        np.zeros((3, 2), "float32"),
        np.zeros((3, 2), "float32"),
        kind="bce",
        value_range=(-1.0, 1.0),
        logits=logits,
    )
    expected = _bce_numpy(images, probabilities).mean()
    assert float(_np(out["reconstruction"])) == pytest.approx(expected, rel=1e-4)


def test_losses_are_float32_for_float16_inputs():
    rng = np.random.default_rng(5)
    images = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float16")
    recon = rng.uniform(0, 1, (2, 8, 8, 3)).astype("float16")
    z_mean = rng.normal(0, 1, (2, 4)).astype("float16")
    z_log_var = rng.normal(0, 1, (2, 4)).astype("float16")
    for kind in ("mse", "bce"):
        out = vae_loss(images, recon, z_mean, z_log_var, 2.0, kind, logits=recon)
        for name, value in out.items():
            assert str(ops.convert_to_numpy(value).dtype) == "float32", (kind, name)
    # 8*8*3 pixels of squared error in float16 would lose digits; float32 keeps them.
    expected = ((images.astype(np.float64) - recon) ** 2).reshape(2, -1).sum(1)
    np.testing.assert_allclose(
        _np(reconstruction_loss(images, recon)), expected, rtol=1e-5
    )
