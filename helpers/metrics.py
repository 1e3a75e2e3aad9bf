"""Measure a trained VAE: reconstructions, latent usage, blur, FID and KID.

FID protocol: InceptionV3 (Keras' ImageNet weights) pool features of uint8 images
resized bilinearly, unantialiased, to 299x299; reference statistics from the first N
images of the split. Each score carries its N, beside the real-vs-real floor at that
N. A feature extractor is any callable ``uint8 (B, H, W, 3) -> (B, F)``.
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
SMALL_N_NOTE = (
    "FID is biased upwards at small N: compare scores only at the same N "
    "and protocol (papers use 10k-50k images)"
)
FULL_KERNEL_ROWS = 4096  # KID: precompute n x n kernels up to this n
UNAVAILABLE = "unavailable: InceptionV3 weights not downloadable here"
LAPLACIAN_3X3 = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000  # Binkowski et al. 2018's protocol
COLUMNS = ("section", "metric", "value", "n", "note")


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Return the Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2); as in
    pytorch-fid, ``eps * I`` is added to singular covariances."""
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
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"sqrtm(sigma1 @ sigma2) has imaginary part "
                f"{np.max(np.abs(covmean.imag)):.3g}: the covariances are not "
                "valid (symmetric PSD) estimates"
            )
        covmean = covmean.real  # round-off
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


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
    """Rows per KID subset: ``subset_size`` or 1,000, at most half the smaller set
    (so the subsets differ and their spread means something), clipped to min(n, m)."""
    if subset_size is None:
        return min(KID_SUBSET_SIZE, max(2, min(n, m) // 2), n, m)
    return min(int(subset_size), n, m)


def kernel_inception_distance(
    features_a, features_b, subsets=KID_SUBSETS, subset_size=None, seed=0
):
    """Return KID (unbiased MMD^2, cubic kernel) of (N, F) and (M, F) features as
    (mean, std) over random subsets of ``kid_subset_size`` rows."""
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
    # Up to a few thousand rows the full kernels fit in memory: compute them once
    # and index the subsets out of them (same numbers, far fewer matmuls).
    full = max(len(a), len(b)) <= FULL_KERNEL_ROWS
    whole = _kernels(a, b) if full else None
    scores = np.empty(subsets)
    for i in range(subsets):
        ia = rng.choice(len(a), m, replace=False)
        ib = rng.choice(len(b), m, replace=False)
        if full:
            pairs = ((ia, ia), (ib, ib), (ia, ib))
            kxx, kyy, kxy = (k[np.ix_(p, q)] for k, (p, q) in zip(whole, pairs))
        else:
            kxx, kyy, kxy = _kernels(a[ia], b[ib])
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
    """InceptionV3 pool features of uint8 images (the FID/KID feature space)."""

    name = INCEPTION_NAME

    def __init__(self, model, batch_size: int = 50):
        self.model = model
        self.batch_size = batch_size

    def __call__(self, images_uint8):
        """Return (B, 2048) float32 features of (B, H, W, 3) uint8 images."""
        import keras

        x = keras.ops.cast(keras.ops.convert_to_tensor(images_uint8), "float32")
        size = (INCEPTION_SIZE, INCEPTION_SIZE)
        x = keras.ops.image.resize(x, size, interpolation="bilinear", antialias=False)
        x = keras.applications.inception_v3.preprocess_input(x)
        return np.asarray(self.model(x, training=False))


def inception_extractor(batch_size: int = 50) -> InceptionExtractor:
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
            "use into ~/.keras/models; this machine cannot reach "
            f"storage.googleapis.com ({str(error)[:160]}). KID needs the same "
            "weights, so both are skipped; the other metrics (reconstruction, KL, "
            "active units, sharpness) still come out. Run in Colab (or copy "
            "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 into "
            "~/.keras/models)"
        ) from None
    return InceptionExtractor(model, batch_size)


def compute_features(extractor, images_uint8, batch_size: int = 50) -> np.ndarray:
    """Run ``extractor`` over (N, H, W, 3) uint8 images in batches; (N, F) float64."""
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise ValueError(f"feature extractors take uint8 pixels, got {images.dtype}")
    out = [
        np.asarray(extractor(images[i : i + batch_size]), dtype=np.float64)
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(out).reshape(len(images), -1)


def real_stats_path(stats_dir, dataset: str, split: str, n: int, extractor) -> Path:
    """Return the .npz file caching real statistics of one dataset/split/N/extractor."""
    name = f"{_safe(dataset)}_{split}_n{n}_{extractor_name(extractor)}.npz"
    return Path(stats_dir) / name


def real_statistics(
    images_uint8, extractor, path=None, need_features=False, floor_images=None
):
    """Return mu/sigma of N uint8 images (or of a callable's, called only on a cache
    miss), cached in ``path`` (.npz), and the floor pair: the N (mu_a/sigma_a) vs N
    other ``floor_images`` (mu_b/sigma_b), or else two halves of the N (floor_n).
    With ``need_features`` (KID) also ``features`` and ``floor_features``."""
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
    if images.dtype == np.uint8:
        unit = images.astype(np.float64) / 255.0
    else:
        unit = _to_unit(images, value_range).astype(np.float64)
    grey = 255.0 * unit @ np.array([0.299, 0.587, 0.114])
    return np.array(
        [ndimage.convolve(g, LAPLACIAN_3X3)[1:-1, 1:-1].var() for g in grey]
    )


def latent_usage(z_mean, z_log_var, threshold: float = ACTIVE_UNIT_VARIANCE) -> dict:
    """Return the active units and the KL per latent dimension (nats) of N >= 2 codes.

    Active: ``Var_x(E[z|x]) > threshold`` (Burda et al. 2016); a constant offset costs
    KL but carries nothing, so KL > 0 does not make a dimension active.
    """
    z_mean = np.asarray(z_mean, np.float64)
    if z_mean.ndim != 2 or len(z_mean) < 2:
        raise ValueError(f"need (N >= 2, D) posterior means, got {z_mean.shape}")
    variance = z_mean.var(axis=0)
    log_var = np.asarray(z_log_var, np.float64)
    # A statistic of the codes; the loss the model trains on is the student's.
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


def default_split(run) -> str:
    """Return "test" when the run's cache has test images, else "validation"."""
    from helpers.cache import cache_info

    try:
        counts = cache_info(run.cache_dir).get("counts", {}) if run.cache_dir else {}
    except (LabError, OSError, ValueError):
        counts = {}
    return "test" if counts.get("test") else "validation"


def _quality_rows(report: dict) -> list[dict]:
    """The table's rows for the reconstruction, latent and sharpness sections."""
    n, latent = report["n"], report["latent"]
    where = f"{report['split']} split ({report['split_note']}); pixels scaled to [0, 1]"
    rows = [
        _row("reconstruction", k, v, n, where)
        for k, v in report["reconstruction"].items()
    ]
    summed = "nats per image, summed over dims"
    rows.append(_row("latent", "kl_total", latent["kl_total"], n, summed))
    active = (
        f"of {latent['latent_dim']} dims whose z_mean varies over the "
        f"data: Var(E[z|x]) > {ACTIVE_UNIT_VARIANCE} (Burda et al. 2016)"
    )
    rows.append(_row("latent", "active_units", latent["active_units"], n, active))
    blur = "variance of the 3x3 Laplacian (grey, 0-255); lower = blurrier"
    return rows + [
        _row("sharpness", k, v, n, blur) for k, v in report["sharpness"].items()
    ]


def _distance_rows(
    report, real_u8, floor_u8, samples, stats_dir, extractor, fid, kid, seed
):
    """FID/KID rows and report sections: each set of samples against the N real
    images, beside the real-vs-real floor; 'unavailable' rows without the weights."""
    n = len(real_u8)
    try:
        extractor = extractor or inception_extractor()
    except LabError as error:
        wanted = [name for name, on in (("fid", fid), ("kid", kid)) if on]
        for name in wanted:
            report[name] = {"available": False, "reason": str(error)}
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
        floor = frechet_distance(
            real["mu_a"], real["sigma_a"], real["mu_b"], real["sigma_b"]
        )
        scores = {"real_vs_real": floor}
        for name, feats in fakes.items():
            scores[name] = frechet_distance(
                *statistics(feats), real["mu"], real["sigma"]
            )
        report["fid"] = {**base, "feature_space": space, "scores": scores}
        report["fid"].update(floor=note, stats_file=str(path), note=SMALL_N_NOTE)
        rows.append(_row("fid", "real_vs_real", floor, floor_n, note))
        rows += [
            _row("fid", k, scores[k], n, f"vs {n} real; {SMALL_N_NOTE}") for k in fakes
        ]
    if kid:
        scores = {}
        report["kid"] = {**base, "kid_feature_space": space, "scores": scores}
        sets = {"real_vs_real": (real["features"][:floor_n], real["floor_features"])}
        sets.update({name: (feats, real["features"]) for name, feats in fakes.items()})
        for name, (a, b) in sets.items():
            mean, std = kernel_inception_distance(a, b, seed=seed)
            size = floor_n if name == "real_vs_real" else n
            subset = kid_subset_size(size, size)
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

    ``split`` None: test when the cache has it (validation chose ``best.keras``).
    The next n images, if any, are the floor's second real set. ``sample_faces``
    (yours from 05) defaults to the lab's, which the student release lacks.
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
        "reconstruction": reconstruction_quality(real, recon, value_range),
        "latent": latent_usage(z_mean, z_log_var),
        "sharpness": {"real": float(sharpness(real, value_range).mean())},
    }
    for name, images in samples.items():
        report["sharpness"][name] = float(sharpness(images, value_range).mean())
    rows = _quality_rows(report)
    if fid or kid:
        stats_dir = stats_dir or (Path(run.cache_dir) / "fid_stats")
        args = (report, real_u8, floor_u8, samples, stats_dir, extractor)
        rows += _distance_rows(*args, fid, kid, seed)
    report["rows"] = rows
    if write:
        write_report(report, run.paths.root)
    return report


def write_report(report: dict, out_dir) -> tuple[Path | None, Path | None]:
    """Write evaluation.json and .csv into ``out_dir`` (or, if the disk refuses, the
    temporary folder, with a warning); return where they are (None: nowhere)."""
    out, table = Path(out_dir), io.StringIO(newline="")
    writer = csv.DictWriter(table, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(report["rows"])
    json_text = json.dumps(report, indent=2) + "\n"
    return (
        write_text_or_fallback(out / "evaluation.json", json_text),
        write_text_or_fallback(out / "evaluation.csv", table.getvalue()),
    )


def format_table(rows) -> str:
    """Return the report's rows as an aligned text table."""
    cells, last = [], None
    for r in rows:  # a note repeated down a section is shown once
        note = "" if (r["section"], r["note"]) == last else r["note"]
        last = (r["section"], r["note"])
        value = (
            f"{r['value']:.4g}" if isinstance(r["value"], float) else str(r["value"])
        )
        cells.append((r["section"], r["metric"], value, str(r["n"]), note))
    widths = [max(len(c[i]) for c in [COLUMNS, *cells]) for i in range(4)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(cell[:4], widths)) + "  " + cell[4]
        for cell in [COLUMNS, *cells]
    ]
    return "\n".join(line.rstrip() for line in lines)
