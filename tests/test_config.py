"""Tests for helpers.config: validation messages, presets, copies and round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers.config import PRESETS, SMOKE_ENV, VAEConfig, preset, smoke_mode


@pytest.mark.parametrize("name", ["smoke", "cpu", "colab"])
def test_presets_are_valid_and_named(name):
    config = preset(name)
    assert config == PRESETS[name]
    assert config.name == name
    assert config.image_size % 2 ** len(config.filters) == 0
    assert config.bottleneck_size >= 2
    assert config.image_shape == (64, 64, 3)


def test_preset_values_the_docs_rely_on():
    smoke = preset("smoke")
    assert smoke.filters == (16, 32, 64)
    assert (smoke.train_limit, smoke.val_limit, smoke.epochs) == (512, 128, 2)
    assert preset("cpu").filters == (32, 64, 128, 256)
    assert (preset("colab").train_limit, preset("colab").val_limit) == (None, None)


def test_preset_overrides_and_unknown_preset():
    config = preset("cpu", latent_dim=64, beta=4.0)
    assert (config.latent_dim, config.beta, config.name) == (64, 4.0, "cpu")
    assert preset("cpu").latent_dim == 128  # the preset itself is unchanged
    with pytest.raises(ValueError, match=r"unknown preset 'gpu': .*smoke, cpu, colab"):
        preset("gpu")
    with pytest.raises(ValueError, match=r"VAEConfig.latent_dim=1 "):
        preset("smoke", latent_dim=1)


# (overrides, field named in the message, words of the allowed range)
BAD_VALUES = [
    ({"latent_dim": 0}, "latent_dim=0", "between 2 and 512"),
    ({"latent_dim": 513}, "latent_dim=513", "between 2 and 512"),
    ({"beta": -0.5}, "beta=-0.5", "finite number >= 0"),
    ({"beta": float("nan")}, "beta=nan", "finite number >= 0"),
    ({"beta": float("inf")}, "beta=inf", "finite number >= 0"),
    ({"image_size": 60}, "image_size=60", "multiple of 16 (2 ** 4 layers)"),
    ({"image_size": 16}, "image_size=16", "at least 32"),
    ({"image_size": 8, "filters": (8, 8, 8)}, "image_size=8", "between 16 and 256"),
    ({"filters": (32, 64)}, "filters=(32, 64)", "3 or 4 positive channel counts"),
    ({"filters": (8, 8, 8, 8, 8)}, "filters=(8, 8, 8, 8, 8)", "3 or 4 positive"),
    ({"filters": (8, 0, 8)}, "filters=(8, 0, 8)", "3 or 4 positive"),
    ({"crop": (100, 39, 140, 140)}, "crop=(100, 39, 140, 140)", "inside a 178x218"),
    ({"crop": (0, 100, 140, 140)}, "crop=(0, 100, 140, 140)", "inside a 178x218"),
    ({"crop": (-1, 0, 140, 140)}, "crop=(-1, 0, 140, 140)", "positive size"),
    ({"crop": (0, 0, 140)}, "crop=(0, 0, 140)", "exactly 4 numbers"),
    (
        {"reconstruction_loss": "bce", "output_activation": "tanh"},
        "reconstruction_loss='bce'",
        "output_activation='sigmoid'",
    ),
    ({"reconstruction_loss": "l1"}, "reconstruction_loss='l1'", "mse, bce"),
    ({"learning_rate": 0.0}, "learning_rate=0.0", "(0, 1]"),
    ({"batch_size": 0}, "batch_size=0", "between 1 and 4096"),
    ({"train_limit": 0}, "train_limit=0", "None (all images) or >= 1"),
    ({"kernel_size": 9}, "kernel_size=9", "between 1 and 7"),
    # Wrong types get the same clear ValueError, not a TypeError from a comparison.
    ({"latent_dim": "64"}, "latent_dim='64'", "whole number"),
    ({"latent_dim": 64.5}, "latent_dim=64.5", "whole number"),
    ({"batch_size": True}, "batch_size=True", "whole number"),
    ({"beta": "1"}, "beta='1'", "must be a number"),
    ({"filters": 64}, "filters=64", "list or tuple of whole numbers"),
]


@pytest.mark.parametrize("overrides, field, allowed", BAD_VALUES)
def test_bad_value_names_field_and_allowed_range(overrides, field, allowed):
    with pytest.raises(ValueError) as info:
        VAEConfig(**overrides)
    message = str(info.value)
    assert message.startswith(f"VAEConfig.{field} is not allowed: "), message
    assert allowed in message, message


def test_smallest_and_largest_allowed_values():
    VAEConfig(latent_dim=2, image_size=32)
    VAEConfig(latent_dim=512, beta=0.0, crop=(0, 0, 178, 218))
    assert VAEConfig(image_size=16, filters=(8, 8, 8)).bottleneck_size == 2
    assert VAEConfig(image_size=32).bottleneck_size == 2


def test_replace_validates_and_rejects_unknown_fields():
    base = VAEConfig()
    changed = base.replace(latent_dim=16, train_limit=None)
    assert changed.latent_dim == 16 and base.latent_dim == 128
    assert changed.replace() == changed
    with pytest.raises(ValueError, match=r"VAEConfig.latent_dim=1000 .*between 2 and"):
        base.replace(latent_dim=1000)
    with pytest.raises(ValueError, match=r"unknown config field\(s\): lantent_dim"):
        base.replace(lantent_dim=16)
    with pytest.raises(AttributeError):
        base.latent_dim = 3  # frozen


def test_dict_round_trip_is_equal_and_json_ready():
    config = preset("cpu", beta=2.5, crop=(10, 20, 150, 150), train_limit=None)
    data = config.to_dict()
    assert data["crop"] == [10, 20, 150, 150] and data["filters"] == [32, 64, 128, 256]
    assert json.loads(json.dumps(data)) == data
    assert VAEConfig.from_dict(json.loads(json.dumps(data))) == config


def test_numpy_numbers_are_stored_as_plain_python_numbers():
    config = VAEConfig(
        latent_dim=np.int64(8), beta=np.float32(2.0), filters=np.arange(8, 11)
    )
    assert type(config.latent_dim) is int and type(config.beta) is float
    assert config.filters == (8, 9, 10) and type(config.filters[0]) is int
    json.dumps(config.to_dict())  # would raise for NumPy scalars


def test_save_load_round_trip(tmp_path):
    config = preset("smoke", beta=0.25, kernel_initializer="glorot_uniform")
    path = tmp_path / "config.json"
    config.save(path)
    assert VAEConfig.load(path) == config
    assert json.loads(path.read_text())["beta"] == 0.25
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]  # no temp left
    config.replace(beta=3.0).save(path)  # overwrite in place
    assert VAEConfig.load(path).beta == 3.0


def test_from_dict_rejects_unknown_fields_and_bad_values(tmp_path):
    data = VAEConfig().to_dict()
    with pytest.raises(ValueError, match=r"unknown config field\(s\): colour, zeta"):
        VAEConfig.from_dict({**data, "zeta": 1, "colour": 2})
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({**data, "latent_dim": 0}))
    with pytest.raises(ValueError, match=r"VAEConfig.latent_dim=0 "):
        VAEConfig.load(path)
    assert VAEConfig.from_dict({"latent_dim": 8}) == VAEConfig(latent_dim=8)


def test_value_range_follows_output_activation():
    assert VAEConfig().value_range == (0.0, 1.0)
    assert VAEConfig(output_activation="tanh").value_range == (-1.0, 1.0)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("1", True),
        ("true", True),
        (" YES ", True),
        ("On", True),
        ("", False),
        ("0", False),
        ("false", False),
        ("no", False),
        (None, False),
    ],
)
def test_smoke_mode_reads_the_environment(monkeypatch, value, expected):
    assert SMOKE_ENV == "SMOKE"
    if value is None:
        monkeypatch.delenv("SMOKE", raising=False)
    else:
        monkeypatch.setenv("SMOKE", value)
    assert smoke_mode() is expected
