"""What the notebooks tell students to expect holds on a real smoke run.

The notebooks print their expectations from ``helpers/expected.py`` beside the
student's numbers, and nbval (``VAE_LAB_CHECK_EXPECTED=1``) fails a cell whose value
drifts out of range. What no notebook cell runs, 03's "run longer and the KL turns
round", is trained here on the same generated slice.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import expected


def test_expect_prints_the_range_and_fails_only_in_ci(monkeypatch, capsys):
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv(expected.CHECK_ENV, "0")
    assert expected.expect("untrained_mse", 500.0)
    assert not expected.expect("untrained_mse", 5000.0)
    out = capsys.readouterr().out
    assert "✅ on track" in out and "outside it" in out and "on CelebA" in out
    assert expected.expect("first_epochs_kl", [7.0, 4.5, 2.6])
    assert "(falls" in capsys.readouterr().out
    monkeypatch.setenv(expected.CHECK_ENV, "1")
    with pytest.raises(AssertionError, match="'untrained_mse' drifted"):
        expected.expect("untrained_mse", 5000.0)
    monkeypatch.setenv("SMOKE", "0")
    assert not expected.expect("untrained_mse", 5000.0)  # a student's CelebA run
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.setenv(expected.CHECK_ENV, "0")
    low = expected.EXPECTED["encoder_parameters"].smoke[0]
    assert expected.expect("encoder_parameters", low)
    assert f"{low:,}   (generated slice, smoke preset: exactly {low:,};" in (
        capsys.readouterr().out
    )


def test_the_parameter_counts_are_the_designs():
    """02's counts, smoke range and CelebA line, are the design's formula."""
    from helpers.checks.model import decoder_parameter_count, encoder_parameter_count
    from helpers.config import preset

    encoder, decoder = (expected.EXPECTED[k] for k in
                        ("encoder_parameters", "decoder_parameters"))
    smoke = preset("smoke")
    assert encoder.smoke == (encoder_parameter_count(smoke),) * 2
    assert decoder.smoke == (decoder_parameter_count(smoke, 1),
                             decoder_parameter_count(smoke, 5))
    for name, words in (("cpu", "with the cpu preset"), ("colab", "with colab")):
        config = preset(name)
        assert f"{encoder_parameter_count(config):,} {words}" in encoder.celeba
        assert f"{decoder_parameter_count(config, 3):,} {words}" in decoder.celeba


def test_the_untrained_decoder_sits_mid_range_on_the_celeba_presets():
    """02's CelebA line for the untrained decoder: z ~ N(0, I) needs no data, so the
    cpu and colab presets' figure is measured here (two seeds each)."""
    import keras

    from helpers.config import preset
    from vaelab.solution import build_decoder

    assert "0.47 to 0.54" in expected.EXPECTED["untrained_decoder_mean"].celeba
    for name in ("cpu", "colab"):
        config = preset(name)
        low, high = config.value_range
        for seed in (0, 1):
            keras.utils.set_random_seed(seed)
            z = keras.random.normal((8, config.latent_dim), seed=config.seed)
            out = np.asarray(build_decoder(config)(z))
            assert 0.47 <= (out.mean() - low) / (high - low) <= 0.54, (name, seed)


def test_the_kl_falls_then_turns_round_on_the_generated_slice(tmp_path):
    """03's 3.10: on the slice with the smoke preset the KL falls first, then climbs
    above where it started, while the reconstruction keeps falling (20 epochs)."""
    import keras
    from keras import ops

    from helpers.cache import load_split, prepare_cache
    from helpers.config import preset
    from helpers.lab import SMOKE_SLICE_IMAGES
    from vaelab.solution import VAE, build_decoder, build_encoder, kl_divergence
    from vaelab.synthetic import make_slice

    make_slice(tmp_path / "slice", n=SMOKE_SLICE_IMAGES, layout="official", seed=0)
    prepare_cache(tmp_path / "slice", tmp_path / "cache", progress=False)
    config = preset("smoke")
    keras.utils.set_random_seed(config.seed)
    train, _, _ = load_split(tmp_path / "cache", "train")
    faces = np.asarray(train, np.float32) / 255.0
    vae = VAE(build_encoder(config), build_decoder(config), beta=config.beta,
              seed=config.seed)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    untrained = float(ops.mean(kl_divergence(*vae.encode(faces))))
    history = vae.fit(faces, epochs=20, batch_size=config.batch_size, verbose=0).history
    kl, rec = [untrained, *history["kl_loss"]], history["reconstruction_loss"]
    low = int(np.argmin(kl))
    assert 0 < low < len(kl) - 1, f"the KL does not fall first and rise later: {kl}"
    assert kl[-1] > kl[0], f"the KL does not climb above its start: {kl}"
    assert rec[-1] < 0.7 * rec[0], f"the reconstruction does not keep falling: {rec}"


def _shape_rows(config) -> dict[str, str]:
    """02's shape tables for one preset, from the design (not from any model)."""
    size, filters, b = config.image_size, list(config.filters), config.bottleneck_size
    down = [f"{size >> i}x{size >> i}x{f}" for i, f in enumerate(filters, start=1)]
    stages = [*reversed(filters[:-1]), filters[0]]
    up = [f"{b << i}x{b << i}x{f}" for i, f in enumerate(stages, start=1)]
    return {
        "each convolution stage": ", ".join(down),
        "flattening": f"{b * b * filters[-1]:,}",
        "each head": str(config.latent_dim),
        "back to the bottleneck": f"{b}x{b}x{filters[-1]}",
        "each up-sampling stage": ", ".join(up),
    }


def test_02s_shape_tables_are_the_presets_design():
    """The shapes 02 states for the cpu preset (and, in brackets, smoke) follow from
    the presets: changing a preset's filters or latent size without the tables fails."""
    import json
    from pathlib import Path

    from helpers.config import preset

    path = Path(__file__).resolve().parents[1] / "solutions" / "02_model.ipynb"
    rows = {}
    for cell in json.loads(path.read_text("utf-8"))["cells"]:
        for line in "".join(cell["source"]).splitlines():
            parts = [p.strip() for p in line.strip().strip("|").split("|")]
            if line.startswith("| ") and len(parts) == 2:
                rows.setdefault(parts[0], []).append(parts[1])
    cpu, smoke = _shape_rows(preset("cpu")), _shape_rows(preset("smoke"))
    for name in cpu:
        assert rows.get(name) == [f"{cpu[name]} ({smoke[name]})"], (name, rows.get(name))
    latent = f"{preset('cpu').latent_dim} ({preset('smoke').latent_dim})"
    assert rows["the input"] == ["64x64x3", latent]  # the encoder's, the decoder's
