"""Tests for helpers.model: Sampling, encoder/decoder shapes, and the VAE's training."""

from __future__ import annotations

import ast
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from helpers.config import preset
from helpers.model import VAE, Sampling, build_decoder, build_encoder, build_vae

ROOT = Path(__file__).resolve().parents[1]


def tiny(**overrides):
    """Return a 16x16 config with a few channels: builds and trains in seconds."""
    base = dict(image_size=16, latent_dim=8, filters=(8, 16, 32), batch_size=16)
    return preset("smoke", **{**base, **overrides})


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def flat_colours(n, size=16, seed=0):
    """Return (n, size, size, 3) float32 images in [0, 1], each one random colour.

    The simplest structured data: three numbers per image, so a tiny VAE must learn
    to carry them through z, and the loss falls within a few dozen steps.
    """
    colours = np.random.default_rng(seed).uniform(0, 1, (n, 1, 1, 3))
    return np.ascontiguousarray(np.broadcast_to(colours, (n, size, size, 3)), "float32")


def summed_error(a, b):
    """Return the mean over images of the squared error summed over pixels."""
    return float(((a - b) ** 2).reshape(len(a), -1).sum(axis=1).mean())


@pytest.fixture(scope="module")
def colours():
    return flat_colours(48)


# ---------------------------------------------------------------------- Sampling
def test_sampling_mean_and_std_match_the_posterior():
    n = 20000
    z_mean = np.tile(np.array([[1.0, -2.0]], dtype="float32"), (n, 1))
    z_log_var = np.tile(np.array([[0.0, math.log(9.0)]], dtype="float32"), (n, 1))
    z = _np(Sampling(seed=7)([z_mean, z_log_var]))
    assert z.shape == (n, 2)
    # std 3 = exp(0.5 * ln 9); a missing 0.5 would give 9, a missing exp ln 9.
    np.testing.assert_allclose(z.mean(axis=0), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(z.std(axis=0), [1.0, 3.0], atol=0.05)


def test_sampling_is_seeded_and_fresh_on_each_call():
    z_mean = np.zeros((4, 3), dtype="float32")
    z_log_var = np.zeros((4, 3), dtype="float32")
    a, b = Sampling(seed=3), Sampling(seed=3)
    first_a, first_b = _np(a([z_mean, z_log_var])), _np(b([z_mean, z_log_var]))
    np.testing.assert_array_equal(first_a, first_b)
    assert not np.array_equal(_np(a([z_mean, z_log_var])), first_a)
    assert not np.array_equal(_np(Sampling(seed=4)([z_mean, z_log_var])), first_a)


def test_sampling_get_config_round_trip():
    layer = Sampling(seed=11, name="my_sampling")
    config = layer.get_config()
    assert config["seed"] == 11 and config["name"] == "my_sampling"
    clone = Sampling.from_config(config)
    assert (clone.seed, clone.name) == (11, "my_sampling")
    zeros = np.zeros((2, 5), dtype="float32")
    first = _np(layer([zeros, zeros]))
    np.testing.assert_array_equal(_np(clone([zeros, zeros])), first)


# -------------------------------------------------------------- encoder, decoder
@pytest.mark.parametrize("filters", [(4, 8, 8), (4, 8, 8, 16)])
@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
@pytest.mark.parametrize("residual_blocks", [0, 2])
def test_encoder_and_decoder_shapes(filters, upsampling, residual_blocks):
    config = tiny(
        image_size=32,
        latent_dim=6,
        filters=filters,
        upsampling=upsampling,
        residual_blocks=residual_blocks,
    )
    encoder, decoder = build_encoder(config), build_decoder(config)
    images = np.random.default_rng(0).uniform(0, 1, (2, 32, 32, 3)).astype("float32")
    z_mean, z_log_var = encoder(images)
    assert tuple(z_mean.shape) == (2, 6) and tuple(z_log_var.shape) == (2, 6)
    for i, channels in enumerate(filters, start=1):  # each conv halves the image
        side = 32 // 2**i
        assert encoder.get_layer(f"conv{i}").output.shape[1:] == (side, side, channels)
    bottleneck = 32 // 2 ** len(filters)
    assert config.bottleneck_size == bottleneck
    assert decoder.get_layer("reshape").output.shape[1:] == (
        bottleneck,
        bottleneck,
        filters[-1],
    )
    out = decoder(z_mean)
    assert tuple(out.shape) == images.shape
    assert decoder.output.shape[1:] == (32, 32, 3)
    names = [layer.name for layer in decoder.layers]
    assert sum(n.endswith("_add") for n in names) == residual_blocks * len(filters)
    assert any(n.endswith("_up") for n in names) == (upsampling == "resize")


def test_layer_names():
    config = tiny(filters=(4, 8, 8, 16), image_size=32)
    encoder, decoder = build_encoder(config), build_decoder(config)
    assert (encoder.name, decoder.name) == ("encoder", "decoder")
    names = {layer.name for layer in encoder.layers}
    expected = {"images", "conv1", "conv2", "conv3", "conv4", "z_mean", "z_log_var"}
    assert expected <= names
    assert "conv5" not in names
    # The output activation is a layer of its own (the checks find it by name),
    # after a linear conv whose output is the logits.
    assert decoder.layers[-1].name == "reconstruction"
    assert isinstance(decoder.layers[-1], keras.layers.Activation)
    assert decoder.get_layer("logits").activation.__name__ == "linear"
    assert decoder.inputs[0].shape[1:] == (8,)
    vae = VAE.from_vae_config(config)
    assert vae.name == "vae" and vae.sampling.name == "sampling"


@pytest.mark.parametrize("activation, low, high", [("sigmoid", 0, 1), ("tanh", -1, 1)])
def test_decoder_output_range(activation, low, high):
    decoder = build_decoder(tiny(output_activation=activation))
    z = np.random.default_rng(0).normal(0, 1, (16, 8)).astype("float32")
    out = _np(decoder(z))
    assert low < out.min() and out.max() < high
    big = _np(decoder(50 * z))  # saturates: still inside the closed range
    assert low <= big.min() and big.max() <= high
    assert big.min() < (low + high) / 2 < big.max()  # uses both halves of the range
    assert VAE.from_vae_config(tiny(output_activation=activation)).value_range == (
        float(low),
        float(high),
    )


# ------------------------------------------------------------------ VAE training
def test_call_encode_decode_reconstruct(colours):
    vae = VAE.from_vae_config(tiny(beta=2.0))
    x = colours[:4]
    out = vae(x)
    assert set(out) == {"reconstruction", "z_mean", "z_log_var", "logits"}
    np.testing.assert_allclose(
        _np(ops.sigmoid(out["logits"])), _np(out["reconstruction"]), atol=1e-6
    )
    assert tuple(out["reconstruction"].shape) == x.shape
    assert tuple(out["z_mean"].shape) == (4, 8)
    assert float(_np(vae.kl_weight)) == 2.0 and vae.beta == 2.0
    # call() samples z; reconstruct() decodes the mean, so it is deterministic.
    assert not np.array_equal(_np(vae(x)["reconstruction"]), _np(out["reconstruction"]))
    np.testing.assert_array_equal(_np(vae.reconstruct(x)), _np(vae.reconstruct(x)))
    z_mean, _ = vae.encode(x)
    np.testing.assert_allclose(_np(vae.decode(z_mean)), _np(vae.reconstruct(x)))


STEPS_CONFIG = dict(learning_rate=5e-3)  # 48 images / 16 per batch x 16 epochs = 48


@pytest.fixture(scope="module")
def trained(colours):
    """A tiny beta=1 VAE fitted for 48 steps on flat colours, with validation."""
    keras.utils.set_random_seed(0)
    vae = build_vae(tiny(**STEPS_CONFIG))
    before = summed_error(_np(vae.reconstruct(colours)), colours)
    history = vae.fit(
        colours,
        validation_data=(colours[:16],),
        epochs=16,
        batch_size=16,
        shuffle=False,
        verbose=0,
    )
    return vae, history.history, before


def test_fit_reports_named_losses(trained):
    vae, logs, _ = trained
    keys = {"loss", "reconstruction_loss", "kl_loss"}
    assert set(logs) == keys | {f"val_{k}" for k in keys}
    assert all(len(values) == 16 for values in logs.values())
    assert all(np.isfinite(values).all() for values in logs.values())  # MSE path
    for prefix in ("", "val_"):  # beta = 1: loss = reconstruction + kl
        recon, kl = logs[f"{prefix}reconstruction_loss"], logs[f"{prefix}kl_loss"]
        np.testing.assert_allclose(logs[f"{prefix}loss"], np.add(recon, kl), rtol=1e-4)
    assert {"reconstruction_loss", "kl_loss"} <= {m.name for m in vae.metrics}


def test_loss_falls_on_structured_data(trained, colours):
    vae, logs, before = trained
    after = summed_error(_np(vae.reconstruct(colours)), colours)
    print(
        f"loss {logs['loss'][0]:.1f} -> {logs['loss'][-1]:.1f}; "
        f"reconstruction error {before:.1f} -> {after:.1f}"
    )
    # Measured (5 seeds): loss ratio 0.42-0.71, error 68-71 -> 18-41.
    assert logs["loss"][-1] < 0.85 * logs["loss"][0]
    assert after < 0.75 * before


def test_beta_zero_trains_reconstruction_only(trained, colours):
    _, logs_beta1, _ = trained
    keras.utils.set_random_seed(0)
    vae = build_vae(tiny(beta=0.0, **STEPS_CONFIG))
    assert float(_np(vae.kl_weight)) == 0.0
    logs = vae.fit(colours, epochs=16, batch_size=16, shuffle=False, verbose=0).history
    np.testing.assert_allclose(logs["loss"], logs["reconstruction_loss"], rtol=1e-6)
    # Nothing holds the posterior near the prior: the KL grows far past beta=1's.
    assert logs["kl_loss"][-1] > 3 * logs_beta1["kl_loss"][-1]
    assert logs["kl_loss"][-1] > 5 * logs["kl_loss"][0]


def test_loss_is_summed_over_pixels_not_averaged():
    # 32x32x3 = 3,072 uniform pixels against a ~0.5 output: about 3072 / 12 = 256
    # per image. A mean over pixels gives ~0.08, a sum over the batch ~2,000.
    keras.utils.set_random_seed(1)
    vae = build_vae(tiny(image_size=32, batch_size=8))
    x = np.random.default_rng(1).uniform(0, 1, (16, 32, 32, 3)).astype("float32")
    result = vae.evaluate(x, batch_size=8, verbose=0, return_dict=True)
    assert 150 < result["reconstruction_loss"] < 600, result
    total = result["reconstruction_loss"] + result["kl_loss"]
    assert result["loss"] == pytest.approx(total, rel=1e-4)
    assert result["kl_loss"] < result["reconstruction_loss"]


def test_bce_trains_finite(colours):
    # (The MSE path is the `trained` fixture.)
    keras.utils.set_random_seed(2)
    vae = build_vae(tiny(reconstruction_loss="bce"))
    logs = vae.fit(colours[:32], epochs=2, batch_size=16, verbose=0).history
    assert np.isfinite(logs["loss"]).all(), logs
    # 16x16x3 pixels at about ln 2 = 0.69 nats each: hundreds per image.
    assert 200 < logs["reconstruction_loss"][0] < 800, logs


def test_save_load_round_trip(trained, colours, tmp_path):
    vae, _, _ = trained
    vae.kl_weight.assign(0.375)  # as a warm-up would leave it
    path = tmp_path / "vae.keras"
    vae.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, VAE)
    assert float(_np(loaded.kl_weight)) == 0.375
    assert (loaded.beta, loaded.reconstruction, loaded.value_range, loaded.seed) == (
        vae.beta,
        vae.reconstruction,
        vae.value_range,
        vae.seed,
    )
    np.testing.assert_array_equal(
        _np(loaded.reconstruct(colours[:8])), _np(vae.reconstruct(colours[:8]))
    )
    # The optimizer comes back too, so training can continue without compile().
    assert int(_np(loaded.optimizer.iterations)) == 48
    assert float(_np(loaded.optimizer.learning_rate)) == pytest.approx(5e-3)
    # The noise state too: the loaded model draws what the trained one would draw.
    state = _np(vae.sampling.seed_generator.state)
    assert state[1] > 48  # advanced by every training and validation step
    np.testing.assert_array_equal(_np(loaded.sampling.seed_generator.state), state)
    np.testing.assert_array_equal(
        _np(loaded(colours[:8])["reconstruction"]),
        _np(vae(colours[:8])["reconstruction"]),
    )


def test_save_load_keeps_every_constructor_argument(colours, tmp_path):
    config = tiny(
        output_activation="tanh", beta=4.0, upsampling="resize", residual_blocks=1
    )
    vae = build_vae(config.replace(seed=99))
    vae.save(tmp_path / "tanh.keras")
    loaded = keras.saving.load_model(tmp_path / "tanh.keras")
    assert loaded.value_range == (-1.0, 1.0) and loaded.beta == 4.0
    assert (loaded.seed, float(_np(loaded.kl_weight))) == (99, 4.0)
    x = colours[:4] * 2 - 1
    np.testing.assert_array_equal(_np(loaded.reconstruct(x)), _np(vae.reconstruct(x)))


def test_compute_loss_is_losses_vae_loss(colours, monkeypatch):
    """Check the model trains on helpers.losses.vae_loss, the formula of 03_loss."""
    import helpers.losses
    import helpers.model

    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return helpers.losses.vae_loss(*args, **kwargs)

    monkeypatch.setattr(helpers.model, "vae_loss", spy)
    vae = VAE.from_vae_config(tiny(beta=3.0, reconstruction_loss="bce"))
    vae.kl_weight.assign(0.5)  # as a warm-up would
    x = colours[:4]
    y_pred = vae(x)
    total = float(_np(vae.compute_loss(x=x, y_pred=y_pred)))
    assert len(seen) == 1
    assert float(_np(seen[0]["beta"])) == 0.5 and seen[0]["kind"] == "bce"
    assert seen[0]["logits"] is y_pred["logits"]
    expected = helpers.losses.vae_loss(
        x,
        y_pred["reconstruction"],
        y_pred["z_mean"],
        y_pred["z_log_var"],
        0.5,
        "bce",
        logits=y_pred["logits"],
    )
    assert total == pytest.approx(float(_np(expected["total"])), rel=1e-6)
    assert float(_np(vae.kl_tracker.result())) == pytest.approx(
        float(_np(expected["kl"])), rel=1e-6
    )


@pytest.mark.parametrize("activation", ["sigmoid", "tanh"])
def test_bce_reaches_a_saturated_wrong_pixel_through_the_logits(activation):
    import tensorflow as tf

    config = tiny(output_activation=activation)  # (configs pair BCE with sigmoid)
    low, high = config.value_range
    vae = VAE(
        build_encoder(config),
        build_decoder(config),
        reconstruction="bce",
        value_range=config.value_range,
    )
    images = np.full((2, 16, 16, 3), low, "float32")  # black faces
    bias = vae.decoder.get_layer("logits").bias
    bias.assign(np.full(3, 20.0, "float32"))  # every pixel saturates to white
    with tf.GradientTape() as tape:
        y_pred = vae(images)
        loss = vae.compute_loss(x=images, y_pred=y_pred)
    assert _np(y_pred["reconstruction"]).min() == high  # saturated exactly
    per_pixel = float(_np(vae.reconstruction_tracker.result())) / (16 * 16 * 3)
    # The true cost of a sure-white pixel that is black: 20 nats (40 for tanh,
    # whose [0, 1] logits are twice the activation's input), not the 16 of a clip.
    assert per_pixel == pytest.approx(20.0 * (2 if activation == "tanh" else 1), 1e-2)
    gradient = _np(tape.gradient(loss, bias))
    assert np.all(gradient > 1.0), gradient  # pushes the bias down


def test_each_replica_draws_its_own_noise():
    """Check a MirroredStrategy's two replicas get different eps (two logical CPUs)."""
    import tensorflow as tf

    assert (
        len(tf.config.list_logical_devices("CPU")) >= 2
    ), "tests/conftest.py splits the CPU into two logical devices at start-up"
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        layer = Sampling(seed=3)
    zeros = tf.zeros((256, 4))

    @tf.function
    def draw():
        return strategy.run(lambda: layer([zeros, zeros]))

    first = [_np(r) for r in strategy.experimental_local_results(draw())]
    second = [_np(r) for r in strategy.experimental_local_results(draw())]
    assert not np.array_equal(first[0], first[1])  # replicas differ
    assert not np.array_equal(first[0], second[0])  # and each call is fresh
    both = np.concatenate(first)
    assert abs(both.mean()) < 0.05 and abs(both.std() - 1) < 0.05
    assert abs(np.corrcoef(first[0].ravel(), first[1].ravel())[0, 1]) < 0.1


@pytest.fixture
def restore_policy():
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_in_float32_losses_and_checkpoints_cross_over(
    policy, colours, tmp_path, restore_policy
):
    keras.utils.set_random_seed(4)
    x = colours[:16]
    keras.mixed_precision.set_global_policy(policy)
    vae = build_vae(tiny(reconstruction_loss="bce"))
    assert vae.decoder.get_layer("logits").compute_dtype == policy.split("_")[1]
    out = vae(x)
    for name in ("reconstruction", "z_mean", "z_log_var", "logits"):
        assert str(_np(out[name]).dtype) == "float32", name
    assert str(_np(vae.compute_loss(x=x, y_pred=out)).dtype) == "float32"
    logs = vae.fit(x, epochs=1, batch_size=16, verbose=0).history
    assert all(np.isfinite(v).all() for v in logs.values()), logs
    assert 200 < logs["reconstruction_loss"][0] < 800  # ~ln 2 per pixel, as float32
    vae.save(tmp_path / "mixed.keras")
    keras.mixed_precision.set_global_policy("float32")
    loaded = keras.saving.load_model(tmp_path / "mixed.keras")
    np.testing.assert_allclose(
        _np(loaded.reconstruct(x)), _np(vae.reconstruct(x)), atol=1e-6
    )
    float32 = build_vae(tiny())
    float32(x)
    float32.save(tmp_path / "float32.keras")
    keras.mixed_precision.set_global_policy(policy)
    back = keras.saving.load_model(tmp_path / "float32.keras")
    np.testing.assert_allclose(
        _np(back.reconstruct(x)), _np(float32.reconstruct(x)), atol=1e-6
    )


@pytest.mark.skipif(
    importlib.util.find_spec("helpers.datasets") is None, reason="no helpers.datasets"
)
def test_fits_batches_from_the_cached_slice(cache_dir):
    from helpers.datasets import make_dataset

    keras.utils.set_random_seed(3)
    config = preset("smoke", latent_dim=8, filters=(8, 16, 32), batch_size=32)
    ds = make_dataset(cache_dir, "train", batch_size=32, limit=64, seed=0)
    batch = next(iter(ds))
    assert tuple(batch.shape) == (32, 64, 64, 3) and batch.dtype == "float32"
    vae = build_vae(config)
    logs = vae.fit(ds, epochs=2, shuffle=False, verbose=0).history
    assert all(np.isfinite(values).all() for values in logs.values()), logs
    # 64x64x3 = 12,288 face pixels against a grey start: hundreds to thousands.
    assert 100 < logs["reconstruction_loss"][0] < 4000, logs


# ------------------------------------------------------------------ backends
def _tensorflow_uses(path: Path) -> list[str]:
    """Return every import of tensorflow and every use of a name ``tf`` in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("tensorflow")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "tensorflow":
                found.append(node.module)
        elif isinstance(node, ast.Name) and node.id == "tf":
            found.append(f"tf at line {node.lineno}")
    return found


def test_static_no_tensorflow_in_model_and_losses(tmp_path):
    assert _tensorflow_uses(ROOT / "helpers" / "losses.py") == []
    # model.py asks tf.distribute which replica it is, in _replica() only.
    tree = ast.parse((ROOT / "helpers" / "model.py").read_text())
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name == "_replica"):
            probe = tmp_path / "node.py"
            probe.write_text(ast.unparse(node))
            assert _tensorflow_uses(probe) == [], ast.unparse(node)[:80]
    # The check itself finds all three spellings (comments and docstrings may say tf).
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import tensorflow as tf\n"
        "from tensorflow.keras import layers\n"
        "x = tf.exp(1.0)  # tf.distribute\n"
    )
    assert len(_tensorflow_uses(probe)) == 3


JAX_SCRIPT = """
import numpy as np, keras
assert keras.backend.backend() == "jax", keras.backend.backend()
from helpers.config import preset
from helpers.model import build_vae
config = preset("smoke", image_size=16, latent_dim=4, filters=(4, 8, 8), batch_size=8)
vae = build_vae(config)
x = np.random.default_rng(0).uniform(0, 1, (16, 16, 16, 3)).astype("float32")
logs = vae.fit(x, epochs=1, batch_size=8, verbose=0).history
values = [logs[k][-1] for k in ("loss", "reconstruction_loss", "kl_loss")]
assert all(np.isfinite(values)), logs
print("JAX_OK", *values)
"""


def test_model_and_loss_train_under_jax():
    pytest.importorskip("jax")
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("JAX_OK")][-1]
    loss, recon, kl = (float(v) for v in line.split()[1:])
    assert 10 < recon < 1000 and kl >= 0 and loss == pytest.approx(recon + kl, 1e-4)
