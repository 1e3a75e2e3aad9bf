"""Tests for helpers.generate: sampling, paths through the latent space, attribute
vectors (on a VAE trained briefly on the generated slice) and the CLI commands."""

from __future__ import annotations

import types

import numpy as np
import pytest
from PIL import Image

from helpers import generate
from helpers.celeba import ATTRIBUTE_NAMES
from helpers.config import VAEConfig
from helpers.errors import LabError


# Models ------------------------------------------------------------------------------
def tiny_vae(latent_dim=8, image_size=16, seed=0):
    """An untrained VAE with random weights (enough to test the plumbing)."""
    import keras

    from helpers.student import build_student_vae, solution_module

    keras.utils.set_random_seed(seed)
    config = VAEConfig(
        image_size=image_size, latent_dim=latent_dim, filters=(4, 8, 8), seed=seed
    )
    return build_student_vae(solution_module(), config)


class LinearVAE:
    """A stand-in VAE: z = the first D pixel values, decode(z) = z (for exact maths)."""

    value_range = (0.0, 1.0)

    def __init__(self, dim):
        self.decoder = types.SimpleNamespace(
            inputs=[types.SimpleNamespace(shape=(None, dim))]
        )
        self.dim = dim

    def encode(self, images):
        z = np.asarray(images).reshape(len(images), -1)[:, : self.dim]
        return z, np.zeros_like(z)

    def decode(self, z):
        return np.asarray(z)


@pytest.fixture(scope="module")
def vae8():
    return tiny_vae(latent_dim=8)


# Sampling ----------------------------------------------------------------------------
def test_decode_batches_and_returns_float32(vae8):
    z = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    a = generate.decode(vae8, z, batch_size=2)
    assert a.shape == (5, 16, 16, 3) and a.dtype == np.float32
    np.testing.assert_allclose(a, np.asarray(vae8.decode(z)), atol=1e-6)


def test_gmm_samples_follow_the_encoded_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[4.0, 0.0], [-4.0, 0.0], [0.0, 4.0]])
    z = np.concatenate([c + 0.1 * rng.standard_normal((100, 2)) for c in centers])
    fake = LinearVAE(2)
    gmm = generate.fit_latent_gmm(fake, None, n_components=3, z_mean=z)
    assert gmm.covariance_type == "full" and gmm.n_components == 3
    samples = generate.sample_gmm(fake, gmm, 600, seed=1)
    assert samples.shape == (600, 2)
    nearest = np.linalg.norm(samples[:, None] - centers[None], axis=-1).min(axis=1)
    assert np.percentile(nearest, 99) < 0.6  # no sample in the holes between clusters
    counts = np.bincount(
        np.linalg.norm(samples[:, None] - centers[None], axis=-1).argmin(axis=1),
        minlength=3,
    )
    assert counts.min() > 150
    np.testing.assert_array_equal(samples, generate.sample_gmm(fake, gmm, 600, seed=1))


def test_gmm_fits_few_images_in_many_dims(vae8):
    images = np.random.default_rng(1).random((12, 16, 16, 3)).astype(np.float32)
    gmm = generate.fit_latent_gmm(vae8, images, n_components=10)
    assert gmm.n_components == 6  # clipped to N // 2
    assert gmm.reg_covar > 1e-6  # regularised: 2 images per component in 8 dims
    assert generate.sample_gmm(vae8, gmm, 4).shape == (4, 16, 16, 3)


# Paths through the latent space ------------------------------------------------------
def test_slerp_endpoints_are_the_reconstructions(vae8):
    rng = np.random.default_rng(2)
    a, b = rng.random((2, 16, 16, 3)).astype(np.float32)
    path = generate.slerp_faces(vae8, a, b, steps=6)
    assert path.shape == (6, 16, 16, 3)
    np.testing.assert_allclose(
        path[0], np.asarray(vae8.reconstruct(a[None]))[0], atol=1e-5
    )
    np.testing.assert_allclose(
        path[-1], np.asarray(vae8.reconstruct(b[None]))[0], atol=1e-5
    )
    assert not np.allclose(path[1], path[0], atol=1e-4)


def test_slerp_keeps_the_norm_between_equal_norm_endpoints():
    fake = LinearVAE(12)
    a = np.zeros((1, 2, 2, 3), np.float32)
    b = np.zeros((1, 2, 2, 3), np.float32)
    a.reshape(-1)[0], b.reshape(-1)[1] = 3.0, 3.0
    slerp = generate.slerp_faces(fake, a, b, steps=5)
    np.testing.assert_allclose(np.linalg.norm(slerp, axis=1), 3.0, rtol=1e-6)
    linear = (a.reshape(-1)[:12] + b.reshape(-1)[:12]) / 2  # the straight midpoint
    assert np.linalg.norm(slerp[2]) > np.linalg.norm(linear)


def test_traversal_sets_one_coordinate_per_row():
    fake = LinearVAE(4)
    z = np.array([0.5, -0.5, 1.0, 2.0], np.float32)
    out = generate.latent_traversal(fake, z, dims=[1, 3], values=[-1, 0, 1])
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out[0, :, 1], [-1, 0, 1])
    np.testing.assert_array_equal(out[1, :, 3], [-1, 0, 1])
    np.testing.assert_array_equal(out[0, :, [0, 2, 3]], np.tile(z[[0, 2, 3]], (3, 1)).T)
    with pytest.raises(ValueError, match="out of range"):
        generate.latent_traversal(fake, z, dims=[4])


def test_traversal_of_an_image_on_a_real_model(vae8):
    image = np.random.default_rng(3).random((16, 16, 3)).astype(np.float32)
    out = generate.latent_traversal(vae8, image, dims=[0, 5], values=(-2, 0, 2))
    assert out.shape == (2, 3, 16, 16, 3)


def test_latent_grid_2d_is_the_exact_prior_quantile_grid_for_two_dims():
    from scipy.stats import norm

    vae2 = tiny_vae(latent_dim=2)
    grid = generate.latent_grid_2d(vae2, n=5)
    assert grid.shape == (5, 5, 16, 16, 3)
    low, high = norm.ppf(0.05), norm.ppf(0.95)
    corners = generate.decode(vae2, [[low, high], [high, low], [0.0, 0.0]])
    np.testing.assert_allclose(grid[0, 0], corners[0], atol=1e-5)  # top left
    np.testing.assert_allclose(grid[4, 4], corners[1], atol=1e-5)  # bottom right
    np.testing.assert_allclose(grid[2, 2], corners[2], atol=1e-5)  # the origin


def test_latent_grid_2d_follows_principal_directions_above_two_dims(vae8):
    data = np.random.default_rng(4).random((20, 16, 16, 3)).astype(np.float32)
    grid = generate.latent_grid_2d(vae8, n=3, data=data)
    assert grid.shape == (3, 3, 16, 16, 3)
    center = generate.decode(vae8, generate.encode_means(vae8, data).mean(0)[None])[0]
    np.testing.assert_allclose(grid[1, 1], center, atol=1e-5)  # the data mean
    z = generate.encode_means(vae8, data)
    np.testing.assert_allclose(generate.latent_grid_2d(vae8, n=3, z_mean=z), grid)
    with pytest.raises(ValueError, match="pass data="):
        generate.latent_grid_2d(vae8, n=3)


# Attribute vectors -------------------------------------------------------------------
def test_attribute_vector_is_the_difference_of_means():
    fake = LinearVAE(3)
    images = np.zeros((4, 1, 1, 3), np.float32)
    images[:, 0, 0] = [[1, 0, 0], [3, 0, 0], [0, 2, 0], [0, 4, 0]]
    attrs = -np.ones((4, 40), np.int8)
    attrs[:2, ATTRIBUTE_NAMES.index("Smiling")] = 1
    vector = generate.attribute_vector(fake, images, attrs, "Smiling")
    np.testing.assert_allclose(vector, [2 - 0, 0 - 3, 0])
    strips = generate.apply_attribute(fake, images[:1], vector, strengths=(-1, 0, 2))
    np.testing.assert_allclose(strips[0], [[-1, 3, 0], [1, 0, 0], [5, -6, 0]])
    with pytest.raises(LabError, match="0 of 4 faces have it"):
        generate.attribute_vector(fake, images, attrs, "Eyeglasses")
    with pytest.raises(ValueError, match="unknown attribute 'Smile'"):
        generate.attribute_vector(fake, images, attrs, "Smile")


def mouth_bands(config):
    """Pixel rows of the teeth and of the mouth's dark inside, and the mouth's columns.

    vaelab.synthetic draws a smile (70 % of smiles open) as a dark red chord below
    the mouth line y = eye_y + 40 (about 152 in the 178x218 frame, x centred at 89)
    with white teeth in its upper part (y to y + 4) and the dark opening below them
    (y + 4 to y + 9); a face that does not smile has only a thin lip line there. So
    smiling makes the teeth band brighter than the band below it.
    """
    left, top, width, _ = config.crop
    scale = config.image_size / width

    def px(start, stop, origin):
        first = int(round((start - origin) * scale))
        return slice(first, max(first + 1, int(round((stop - origin) * scale))))

    return px(152, 156, top), px(157, 161, top), px(79, 99, left)


def test_smile_vector_changes_the_mouth_the_way_the_drawing_does(trained_lab):
    vae, config = trained_lab.vae, trained_lab.config
    teeth, inside, cols = mouth_bands(config)

    def teeth_contrast(images):  # (N,) teeth band minus the band below, grey
        grey = np.asarray(images).mean(axis=-1)
        return grey[:, teeth, cols].mean((1, 2)) - grey[:, inside, cols].mean((1, 2))

    smile = trained_lab.train_attrs[:, ATTRIBUTE_NAMES.index("Smiling")] > 0
    real = teeth_contrast(generate.as_model_images(vae, trained_lab.train))
    real_effect = real[smile].mean() - real[~smile].mean()
    assert real_effect > 0.1  # the drawing: white teeth above a dark opening
    vector = generate.attribute_vector(
        vae, trained_lab.train, trained_lab.train_attrs, "Smiling"
    )
    strips = generate.apply_attribute(vae, trained_lab.val, vector, (-1.5, 1.5))
    made = teeth_contrast(strips[:, 1]) - teeth_contrast(strips[:, 0])
    print(
        f"teeth contrast: smiling minus not {real_effect:+.3f} on real faces; "
        f"+1.5 minus -1.5 smile vectors {made.mean():+.3f} (positive for "
        f"{(made > 0).mean():.0%} of {len(made)} faces)"
    )
    assert (made > 0).mean() >= 0.9
    assert made.mean() > 0.1 * real_effect


# Command line ------------------------------------------------------------------------
def test_sample_command_writes_a_grid(trained_lab, tmp_path, capsys):
    from vaelab.cli import main

    out = tmp_path / "prior.png"
    assert (
        main(
            [
                "sample",
                "--run-dir",
                str(trained_lab.run_dir),
                "--n",
                "16",
                "--out",
                str(out),
                "--temperature",
                "0.8",
            ]
        )
        == 0
    )
    size = 4 * (32 + 2) + 2
    assert Image.open(out).size == (size, size)
    assert "16 faces sampled from N(0, I) at temperature 0.8" in capsys.readouterr().out
    out = tmp_path / "gmm.png"
    assert (
        main(
            [
                "sample",
                "--run-dir",
                str(trained_lab.run_dir),
                "--n",
                "9",
                "--out",
                str(out),
                "--gmm",
            ]
        )
        == 0
    )
    assert Image.open(out).size == (3 * 34 + 2,) * 2
    assert "component GMM fitted to 400 faces" in capsys.readouterr().out


def test_sample_command_explains_a_missing_run(tmp_path, capsys):
    from vaelab.cli import main

    assert (
        main(["sample", "--run-dir", str(tmp_path), "--out", str(tmp_path / "x.png")])
        == 2
    )
    assert "is not a run directory" in capsys.readouterr().err


def test_explore_command_writes_every_figure(trained_lab, tmp_path, capsys):
    from vaelab.cli import main

    assert (
        main(
            [
                "explore",
                "--run-dir",
                str(trained_lab.run_dir),
                "--out",
                str(tmp_path / "fig"),
                "--n",
                "200",
            ]
        )
        == 0
    )
    names = sorted(p.name for p in (tmp_path / "fig").iterdir())
    assert names == [
        "attribute_Eyeglasses.png",
        "attribute_Smiling.png",
        "gmm_samples.png",
        "interpolation.png",
        "latent_grid_2d.png",
        "prior_samples.png",
        "reconstructions.png",
        "traversal.png",
    ]
    out = capsys.readouterr().out
    assert "wrote 8 figures:" in out and "interpolation.png" in out
    assert Image.open(tmp_path / "fig" / "reconstructions.png").size == (
        8 * 34 + 2,
        2 * 34 + 2,
    )
    assert (
        Image.open(tmp_path / "fig" / "latent_grid_2d.png").size == (15 * 34 + 2,) * 2
    )


def test_image_rows_stacks_strips():
    from helpers.plots import image_rows

    rows = [np.zeros((3, 4, 4, 3), np.float32), np.ones((3, 4, 4, 3), np.float32)]
    grid = image_rows(rows, pad=1)
    assert grid.shape == (2 * 5 + 1, 3 * 5 + 1, 3) and grid.dtype == np.uint8
    assert grid[1, 1, 0] == 0 and grid[6, 1, 0] == 255
    with pytest.raises(ValueError, match="same number of images"):
        image_rows([rows[0], rows[1][:2]])
