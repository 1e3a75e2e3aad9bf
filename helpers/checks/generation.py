"""Self-checks for 05_generate: prior samples, the latent grid, interpolation."""

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, _stand_in
from helpers.checks._common import self_check


@self_check("sample_faces")
def check_prior_samples(fn, vae, n: int = 16) -> None:
    """Check ``fn(vae, n, seed=s)``: (n, H, W, 3) images (or ``(images, z)``) decoded
    from z ~ N(0, I), in ``vae.value_range``; the same seed repeats them."""
    decoder = vae.decoder
    dim, shape = int(decoder.inputs[0].shape[-1]), tuple(decoder.outputs[0].shape[1:])
    low, high = getattr(vae, "value_range", (0.0, 1.0))

    def sample(count, seed):
        """(images, z or None) from the answer: images, (images, z) or a dict."""
        out = _call(fn, vae, count, seed=seed)
        if isinstance(out, dict):
            out = (out.get("images"), out.get("z"))
        pair = isinstance(out, (tuple, list)) and len(out) == 2
        images, z = out if pair else (out, None)
        return _numpy(images), None if z is None else _numpy(z)

    images = sample(n, 0)[0]
    if images.shape == (n, dim):
        raise CheckFailed(f"you returned z {images.shape}: decode it, vae.decoder(z)")
    if images.shape != (n, *shape):
        raise CheckFailed(
            f"images have shape {images.shape}, expected {(n, *shape)}: draw z with "
            f"shape (n, latent_dim) = ({n}, {dim}), decode it"
        )
    if images.min() < low - 1e-5 or images.max() > high + 1e-5:
        raise CheckFailed(
            f"values in [{images.min():.2f}, {images.max():.2f}], outside [{low:g}, "
            f"{high:g}]: return the decoder's output unchanged"
        )
    if np.allclose(images, images[:1], atol=1e-6):
        raise CheckFailed("all faces are identical: draw a z of shape (n, latent_dim)")
    if not np.allclose(sample(n, 0)[0], images, atol=1e-5):
        raise CheckFailed(
            "the same seed gave different faces: pass the seed on, e.g. "
            "keras.random.normal((n, latent_dim), seed=seed)"
        )
    if np.allclose(sample(n, 1)[0], images, atol=1e-6):
        raise CheckFailed("seeds 0 and 1 gave the same faces: draw z with the seed")
    many, z = sample(256, 2)
    if z is not None and z.shape != (256, dim):
        raise CheckFailed(f"z has shape {z.shape}, expected (n, latent_dim)")
    if z is not None and (abs(z.mean()) > 0.1 or abs(z.std() - 1) > 0.1):
        raise CheckFailed(
            f"z has mean {z.mean():.2f} and std {z.std():.2f}: sample the prior N(0, "
            "I), keras.random.normal((n, latent_dim)), unscaled"
        )
    prior = np.random.default_rng(3).normal(size=(256, dim)).astype(np.float32)
    spread = max(_numpy(decoder(prior)).std(0).mean(), 1e-12)
    ratio = float(many.std(0).mean() / spread)
    if not 0.6 < ratio < 1.6:
        raise CheckFailed(
            f"the faces vary {ratio:.2f} times as much as from z ~ N(0, I): "
            "sample z with keras.random.normal((n, latent_dim))"
        )
    _passed(f"check_prior_samples passed: {n} faces {shape} from N(0, I), seeded")


class _Recorder:
    """A stand-in VAE: its decoder records each z and fills image k with (k + 1) /
    1000; its encoder gives z_mean = mean pixel * (1, ..., D), z_log_var 0."""

    dim, size, value_range = 4, 8, (0.0, 1.0)

    def __init__(self):
        self.zs, self.encoder = [], _stand_in(self.encode)
        self.decoder = _stand_in(self.decode, (None, 4), (None, 8, 8, 3))

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
                "the batch axis (images[None])"
            )
        mean = images.reshape(len(images), -1).mean(1)[:, None]
        mean = (mean * np.arange(1, self.dim + 1)).astype("float32")
        return [mean, np.zeros_like(mean)]

    def source_of(self, images) -> np.ndarray:
        """The z each returned image was decoded from."""
        index = np.rint(np.asarray(images)[..., 0, 0, 0] * 1000).astype(int) - 1
        if index.min() < 0 or index.max() >= len(self.zs):
            raise CheckFailed("return the images vae.decoder(z) gave, in order")
        return np.asarray(self.zs)[index]


@self_check("latent_grid")
def check_latent_grid(fn, n: int = 5) -> None:
    """Check ``fn(vae, n, dims, span)``: (n, n, H, W, 3), row i decoded from
    ``z[dims[0]] = linspace(-span, span, n)[i]``, column j ``z[dims[1]]``, rest 0."""
    vae, dims, span = _Recorder(), (1, 3), 1.5
    images = _numpy(_call(fn, vae, n, dims=dims, span=span, what="latent_grid"))
    if images.shape != (n, n, vae.size, vae.size, 3):
        raise CheckFailed(
            f"latent_grid returned shape {images.shape}, expected (n, n, H, W, 3) "
            f"= {(n, n, vae.size, vae.size, 3)}: decode n * n codes and reshape"
        )
    z = vae.source_of(images)  # (n, n, D)
    values = np.linspace(-span, span, n)
    if not np.allclose(np.delete(z, dims, axis=-1), 0, atol=1e-5):
        raise CheckFailed(
            "the coordinates outside `dims` are not 0: start from np.zeros((n * n, "
            "latent_dim))"
        )
    rows, cols = z[..., dims[0]], z[..., dims[1]]
    if not (np.allclose(rows, rows[:, :1]) and np.allclose(cols, cols[:1])):
        if np.allclose(rows, rows[:1]) and np.allclose(cols, cols[:, :1]):
            raise CheckFailed(
                "rows and columns are swapped: row i sets z[dims[0]] to the i-th "
                "value, column j z[dims[1]] (np.meshgrid(..., indexing='ij'))"
            )
        raise CheckFailed(
            "row i should set z[dims[0]], column j z[dims[1]]: vary one per axis"
        )
    got, want = np.round(rows[:, 0], 3).tolist(), np.round(values, 3).tolist()
    if np.allclose(rows[:, 0], cols[0]) and not np.allclose(rows[:, 0], values):
        raise CheckFailed(
            f"the grid runs over {got}, expected np.linspace(-span, span, n) = {want} "
            f"(span={span}): use the span argument"
        )
    if not (np.allclose(rows[:, 0], values) and np.allclose(cols[0], values)):
        raise CheckFailed(
            f"row values {got} and column values {np.round(cols[0], 3).tolist()}, "
            f"expected both {want}: np.linspace(-span, span, n), and set the "
            "coordinates named by `dims` (not always 0 and 1)"
        )
    _passed(f"check_latent_grid passed: {n} x {n}, z[dims[0]] by z[dims[1]], rest 0")


@self_check("interpolate_faces")
def check_interpolation(fn, steps: int = 6) -> None:
    """Check ``fn(vae, a, b, steps)``: (steps, H, W, 3) faces in equal steps on the
    line from z_mean(a) to z_mean(b), ends included."""
    vae = _Recorder()
    a, b = (np.full((vae.size, vae.size, 3), v, "float32") for v in (0.2, 0.8))
    images = _numpy(_call(fn, vae, a, b, steps, what="interpolate_faces"))
    if images.shape != (steps, vae.size, vae.size, 3):
        raise CheckFailed(
            f"interpolate_faces returned shape {images.shape}, expected (steps, H, W, "
            f"3) = {(steps, vae.size, vae.size, 3)}"
        )
    z = vae.source_of(images)
    z_a, z_b = (np.arange(1, vae.dim + 1) * v for v in (0.2, 0.8))
    t = (z[:, 0] - z_a[0]) / (z_b[0] - z_a[0])
    on_line = np.allclose(z, (1 - t)[:, None] * z_a + t[:, None] * z_b, atol=1e-4)
    ends = np.allclose(z[[0, -1]], [z_a, z_b], atol=1e-4)
    if on_line and np.allclose(z[0], z_b, atol=1e-4):
        raise CheckFailed("the path runs from b to a: start at a (t = 0)")
    if not ends:
        raise CheckFailed(
            "the path does not start at face a's code and end at face b's: include "
            "both ends, t = np.linspace(0, 1, steps)"
            if on_line
            else "the first and last images are not decoded from the two faces' "
            "z_mean: encode them (vae.encoder(images) gives [z_mean, z_log_var]) "
            "and use z_mean itself, not a sample, so the path is repeatable"
        )
    if not on_line:
        raise CheckFailed("the codes leave the line: z = (1 - t) * z_a + t * z_b")
    if not np.allclose(np.diff(t), 1 / (steps - 1), atol=1e-4):
        raise CheckFailed(
            f"the steps are t = {np.round(t, 3).tolist()}: np.linspace(0, 1, steps)"
        )
    _passed(f"check_interpolation passed: {steps} faces from z_mean(a) to z_mean(b)")
