"""Make new faces from a trained VAE, and look inside its latent space.

Functions take a VAE (the student's or the lab's) and images as uint8 pixels or as
floats in the model's value range, and return float32 images in that range.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.cache import load_split
from helpers.celeba import ATTRIBUTE_NAMES
from helpers.errors import LabError
from helpers.plots import save_grid, save_image_rows
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
        value_range = getattr(vae, "value_range", (0.0, 1.0))
        return normalize(images, tuple(float(v) for v in value_range))
    return images.astype(np.float32)


def _batches(images_or_dataset, batch_size: int):
    """Yield image batches from an array or a dataset of arrays/tuples/dicts."""
    if isinstance(images_or_dataset, np.ndarray):
        for start in range(0, len(images_or_dataset), batch_size):
            yield images_or_dataset[start : start + batch_size]
        return
    for element in images_or_dataset:
        if isinstance(element, dict):
            element = element["images"]
        elif isinstance(element, (tuple, list)):
            element = element[0]
        yield np.asarray(element)


def encode_means(vae, images_or_dataset, batch_size=256, with_log_var=False):
    """Encode an (N, H, W, 3) array or an iterable of batches (images or (images,
    attributes)) to (N, D) float32 z_mean, or (z_mean, z_log_var)."""
    means, log_vars = [], []
    # The lab's VAE has encode(); a student's has only its encoder.
    encode = getattr(vae, "encode", None) or (lambda x: vae.encoder(x, training=False))
    for batch in _batches(images_or_dataset, batch_size):
        z_mean, z_log_var = encode(as_model_images(vae, batch))
        means.append(np.asarray(z_mean, dtype=np.float32))
        log_vars.append(np.asarray(z_log_var, dtype=np.float32))
    if not means:
        raise ValueError("no images to encode: the array or dataset is empty")
    z_mean = np.concatenate(means)
    return (z_mean, np.concatenate(log_vars)) if with_log_var else z_mean


def decode(vae, z, batch_size: int = 256) -> np.ndarray:
    """Decode (N, D) latents in batches; return (N, H, W, 3) float32 images."""
    z = np.asarray(z, dtype=np.float32)
    decoder = getattr(vae, "decode", None) or (lambda b: vae.decoder(b, training=False))
    starts = range(0, len(z), batch_size)
    out = [np.asarray(decoder(z[i : i + batch_size])) for i in starts]
    return np.concatenate(out).astype(np.float32)


def sample_in_batches(sample_faces, vae, n: int, seed: int = 0, batch_size: int = 256):
    """Call your ``sample_faces(vae, k, seed=seed + i)`` for each batch i (it returns
    images or (images, z)); return the n images."""
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
    """Fit a full-covariance ``GaussianMixture`` to the encoded training means.

    Its samples avoid the prior's "holes" (Ghosh et al. 2020). ``z_mean`` skips the
    encoding; ``reg_covar`` grows with few images per component.
    """
    from sklearn.mixture import GaussianMixture  # slow to import: only when fitting

    z = encode_means(vae, images_or_dataset) if z_mean is None else np.asarray(z_mean)
    z = z.astype(np.float64)
    n, dim = z.shape
    if n < 2:
        raise ValueError(f"fit_latent_gmm needs at least 2 encoded images, got {n}")
    k = max(1, min(int(n_components), n // 2))
    if reg_covar is None:
        small = n / k < 10 * dim  # full covariances would be singular
        reg_covar = 1e-2 * float(np.mean(np.var(z, axis=0))) if small else 1e-6
        reg_covar = max(reg_covar, 1e-6)
    gmm = GaussianMixture(
        k, covariance_type="full", reg_covar=reg_covar, random_state=seed, max_iter=200
    )
    return gmm.fit(z)


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
    a = np.asarray(z_a, dtype=np.float64).reshape(-1)
    b = np.asarray(z_b, dtype=np.float64).reshape(-1)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        path = (1 - t) * a + t * b
    else:
        s = np.sin(omega)
        path = np.sin((1 - t) * omega) / s * a + np.sin(t * omega) / s * b
    path[0], path[-1] = a, b  # exact endpoints, whatever the round-off
    return path


def slerp_faces(vae, image_a, image_b, steps: int = 8) -> np.ndarray:
    """Decode the great-circle path between the latent means of two faces.

    It keeps the endpoints' norm where the straight line dips towards the origin.
    Returns (steps, H, W, 3), from ``image_a``'s reconstruction to ``image_b``'s.
    """
    pair = np.concatenate(
        [as_model_images(vae, image_a), as_model_images(vae, image_b)]
    )
    z = encode_means(vae, pair).astype(np.float64)
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
    bad = [d for d in dims if not 0 <= d < len(z)]
    if bad:
        raise ValueError(f"dims {bad} out of range: the latent space has {len(z)} dims")
    batch = np.repeat(z[None], len(dims) * len(values), axis=0)
    for row, dim in enumerate(dims):
        batch[row * len(values) : (row + 1) * len(values), dim] = values
    images = decode(vae, batch)
    return images.reshape(len(dims), len(values), *images.shape[1:])


def latent_grid_2d(vae, n: int = 15, data=None, quantiles=(0.05, 0.95), z_mean=None):
    """Decode an (n, n, H, W, 3) grid over the prior's ``quantiles`` of z1 and z2
    (the classic Keras 2-D latent plot's).

    Above two dims, it spans the leading principal directions of the encoded
    ``data`` (in their standard deviations). Row 0 is the largest second coordinate.
    """
    from scipy.stats import norm  # slow to import: only for the grid

    steps = norm.ppf(np.linspace(quantiles[0], quantiles[1], n))
    dim = latent_dim(vae)
    if dim == 2:
        center, axes = np.zeros(2), np.eye(2)
    else:
        if data is None and z_mean is None:
            raise ValueError(
                f"latent_dim={dim} > 2: pass data= images so the grid "
                "can follow the two leading principal directions"
            )
        from sklearn.decomposition import PCA  # slow to import: only when needed

        z = encode_means(vae, data) if z_mean is None else np.asarray(z_mean)
        if len(z) < 3:
            raise ValueError("latent_grid_2d needs at least 3 images for the PCA")
        pca = PCA(n_components=2).fit(z)
        center = pca.mean_
        axes = pca.components_ * np.sqrt(pca.explained_variance_)[:, None]
    grid_x, grid_y = np.meshgrid(steps, steps[::-1])
    z_grid = center + grid_x.reshape(-1, 1) * axes[0] + grid_y.reshape(-1, 1) * axes[1]
    images = decode(vae, z_grid)
    return images.reshape(n, n, *images.shape[1:])


def attribute_index(name: str) -> int:
    """Return the column of attribute ``name`` in CelebA's 40-attribute table."""
    names = list(ATTRIBUTE_NAMES)
    if name not in names:
        raise ValueError(
            f"unknown attribute {name!r}: choose one of {', '.join(names)}"
        )
    return names.index(name)


def attribute_vector(vae, images, attrs, name: str, z_mean=None) -> np.ndarray:
    """Return the mean z_mean of faces with attribute ``name`` minus those without.

    ``attrs``: (N, 40) of +1 / -1. Raises LabError when no face or every face has it.
    """
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
    shifted = z[:, None, :] + strengths[None, :, None] * np.asarray(vector)[None, None]
    images = decode(vae, shifted.reshape(-1, z.shape[1]))
    return images.reshape(len(z), len(strengths), *images.shape[1:])


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
    n = len(images) if n is None else min(n, len(images))
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
    """Write every exploration figure of a model into ``out_dir``; return the paths.

    ``val`` needs 2 faces or more. ``sample_faces`` and ``interpolate_faces`` (yours
    from 05) default to the lab's, which the student release lacks.
    """
    if sample_faces is None or interpolate_faces is None:
        from helpers.student import solution_module  # not in the student release

        reference = solution_module("sample_faces", "interpolate_faces")
        sample_faces = sample_faces or reference.sample_faces
        interpolate_faces = interpolate_faces or reference.interpolate_faces
    out, paths = Path(out_dir), []

    def save(name, images, tiles=save_image_rows):
        paths.append(tiles(images, out / f"{name}.png", value_range=value_range))

    save(
        "prior_samples", sample_in_batches(sample_faces, vae, 64, seed=seed), save_grid
    )
    z_train = encode_means(vae, train)  # once, for the GMM and the 2-D grid's PCA
    gmm = fit_latent_gmm(vae, train, seed=seed, z_mean=z_train)
    save("gmm_samples", sample_gmm(vae, gmm, 64, seed=seed), save_grid)
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
