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
real-vs-real floor at that size. The feature extractor is any callable
``uint8 (B, H, W, 3) -> (B, F)``, so tests and offline machines can inject one.
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
from helpers.files import atomic_write_bytes, atomic_write_text
from helpers.preprocess import denormalize
from helpers.runs import Run, load_run

ACTIVE_UNIT_NATS = 0.01  # a latent dimension is "active" above this mean KL
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


def kernel_inception_distance(
    features_a, features_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0
):
    """Return KID: the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3, over subsets.

    Unlike FID, KID has an unbiased estimator, so small N does not shift it up
    (Binkowski et al. 2018). Each subset draws ``subset_size`` rows of each set
    without replacement.

    Args:
        features_a: (N, F) features.
        features_b: (M, F) features.
        subsets: number of random subsets.
        subset_size: rows per subset; clipped to min(N, M).
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
    m = min(int(subset_size), len(a), len(b))
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
            f"({str(error)[:160]}); use KID/other metrics or run in Colab (or copy "
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


def real_statistics(images_uint8, extractor, path=None, need_features: bool = False):
    """Return real-image statistics, read from or written to a .npz cache.

    The statistics cover all N images and their two disjoint halves (the
    real-vs-real floor at that size).

    Args:
        images_uint8: (N, H, W, 3) uint8 real images, or a zero-argument callable
            returning them (called only on a cache miss).
        extractor: the feature extractor.
        path: the .npz file (None: no cache).
        need_features: also return the (N, F) features (KID needs them); they are
            stored in the cache when N <= 10,000.

    Returns:
        dict with mu, sigma, mu_a, sigma_a, mu_b, sigma_b, n, cached (bool) and,
        when needed, features.
    """
    path = None if path is None else Path(path)
    if path is not None and path.exists():
        with np.load(path) as data:
            stats = {key: data[key] for key in data.files}
        if not need_features or "features" in stats:
            stats["n"], stats["cached"] = int(stats["n"]), True
            return stats
    images = images_uint8() if callable(images_uint8) else images_uint8
    features = compute_features(extractor, images)
    half = len(features) // 2
    stats = {"n": len(features)}
    stats["mu"], stats["sigma"] = statistics(features)
    stats["mu_a"], stats["sigma_a"] = statistics(features[:half])
    stats["mu_b"], stats["sigma_b"] = statistics(features[half : 2 * half])
    if len(features) <= 10_000:
        stats["features"] = features.astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **stats)
        atomic_write_bytes(path, buffer.getvalue())
    stats["cached"] = False
    if need_features:
        stats["features"] = features
    return stats


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


def latent_usage(z_mean, z_log_var, threshold: float = ACTIVE_UNIT_NATS) -> dict:
    """Return KL per latent dimension averaged over data, and the active units.

    Args:
        z_mean, z_log_var: (N, D) encoder outputs.
        threshold: a dimension is active when its mean KL exceeds this (nats).

    Returns:
        {"kl_per_dim": (D,) list, "kl_total": float, "active_units": int,
         "latent_dim": int}.
    """
    from helpers.losses import kl_per_dimension  # imports Keras (TensorFlow)

    kl = np.asarray(
        kl_per_dimension(
            np.asarray(z_mean, np.float32), np.asarray(z_log_var, np.float32)
        )
    ).mean(axis=0)
    return {
        "kl_per_dim": [float(v) for v in kl],
        "kl_total": float(kl.sum()),
        "active_units": int((kl > threshold).sum()),
        "latent_dim": int(kl.size),
    }


# The whole evaluation -----------------------------------------------------------------
def _row(section, metric, value, n, note=""):
    return {"section": section, "metric": metric, "value": value, "n": n, "note": note}


def _distance_rows(report, real_u8, fakes, extractor, stats_path, fid, kid, seed):
    """Add FID and KID rows for the real-vs-real floor and each set of fakes."""
    n = len(real_u8)
    real = real_statistics(real_u8, extractor, stats_path, need_features=kid)
    space = extractor_name(extractor)
    features = {
        name: compute_features(extractor, images) for name, images in fakes.items()
    }
    half = n // 2
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
            "stats_file": str(stats_path),
            "note": SMALL_N_NOTE,
        }
        rows.append(
            _row(
                "fid",
                "real_vs_real",
                scores["real_vs_real"],
                half,
                f"two disjoint halves ({half} vs {half}): the floor at this N",
            )
        )
        for name in features:
            rows.append(
                _row("fid", name, scores[name], n, f"vs {n} real; {SMALL_N_NOTE}")
            )
    if kid:
        real_features = real["features"]
        kid_scores = {
            "real_vs_real": kernel_inception_distance(
                real_features[:half], real_features[half : 2 * half], seed=seed
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
            "scores": {k: {"mean": m, "std": s} for k, (m, s) in kid_scores.items()},
        }
        for name, (mean, std) in kid_scores.items():
            size = half if name == "real_vs_real" else n
            rows.append(
                _row(
                    "kid",
                    name,
                    mean,
                    size,
                    f"± {std:.3g} over 100 subsets of " f"{min(1000, size)}",
                )
            )
    return rows


def evaluate(
    run,
    split: str = "validation",
    n: int = 1000,
    fid: bool = False,
    kid: bool = False,
    extractor=None,
    seed: int = 0,
    gmm_fit_n: int = 5000,
    stats_dir=None,
    write: bool = True,
) -> dict:
    """Evaluate a run on ``n`` images of a split; optionally write the report.

    Args:
        run: a run directory or a ``helpers.runs.Run``.
        split: "validation" or "test".
        n: images to evaluate (clipped to the split's size); also the number of prior
            and GMM samples.
        fid, kid: also compute FID / KID against the split's images.
        extractor: feature extractor ``uint8 (B, H, W, 3) -> (B, F)`` for FID/KID
            (default: InceptionV3, which needs its downloadable weights).
        seed: seeds sampling, the GMM and KID's subsets.
        gmm_fit_n: training images the latent GMM is fitted to.
        stats_dir: where real statistics are cached (default: <cache>/fid_stats).
        write: write evaluation.json and evaluation.csv into the run directory.

    Returns:
        The report: a dict with "rows" (the table) and one entry per section.
    """
    run = run if isinstance(run, Run) else load_run(run)
    vae, value_range = run.vae, run.config.value_range
    real_u8, _ = generate._load_split_images(run, split, n)
    n = len(real_u8)
    real = generate.as_model_images(vae, real_u8)
    z_mean, z_log_var = generate.encode_means(vae, real, with_log_var=True)
    recon = generate.decode(vae, z_mean)
    train_u8, _ = generate._load_split_images(run, "train", gmm_fit_n)
    gmm = generate.fit_latent_gmm(vae, train_u8, seed=seed)
    samples = {
        "reconstructions": recon,
        "prior_samples": generate.sample_prior(vae, n, seed=seed),
        "gmm_samples": generate.sample_gmm(vae, gmm, n, seed=seed),
    }
    report = {
        "run_dir": str(run.paths.root),
        "split": split,
        "n": n,
        "value_range": list(value_range),
        "gmm": {"components": int(gmm.n_components), "fit_n": len(train_u8)},
    }
    rows = []
    report["reconstruction"] = reconstruction_quality(real, recon, value_range)
    for metric, value in report["reconstruction"].items():
        rows.append(_row("reconstruction", metric, value, n, "pixels scaled to [0, 1]"))
    report["latent"] = latent_usage(z_mean, z_log_var)
    rows.append(
        _row(
            "latent",
            "kl_total",
            report["latent"]["kl_total"],
            n,
            "nats per image, summed over dims",
        )
    )
    rows.append(
        _row(
            "latent",
            "active_units",
            report["latent"]["active_units"],
            n,
            f"of {report['latent']['latent_dim']} dims with mean KL > "
            f"{ACTIVE_UNIT_NATS} nats",
        )
    )
    report["sharpness"] = {"real": float(sharpness(real, value_range).mean())}
    for name, images in samples.items():
        report["sharpness"][name] = float(sharpness(images, value_range).mean())
    for name, value in report["sharpness"].items():
        rows.append(
            _row(
                "sharpness",
                name,
                value,
                n,
                "variance of the 3x3 Laplacian " "(grey, 0-255); lower = blurrier",
            )
        )
    wanted = [name for name, on in (("fid", fid), ("kid", kid)) if on]
    if wanted:
        try:
            extractor = extractor or inception_extractor()
        except LabError as error:
            for name in wanted:
                report[name] = {"available": False, "reason": str(error)}
                for metric in ("real_vs_real", *samples):
                    rows.append(_row(name, metric, UNAVAILABLE, n, str(error)))
        else:
            fakes = {
                name: denormalize(images, value_range)
                for name, images in samples.items()
            }
            stats_dir = stats_dir or (Path(run.cache_dir) / "fid_stats")
            path = real_stats_path(
                stats_dir, f"{real_u8.shape[1]}px", split, n, extractor
            )
            rows += _distance_rows(
                report, real_u8, fakes, extractor, path, fid, kid, seed
            )
    report["rows"] = rows
    if write:
        write_report(report, run.paths.root)
    return report


def write_report(report: dict, out_dir) -> tuple[Path, Path]:
    """Write ``evaluation.json`` and ``evaluation.csv`` (the rows) into ``out_dir``."""
    out = Path(out_dir)
    json_path, csv_path = out / "evaluation.json", out / "evaluation.csv"
    atomic_write_text(json_path, json.dumps(report, indent=2) + "\n")
    rows = io.StringIO(newline="")
    writer = csv.DictWriter(
        rows, fieldnames=["section", "metric", "value", "n", "note"]
    )
    writer.writeheader()
    writer.writerows(report["rows"])
    atomic_write_text(csv_path, rows.getvalue())
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
