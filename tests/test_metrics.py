"""Tests for helpers.metrics: Fréchet distance, KID, FID caching, blur, latent usage,
and the evaluate command on a briefly trained run."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from helpers import metrics
from helpers.errors import LabError


# Fréchet distance ---------------------------------------------------------------------
def test_frechet_distance_is_zero_for_identical_statistics():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((200, 6))
    mu, sigma = metrics.statistics(a)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(
        0.0, abs=1e-8
    )


def test_frechet_distance_matches_the_diagonal_closed_form():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 3.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    # 1 + 4 + 6.25 + (1 + 9 - 6) + (4 + 1 - 4) + 0 = 16.25
    assert expected == pytest.approx(16.25)
    got = metrics.frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(16.25, rel=1e-9)


def test_frechet_distance_matches_a_full_covariance_closed_form():
    # Commuting covariances (same eigenvectors): sqrt(S1 S2) = R sqrt(D1 D2) R^T.
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    d1, d2 = np.array([4.0, 1.0]), np.array([1.0, 9.0])
    s1, s2 = rot @ np.diag(d1) @ rot.T, rot @ np.diag(d2) @ rot.T
    expected = 2.0 + np.sum(d1 + d2 - 2 * np.sqrt(d1 * d2))  # ||(1,1)||^2 = 2
    got = metrics.frechet_distance([0, 0], s1, [1, 1], s2)
    assert got == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(2.0 + 1.0 + 4.0)


def test_frechet_distance_is_finite_and_real_for_rank_deficient_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((5, 20)), rng.standard_normal((5, 20)) + 0.5
    (mu1, s1), (mu2, s2) = metrics.statistics(a), metrics.statistics(b)
    assert np.linalg.matrix_rank(s1) == 4  # 5 samples in 20 dims
    value = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert isinstance(value, float) and np.isfinite(value) and value > 0


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes disagree"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


# KID ----------------------------------------------------------------------------------
def test_kid_is_near_zero_for_one_distribution_and_positive_for_a_shift():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((400, 16)), rng.standard_normal((400, 16))
    mean, std = metrics.kernel_inception_distance(a, b, subsets=20, subset_size=200)
    assert abs(mean) < 3 * std + 1e-3
    shifted, s_std = metrics.kernel_inception_distance(
        a, b + 1.0, subsets=20, subset_size=200
    )
    assert shifted > 10 * max(s_std, abs(mean)) and shifted > 0.1


def test_kid_clips_the_subset_size_to_the_smaller_set():
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((50, 4)) + 0.3
    clipped = metrics.kernel_inception_distance(a, b, subsets=5, subset_size=1000)
    explicit = metrics.kernel_inception_distance(a, b, subsets=5, subset_size=30)
    assert clipped == explicit
    with pytest.raises(ValueError, match="at least 2 rows"):
        metrics.kernel_inception_distance(a[:1], b)


# FID with an injected extractor -------------------------------------------------------
class PixelProjection:
    """A fixed random projection of 8x8-downsampled pixels: a tiny feature space."""

    name = "pixel_projection_8x8"

    def __init__(self, features=16):
        self.matrix = np.random.default_rng(0).standard_normal((8 * 8 * 3, features))
        self.calls = 0

    def __call__(self, images_uint8):
        self.calls += 1
        x = np.asarray(images_uint8, np.float64) / 255.0
        b, h, w, c = x.shape
        x = x.reshape(b, 8, h // 8, 8, w // 8, c).mean(axis=(2, 4))
        return x.reshape(b, -1) @ self.matrix


def test_real_statistics_are_cached_and_reused(tmp_path):
    rng = np.random.default_rng(4)
    real = rng.integers(0, 256, (60, 16, 16, 3), dtype=np.uint8)
    extractor = PixelProjection()
    path = metrics.real_stats_path(tmp_path, "slice 16px", "validation", 60, extractor)
    assert path.name == "slice_16px_validation_n60_pixel_projection_8x8.npz"
    first = metrics.real_statistics(real, extractor, path)
    assert path.exists() and not first["cached"] and first["n"] == 60
    calls = extractor.calls

    def must_not_load():
        raise AssertionError("cached statistics should not reload the images")

    second = metrics.real_statistics(must_not_load, extractor, path, need_features=True)
    assert second["cached"] and extractor.calls == calls and second["n"] == 60
    np.testing.assert_allclose(second["mu"], first["mu"])
    np.testing.assert_allclose(second["sigma"], first["sigma"])
    assert second["features"].shape == (60, 16)
    fake = np.clip(real.astype(int) + 60, 0, 255).astype(np.uint8)
    fid_same = metrics.frechet_distance(
        *metrics.statistics(metrics.compute_features(extractor, real)),
        second["mu"],
        second["sigma"],
    )
    fid_fake = metrics.frechet_distance(
        *metrics.statistics(metrics.compute_features(extractor, fake)),
        second["mu"],
        second["sigma"],
    )
    assert fid_same == pytest.approx(0.0, abs=1e-8) and fid_fake > 0.1


class FirstPixels:
    """Features = the first 8 pixel values: iid uniform for noise images."""

    name = "first_pixels"

    def __call__(self, images_uint8):
        return np.asarray(images_uint8, np.float64).reshape(len(images_uint8), -1)[
            :, :8
        ]


def test_fid_floor_compares_n_with_n_like_the_scores_beside_it():
    """Check the real-vs-real floor is measured at the N of the generated scores."""
    rng = np.random.default_rng(7)
    pool = rng.integers(0, 256, (4 * 300, 4, 4, 3), dtype=np.uint8)
    real, floor = pool[:300], pool[300:600]
    extractor = FirstPixels()
    stats = metrics.real_statistics(real, extractor, floor_images=floor)
    assert stats["floor_n"] == 300
    floor_fid = metrics.frechet_distance(
        stats["mu_a"], stats["sigma_a"], stats["mu_b"], stats["sigma_b"]
    )
    # What a perfect generator scores: N more images of the data against the N.
    perfect = [
        metrics.frechet_distance(
            *metrics.statistics(extractor(pool[600 + i * 300 : 900 + i * 300])),
            stats["mu"],
            stats["sigma"],
        )
        for i in range(2)
    ]
    halves = metrics.real_statistics(real, extractor)
    assert halves["floor_n"] == 150
    half_fid = metrics.frechet_distance(
        halves["mu_a"], halves["sigma_a"], halves["mu_b"], halves["sigma_b"]
    )
    print(f"floor {floor_fid:.1f}, perfect {perfect}, halves {half_fid:.1f}")
    assert 0.6 < floor_fid / np.mean(perfect) < 1.6
    assert half_fid > 1.5 * floor_fid  # the N/2 floor is about twice the N one
    assert "floor at this N" in metrics.floor_note(300, 300)
    assert "floor at N=150, about twice the floor at N=300" in metrics.floor_note(
        300, 150
    )


def test_compute_features_wants_uint8():
    with pytest.raises(ValueError, match="uint8"):
        metrics.compute_features(
            PixelProjection(), np.zeros((2, 16, 16, 3), np.float32)
        )


def test_inception_extractor_failure_is_a_clear_lab_error(monkeypatch):
    import keras

    def offline(**kwargs):
        raise Exception("URL fetch failure: [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.applications, "InceptionV3", offline)
    with pytest.raises(
        LabError,
        match=r"FID needs the InceptionV3 ImageNet weights "
        r"\(~90 MB\), downloaded on first use.*Colab",
    ):
        metrics.inception_extractor()


# Blur and latent usage ----------------------------------------------------------------
def test_sharpness_of_a_blurred_image_is_lower():
    from scipy import ndimage

    rng = np.random.default_rng(5)
    image = rng.random((1, 32, 32, 3)).astype(np.float32)
    blurred = ndimage.gaussian_filter(image, sigma=(0, 1.5, 1.5, 0))
    sharp, soft = metrics.sharpness(image)[0], metrics.sharpness(blurred)[0]
    assert soft < 0.2 * sharp
    flat = np.full((1, 8, 8, 3), 0.5, np.float32)
    assert metrics.sharpness(flat)[0] == 0.0
    # uint8 and [-1, 1] inputs agree with [0, 1] floats.
    u8 = (image * 255).round().astype(np.uint8)
    assert metrics.sharpness(u8)[0] == pytest.approx(
        metrics.sharpness(u8.astype(np.float32) * 2 / 255 - 1, (-1.0, 1.0))[0], rel=1e-5
    )


def test_active_units_follow_burda_the_variance_of_the_posterior_mean():
    # dim 0: the same offset 1.0 for every image: KL 0.5 nats but no information.
    # dim 1: +-0.2 with the image: variance 0.04 > 0.01, active (KL only 0.02).
    # dim 2: +-0.05: variance 0.0025, inactive. dim 3: the prior, inactive.
    z_mean = np.zeros((4, 4), np.float32)
    z_mean[:, 0] = 1.0
    z_mean[:, 1] = [0.2, -0.2, 0.2, -0.2]
    z_mean[:, 2] = [0.05, -0.05, 0.05, -0.05]
    usage = metrics.latent_usage(z_mean, np.zeros((4, 4), np.float32))
    assert usage["active_units"] == 1 and usage["latent_dim"] == 4
    np.testing.assert_allclose(
        usage["z_mean_variance"], [0.0, 0.04, 0.0025, 0.0], atol=1e-7
    )
    # The KL per dimension stays its own figure (it would count dims 0 and 1).
    np.testing.assert_allclose(
        usage["kl_per_dim"], [0.5, 0.02, 0.00125, 0.0], atol=1e-7
    )
    assert usage["kl_total"] == pytest.approx(0.52125, abs=1e-6)
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.latent_usage(z_mean[:1], z_mean[:1])


def test_reconstruction_quality_of_a_perfect_copy_and_a_known_error():
    rng = np.random.default_rng(6)
    x = rng.random((3, 16, 16, 3)).astype(np.float32)
    same = metrics.reconstruction_quality(x, x)
    assert same["mse"] == 0.0 and same["ssim"] == pytest.approx(1.0, abs=1e-6)
    off = np.clip(x, 0.1, 0.9) + 0.1
    scaled = metrics.reconstruction_quality(
        np.clip(x, 0.1, 0.9) * 2 - 1, off * 2 - 1, (-1.0, 1.0)
    )
    assert scaled["mse"] == pytest.approx(0.01, rel=1e-4)
    assert scaled["psnr"] == pytest.approx(20.0, abs=1e-3)  # 10 log10(1 / 0.01)


# Trained models -----------------------------------------------------------------------
def test_active_units_fall_when_beta_rises(trained_lab):  # noqa: F811
    from helpers.generate import encode_means

    usage = {}
    for beta in (0.1, 20.0):
        vae = trained_lab.fit_direct(beta=beta)
        z_mean, z_log_var = encode_means(vae, trained_lab.val, with_log_var=True)
        usage[beta] = metrics.latent_usage(z_mean, z_log_var)
    print({b: (u["active_units"], round(u["kl_total"], 2)) for b, u in usage.items()})
    assert usage[20.0]["active_units"] < usage[0.1]["active_units"]
    assert usage[20.0]["kl_total"] < usage[0.1]["kl_total"]


def test_evaluate_command_writes_json_and_csv(
    trained_lab, capsys, monkeypatch
):  # noqa: F811
    from vaelab.cli import main

    # No weights here: FID/KID rows must say so while the rest is computed.
    monkeypatch.setattr(metrics, "inception_extractor", _offline_extractor)
    code = main(
        [
            "evaluate",
            "--run-dir",
            str(trained_lab.run_dir),
            "--n",
            "40",
            "--fid",
            "--kid",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "unavailable: InceptionV3 weights not downloadable here" in out
    report = json.loads((trained_lab.run_dir / "evaluation.json").read_text())
    # The test split: the validation split chose best.keras.
    assert report["n"] == 40 and report["split"] == "test"
    assert "test split: held out" in out
    assert report["fid"]["available"] is False and "Colab" in report["fid"]["reason"]
    assert 0 < report["reconstruction"]["mse"] < 0.2
    assert len(report["latent"]["kl_per_dim"]) == trained_lab.config.latent_dim
    assert set(report["sharpness"]) == {
        "real",
        "reconstructions",
        "prior_samples",
        "gmm_samples",
    }
    assert report["sharpness"]["reconstructions"] < report["sharpness"]["real"]
    with open(trained_lab.run_dir / "evaluation.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["metric"] for r in rows[:3]] == ["mse", "psnr", "ssim"]
    assert len(rows) == len(report["rows"]) == 3 + 2 + 4 + 4 + 4


def _offline_extractor(batch_size=50):
    raise LabError(
        "FID needs the InceptionV3 ImageNet weights (~90 MB), downloaded on "
        "first use; this machine cannot reach storage.googleapis.com; use "
        "KID/other metrics or run in Colab"
    )


def test_evaluate_with_an_injected_extractor_reports_every_baseline(
    trained_lab, tmp_path
):  # noqa: F811
    extractor = PixelProjection()
    report = metrics.evaluate(
        trained_lab.run_dir,
        n=40,
        fid=True,
        kid=True,
        extractor=extractor,
        stats_dir=tmp_path,
        write=False,
    )
    scores = report["fid"]["scores"]
    assert set(scores) == {
        "real_vs_real",
        "reconstructions",
        "prior_samples",
        "gmm_samples",
    }
    assert all(np.isfinite(v) and v >= -1e-6 for v in scores.values())
    assert report["fid"]["feature_space"] == "pixel_projection_8x8"
    assert report["kid"]["kid_feature_space"] == "pixel_projection_8x8"
    assert report["split"] == "test"  # the split that did not choose best.keras
    assert list(tmp_path.glob("*.npz")) == [
        tmp_path / "32px_test_n40_" "pixel_projection_8x8.npz"
    ]
    # 50 test faces hold no two sets of 40: the floor is two halves, labelled so.
    fid_rows = [r for r in report["rows"] if r["section"] == "fid"]
    assert fid_rows[0]["n"] == 20 and all(r["n"] == 40 for r in fid_rows[1:])
    assert "floor at N=20, about twice the floor at N=40" in fid_rows[0]["note"]
    assert "biased upwards at small N" in fid_rows[1]["note"]
    # 25 faces: the next 25 are the floor's second set, at the scores' N.
    small = metrics.evaluate(
        trained_lab.run_dir,
        split="validation",
        n=25,
        fid=True,
        extractor=extractor,
        stats_dir=tmp_path,
        write=False,
    )
    assert small["split"] == "validation" and "optimistic" in small["split_note"]
    fid_rows = [r for r in small["rows"] if r["section"] == "fid"]
    assert [r["n"] for r in fid_rows] == [25] * 4 and small["fid"]["floor_n"] == 25
    assert "25 real vs 25 other real images" in fid_rows[0]["note"]


def test_inception_extractor_feeds_inception_299px_pixels_in_minus_one_to_one():
    """Check the FID input protocol: uint8 -> bilinear 299x299 -> [-1, 1] floats."""
    seen = []

    def pool_features(x, training):
        assert training is False
        seen.append(np.asarray(x))
        return np.asarray(x).mean(axis=(1, 2))  # stands in for the 2048-d pool

    extractor = metrics.InceptionExtractor(pool_features)
    images = np.zeros((3, 64, 64, 3), np.uint8)
    images[0], images[1, :, 32:] = 255, 255  # white; left half black, right white
    images[2] = np.random.default_rng(0).integers(0, 256, (64, 64, 3))
    features = extractor(images)
    (x,) = seen
    assert x.shape == (3, 299, 299, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0], 1.0, atol=1e-6)  # 255 -> 1 (preprocess_input)
    np.testing.assert_allclose(x[1, :, :140], -1.0, atol=1e-6)  # 0 -> -1
    np.testing.assert_allclose(x[1, :, 160:], 1.0, atol=1e-6)
    edge = x[1, 0, 140:160, 0]  # bilinear: a short ramp where black meets white
    assert (np.diff(edge) >= 0).all() and (np.abs(edge) < 0.999).sum() >= 2
    assert -1.0 <= x[2].min() < x[2].max() <= 1.0
    np.testing.assert_allclose(features, x.mean(axis=(1, 2)), rtol=1e-6)
    assert metrics.extractor_name(extractor) == metrics.INCEPTION_NAME


def test_kid_spread_is_over_subsets_smaller_than_the_set():
    """With N rows and the default size, every subset is a real subset (at most
    N / 2 rows), so the reported spread is not 0 (issue 19: at N = 1000 every
    "subset of 1000" was the whole set)."""
    assert metrics.kid_subset_size(1000, 1000) == 500
    assert metrics.kid_subset_size(50_000, 50_000) == 1000
    assert metrics.kid_subset_size(1000, 1000, subset_size=1000) == 1000
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((200, 8)), rng.standard_normal((200, 8)) + 0.2
    _, std = metrics.kernel_inception_distance(a, b, subsets=10)
    assert std > 0
