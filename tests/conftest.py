"""Shared fixtures: the generated slice in both layouts, its cache, a trained model."""

from __future__ import annotations

import types

import numpy as np
import pytest

from helpers.config import preset

# (left, top, width, height) in the 178x218 frame: nose tip, mouth and chin.
LOWER_FACE_CROP = (59, 119, 60, 60)


@pytest.fixture(scope="session")
def slice_dir(tmp_path_factory):
    """A 200-image generated slice in CelebA's official layout."""
    from vaelab.synthetic import make_slice

    return make_slice(
        tmp_path_factory.mktemp("official"), n=200, layout="official", seed=0
    )


@pytest.fixture(scope="session")
def kaggle_slice_dir(tmp_path_factory):
    """A 200-image generated slice in the Kaggle mirror's layout."""
    from vaelab.synthetic import make_slice

    return make_slice(tmp_path_factory.mktemp("kaggle"), n=200, layout="kaggle", seed=0)


@pytest.fixture(scope="session")
def cache_dir(slice_dir, tmp_path_factory):
    """The official slice decoded into the uint8 cache at 64x64."""
    from helpers.cache import prepare_cache

    out = tmp_path_factory.mktemp("cache")
    prepare_cache(slice_dir, out, progress=False)
    return out


@pytest.fixture(scope="session")
def trained_lab(tmp_path_factory):
    """A 500-face generated slice, its cache, and a smoke VAE trained on it briefly.

    Shared by test_generate.py and test_metrics.py; built once per session.
    """
    return _build_lab(tmp_path_factory.mktemp("lab_f"))


def _build_lab(root):
    import keras

    from helpers import generate
    from helpers.cache import load_split, prepare_cache
    from helpers.student import build_student_vae, solution_module
    from helpers.training import train
    from vaelab.synthetic import make_slice

    slice_dir = make_slice(root / "slice", n=500, layout="official", seed=0)
    # A 32-pixel lower-face crop (mouth and chin) and small batches: the mouth covers
    # a good part of the image and a few hundred steps learn it (~10 s on 2 cores).
    config = preset(
        "smoke",
        crop=LOWER_FACE_CROP,
        image_size=32,
        latent_dim=16,
        epochs=10,
        batch_size=8,
        beta=0.5,
        learning_rate=1e-3,
        train_limit=None,
        val_limit=None,
        sample_interval=10,
    )
    cache_dir = root / "cache"
    prepare_cache(
        slice_dir,
        cache_dir,
        image_size=config.image_size,
        crop=config.crop,
        progress=False,
    )
    run_dir = root / "run"
    history = train(config, cache_dir, run_dir, verbose=0)
    train_u8, train_attrs, _ = load_split(cache_dir, "train")
    val_u8, val_attrs, _ = load_split(cache_dir, "validation")

    def fit_direct(beta, epochs=1):
        """Train a fresh VAE on the cached training faces with plain fit()."""
        keras.utils.set_random_seed(0)
        vae = build_student_vae(solution_module(), config.replace(beta=beta))
        x = generate.as_model_images(vae, np.asarray(train_u8))
        vae.fit(x, epochs=epochs, batch_size=32, verbose=0, shuffle=True)
        return vae

    return types.SimpleNamespace(
        run_dir=run_dir,
        cache_dir=cache_dir,
        config=config,
        vae=history.model,
        train=np.asarray(train_u8),
        train_attrs=np.asarray(train_attrs),
        val=np.asarray(val_u8),
        val_attrs=np.asarray(val_attrs),
        fit_direct=fit_direct,
    )
