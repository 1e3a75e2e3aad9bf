"""Measure a trained VAE: reconstructions, latent usage, blur, and FID/KID (InceptionV3
pool features of uint8 images resized to 299x299) beside the real-vs-real floor."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np

from helpers import generate
from helpers.cache import cache_info
from helpers.errors import LabError
from helpers.files import atomic_write_bytes, write_text_or_fallback
from helpers.preprocess import denormalize
from helpers.runs import Run, load_run

ACTIVE_UNIT_VARIANCE = 0.01  # active: Var_x(E[z|x]) above it (Burda et al. 2016)
INCEPTION_SIZE, INCEPTION_NAME = 299, "inception_v3_imagenet_avgpool_bilinear299"
SMALL_N_NOTE = (
    "FID is biased upwards at small N: compare scores only at the same N "
    "and protocol (papers use 10k-50k images)"
)
FULL_KERNEL_ROWS = 4096  # KID: precompute n x n kernels up to this n
UNAVAILABLE = "unavailable: InceptionV3 weights not downloadable here"
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al. 2018's protocol
COLUMNS = ("section", "metric", "value", "n", "note")


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Return the Fréchet distance of two Gaussians (mu, sigma), as in pytorch-fid."""
    from scipy import linalg

    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    s1, s2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size,) * 2:
        raise ValueError(
            f"shapes disagree: mu {mu1.shape} vs {mu2.shape}, sigma "
            f"{s1.shape} vs {s2.shape}"
        )
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(mu1)) * eps
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
        raise ValueError(
            f"sqrtm(sigma1 @ sigma2) is complex ({np.abs(covmean.imag).max():.3g}): "
            "the covariances are not valid (symmetric PSD) estimates"
        )
    diff = mu1 - mu2  # covmean's small imaginary part is round-off
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean (F,) and covariance (F, F) of (N, F) features (N >= 2)."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"need (N >= 2, F) features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _kernels(x, y):
    """k(x, x), k(y, y), k(x, y) of the kernel k(u, v) = (u.v / d + 1)^3."""
    return [(p @ q.T / x.shape[1] + 1.0) ** 3 for p, q in ((x, x), (y, y), (x, y))]


def kid_subset_size(n: int, m: int, subset_size: int | None = None) -> int:
    """Rows per KID subset: ``subset_size``, or 1,000 at most half the smaller set."""
    if subset_size is None:
        return min(KID_SUBSET_SIZE, max(2, min(n, m) // 2), n, m)
    return min(int(subset_size), n, m)


def kernel_inception_distance(
    features_a, features_b, subsets=KID_SUBSETS, subset_size=None, seed=0
):
    """Return KID (unbiased MMD^2, cubic kernel) of (N, F) and (M, F) features as
    (mean, std) over random subsets of ``kid_subset_size`` rows."""
    a, b = (np.asarray(f, dtype=np.float64) for f in (features_a, features_b))
    m = kid_subset_size(len(a), len(b), subset_size)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or m < 2:
        raise ValueError(
            f"KID needs (N, F) and (M, F) features, at least 2 rows in each set (and "
            f"subset), got {a.shape} and {b.shape}"
        )
    rng = np.random.default_rng(seed)
    # Up to a few thousand rows, index the subsets out of the full kernels.
    whole = _kernels(a, b) if max(len(a), len(b)) <= FULL_KERNEL_ROWS else None
    scores = np.empty(subsets)
    for i in range(subsets):
        ia, ib = (rng.choice(len(x), m, replace=False) for x in (a, b))
        if whole is None:
            kxx, kyy, kxy = _kernels(a[ia], b[ib])
        else:
            pairs = ((ia, ia), (ib, ib), (ia, ib))
            kxx, kyy, kxy = (k[np.ix_(p, q)] for k, (p, q) in zip(whole, pairs))
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        scores[i] = within - 2 * kxy.mean()
    return float(scores.mean()), float(scores.std())


def _safe(name) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_")


def extractor_name(extractor) -> str:
    """Return a file-name-safe name of an extractor (its ``name`` or ``__name__``)."""
    name = getattr(extractor, "name", None) or getattr(extractor, "__name__", None)
    return _safe(name or type(extractor).__name__) or "extractor"


class InceptionExtractor:
    """InceptionV3 pool features, (B, 2048) float32, of (B, H, W, 3) uint8 images."""

    name = INCEPTION_NAME

    def __init__(self, model):
        self.model = model

    def __call__(self, images_uint8):
        import keras

        x, size = np.asarray(images_uint8, np.float32), (INCEPTION_SIZE, INCEPTION_SIZE)
        x = keras.ops.image.resize(x, size, interpolation="bilinear", antialias=False)
        x = keras.applications.inception_v3.preprocess_input(x)
        return np.asarray(self.model(x, training=False))


def inception_extractor() -> InceptionExtractor:
    """Build the InceptionV3 extractor, downloading its weights (LabError if not)."""
    import keras

    from helpers.config import grading_mode

    if grading_mode():  # seconds of building a 24 M-parameter model, for nothing
        raise LabError("FID/KID are not computed under nbgrader autograde")
    shape = (INCEPTION_SIZE, INCEPTION_SIZE, 3)
    try:
        model = keras.applications.InceptionV3(
            include_top=False, pooling="avg", weights="imagenet", input_shape=shape
        )
    except Exception as error:  # Keras raises a bare Exception on a failed fetch
        raise LabError(
            "FID needs the InceptionV3 ImageNet weights (~90 MB), downloaded on first "
            f"use into ~/.keras/models ({str(error)[:160]}); KID too: both are skipped,"
            " not the other metrics. Run in Colab, or copy inception_v3_weights_tf_"
            "dim_ordering_tf_kernels_notop.h5 into ~/.keras/models"
        ) from None
    return InceptionExtractor(model)


def compute_features(extractor, images_uint8, batch_size: int = 50) -> np.ndarray:
    """Run ``extractor`` over (N, H, W, 3) uint8 images in batches; (N, F) float64."""
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise ValueError(f"feature extractors take uint8 pixels, got {images.dtype}")
    batches = range(0, len(images), batch_size)
    out = [np.asarray(extractor(images[i : i + batch_size]), float) for i in batches]
    return np.concatenate(out).reshape(len(images), -1)


def real_stats_path(stats_dir, dataset: str, split: str, n: int, extractor) -> Path:
    """Return the .npz file caching real statistics of one dataset/split/N/extractor."""
    name = f"{_safe(dataset)}_{split}_n{n}_{extractor_name(extractor)}.npz"
    return Path(stats_dir) / name


def real_statistics(
    images_uint8, extractor, path=None, need_features=False, floor_images=None
):
    """Return mu/sigma of N uint8 images (or a callable's, called on a cache miss),
    cached in ``path`` (.npz), and the floor pair: the N (mu_a/sigma_a) vs N other
    ``floor_images`` (mu_b/sigma_b), else two halves (floor_n); KID's ``features``."""
    if path is not None and Path(path).exists():
        with np.load(path) as data:
            stats = {key: data[key] for key in data.files}
        if "floor_n" in stats and (not need_features or "floor_features" in stats):
            stats.update(n=int(stats["n"]), floor_n=int(stats["floor_n"]), cached=True)
            return stats
    images = images_uint8() if callable(images_uint8) else images_uint8
    features = compute_features(extractor, images)
    if floor_images is not None and len(floor_images) == len(features):
        first, second = features, compute_features(extractor, floor_images)
    else:
        half = len(features) // 2
        first, second = features[:half], features[half : 2 * half]
    stats = {"n": len(features), "floor_n": len(first)}
    for key, rows in (("", features), ("_a", first), ("_b", second)):
        stats[f"mu{key}"], stats[f"sigma{key}"] = statistics(rows)
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        buffer, small = io.BytesIO(), len(features) <= 10_000  # keep KID's features
        kept = {"features": features, "floor_features": second} if small else {}
        np.savez(buffer, **stats, **{k: v.astype(np.float32) for k, v in kept.items()})
        atomic_write_bytes(path, buffer.getvalue())
    return {**stats, "cached": False, "features": features, "floor_features": second}


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


def _to_unit(images, value_range) -> np.ndarray:
    low, high = value_range
    return np.clip((np.asarray(images, np.float32) - low) / (high - low), 0.0, 1.0)


def reconstruction_quality(images, reconstructions, value_range=(0.0, 1.0)) -> dict:
    """Return the mean "mse", "psnr" (dB) and "ssim", both sets mapped to [0, 1]."""
    import tensorflow as tf

    x, y = _to_unit(images, value_range), _to_unit(reconstructions, value_range)
    return {
        "mse": float(np.mean((x - y) ** 2)),
        "psnr": float(np.mean(tf.image.psnr(x, y, max_val=1.0))),
        "ssim": float(np.mean(tf.image.ssim(x, y, max_val=1.0))),
    }


def sharpness(images, value_range=(0.0, 1.0)) -> np.ndarray:
    """Return the (N,) variance of each grey (0-255) image's Laplacian: low = blurry."""
    from scipy import ndimage

    images = np.asarray(images)
    unit = _to_unit(images, (0, 255) if images.dtype == np.uint8 else value_range)
    grey = 255.0 * unit.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.array([ndimage.laplace(g)[1:-1, 1:-1].var() for g in grey])  # 3x3 stencil


def latent_usage(z_mean, z_log_var, threshold: float = ACTIVE_UNIT_VARIANCE) -> dict:
    """Return the active units, ``Var_x(E[z|x]) > threshold`` (Burda et al. 2016: a
    constant offset costs KL but carries nothing), and the KL per dimension (nats)."""
    z_mean = np.asarray(z_mean, np.float64)
    if z_mean.ndim != 2 or len(z_mean) < 2:
        raise ValueError(f"need (N >= 2, D) posterior means, got {z_mean.shape}")
    variance, log_var = z_mean.var(axis=0), np.asarray(z_log_var, np.float64)
    kl = (-0.5 * (1.0 + log_var - z_mean**2 - np.exp(log_var))).mean(axis=0)
    return {
        "active_units": int((variance > threshold).sum()),
        "latent_dim": int(variance.size),
        "z_mean_variance": [float(v) for v in variance],
        "kl_per_dim": [float(v) for v in kl],
        "kl_total": float(kl.sum()),
    }


def _row(section, metric, value, n, note=""):
    return dict(zip(COLUMNS, (section, metric, value, n, note)))


def _quality_rows(report: dict) -> list[dict]:
    """The table's rows for the reconstruction, latent and sharpness sections."""
    latent = report["latent"]
    on = f"{report['split']} split ({report['split_note']}); pixels scaled to [0, 1]"
    notes = {
        "kl_total": "nats per image, summed over dims",
        "active_units": f"of {latent['latent_dim']} dims whose z_mean varies over the "
        f"data: Var(E[z|x]) > {ACTIVE_UNIT_VARIANCE} (Burda et al. 2016)",
    }
    blur = "variance of the 3x3 Laplacian (grey, 0-255); lower = blurrier"
    rows = [("reconstruction", k, v, on) for k, v in report["reconstruction"].items()]
    rows += [("latent", k, latent[k], note) for k, note in notes.items()]
    rows += [("sharpness", k, v, blur) for k, v in report["sharpness"].items()]
    return [_row(s, m, v, report["n"], note) for s, m, v, note in rows]


def _distance_rows(report, pool_u8, samples, stats_dir, extractor, fid, kid, seed):
    """FID/KID rows and report sections of each sample set, beside the real floor."""
    n, wanted = report["n"], [s for s, on in (("fid", fid), ("kid", kid)) if on]
    real_u8, floor_u8 = pool_u8[:n], pool_u8[n : 2 * n]
    try:
        extractor = extractor or inception_extractor()
    except LabError as error:
        report.update({s: {"available": False, "reason": str(error)} for s in wanted})
        metrics = ("real_vs_real", *samples)
        return [_row(s, m, UNAVAILABLE, n, str(error)) for s in wanted for m in metrics]
    dataset = f"{real_u8.shape[1]}px"
    path = real_stats_path(stats_dir, dataset, report["split"], n, extractor)
    real = real_statistics(real_u8, extractor, path, kid, floor_images=floor_u8)
    floor_n, value_range = real["floor_n"], tuple(report["value_range"])
    fakes = {
        k: compute_features(extractor, denormalize(v, value_range))
        for k, v in samples.items()
    }
    space, note = extractor_name(extractor), floor_note(n, floor_n)
    rows, base = [], {"available": True, "n": n, "floor_n": floor_n}
    if fid:
        ab = (real["mu_a"], real["sigma_a"], real["mu_b"], real["sigma_b"])
        scores = {"real_vs_real": frechet_distance(*ab)}
        for name, f in fakes.items():
            scores[name] = frechet_distance(*statistics(f), real["mu"], real["sigma"])
        report["fid"] = {**base, "feature_space": space, "scores": scores}
        report["fid"].update(floor=note, stats_file=str(path), note=SMALL_N_NOTE)
        rows.append(_row("fid", "real_vs_real", scores["real_vs_real"], floor_n, note))
        versus = f"vs {n} real; {SMALL_N_NOTE}"
        rows += [_row("fid", k, scores[k], n, versus) for k in fakes]
    if kid:
        scores = {}
        report["kid"] = {**base, "kid_feature_space": space, "scores": scores}
        sets = {"real_vs_real": (real["features"][:floor_n], real["floor_features"])}
        sets.update({name: (feats, real["features"]) for name, feats in fakes.items()})
        for name, (a, b) in sets.items():
            mean, std = kernel_inception_distance(a, b, seed=seed)
            size, subset = len(a), kid_subset_size(len(a), len(b))
            scores[name] = {"mean": mean, "std": std, "subset_size": subset}
            spread = f"over {KID_SUBSETS} random subsets of {subset} of the {size}"
            rows.append(_row("kid", name, mean, size, f"± {std:.3g}: spread {spread}"))
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
    """Evaluate a run (a directory or a ``Run``) on ``n`` images; return the report.
    ``split`` None: test if the cache has it (validation chose ``best.keras``); the
    next n images are the floor's other set. ``sample_faces``: yours, or the lab's."""
    if sample_faces is None:
        from helpers.student import solution_module  # not in the student release

        sample_faces = solution_module("sample_faces").sample_faces
    run = run if isinstance(run, Run) else load_run(run)
    vae, value_range = run.vae, run.config.value_range
    if split is None:  # a broken cache fails here, saying how to fix it
        counts = cache_info(run.cache_dir)["counts"] if run.cache_dir else {}
        split = "test" if counts.get("test") else "validation"
    pool_u8, _ = generate._load_split_images(run, split, 2 * n)
    real_u8 = pool_u8[:n]
    real, n = generate.as_model_images(vae, real_u8), len(real_u8)
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
        "reconstruction": reconstruction_quality(real, recon, value_range),
        "latent": latent_usage(z_mean, z_log_var),
        "sharpness": {
            k: float(sharpness(v, value_range).mean())
            for k, v in {"real": real, **samples}.items()
        },
    }
    report["rows"] = _quality_rows(report)
    if fid or kid:
        stats_dir = stats_dir or Path(run.cache_dir) / "fid_stats"
        args = (report, pool_u8, samples, stats_dir, extractor)
        report["rows"] += _distance_rows(*args, fid, kid, seed)
    if write:
        write_report(report, run.paths.root)
    return report


def write_report(report: dict, out_dir) -> tuple[Path | None, Path | None]:
    """Write evaluation.json/.csv into ``out_dir`` (or a temp folder); return where."""
    table = io.StringIO(newline="")
    csv.writer(table).writerows(
        [COLUMNS, *(map(r.get, COLUMNS) for r in report["rows"])]
    )
    texts = {"json": json.dumps(report, indent=2) + "\n", "csv": table.getvalue()}
    return tuple(
        write_text_or_fallback(Path(out_dir) / f"evaluation.{k}", text)
        for k, text in texts.items()
    )


def format_table(rows) -> str:
    """Return the report's rows as an aligned text table."""
    cells, last = [COLUMNS], None
    for r in rows:  # a note repeated down a section is shown once
        note = "" if (r["section"], r["note"]) == last else r["note"]
        last = (r["section"], r["note"])
        value = f"{r['value']:.4g}" if isinstance(r["value"], float) else r["value"]
        cells.append((r["section"], r["metric"], str(value), str(r["n"]), note))
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(cell, [*widths, 0])).rstrip()
        for cell in cells
    )
