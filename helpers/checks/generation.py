"""Self-checks for 05_generate: prior samples, the latent grid, interpolation."""

from __future__ import annotations

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, _StandIn
from helpers.checks._common import self_check


def _split_samples(result):
    """(images, z or None) from what sample_faces returned."""
    if isinstance(result, dict):
        z = _numpy(result["z"]) if "z" in result else None
        return _numpy(result.get("images")), z
    if isinstance(result, (tuple, list)) and len(result) == 2:
        return _numpy(result[0]), _numpy(result[1])
    return _numpy(result), None


@self_check("sample_faces")
def check_prior_samples(fn, vae, n: int = 16) -> None:
    """Check ``fn(vae, n, seed=s)``: z ~ N(0, I) decoded by ``vae.decoder`` to (n,
    H, W, 3) images in ``vae.value_range``, or ``(images, z)`` (z is tested too);
    the same seed repeats them, another changes them."""
    decoder = vae.decoder
    dim = int(decoder.inputs[0].shape[-1])
    shape = tuple(decoder.outputs[0].shape[1:])
    low, high = getattr(vae, "value_range", (0.0, 1.0))
    images, z = _split_samples(_call(fn, vae, n, seed=0))
    if images.shape == (n, dim):
        raise CheckFailed(
            f"you returned z, shape {images.shape}: decode it, vae.decoder(z)"
        )
    if images.shape != (n, *shape):
        raise CheckFailed(
            f"images have shape {images.shape}, expected {(n, *shape)}: "
            f"draw z with shape (n, latent_dim) = ({n}, {dim}), decode it"
        )
    if images.min() < low - 1e-5 or images.max() > high + 1e-5:
        raise CheckFailed(
            f"values in [{images.min():.2f}, {images.max():.2f}], outside "
            f"[{low:g}, {high:g}]: return the decoder's output unchanged"
        )
    if np.allclose(images, images[:1], atol=1e-6):
        raise CheckFailed("all faces are identical: draw a z of shape (n, latent_dim)")
    if not np.allclose(_split_samples(_call(fn, vae, n, seed=0))[0], images, atol=1e-5):
        raise CheckFailed(
            "the same seed gave different faces: pass the seed on, e.g. "
            "keras.random.normal((n, latent_dim), seed=seed)"
        )
    if np.allclose(_split_samples(_call(fn, vae, n, seed=1))[0], images, atol=1e-6):
        raise CheckFailed("seeds 0 and 1 gave the same faces: draw z with the seed")
    many, z = _split_samples(_call(fn, vae, 256, seed=2))
    if z is not None:
        if z.shape != (256, dim):
            raise CheckFailed(f"z has shape {z.shape}, expected (n, latent_dim)")
        mean, std = float(z.mean()), float(z.std())
        if abs(mean) > 0.1 or abs(std - 1) > 0.1:
            raise CheckFailed(
                f"z has mean {mean:.2f} and std {std:.2f}: sample the prior N(0, "
                f"I) with keras.random.normal((n, latent_dim)), unscaled (not "
                f"uniform, not the encoder's codes)"
            )
    else:
        rng = np.random.default_rng(3)
        reference = _numpy(decoder(rng.normal(size=(256, dim)).astype(np.float32)))
        ratio = float(many.std(0).mean() / max(reference.std(0).mean(), 1e-12))
        if not 0.6 < ratio < 1.6:
            raise CheckFailed(
                f"the faces vary {ratio:.2f} times as much as faces decoded from "
                f"N(0, I): sample z with keras.random.normal((n, latent_dim)), "
                f"mean 0, std 1"
            )
    _passed(
        f"check_prior_samples passed: {n} different faces {shape} in "
        f"[{low:g}, {high:g}] from z ~ N(0, I), repeatable for a seed"
    )


class _Recorder:
    """A stand-in VAE: its decoder records every z and fills image k (counted over
    all calls) with (k + 1) / 1000; its encoder gives z_mean = mean pixel * (1,
    ..., D) and z_log_var 0."""

    def __init__(self, dim=4, size=8):
        self.dim, self.size, self.zs = dim, size, []
        self.value_range = (0.0, 1.0)
        self.decoder = _StandIn(self.decode, (None, dim), (None, size, size, 3))
        self.encoder = _StandIn(self.encode)

    def decode(self, z):
        z = np.array(_numpy(z), dtype="float64")
        if z.ndim != 2 or z.shape[1] != self.dim:
            raise ValueError(
                f"the decoder takes z of shape (batch, {self.dim}), got {z.shape}"
            )
        fill = (np.arange(len(self.zs), len(self.zs) + len(z)) + 1) / 1000.0
        self.zs.extend(z)
        shape = (len(z), self.size, self.size, 3)
        return (fill[:, None, None, None] * np.ones(shape)).astype("float32")

    def encode(self, images):
        images = np.asarray(_numpy(images), dtype="float32")
        if images.ndim != 4:
            raise ValueError(
                f"the encoder takes a batch (B, H, W, 3), got {images.shape}: add "
                "the batch axis, e.g. images[None]"
            )
        mean = images.reshape(len(images), -1).mean(1)[:, None]
        mean = (mean * np.arange(1, self.dim + 1)).astype("float32")
        return [mean, np.zeros_like(mean)]

    def source_of(self, images) -> np.ndarray:
        """The z each returned image was decoded from."""
        index = np.rint(np.asarray(images)[..., 0, 0, 0] * 1000).astype(int) - 1
        if index.min() < 0 or index.max() >= len(self.zs):
            raise CheckFailed(
                "the images returned are not the decoder's output: return what "
                "vae.decoder(z) gave, in the same order"
            )
        return np.asarray(self.zs)[index]


@self_check("latent_grid")
def check_latent_grid(fn, n: int = 5) -> None:
    """Check ``fn(vae, n, dims, span)``: an (n, n, H, W, 3) grid whose row i sets
    ``z[dims[0]] = linspace(-span, span, n)[i]``, column j ``z[dims[1]]``, the rest 0.
    """
    vae, dims, span = _Recorder(dim=4), (1, 3), 1.5
    images = _numpy(_call(fn, vae, n, dims=dims, span=span, what="latent_grid"))
    if images.shape != (n, n, vae.size, vae.size, 3):
        raise CheckFailed(
            f"latent_grid returned shape {images.shape}, expected (n, n, H, W, 3) "
            f"= {(n, n, vae.size, vae.size, 3)}: decode n * n codes and reshape"
        )
    z = vae.source_of(images)  # (n, n, D)
    values = np.linspace(-span, span, n)
    others = [d for d in range(vae.dim) if d not in dims]
    if not np.allclose(z[..., others], 0, atol=1e-5):
        raise CheckFailed(
            "the coordinates outside `dims` are not 0: start from np.zeros((n * n, "
            "latent_dim)) and set only the two chosen ones (the prior's mean "
            "elsewhere)"
        )
    rows, cols = z[..., dims[0]], z[..., dims[1]]
    if not (np.allclose(rows, rows[:, :1]) and np.allclose(cols, cols[:1])):
        if np.allclose(rows, rows[:1]) and np.allclose(cols, cols[:, :1]):
            raise CheckFailed(
                "rows and columns are swapped: row i sets z[dims[0]] to the i-th "
                "value, column j sets z[dims[1]] (np.meshgrid(values, values, "
                "indexing='ij'))"
            )
        raise CheckFailed(
            "the grid does not vary one coordinate along the rows and the other "
            "along the columns: row i sets z[dims[0]], column j z[dims[1]]"
        )
    if np.allclose(rows[:, 0], cols[0]) and not np.allclose(rows[:, 0], values):
        raise CheckFailed(
            f"the grid runs over {np.round(rows[:, 0], 3).tolist()}, expected "
            f"np.linspace(-span, span, n) = {np.round(values, 3).tolist()} "
            f"(span={span}): use the span argument"
        )
    if not (np.allclose(rows[:, 0], values) and np.allclose(cols[0], values)):
        raise CheckFailed(
            f"row values {np.round(rows[:, 0], 3).tolist()} and column values "
            f"{np.round(cols[0], 3).tolist()}, expected both "
            f"{np.round(values, 3).tolist()}: np.linspace(-span, span, n), and set "
            "the coordinates named by `dims` (not always 0 and 1)"
        )
    _passed(
        f"check_latent_grid passed: an {n} x {n} grid over z[dims[0]] (rows) and "
        "z[dims[1]] (columns), the other coordinates at 0"
    )


@self_check("interpolate_faces")
def check_interpolation(fn, steps: int = 6) -> None:
    """Check ``fn(vae, image_a, image_b, steps)``: (steps, H, W, 3) faces on the
    straight line between the two faces' z_mean, ends included, in equal steps."""
    vae = _Recorder(dim=4)
    a, b = (np.full((vae.size, vae.size, 3), v, "float32") for v in (0.2, 0.8))
    images = _numpy(_call(fn, vae, a, b, steps, what="interpolate_faces"))
    if images.shape != (steps, vae.size, vae.size, 3):
        raise CheckFailed(
            f"interpolate_faces returned shape {images.shape}, expected (steps, H, "
            f"W, 3) = {(steps, vae.size, vae.size, 3)}"
        )
    z = vae.source_of(images)
    z_a, z_b = (np.arange(1, vae.dim + 1) * v for v in (0.2, 0.8))
    t = (z[:, 0] - z_a[0]) / (z_b[0] - z_a[0])
    on_line = np.allclose(z, (1 - t)[:, None] * z_a + t[:, None] * z_b, atol=1e-4)
    ends = np.allclose(z[0], z_a, atol=1e-4) and np.allclose(z[-1], z_b, atol=1e-4)
    if on_line and np.allclose(z[0], z_b, atol=1e-4):
        raise CheckFailed(
            "the path runs from b to a: start at face a's code (t = 0) and end at "
            "face b's (t = 1)"
        )
    if not ends and on_line:
        raise CheckFailed(
            "the path does not start at face a's code and end at face b's: "
            "include both ends, t = np.linspace(0, 1, steps)"
        )
    if not ends:
        raise CheckFailed(
            "the first and last images are not decoded from the two faces' z_mean: "
            "encode them (vae.encoder(images) gives [z_mean, z_log_var]) and use "
            "z_mean itself, not a sample, so the path is repeatable"
        )
    if not on_line:
        raise CheckFailed(
            "the codes between the ends leave the straight line: z = (1 - t) * "
            "z_a + t * z_b"
        )
    if not np.allclose(np.diff(t), 1 / (steps - 1), atol=1e-4):
        raise CheckFailed(
            f"the steps are t = {np.round(t, 3).tolist()}: use equal steps from 0 "
            "to 1 in order, np.linspace(0, 1, steps)"
        )
    _passed(
        f"check_interpolation passed: {steps} faces on the straight line from "
        "z_mean(a) to z_mean(b), ends included"
    )
