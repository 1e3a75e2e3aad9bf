"""Mixed precision for whatever VAE the student wrote: compute_loss or train_step.

Keras' own train_step scales the loss under mixed_float16; a train_step of the
student's must call self.optimizer.scale_loss itself, or its steps shrink as the
loss scale grows and training stalls with no error. check_precision_step (03's
self-check, and train() before the first step) catches that in one line.
"""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
from keras import ops

from helpers.checks import CheckFailed, check_precision_step
from helpers.config import preset
from helpers.errors import TrainingError
from helpers.student import solution_module
from helpers.training import train

SOLUTION = solution_module()


class TapeVAE(SOLUTION.VAE):
    """A keras.io-style VAE: its own train_step with a GradientTape (TensorFlow)."""

    scale = True  # the subclass without it forgets self.optimizer.scale_loss

    def _vae_losses(self, images, training):
        out = self(images, training=training)
        return SOLUTION.vae_loss(
            images, out["reconstruction"], out["z_mean"], out["z_log_var"],
            self.kl_weight, self.reconstruction, self.value_range,
        )

    def _track(self, images, losses):
        n = ops.cast(ops.shape(images)[0], "float32")
        self.reconstruction_tracker.update_state(losses["reconstruction"], sample_weight=n)
        self.kl_tracker.update_state(losses["kl"], sample_weight=n)
        self.total_tracker.update_state(losses["total"], sample_weight=n)
        return {m.name: m.result() for m in self.metrics}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.total_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.total_tracker, self.reconstruction_tracker, self.kl_tracker]

    def train_step(self, images):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            losses = self._vae_losses(images, training=True)
            target = losses["total"]
            if self.scale:
                target = self.optimizer.scale_loss(target)
        grads = tape.gradient(target, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        return self._track(images, losses)

    def test_step(self, images):
        return self._track(images, self._vae_losses(images, training=False))


class ForgetsScaling(TapeVAE):
    scale = False


class NoTestStep(TapeVAE):
    """keras.io's shape: train_step only, no compute_loss, no test_step."""

    compute_loss = keras.Model.compute_loss
    test_step = keras.Model.test_step


def parts_with(vae_class):
    """The solution's parts with another VAE class (as a student's module)."""
    return types.SimpleNamespace(
        **{k: getattr(SOLUTION, k) for k in ("make_pipeline", "build_encoder", "build_decoder", "make_callbacks", "build_my_vae")},
        VAE=vae_class,
    )


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("vae_class", [SOLUTION.VAE, TapeVAE])
def test_a_correct_student_vae_passes_under_mixed_precision(policy, vae_class, capsys):
    check_precision_step(vae_class, policy)
    assert "check_precision_step passed" in capsys.readouterr().out


def test_a_train_step_without_scale_loss_is_named_in_one_line():
    with pytest.raises(CheckFailed, match=r"never calls self.optimizer.scale_loss") as info:
        check_precision_step(ForgetsScaling, "mixed_float16")
    assert "\n" not in str(info.value)
    check_precision_step(ForgetsScaling, "mixed_bfloat16")  # bf16 needs no scaling


def test_a_train_step_without_test_step_is_told_to_write_one():
    with pytest.raises(CheckFailed, match="write test_step too"):
        check_precision_step(NoTestStep, "float32")


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("vae_class", [SOLUTION.VAE, TapeVAE])
def test_student_models_train_in_mixed_precision_end_to_end(
    policy, vae_class, cache_dir, tmp_path
):
    config = preset("smoke", epochs=2, precision=policy)
    history = train(config, cache_dir, tmp_path, parts=parts_with(vae_class), verbose=0)
    losses = history.history
    print(policy, vae_class.__name__, {k: [round(v, 2) for v in losses[k]] for k in ("loss", "val_loss")})
    for key in ("loss", "reconstruction_loss", "kl_loss", "val_loss", "val_loss_at_target_beta"):
        assert np.all(np.isfinite(losses[key])), key
    assert losses["loss"][1] < losses["loss"][0]  # it learns
    assert (tmp_path / "best.keras").exists()


def test_train_refuses_a_student_step_that_would_stall_in_float16(cache_dir, tmp_path):
    config = preset("smoke", epochs=1, precision="mixed_float16")
    with pytest.raises(TrainingError, match="not training in mixed_float16: .*scale_loss"):
        train(config, cache_dir, tmp_path, parts=parts_with(ForgetsScaling), verbose=0)
    assert not (tmp_path / "best.keras").exists()


def test_epoch_figures_are_means_over_images_not_over_batches(cache_dir, tmp_path):
    """The reported val_kl_loss is the mean KL over the validation images."""
    config = preset("smoke", epochs=1, batch_size=24, val_limit=None)  # 40 = 24 + 16
    history = train(config, cache_dir, tmp_path, verbose=0)
    from helpers.cache import load_split

    vae = history.model
    images = np.asarray(load_split(cache_dir, "validation")[0]).astype("float32") / 255
    assert len(images) % config.batch_size  # an uneven last batch
    z_mean, z_log_var = (np.asarray(t, np.float64) for t in vae.encoder(images))
    kl = (-0.5 * (1 + z_log_var - z_mean**2 - np.exp(z_log_var))).sum(1).mean()
    assert history.history["val_kl_loss"][-1] == pytest.approx(kl, rel=1e-4)
