"""Make new faces from a trained VAE, and look inside its latent space.

Everything here takes a trained VAE (the student's, or ``helpers.solution``'s) and NumPy arrays, and returns
NumPy images in the model's value range ((0, 1) for a sigmoid decoder, (-1, 1) for
tanh); ``helpers.plots`` turns them into figures. Typical use::

    from helpers.runs import load_run
    from helpers import generate
    run = load_run("runs/cpu")
    faces = generate.sample_in_batches(sample_faces, run.vae, 64)  # yours, from 05
    gmm = generate.fit_latent_gmm(run.vae, train_images)     # after training
    better = generate.sample_gmm(run.vae, gmm, 64)

Images may be passed as floats in the model's value range or as uint8 pixels (which
are normalised first). The command line has ``sample`` and ``explore``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers.cache import load_split
from helpers.celeba import ATTRIBUTE_NAMES
from helpers.errors import LabError
from helpers.plots import save_grid, save_image_rows
from helpers.preprocess import normalize

# Prior quantiles of the 2-D grid, as in the classic Keras 2-D latent plot.
GRID_QUANTILES = (0.05, 0.95)


# Helpers ---------------------------------------------------------------------------
def latent_dim(vae) -> int:
    """Return the size D of the VAE's latent vectors."""
    return int(vae.decoder.inputs[0].shape[-1])


def _encode(vae, images):
    """(z_mean, z_log_var): ``vae.encode``, or its encoder (a student's VAE)."""
    if hasattr(vae, "encode"):
        return vae.encode(images)
    return vae.encoder(images, training=False)


def _decode(vae, z):
    """Images from ``vae.decode``, or from its decoder (a student's VAE)."""
    if hasattr(vae, "decode"):
        return vae.decode(z)
    return vae.decoder(z, training=False)


def _value_range(vae) -> tuple[float, float]:
    return tuple(float(v) for v in getattr(vae, "value_range", (0.0, 1.0)))


def as_model_images(vae, images) -> np.ndarray:
    """Return ``images`` as float32 in the model's value range.

    Args:
        vae: the VAE (its ``value_range`` decides the scaling of uint8 input).
        images: (N, H, W, 3) or (H, W, 3), uint8 pixels or floats already in range.

    Returns:
        (N, H, W, 3) float32.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected (N, H, W, 3) images, got shape {images.shape}")
    if images.dtype == np.uint8:
        return normalize(images, _value_range(vae))
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


def encode_means(
    vae, images_or_dataset, batch_size: int = 256, with_log_var: bool = False
):
    """Encode images to their posterior means z_mean, batch by batch.

    Args:
        vae: the trained VAE.
        images_or_dataset: (N, H, W, 3) array (uint8 or model range) or an iterable
            of such batches (e.g. a ``tf.data.Dataset`` yielding images or
            (images, attributes) pairs).
        batch_size: images per encoder call for array input.
        with_log_var: also return z_log_var.

    Returns:
        (N, D) float32 z_mean, or (z_mean, z_log_var) if ``with_log_var``.
    """
    means, log_vars = [], []
    for batch in _batches(images_or_dataset, batch_size):
        z_mean, z_log_var = _encode(vae, as_model_images(vae, batch))
        means.append(np.asarray(z_mean, dtype=np.float32))
        log_vars.append(np.asarray(z_log_var, dtype=np.float32))
    if not means:
        raise ValueError("no images to encode: the array or dataset is empty")
    z_mean = np.concatenate(means)
    return (z_mean, np.concatenate(log_vars)) if with_log_var else z_mean


def decode(vae, z, batch_size: int = 256) -> np.ndarray:
    """Decode (N, D) latents in batches; return (N, H, W, 3) float32 images."""
    z = np.asarray(z, dtype=np.float32)
    out = [
        np.asarray(_decode(vae, z[i : i + batch_size]))
        for i in range(0, len(z), batch_size)
    ]
    return np.concatenate(out).astype(np.float32)


# Sampling ---------------------------------------------------------------------------


def sample_in_batches(sample_faces, vae, n: int, seed: int = 0, batch_size: int = 256):
    """Call ``sample_faces(vae, k, seed=...)`` in batches; return n images, float32.

    ``sample_faces`` is yours from 05_generate (it returns images or (images, z)).
    Batch i is drawn with seed ``seed + i``, so the same seed gives the same faces,
    and no single decoder call holds more than ``batch_size`` faces.
    """
    if n < 1:
        raise ValueError(f"n={n}: ask for at least one sample")
    out = []
    for i, start in enumerate(range(0, n, batch_size)):
        result = sample_faces(vae, min(batch_size, n - start), seed=seed + i)
        images = result[0] if isinstance(result, (tuple, list)) else result
        out.append(np.asarray(images, dtype=np.float32))
    return np.concatenate(out)


def fit_latent_gmm(
    vae,
    images_or_dataset,
    n_components: int = 10,
    seed: int = 0,
    reg_covar: float | None = None,
    z_mean=None,
):
    """Fit a Gaussian mixture to the encoded training means (after training).

    A VAE's aggregate posterior rarely fills N(0, I): prior samples that land in its
    "holes" decode to broken faces. Sampling from a mixture fitted to where the
    training faces actually are (Ghosh et al. 2020, "ex-post density estimation":
    FID 48.1 -> 45.5 for a VAE on CelebA) avoids the holes.

    Args:
        vae: the trained VAE.
        images_or_dataset: training images (see ``encode_means``); ignored when
            ``z_mean`` is given.
        n_components: mixture components (clipped to the number of images).
        seed: seeds k-means initialisation.
        reg_covar: added to every covariance's diagonal. Default: 1e-6, or 1 % of
            the mean latent variance when there are fewer than 10 * D images per
            component, where full covariances would otherwise be singular.
        z_mean: (N, D) precomputed means, to skip encoding.

    Returns:
        A fitted ``sklearn.mixture.GaussianMixture`` (full covariances).
    """
    from sklearn.mixture import GaussianMixture  # slow to import: only when fitting

    z = encode_means(vae, images_or_dataset) if z_mean is None else np.asarray(z_mean)
    z = z.astype(np.float64)
    n, dim = z.shape
    if n < 2:
        raise ValueError(f"fit_latent_gmm needs at least 2 encoded images, got {n}")
    k = max(1, min(int(n_components), n // 2))
    if reg_covar is None:
        small = n / k < 10 * dim
        reg_covar = 1e-2 * float(np.mean(np.var(z, axis=0))) if small else 1e-6
        reg_covar = max(reg_covar, 1e-6)
    gmm = GaussianMixture(
        k, covariance_type="full", reg_covar=reg_covar, random_state=seed, max_iter=200
    )
    return gmm.fit(z)


def sample_gmm(vae, gmm, n: int, seed: int = 0) -> np.ndarray:
    """Decode ``n`` latents drawn from a mixture fitted by ``fit_latent_gmm``.

    Returns:
        (n, H, W, 3) float32 images in the model's value range.
    """
    rng = np.random.default_rng(seed)
    components = rng.choice(
        len(gmm.weights_), size=n, p=gmm.weights_ / gmm.weights_.sum()
    )
    chol = np.linalg.cholesky(gmm.covariances_)  # (K, D, D)
    eps = rng.standard_normal((n, gmm.means_.shape[1]))
    z = gmm.means_[components] + np.einsum("nij,nj->ni", chol[components], eps)
    return decode(vae, z)


def reconstruct(vae, images, batch_size: int = 256) -> np.ndarray:
    """Return the deterministic reconstructions decode(z_mean(images)), float32."""
    return decode(vae, encode_means(vae, as_model_images(vae, images), batch_size))


# Paths through the latent space -------------------------------------------------------
def slerp(z_a, z_b, steps: int) -> np.ndarray:
    """Return ``steps`` latents on the great-circle arc from z_a to z_b, (steps, D).

    ``sin((1 - t) w) / sin(w) * a + sin(t w) / sin(w) * b`` with w the angle
    between a and b and t = linspace(0, 1, steps): for |a| = |b| every point has
    that same norm. (Anti)parallel codes have no unique arc: the straight line.
    The endpoints are exactly z_a and z_b.
    """
    if steps < 2:
        raise ValueError(f"steps={steps}: need at least 2 (the two endpoints)")
    a = np.asarray(z_a, dtype=np.float64).reshape(-1)
    b = np.asarray(z_b, dtype=np.float64).reshape(-1)
    t = np.linspace(0.0, 1.0, steps)
    cos = np.dot(a, b) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        path = (1 - t)[:, None] * a + t[:, None] * b
    else:
        wa = np.sin((1 - t) * omega) / np.sin(omega)
        wb = np.sin(t * omega) / np.sin(omega)
        path = wa[:, None] * a + wb[:, None] * b
    path[0], path[-1] = a, b  # exact endpoints, whatever the round-off
    return path


def _two_means(vae, image_a, image_b) -> tuple[np.ndarray, np.ndarray]:
    z = encode_means(
        vae,
        np.concatenate([as_model_images(vae, image_a), as_model_images(vae, image_b)]),
    )
    return z[0].astype(np.float64), z[1].astype(np.float64)


def slerp_faces(vae, image_a, image_b, steps: int = 8) -> np.ndarray:
    """Decode the great-circle path between the latent means of two faces.

    It keeps the endpoints' norm (exactly when the two have the same norm, in
    between when they differ). It does not move the path to the norm of a typical
    prior sample (about sqrt(D)): it only avoids the dip in norm of the straight
    line between two far-apart codes, which passes closer to the origin than
    either endpoint.

    Args:
        image_a, image_b: (H, W, 3) or (1, H, W, 3) faces (uint8 or model range).
        steps: images on the path, endpoints included (>= 2).

    Returns:
        (steps, H, W, 3) float32; the first and last are the reconstructions of
        ``image_a`` and ``image_b``.
    """
    return decode(vae, slerp(*_two_means(vae, image_a, image_b), steps))


def _as_z(vae, image_or_z) -> np.ndarray:
    array = np.asarray(image_or_z)
    dim = latent_dim(vae)
    if array.ndim == 1 or (array.ndim == 2 and array.shape == (1, dim)):
        return array.reshape(dim).astype(np.float32)
    return encode_means(vae, as_model_images(vae, array))[0]


def latent_traversal(
    vae, image_or_z, dims, values=(-3, -2, -1, 0, 1, 2, 3)
) -> np.ndarray:
    """Set one latent coordinate at a time to each of ``values``, the rest fixed.

    Args:
        vae: the trained VAE.
        image_or_z: a face ((H, W, 3) or (1, H, W, 3)), whose z_mean is the start,
            or a latent vector (D,).
        dims: latent coordinates to vary, e.g. (0, 1, 2).
        values: what each coordinate is set to, in prior standard deviations.

    Returns:
        (len(dims), len(values), H, W, 3) float32: row i varies ``dims[i]``.
    """
    z = _as_z(vae, image_or_z)
    dims, values = list(dims), np.asarray(values, dtype=np.float32)
    bad = [d for d in dims if not 0 <= d < len(z)]
    if bad:
        raise ValueError(f"dims {bad} out of range: the latent space has {len(z)} dims")
    batch = np.repeat(z[None], len(dims) * len(values), axis=0)
    for row, dim in enumerate(dims):
        batch[row * len(values) : (row + 1) * len(values), dim] = values
    images = decode(vae, batch)
    return images.reshape(len(dims), len(values), *images.shape[1:])


def latent_grid_2d(vae, n: int = 15, data=None, quantiles=GRID_QUANTILES, z_mean=None):
    """Decode an n x n grid over a 2-D slice of the latent space.

    With ``latent_dim == 2`` the grid is exact: z1 and z2 run over the prior's
    quantiles ``norm.ppf(linspace(0.05, 0.95, n))``. Otherwise it spans the two
    leading principal directions of the encoded ``data`` (PCA on z_mean), at the same
    quantiles scaled by each direction's standard deviation, every other coordinate
    at the data mean.

    Args:
        vae: the trained VAE.
        n: grid side.
        data: images (see ``encode_means``); required when latent_dim > 2.
        quantiles: (low, high) prior quantiles at the grid's edges.
        z_mean: their encoded means, if already computed (then ``data`` is unused).

    Returns:
        (n, n, H, W, 3) float32; row 0 is the largest second coordinate (top of the
        plot), column 0 the smallest first coordinate.
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


# Attribute vectors --------------------------------------------------------------------
def attribute_index(name: str) -> int:
    """Return the column of attribute ``name`` in CelebA's 40-attribute table."""
    names = list(ATTRIBUTE_NAMES)
    if name not in names:
        raise ValueError(
            f"unknown attribute {name!r}: choose one of {', '.join(names)}"
        )
    return names.index(name)


def attribute_vector(vae, images, attrs, name: str, z_mean=None) -> np.ndarray:
    """Return mean z_mean of faces with attribute ``name`` minus mean of those without.

    Args:
        vae: the trained VAE.
        images: (N, H, W, 3) faces (uint8 or model range), or a dataset.
        attrs: (N, 40) attributes, +1 / -1, columns in ``ATTRIBUTE_NAMES`` order.
        name: e.g. "Smiling", "Eyeglasses".
        z_mean: (N, D) precomputed means, to skip encoding.

    Returns:
        (D,) float32 vector: add it to a face's latent to "add" the attribute.

    Raises:
        LabError: no face has the attribute, or every face has it.
    """
    attrs = np.asarray(attrs)
    has = attrs[:, attribute_index(name)] > 0
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
    """Decode each face's z_mean plus ``strength * vector`` for every strength.

    Args:
        vae: the trained VAE.
        images: (N, H, W, 3) or (H, W, 3) faces.
        vector: (D,) from ``attribute_vector``.
        strengths: multiples of the vector; 0 gives the plain reconstruction.

    Returns:
        (N, len(strengths), H, W, 3) float32: one strip per face.
    """
    z = encode_means(vae, as_model_images(vae, images))
    strengths = np.asarray(strengths, dtype=np.float32)
    shifted = z[:, None, :] + strengths[None, :, None] * np.asarray(vector)[None, None]
    images = decode(vae, shifted.reshape(-1, z.shape[1]))
    return images.reshape(len(z), len(strengths), *images.shape[1:])


# A run's cached faces, and every exploration figure ----------------------------
def _load_split_images(run, split: str, n: int | None):
    """Return (uint8 images (n, H, W, 3), attrs (n, 40)) of a run's cached split."""
    if run.cache_dir is None:
        raise LabError(
            f"{run.paths.root}/run.json does not name the cache it trained on: "
            "re-run training, or pass a run trained by `python -m helpers train`"
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

    The prior samples and the straight-line path are drawn by the functions you
    wrote in 05_generate (06 passes them from your assembled parts); without
    them, by the lab's reference (not in the student release).

    Args:
        vae: the trained VAE.
        out_dir: folder for the PNGs (created).
        value_range: the model's pixel range.
        train: (N, H, W, 3) training faces, for the GMM and the 2-D grid's PCA.
        val: (M, H, W, 3) held-out faces (M >= 2), for reconstructions and paths.
        val_attrs: (M, 40) their attributes, for the attribute vectors.
        seed: seeds the samples and the mixture.
        sample_faces: ``sample_faces(vae, n, seed)`` (yours, from 05).
        interpolate_faces: ``interpolate_faces(vae, a, b, steps)`` (yours, from 05).
    """
    if sample_faces is None or interpolate_faces is None:
        from helpers.student import solution_module  # not in the student release

        reference = solution_module("sample_faces", "interpolate_faces")
        sample_faces = sample_faces or reference.sample_faces
        interpolate_faces = interpolate_faces or reference.interpolate_faces
    out, vr = Path(out_dir), value_range
    prior = sample_in_batches(sample_faces, vae, 64, seed=seed)
    paths = [save_grid(prior, out / "prior_samples.png", value_range=vr)]
    z_train = encode_means(vae, train)  # once, for the GMM and the 2-D grid's PCA
    gmm = fit_latent_gmm(vae, train, seed=seed, z_mean=z_train)
    paths.append(
        save_grid(
            sample_gmm(vae, gmm, 64, seed=seed), out / "gmm_samples.png", value_range=vr
        )
    )
    shown = val[:8]
    paths.append(
        save_image_rows(
            [as_model_images(vae, shown), reconstruct(vae, shown)],
            out / "reconstructions.png",
            value_range=vr,
        )
    )
    a, b = as_model_images(vae, val[:2])
    linear = np.asarray(interpolate_faces(vae, a, b, 10), dtype=np.float32)
    paths.append(
        save_image_rows(
            [linear, slerp_faces(vae, a, b, 10)],
            out / "interpolation.png",
            value_range=vr,
        )
    )
    dims = list(range(min(8, latent_dim(vae))))
    paths.append(
        save_image_rows(
            list(latent_traversal(vae, a, dims)), out / "traversal.png", value_range=vr
        )
    )
    grid = latent_grid_2d(vae, 15, data=train, z_mean=z_train)
    paths.append(
        save_image_rows(list(grid), out / "latent_grid_2d.png", value_range=vr)
    )
    z_val = encode_means(vae, val)
    for name in ("Smiling", "Eyeglasses"):
        try:
            vector = attribute_vector(vae, val, val_attrs, name, z_mean=z_val)
        except LabError as error:
            print(f"skipped the {name} strip: {error}")
            continue
        strips = apply_attribute(vae, val[:6], vector)
        paths.append(
            save_image_rows(list(strips), out / f"attribute_{name}.png", value_range=vr)
        )
    return paths
