"""Make faces from a trained VAE (the student's or the lab's) and look inside its latent
space. Images go in as uint8 or floats in the model's range, and come out as float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.cache import load_split
from helpers.celeba import ATTRIBUTE_NAMES
from helpers.errors import LabError
from helpers.plots import image_rows, make_grid, save_png
from helpers.preprocess import normalize


def latent_dim(vae) -> int:
    """Return the size D of the VAE's latent vectors."""
    return int(vae.decoder.inputs[0].shape[-1])


def as_model_images(vae, images) -> np.ndarray:
    """Return (N, H, W, 3) or (H, W, 3) images as (N, H, W, 3) float32 in range."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) images, got shape {images.shape}")
    if images.dtype == np.uint8:
        return normalize(images, tuple(map(float, getattr(vae, "value_range", (0, 1)))))
    return images.astype(np.float32)


def encode_means(vae, images_or_dataset, batch_size=256, with_log_var=False):
    """Encode an (N, H, W, 3) array or an iterable of batches (images, (images,
    attributes) or {"images": ...}) to (N, D) float32 z_mean, or (z_mean, z_log_var)."""
    data = images_or_dataset
    if isinstance(data, np.ndarray):
        data = [data[i : i + batch_size] for i in range(0, len(data), batch_size)]
    # The lab's VAE has encode(); a student's has only its encoder.
    encode = getattr(vae, "encode", None) or (lambda x: vae.encoder(x, training=False))
    codes = []
    for batch in data:
        batch = batch["images"] if isinstance(batch, dict) else batch
        batch = batch[0] if isinstance(batch, (tuple, list)) else batch
        codes.append(encode(as_model_images(vae, batch)))
    if not codes:
        raise ValueError("no images to encode: the array or dataset is empty")
    z_mean, z_log_var = (np.concatenate(c).astype(np.float32) for c in zip(*codes))
    return (z_mean, z_log_var) if with_log_var else z_mean


def decode(vae, z, batch_size: int = 256) -> np.ndarray:
    """Decode (..., D) latents in batches; return (..., H, W, 3) float32 images."""
    z = np.asarray(z, dtype=np.float32)
    flat = z.reshape(-1, z.shape[-1])
    decoder = getattr(vae, "decode", None) or (lambda b: vae.decoder(b, training=False))
    out = [decoder(flat[i : i + batch_size]) for i in range(0, len(flat), batch_size)]
    out = np.concatenate([np.asarray(b, np.float32) for b in out])
    return out.reshape(*z.shape[:-1], *out.shape[1:])


def sample_in_batches(sample_faces, vae, n: int, seed: int = 0, batch_size: int = 256):
    """Return n images from your ``sample_faces(vae, k, seed=seed + i)`` for batch i."""
    if n < 1:
        raise ValueError(f"n={n}: ask for at least one sample")
    out = []
    for i, start in enumerate(range(0, n, batch_size)):
        result = sample_faces(vae, min(batch_size, n - start), seed=seed + i)
        images = result[0] if isinstance(result, (tuple, list)) else result
        out.append(np.asarray(images, dtype=np.float32))
    return np.concatenate(out)


def fit_latent_gmm(
    vae, images_or_dataset, n_components=10, seed=0, reg_covar=None, z_mean=None
):
    """Fit a full-covariance ``GaussianMixture`` to encoded means (or ``z_mean``)."""
    from sklearn.mixture import GaussianMixture  # slow to import: only when fitting

    z = encode_means(vae, images_or_dataset) if z_mean is None else z_mean
    z = np.asarray(z, np.float64)
    n, dim = z.shape
    if n < 2:
        raise ValueError(f"fit_latent_gmm needs at least 2 encoded images, got {n}")
    k = max(1, min(int(n_components), n // 2))
    if reg_covar is None:  # few images per component: full covariances go singular
        small = n / k < 10 * dim
        reg_covar = max(1e-2 * float(z.var(axis=0).mean()), 1e-6) if small else 1e-6
    return GaussianMixture(
        k, covariance_type="full", reg_covar=reg_covar, random_state=seed, max_iter=200
    ).fit(z)


def sample_gmm(vae, gmm, n: int, seed: int = 0) -> np.ndarray:
    """Decode ``n`` latents drawn from a mixture fitted by ``fit_latent_gmm``."""
    rng = np.random.default_rng(seed)
    weights = gmm.weights_ / gmm.weights_.sum()
    components = rng.choice(len(gmm.weights_), size=n, p=weights)
    chol = np.linalg.cholesky(gmm.covariances_)  # (K, D, D)
    eps = rng.standard_normal((n, gmm.means_.shape[1]))
    z = gmm.means_[components] + np.einsum("nij,nj->ni", chol[components], eps)
    return decode(vae, z)


def reconstruct(vae, images, batch_size: int = 256) -> np.ndarray:
    """Return the deterministic reconstructions decode(z_mean(images)), float32."""
    return decode(vae, encode_means(vae, as_model_images(vae, images), batch_size))


def slerp(z_a, z_b, steps: int) -> np.ndarray:
    """Return (steps, D) latents on the great-circle arc from z_a to z_b, ends exact
    ((anti)parallel codes have no unique arc: they get the straight line)."""
    if steps < 2:
        raise ValueError(f"steps={steps}: need at least 2 (the two endpoints)")
    a, b = (np.asarray(z, dtype=np.float64).reshape(-1) for z in (z_a, z_b))
    t = np.linspace(0.0, 1.0, steps)[:, None]
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        path = (1 - t) * a + t * b
    else:
        path = (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)
    path[0], path[-1] = a, b  # exact endpoints, whatever the round-off
    return path


def slerp_faces(vae, image_a, image_b, steps: int = 8) -> np.ndarray:
    """Decode the great-circle path (it keeps the norm where the straight line dips)
    between two faces' latent means: (steps, H, W, 3), from ``image_a``'s end."""
    z = encode_means(vae, [as_model_images(vae, i) for i in (image_a, image_b)])
    return decode(vae, slerp(z[0], z[1], steps))


def latent_traversal(vae, image_or_z, dims, values=(-3, -2, -1, 0, 1, 2, 3)):
    """Decode a face's z_mean (or a (D,) latent) with one of ``dims`` at a time set
    to each of ``values``: (len(dims), len(values), H, W, 3)."""
    array, dim = np.asarray(image_or_z), latent_dim(vae)
    if array.ndim == 1 or array.shape == (1, dim):
        z = array.reshape(dim).astype(np.float32)
    else:
        z = encode_means(vae, as_model_images(vae, array))[0]
    dims, values = list(dims), np.asarray(values, dtype=np.float32)
    if bad := [d for d in dims if not 0 <= d < len(z)]:
        raise ValueError(f"dims {bad} out of range: the latent space has {len(z)} dims")
    batch = np.tile(z, (len(dims), len(values), 1))
    batch[np.arange(len(dims)), :, dims] = values  # row r: dims[r] takes each value
    return decode(vae, batch)


def latent_grid_2d(vae, n: int = 15, data=None, quantiles=(0.05, 0.95), z_mean=None):
    """Decode an (n, n, H, W, 3) grid over the prior's ``quantiles`` of z1 and z2 (row
    0: the largest z2); above 2 dims, along the 2 leading PCA axes of ``data``."""
    from scipy.stats import norm  # slow to import: only for the grid

    steps = norm.ppf(np.linspace(quantiles[0], quantiles[1], n))
    center, axes, dim = np.zeros(2), np.eye(2), latent_dim(vae)
    if dim != 2:
        if data is None and z_mean is None:
            raise ValueError(
                f"latent_dim={dim} > 2: pass data= images so the grid "
                "can follow the two leading principal directions"
            )
        from sklearn.decomposition import PCA  # slow to import: only when needed

        z = encode_means(vae, data) if z_mean is None else np.asarray(z_mean)
        if len(z) < 3:
            raise ValueError("latent_grid_2d needs at least 3 images for the PCA")
        pca = PCA(n_components=2).fit(z)  # axes in standard deviations
        center = pca.mean_
        axes = pca.components_ * np.sqrt(pca.explained_variance_)[:, None]
    x, y = np.meshgrid(steps, steps[::-1])
    return decode(vae, center + x[..., None] * axes[0] + y[..., None] * axes[1])


def attribute_index(name: str) -> int:
    """Return the column of attribute ``name`` in CelebA's 40-attribute table."""
    if name not in ATTRIBUTE_NAMES:
        choose = ", ".join(ATTRIBUTE_NAMES)
        raise ValueError(f"unknown attribute {name!r}: choose one of {choose}")
    return ATTRIBUTE_NAMES.index(name)


def attribute_vector(vae, images, attrs, name: str, z_mean=None) -> np.ndarray:
    """Return the mean z_mean of faces with attribute ``name`` minus those without;
    ``attrs``: (N, 40) of +1 / -1. LabError when no face or every face has it."""
    has = np.asarray(attrs)[:, attribute_index(name)] > 0
    if has.all() or not has.any():
        raise LabError(
            f"attribute {name!r}: {int(has.sum())} of {len(has)} faces have it; "
            "a vector needs faces with and without it (use more images)"
        )
    z = encode_means(vae, images) if z_mean is None else np.asarray(z_mean)
    if len(z) != len(has):
        raise ValueError(f"{len(z)} images but {len(has)} attribute rows")
    return (z[has].mean(axis=0) - z[~has].mean(axis=0)).astype(np.float32)


def apply_attribute(vae, images, vector, strengths=(-2, -1, 0, 1, 2)) -> np.ndarray:
    """Decode each face's z_mean plus each ``strength * vector``: (N, S, H, W, 3)."""
    z = encode_means(vae, as_model_images(vae, images))
    strengths = np.asarray(strengths, dtype=np.float32)
    return decode(vae, z[:, None] + strengths[None, :, None] * np.asarray(vector))


def _load_split_images(run, split: str, n: int | None):
    """Return (uint8 images (n, H, W, 3), attrs (n, 40)) of a run's cached split."""
    if run.cache_dir is None:
        raise LabError(
            f"{run.paths.root}/run.json does not name the cache it trained on: "
            "re-run training, or pass a run trained by `python -m vaelab train`"
        )
    images, attrs, _ = load_split(run.cache_dir, split)
    if len(images) == 0:
        raise LabError(f"the {split!r} split of {run.cache_dir} is empty")
    images, attrs = np.asarray(images[:n]), np.asarray(attrs[:n])
    if images.shape[1:] != run.config.image_shape:
        raise LabError(
            f"cache {run.cache_dir} holds {images.shape[1:]} images but the run "
            f"expects {run.config.image_shape}: prepare a cache at that size"
        )
    return images, attrs


def write_figures(
    vae,
    out_dir,
    value_range,
    train,
    val,
    val_attrs,
    seed=0,
    sample_faces=None,
    interpolate_faces=None,
) -> list[Path]:
    """Write every exploration figure into ``out_dir`` (``val``: 2 faces or more);
    return the paths. ``sample_faces``, ``interpolate_faces``: yours, or the lab's."""
    if sample_faces is None or interpolate_faces is None:
        from helpers.student import solution_module  # not in the student release

        reference = solution_module("sample_faces", "interpolate_faces")
        sample_faces = sample_faces or reference.sample_faces
        interpolate_faces = interpolate_faces or reference.interpolate_faces
    out, paths = Path(out_dir), []

    def save(name, images, tiles=image_rows):
        path = save_png(tiles(images, value_range=value_range), out / f"{name}.png")
        paths.append(path)

    prior = sample_in_batches(sample_faces, vae, 64, seed=seed)
    save("prior_samples", prior, make_grid)
    z_train = encode_means(vae, train)  # once, for the GMM and the 2-D grid's PCA
    gmm = fit_latent_gmm(vae, train, seed=seed, z_mean=z_train)
    save("gmm_samples", sample_gmm(vae, gmm, 64, seed=seed), make_grid)
    save("reconstructions", [as_model_images(vae, val[:8]), reconstruct(vae, val[:8])])
    a, b = as_model_images(vae, val[:2])
    linear = np.asarray(interpolate_faces(vae, a, b, 10), dtype=np.float32)
    save("interpolation", [linear, slerp_faces(vae, a, b, 10)])
    save("traversal", list(latent_traversal(vae, a, range(min(8, latent_dim(vae))))))
    save("latent_grid_2d", list(latent_grid_2d(vae, 15, data=train, z_mean=z_train)))
    z_val = encode_means(vae, val)
    for name in ("Smiling", "Eyeglasses"):
        try:
            vector = attribute_vector(vae, val, val_attrs, name, z_mean=z_val)
        except LabError as error:
            print(f"skipped the {name} strip: {error}")
            continue
        save(f"attribute_{name}", list(apply_attribute(vae, val[:6], vector)))
    return paths
