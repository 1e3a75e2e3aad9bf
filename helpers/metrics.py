"""Measure a trained VAE: reconstructions, latent usage, blur, FID and KID.

Typical use::

    from helpers.metrics import evaluate
    report = evaluate("runs/cpu", split="validation", n=1000, fid=True)

or ``python -m helpers evaluate --run-dir runs/cpu --fid --kid``, which prints a
table and writes ``evaluation.json`` and ``evaluation.csv`` into the run directory.

FID protocol (scores are comparable only under the same one): InceptionV3 with
Keras' ImageNet weights, 2048-d average-pool features; images resized to 299x299
with bilinear interpolation (``keras.ops.image.resize``, no antialiasing) from uint8
pixels and scaled by ``keras.applications.inception_v3.preprocess_input``; reference
statistics from the first N images of the split. FID is biased upwards at small N
(papers use 10,000 or 50,000 images), so every score carries its N, beside the
real-vs-real floor at that size: the FID between those N real images and N other
real images of the split (images N+1 to 2N), the score of a generator as good as
the data itself, compared like the generated sets are (N against the same N
reference images). When the split has fewer than 2N images the floor is measured
between the two halves of the N (N/2 against N/2) and labelled as the floor at N/2:
FID's small-sample bias makes that about twice the floor at N. The feature
extractor is any callable ``uint8 (B, H, W, 3) -> (B, F)``, so tests and offline
machines can inject one.

Which split: ``best.keras`` is chosen on the validation split, so its validation
scores are optimistic; ``evaluate`` uses the test split when the cache has one and
says which split it used.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np

from helpers import generate
from helpers.errors import LabError
from helpers.files import atomic_write_bytes, write_text_or_fallback
from helpers.preprocess import denormalize
from helpers.runs import Run, load_run

# A latent dimension is "active" when Var_x(E[z|x]) exceeds this (Burda et al. 2016).
ACTIVE_UNIT_VARIANCE = 0.01
INCEPTION_SIZE = 299
INCEPTION_NAME = "inception_v3_imagenet_avgpool_bilinear299"
INCEPTION_URL_HOST = "storage.googleapis.com"
SMALL_N_NOTE = (
    "FID is biased upwards at small N: compare scores only at the same N "
    "and protocol (papers use 10k-50k images)"
)
FULL_KERNEL_ROWS = 4096  # KID: precompute n x n kernels up to this n
UNAVAILABLE = "unavailable: InceptionV3 weights not downloadable here"
LAPLACIAN_3X3 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)


# Fréchet and kernel distances ---------------------------------------------------------
def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Return the Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2))``, computed as
    in the TTUR / pytorch-fid reference: if ``sqrtm`` of the product is not finite
    (singular covariances, e.g. fewer images than features), ``eps * I`` is added to
    both covariances; a tiny imaginary part from round-off is discarded.

    Args:
        mu1, mu2: (F,) means.
        sigma1, sigma2: (F, F) covariances.
        eps: diagonal offset used only when the plain square root is not finite.

    Returns:
        The distance, a float >= 0 (up to round-off).

    Raises:
        ValueError: shapes disagree, or the square root has a large imaginary part.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(
        np.asarray(mu2, np.float64)
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    if (
        mu1.shape != mu2.shape
        or sigma1.shape != sigma2.shape
        or sigma1.shape != (mu1.size, mu1.size)
    ):
        raise ValueError(
            f"shapes disagree: mu {mu1.shape} vs {mu2.shape}, sigma "
            f"{sigma1.shape} vs {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            largest = np.max(np.abs(covmean.imag))
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has imaginary part {largest:.3g}: "
                "the covariances are not valid (symmetric PSD) estimates"
            )
        covmean = covmean.real
    return float(
        diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    )


def statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean (F,) and covariance (F, F) of (N, F) features (N >= 2)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N >= 2, F) features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1.0) ** 3


KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al. 2018's protocol


def kid_subset_size(n: int, m: int, subset_size: int | None = None) -> int:
    """Rows per KID subset for sets of n and m rows.

    ``None`` (the default) takes 1,000 rows, but never more than half the smaller
    set, so the subsets differ from each other and their spread means something
    (with subsets as large as the set, every subset is the whole set and the
    spread is 0). An explicit ``subset_size`` is only clipped to min(n, m).
    """
    if subset_size is None:
        return min(KID_SUBSET_SIZE, max(2, min(n, m) // 2), n, m)
    return min(int(subset_size), n, m)


def kernel_inception_distance(
    features_a,
    features_b,
    subsets: int = KID_SUBSETS,
    subset_size: int | None = None,
    seed: int = 0,
):
    """Return KID: the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, over subsets.

    Unlike FID, KID has an unbiased estimator, so small N does not shift it up
    (Binkowski et al. 2018). Each subset draws ``subset_size`` rows of each set
    without replacement.

    Args:
        features_a: (N, F) features.
        features_b: (M, F) features.
        subsets: number of random subsets.
        subset_size: rows per subset (see ``kid_subset_size``: by default 1,000,
            at most half the smaller set).
        seed: seeds the subset draws.

    Returns:
        (mean, std) of the per-subset MMD^2 estimates.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"need (N, F) and (M, F) features, got {a.shape} and {b.shape}"
        )
    m = kid_subset_size(len(a), len(b), subset_size)
    if m < 2:
        raise ValueError(
            f"KID needs at least 2 rows in each set, got {len(a)} and {len(b)}"
        )
    rng = np.random.default_rng(seed)
    # Up to a few thousand rows, the full kernel matrices fit in memory: compute
    # them once and index the subsets out of them (same numbers, far fewer matmuls).
    full = max(len(a), len(b)) <= FULL_KERNEL_ROWS
    if full:
        kaa, kbb, kab = (
            _polynomial_kernel(a, a),
            _polynomial_kernel(b, b),
            _polynomial_kernel(a, b),
        )
    scores = np.empty(subsets)
    for i in range(subsets):
        ia = rng.choice(len(a), m, replace=False)
        ib = rng.choice(len(b), m, replace=False)
        if full:
            kxx, kyy, kxy = (
                kaa[np.ix_(ia, ia)],
                kbb[np.ix_(ib, ib)],
                kab[np.ix_(ia, ib)],
            )
        else:
            x, y = a[ia], b[ib]
            kxx, kyy, kxy = (
                _polynomial_kernel(x, x),
                _polynomial_kernel(y, y),
                _polynomial_kernel(x, y),
            )
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        scores[i] = within - 2 * kxy.mean()
    return float(scores.mean()), float(scores.std())


# Feature extractors -------------------------------------------------------------------
def extractor_name(extractor) -> str:
    """Return a file-name-safe name of an extractor (its ``name`` or ``__name__``)."""
    name = (
        getattr(extractor, "name", None)
        or getattr(extractor, "__name__", None)
        or type(extractor).__name__
    )
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_") or "extractor"


class InceptionExtractor:
    """InceptionV3 pool features of uint8 images (the FID/KID feature space)."""

    name = INCEPTION_NAME

    def __init__(self, model, batch_size: int = 50):
        self.model = model
        self.batch_size = batch_size

    def __call__(self, images_uint8):
        """Return (B, 2048) float32 features of (B, H, W, 3) uint8 images."""
        import keras

        x = keras.ops.cast(keras.ops.convert_to_tensor(images_uint8), "float32")
        x = keras.ops.image.resize(
            x,
            (INCEPTION_SIZE, INCEPTION_SIZE),
            interpolation="bilinear",
            antialias=False,
        )
        x = keras.applications.inception_v3.preprocess_input(x)
        return np.asarray(self.model(x, training=False))


def inception_extractor(batch_size: int = 50) -> InceptionExtractor:
    """Build the InceptionV3 feature extractor, downloading its weights on first use.

    Raises:
        LabError: the ImageNet weights are not cached and cannot be downloaded.
    """
    import keras

    from helpers.config import grading_mode

    if grading_mode():  # seconds of building a 24 M-parameter model, for nothing
        raise LabError("FID/KID are not computed under nbgrader autograde")
    try:
        model = keras.applications.InceptionV3(
            include_top=False,
            pooling="avg",
            weights="imagenet",
            input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
        )
    except Exception as error:  # Keras raises a bare Exception on a failed fetch
        raise LabError(
            "FID needs the InceptionV3 ImageNet weights (~90 MB), downloaded on first "
            f"use into ~/.keras/models; this machine cannot reach {INCEPTION_URL_HOST} "
            f"({str(error)[:160]}). KID needs the same weights, so both are "
            "skipped; the other metrics (reconstruction, KL, active units, "
            "sharpness) still come out. Run in Colab (or copy "
            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 into "
            "~/.keras/models)"
        ) from None
    return InceptionExtractor(model, batch_size)


def compute_features(extractor, images_uint8, batch_size: int = 50) -> np.ndarray:
    """Run ``extractor`` over (N, H, W, 3) uint8 images in batches; (N, F) float64."""
    images_uint8 = np.asarray(images_uint8)
    if images_uint8.dtype != np.uint8:
        raise ValueError(
            f"feature extractors take uint8 pixels, got {images_uint8.dtype}"
        )
    out = [
        np.asarray(extractor(images_uint8[i : i + batch_size]), dtype=np.float64)
        for i in range(0, len(images_uint8), batch_size)
    ]
    return np.concatenate(out).reshape(len(images_uint8), -1)


def real_stats_path(stats_dir, dataset: str, split: str, n: int, extractor) -> Path:
    """Return the .npz file caching real statistics of one dataset/split/N/extractor."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", dataset).strip("_")
    return Path(stats_dir) / f"{safe}_{split}_n{n}_{extractor_name(extractor)}.npz"


def real_statistics(
    images_uint8, extractor, path=None, need_features: bool = False, floor_images=None
):
    """Return real-image statistics, read from or written to a .npz cache.

    Besides the statistics of the N reference images (what generated images are
    compared with), it holds a real-vs-real pair for the floor: the N images
    (``mu_a``, ``sigma_a``) against ``floor_images``, N other real images
    (``mu_b``, ``sigma_b``), so the floor is measured at the same N as the scores
    beside it; without ``floor_images``, the two halves of the N images, which
    gives the floor at N/2 (about twice the floor at N). ``floor_n`` says which.

    Args:
        images_uint8: (N, H, W, 3) uint8 real images, or a zero-argument callable
            returning them (called only on a cache miss).
        extractor: the feature extractor.
        path: the .npz file (None: no cache).
        need_features: also return the (N, F) features and the floor set's
            features (KID needs them); they are stored in the cache when
            N <= 10,000.
        floor_images: (N, H, W, 3) uint8 real images disjoint from
            ``images_uint8``, or None.

    Returns:
        dict with mu, sigma, mu_a, sigma_a, mu_b, sigma_b, n, floor_n (the size of
        each set of the floor pair), cached (bool) and, when needed, features and
        floor_features.
    """
    path = None if path is None else Path(path)
    if path is not None and path.exists():
        with np.load(path) as data:
            stats = {key: data[key] for key in data.files}
        has_features = "features" in stats and "floor_features" in stats
        if "floor_n" in stats and (not need_features or has_features):
            stats["n"], stats["floor_n"] = int(stats["n"]), int(stats["floor_n"])
            stats["cached"] = True
            return stats
    images = images_uint8() if callable(images_uint8) else images_uint8
    features = compute_features(extractor, images)
    if floor_images is not None and len(floor_images) == len(features):
        first, second = features, compute_features(extractor, floor_images)
    else:
        half = len(features) // 2
        first, second = features[:half], features[half : 2 * half]
    stats = {"n": len(features), "floor_n": len(first)}
    stats["mu"], stats["sigma"] = statistics(features)
    stats["mu_a"], stats["sigma_a"] = statistics(first)
    stats["mu_b"], stats["sigma_b"] = statistics(second)
    if len(features) <= 10_000:
        stats["features"] = features.astype(np.float32)
        stats["floor_features"] = second.astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **stats)
        atomic_write_bytes(path, buffer.getvalue())
    stats["cached"] = False
    if need_features:
        stats["features"], stats["floor_features"] = features, second
    return stats


def floor_note(n: int, floor_n: int) -> str:
    """Say what the real-vs-real floor of a report is, for its table row."""
    if floor_n == n:
        return (
            f"{n} real vs {n} other real images: the floor at this N, what a "
            "generator as good as the data would score"
        )
    return (
        f"two halves of the {n} real images ({floor_n} vs {floor_n}): the floor "
        f"at N={floor_n}, about twice the floor at N={n} (FID grows as N shrinks); "
        f"the split has fewer than {2 * n} images for two sets of {n}"
    )


# Image quality ------------------------------------------------------------------------
def _to_unit(images, value_range) -> np.ndarray:
    low, high = value_range
    return np.clip((np.asarray(images, np.float32) - low) / (high - low), 0.0, 1.0)


def reconstruction_quality(images, reconstructions, value_range=(0.0, 1.0)) -> dict:
    """Return mean MSE, PSNR (dB) and SSIM of reconstructions against originals.

    Both are mapped to [0, 1] first, so ``max_val=1`` (the same PSNR as
    ``max_val = high - low`` in the model's range) and MSE is in [0, 1] units.

    Args:
        images, reconstructions: (N, H, W, 3) floats in ``value_range``.

    Returns:
        {"mse": float, "psnr": float, "ssim": float}, each averaged over images.
    """
    import tensorflow as tf

    x, y = _to_unit(images, value_range), _to_unit(reconstructions, value_range)
    return {
        "mse": float(np.mean((x - y) ** 2)),
        "psnr": float(np.mean(tf.image.psnr(x, y, max_val=1.0))),
        "ssim": float(np.mean(tf.image.ssim(x, y, max_val=1.0))),
    }


def sharpness(images, value_range=(0.0, 1.0)) -> np.ndarray:
    """Return the variance of the Laplacian of each image: low means blurry.

    The grey image (ITU-R 601 luma, 0-255 scale) is convolved with the 3x3
    Laplacian [[0, 1, 0], [1, -4, 1], [0, 1, 0]]; the variance is taken over the
    interior (the one-pixel border is dropped).

    Args:
        images: (N, H, W, 3) floats in ``value_range`` or uint8.

    Returns:
        (N,) float64.
    """
    from scipy import ndimage

    images = np.asarray(images)
    if images.dtype == np.uint8:
        unit = images.astype(np.float64) / 255.0
    else:
        unit = _to_unit(images, value_range).astype(np.float64)
    grey = 255.0 * unit @ np.array([0.299, 0.587, 0.114])
    return np.array(
        [ndimage.convolve(g, LAPLACIAN_3X3)[1:-1, 1:-1].var() for g in grey]
    )


def latent_usage(z_mean, z_log_var, threshold: float = ACTIVE_UNIT_VARIANCE) -> dict:
    """Return the active units (Burda et al. 2016) and the KL per latent dimension.

    A dimension is active when its posterior mean moves with the input: when
    ``Var_x(E[z|x])``, the variance of ``z_mean`` over the data, exceeds
    ``threshold`` (0.01, as in Burda, Grosse and Salakhutdinov 2016). An inactive
    dimension says the same thing about every image, so the decoder can read
    nothing from it. The mean KL of a dimension is a different figure: a constant
    offset (the same ``z_mean`` for every image) costs KL without carrying any
    information, so KL > 0 does not make a dimension active.

    Args:
        z_mean, z_log_var: (N, D) encoder outputs, N >= 2.
        threshold: variance above which a dimension counts as active.

    Returns:
        {"active_units": int (Burda's count), "latent_dim": int,
         "z_mean_variance": (D,) list of Var_x(E[z|x]),
         "kl_per_dim": (D,) list of the mean KL per dimension (nats),
         "kl_total": float (their sum, nats per image)}.
    """
    z_mean = np.asarray(z_mean, np.float64)
    if z_mean.ndim != 2 or len(z_mean) < 2:
        raise ValueError(f"need (N >= 2, D) posterior means, got {z_mean.shape}")
    variance = z_mean.var(axis=0)
    log_var = np.asarray(z_log_var, np.float64)
    # Each dimension's KL to N(0, 1), averaged over the images (a statistic of
    # the codes; the loss the model trains on is the student's kl_divergence).
    kl = (-0.5 * (1.0 + log_var - z_mean**2 - np.exp(log_var))).mean(axis=0)
    return {
        "active_units": int((variance > threshold).sum()),
        "latent_dim": int(variance.size),
        "z_mean_variance": [float(v) for v in variance],
        "kl_per_dim": [float(v) for v in kl],
        "kl_total": float(kl.sum()),
    }


# The whole evaluation -----------------------------------------------------------------
def _row(section, metric, value, n, note=""):
    return {"section": section, "metric": metric, "value": value, "n": n, "note": note}


def _distance_rows(
    report, real_u8, fakes, extractor, stats_path, fid, kid, seed, floor_u8=None
):
    """Add FID and KID rows for the real-vs-real floor and each set of fakes.

    Each set of fakes (N images) is compared with the N real images; the floor
    compares those N with ``floor_u8`` (N more real images) when given, else
    their two halves (see ``floor_note``).
    """
    n = len(real_u8)
    real = real_statistics(
        real_u8, extractor, stats_path, need_features=kid, floor_images=floor_u8
    )
    floor_n, note = real["floor_n"], floor_note(n, real["floor_n"])
    space = extractor_name(extractor)
    features = {
        name: compute_features(extractor, images) for name, images in fakes.items()
    }
    rows = []
    if fid:
        scores = {
            "real_vs_real": frechet_distance(
                real["mu_a"], real["sigma_a"], real["mu_b"], real["sigma_b"]
            )
        }
        for name, feats in features.items():
            scores[name] = frechet_distance(
                *statistics(feats), real["mu"], real["sigma"]
            )
        report["fid"] = {
            "available": True,
            "feature_space": space,
            "scores": scores,
            "n": n,
            "floor_n": floor_n,
            "floor": note,
            "stats_file": str(stats_path),
            "note": SMALL_N_NOTE,
        }
        rows.append(_row("fid", "real_vs_real", scores["real_vs_real"], floor_n, note))
        for name in features:
            rows.append(
                _row("fid", name, scores[name], n, f"vs {n} real; {SMALL_N_NOTE}")
            )
    if kid:
        real_features = real["features"]
        kid_scores = {
            "real_vs_real": kernel_inception_distance(
                real_features[:floor_n], real["floor_features"], seed=seed
            )
        }
        for name, feats in features.items():
            kid_scores[name] = kernel_inception_distance(
                feats, real_features, seed=seed
            )
        report["kid"] = {
            "available": True,
            "kid_feature_space": space,
            "n": n,
            "floor_n": floor_n,
            "scores": {k: {"mean": m, "std": s} for k, (m, s) in kid_scores.items()},
        }
        for name, (mean, std) in kid_scores.items():
            size = floor_n if name == "real_vs_real" else n
            subset = kid_subset_size(size, size)
            report["kid"]["scores"][name]["subset_size"] = subset
            rows.append(
                _row(
                    "kid",
                    name,
                    mean,
                    size,
                    f"± {std:.3g}: spread over {KID_SUBSETS} random subsets of "
                    f"{subset} of the {size}",
                )
            )
    return rows


def default_split(run) -> str:
    """Return "test" when the run's cache has test images, else "validation".

    ``best.keras`` is the epoch that scored best on the validation split, so
    scores on that split flatter it; the test split played no part in training.
    """
    if run.cache_dir is not None:
        from helpers.cache import cache_info

        try:
            counts = cache_info(run.cache_dir).get("counts", {})
        except (LabError, OSError, ValueError):
            return "validation"
        if counts.get("test"):
            return "test"
    return "validation"


def _quality_rows(report: dict) -> list[dict]:
    """The table's rows for the reconstruction, latent and sharpness sections."""
    n, latent = report["n"], report["latent"]
    where = f"{report['split']} split ({report['split_note']}); pixels scaled to [0, 1]"
    rows = [
        _row("reconstruction", metric, value, n, where)
        for metric, value in report["reconstruction"].items()
    ]
    rows.append(
        _row("latent", "kl_total", latent["kl_total"], n, "nats per image, summed over dims")
    )
    rows.append(
        _row(
            "latent",
            "active_units",
            latent["active_units"],
            n,
            f"of {latent['latent_dim']} dims whose z_mean varies over the "
            f"data: Var(E[z|x]) > {ACTIVE_UNIT_VARIANCE} (Burda et al. 2016)",
        )
    )
    rows += [
        _row("sharpness", name, value, n,
             "variance of the 3x3 Laplacian (grey, 0-255); lower = blurrier")
        for name, value in report["sharpness"].items()
    ]
    return rows


def evaluate(
    run,
    split: str | None = None,
    n: int = 1000,
    fid: bool = False,
    kid: bool = False,
    extractor=None,
    seed: int = 0,
    gmm_fit_n: int = 5000,
    stats_dir=None,
    write: bool = True,
    sample_faces=None,
) -> dict:
    """Evaluate a run on ``n`` images of a split; optionally write the report.

    Args:
        run: a run directory or a ``helpers.runs.Run``.
        split: "test", "validation", or None: the test split when the cache has
            one (it did not choose ``best.keras``; the validation split did), else
            validation. The report's "split" and "split_note" say which was used.
        n: images to evaluate (clipped to the split's size); also the number of prior
            and GMM samples. The next n images of the split, when it has them, are
            the second real set of the FID/KID floor.
        fid, kid: also compute FID / KID against the split's images.
        extractor: feature extractor ``uint8 (B, H, W, 3) -> (B, F)`` for FID/KID
            (default: InceptionV3, which needs its downloadable weights).
        seed: seeds sampling, the GMM and KID's subsets.
        gmm_fit_n: training images the latent GMM is fitted to.
        stats_dir: where real statistics are cached (default: <cache>/fid_stats).
        write: write evaluation.json and evaluation.csv into the run directory.
        sample_faces: ``sample_faces(vae, n, seed)``, yours from 05_generate, draws
            the prior samples (default: the lab's reference, which the student
            release does not include: there pass yours).

    Returns:
        The report: a dict with "rows" (the table) and one entry per section.
    """
    if sample_faces is None:
        from helpers.student import solution_module  # not in the student release

        sample_faces = solution_module("sample_faces").sample_faces
    run = run if isinstance(run, Run) else load_run(run)
    vae, value_range = run.vae, run.config.value_range
    split = split or default_split(run)
    pool_u8, _ = generate._load_split_images(run, split, 2 * n)
    real_u8 = pool_u8[:n]
    n = len(real_u8)
    floor_u8 = pool_u8[n : 2 * n] if len(pool_u8) >= 2 * n else None
    real = generate.as_model_images(vae, real_u8)
    z_mean, z_log_var = generate.encode_means(vae, real, with_log_var=True)
    recon = generate.decode(vae, z_mean)
    train_u8, _ = generate._load_split_images(run, "train", gmm_fit_n)
    gmm = generate.fit_latent_gmm(vae, train_u8, seed=seed)
    samples = {
        "reconstructions": recon,
        "prior_samples": generate.sample_in_batches(sample_faces, vae, n, seed=seed),
        "gmm_samples": generate.sample_gmm(vae, gmm, n, seed=seed),
    }
    report = {
        "run_dir": str(run.paths.root),
        "split": split,
        "split_note": (
            "held out: best.keras was chosen on the validation split"
            if split == "test"
            else "the split that chose best.keras: optimistic for this model"
        ),
        "n": n,
        "value_range": list(value_range),
        "gmm": {"components": int(gmm.n_components), "fit_n": len(train_u8)},
    }
    report["reconstruction"] = reconstruction_quality(real, recon, value_range)
    report["latent"] = latent_usage(z_mean, z_log_var)
    report["sharpness"] = {"real": float(sharpness(real, value_range).mean())}
    for name, images in samples.items():
        report["sharpness"][name] = float(sharpness(images, value_range).mean())
    rows = _quality_rows(report)
    if fid or kid:
        stats_dir = stats_dir or (Path(run.cache_dir) / "fid_stats")
        rows += _feature_distance_rows(
            report, real_u8, floor_u8, samples, value_range, split,
            fid=fid, kid=kid, extractor=extractor, seed=seed, stats_dir=stats_dir,
        )
    report["rows"] = rows
    if write:
        write_report(report, run.paths.root)
    return report


def _feature_distance_rows(
    report, real_u8, floor_u8, samples, value_range, split, *,
    fid, kid, extractor, seed, stats_dir,
) -> list[dict]:
    """FID/KID rows (and report sections); 'unavailable' rows without the weights."""
    wanted = [name for name, on in (("fid", fid), ("kid", kid)) if on]
    n = len(real_u8)
    try:
        extractor = extractor or inception_extractor()
    except LabError as error:
        rows = []
        for name in wanted:
            report[name] = {"available": False, "reason": str(error)}
            for metric in ("real_vs_real", *samples):
                rows.append(_row(name, metric, UNAVAILABLE, n, str(error)))
        return rows
    fakes = {name: denormalize(images, value_range) for name, images in samples.items()}
    path = real_stats_path(stats_dir, f"{real_u8.shape[1]}px", split, n, extractor)
    return _distance_rows(
        report, real_u8, fakes, extractor, path, fid, kid, seed, floor_u8
    )


def write_report(report: dict, out_dir) -> tuple[Path | None, Path | None]:
    """Write ``evaluation.json`` and ``evaluation.csv`` (the rows) into ``out_dir``.

    If the disk refuses (full, read-only), each file goes to the temporary folder
    instead, with a warning naming it (``files.write_text_or_fallback``): computed
    metrics are never lost. Returns where the two files are (None: nowhere).
    """
    out = Path(out_dir)
    json_path, csv_path = out / "evaluation.json", out / "evaluation.csv"
    json_path = write_text_or_fallback(json_path, json.dumps(report, indent=2) + "\n")
    rows = io.StringIO(newline="")
    writer = csv.DictWriter(
        rows, fieldnames=["section", "metric", "value", "n", "note"]
    )
    writer.writeheader()
    writer.writerows(report["rows"])
    csv_path = write_text_or_fallback(csv_path, rows.getvalue())
    return json_path, csv_path


def format_table(rows) -> str:
    """Return the report's rows as an aligned text table."""

    def show(value):
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    cells, last = [], None
    for r in rows:  # a note repeated down a section is shown once
        note = "" if (r["section"], r["note"]) == last else r["note"]
        last = (r["section"], r["note"])
        cells.append((r["section"], r["metric"], show(r["value"]), str(r["n"]), note))
    head = ("section", "metric", "value", "n", "note")
    widths = [max(len(c[i]) for c in [head, *cells]) for i in range(4)]
    lines = []
    for cell in [head, *cells]:
        lines.append(
            "  ".join(c.ljust(w) for c, w in zip(cell[:4], widths)) + "  " + cell[4]
        )
    return "\n".join(line.rstrip() for line in lines)
