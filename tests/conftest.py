"""Shared fixtures: a generated CelebA-format slice in both layouts, and its cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def slice_dir(tmp_path_factory):
    """A 200-image generated slice in CelebA's official layout."""
    from helpers.synthetic import make_slice

    return make_slice(tmp_path_factory.mktemp("official"), n=200, layout="official", seed=0)


@pytest.fixture(scope="session")
def kaggle_slice_dir(tmp_path_factory):
    """A 200-image generated slice in the Kaggle mirror's layout."""
    from helpers.synthetic import make_slice

    return make_slice(tmp_path_factory.mktemp("kaggle"), n=200, layout="kaggle", seed=0)


@pytest.fixture(scope="session")
def cache_dir(slice_dir, tmp_path_factory):
    """The official slice decoded into the uint8 cache at 64x64."""
    from helpers.cache import prepare_cache

    out = tmp_path_factory.mktemp("cache")
    prepare_cache(slice_dir, out, progress=False)
    return out
