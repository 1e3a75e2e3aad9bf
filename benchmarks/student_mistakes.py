"""
Title: Typical student mistakes against the self-checks
Author: CelebA VAE lab
Date created: 2026/12/03
Last modified: 2026/12/03
Description: how many realistic wrong answers each notebook's self-check catches, and how precisely.

Run::

    SMOKE=1 python benchmarks/student_mistakes.py            # every mistake, ~15-20 s on 2 cores
    SMOKE=1 python benchmarks/student_mistakes.py --only 03  # one notebook's
    SMOKE=1 python benchmarks/student_mistakes.py --list     # the mistakes, not run

Each mistake takes a reference part (the solutions' ``%%export`` cells, as a
student exports them, the way ``tests/test_checks_training.py``'s ``part()`` runs
them), applies one edit (a source-text substitution, or a small function of its
own where the answer is not a part: 04's finished run, 06's experiment), and runs
the check the part's notebook runs on it (the same call and arguments as its
self-check cell). The outcome is:

* ``missed``  -- the check passed;
* ``caught``  -- the check raised;
* ``precise`` -- caught, and the message is short (one line, or a few), names the
  check and the part's own function or class (not another part's), and says what
  to do (an imperative, "expected", "instead", ...).

``missed`` mistakes are also run through the check ``helpers.student`` runs when 04
assembles the parts (``PART_REGISTRY[part].check``): ``later`` says whether that
one catches them (the part would then pass its notebook and fail in 04).

It prints a table (notebook, part, mistake, outcome, first line of the message),
the totals per notebook and overall, and one JSON line. The reference parts
themselves are run first: each must pass its check (else the benchmark stops).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import linecache
import os
import re
import sys
import tempfile
import time
import types
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(HERE))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Mistake:
    """One wrong answer: where it is written and what is wrong.

    Attributes:
        notebook: "01" .. "06".
        part: the ``%%export`` part it edits (or the answer's name in 04/06).
        description: the mistake, as a student would make it.
        edit: ``(old, new)`` substitutions on the part's source (a tuple of pairs),
            or a function returning the check's arguments (04's run, 06's experiment).
    """

    notebook: str
    part: str
    description: str
    edit: object


def sub(*pairs):
    """The edit: each (old, new) replaced in the reference source."""
    return tuple(pairs)


M = Mistake
# fmt: off
ENC_ACT = 'layers.LeakyReLU(negative_slope=0.2, name=f"conv{i}_act")(x)'
DEC_ACT = 'layers.LeakyReLU(negative_slope=0.2, name=f"up{i}_act")(x)'
PROJ_ACT = 'layers.LeakyReLU(negative_slope=0.2, name="project_act")(x)'
SCALE = "np.float32((high - low) / 255.0) + low"
TO_FLOAT = "return tf.cast(batch, tf.float32) * ((high - low) / 255.0) + low"
SHUFFLE = "dataset = dataset.shuffle(buffer, seed=config.seed)"
EPS = "eps = keras.random.normal(\n            ops.shape(z_mean), dtype=z_mean.dtype, seed=self.seed_generator\n        )"
KL_RET = "return ops.sum(per_dim, axis=-1)"
REC_RET = "return ops.sum(per_pixel, axis=(1, 2, 3))"
TOTAL = 'total = reconstruction + ops.cast(beta, "float32") * kl'
KL_TRACK = 'self.kl_tracker.update_state(losses["kl"], sample_weight=images)'
REC_TRACK = ('self.reconstruction_tracker.update_state(\n'
             '            losses["reconstruction"], sample_weight=images\n        )')
MONITOR = 'monitor="val_loss_at_target_beta"'
PRIOR = "z = keras.random.normal((n, latent_dim), seed=seed)"
PATH = "z = (1 - t) * z_mean[0] + t * z_mean[1]"

MISTAKES = [
    # ------------------------------------------------------------ 01 preprocess
    M("01", "preprocess", "value_range ignored: always [0, 1]",
      sub(("low, high = config.value_range", "low, high = 0.0, 1.0"))),
    M("01", "preprocess", "pixels not scaled (0..255 floats)",
      sub((" * " + SCALE, ""))),
    M("01", "preprocess", "forgot the shift (+ low)",
      sub((SCALE, "np.float32((high - low) / 255.0)"))),
    M("01", "preprocess", "normalised to [-1, 1] always (x / 127.5 - 1)",
      sub((" * " + SCALE, " / 127.5 - 1.0"))),
    M("01", "preprocess", "no crop: the whole frame resized",
      sub(("np.ascontiguousarray(frame[top : top + height, left : left + width])",
           "np.ascontiguousarray(frame)"))),
    M("01", "preprocess", "crop rows and columns swapped",
      sub(("frame[top : top + height, left : left + width]",
           "frame[left : left + width, top : top + height]"))),
    M("01", "preprocess", "nearest-neighbour resize (no antialiasing)",
      sub(("Image.Resampling.BILINEAR", "Image.Resampling.NEAREST"))),
    M("01", "preprocess", "float64 output",
      sub(("np.asarray(face, np.float32)", "np.asarray(face, np.float64)"),
          ("np.float32((high - low) / 255.0)", "((high - low) / 255.0)"))),
    M("01", "preprocess", "BGR channel order",
      sub(("np.asarray(face, np.float32)", "np.asarray(face, np.float32)[..., ::-1]"))),
    M("01", "preprocess", "crop box hard-coded (not config.crop)",
      sub(("left, top, width, height = config.crop",
           "left, top, width, height = 19, 39, 140, 140"))),
    M("01", "preprocess", "image_size hard-coded to 64",
      sub(("size = (config.image_size, config.image_size)", "size = (64, 64)"))),
    # -------------------------------------------------------------- 01 pipeline
    M("01", "pipeline", "no shuffle", sub((SHUFFLE, "pass"))),
    M("01", "pipeline", "shuffle after batching",
      sub((SHUFFLE, "pass"),
          ("dataset = dataset.batch(config.batch_size)",
           "dataset = dataset.batch(config.batch_size)\n"
           "    if training:\n        dataset = dataset.shuffle(64, seed=config.seed)"))),
    M("01", "pipeline", "shuffle buffer of 8",
      sub(("buffer = min(len(images), 50_000)", "buffer = 8"))),
    M("01", "pipeline", "unseeded shuffle", sub(("seed=config.seed", "seed=None"))),
    M("01", "pipeline", "fixed seed (42, not config.seed)",
      sub(("seed=config.seed", "seed=42"))),
    M("01", "pipeline", "validation shuffled too", sub(("if training:", "if True:"))),
    M("01", "pipeline", "same order every epoch (reshuffle_each_iteration=False)",
      sub(("seed=config.seed)", "seed=config.seed, reshuffle_each_iteration=False)"))),
    M("01", "pipeline", "value_range ignored: always [0, 1]",
      sub(("low, high = config.value_range", "low, high = 0.0, 1.0"))),
    M("01", "pipeline", "not scaled (float 0..255)",
      sub((TO_FLOAT, "return tf.cast(batch, tf.float32)"))),
    M("01", "pipeline", "batch size hard-coded (32)",
      sub(("dataset.batch(config.batch_size)", "dataset.batch(32)"))),
    M("01", "pipeline", ".repeat() (an endless dataset)",
      sub(("return dataset.prefetch(", "return dataset.repeat().prefetch("))),
    M("01", "pipeline", "(x, x) pairs instead of image batches",
      sub(("dataset.map(to_float,", "dataset.map(lambda b: (to_float(b), to_float(b)),"))),
    M("01", "pipeline", "no prefetch",
      sub(("return dataset.prefetch(tf.data.AUTOTUNE)", "return dataset"))),
    # --------------------------------------------------------------- 02 encoder
    M("02", "encoder", "ReLU instead of LeakyReLU",
      sub((ENC_ACT, 'layers.ReLU(name=f"conv{i}_act")(x)'))),
    M("02", "encoder", "LeakyReLU slope 0.3 (Keras' default)",
      sub((ENC_ACT, 'layers.LeakyReLU(name=f"conv{i}_act")(x)'))),
    M("02", "encoder", "no activation after the convolutions", sub(("x = " + ENC_ACT, "pass"))),
    M("02", "encoder", "strides 1", sub(("strides=2,", "strides=1,"))),
    M("02", "encoder", "strides 1 + MaxPooling2D",
      sub(("strides=2,", "strides=1,"),
          ("x = " + ENC_ACT, "x = " + ENC_ACT + "\n        x = layers.MaxPooling2D()(x)"))),
    M("02", "encoder", "padding valid", sub(('padding="same"', 'padding="valid"'))),
    M("02", "encoder", "ReLU on the z_log_var head",
      sub(('name="z_log_var")', 'activation="relu", name="z_log_var")'))),
    M("02", "encoder", "softplus on the z_log_var head (variance must be > 0)",
      sub(('name="z_log_var")', 'activation="softplus", name="z_log_var")'))),
    M("02", "encoder", "filters hard-coded (32, 64, 128)",
      sub(("enumerate(config.filters, start=1)", "enumerate((32, 64, 128), start=1)"))),
    M("02", "encoder", "kernel_size hard-coded (3)", sub(("config.kernel_size,", "3,"))),
    M("02", "encoder", "latent size hard-coded (128) for z_mean",
      sub(('layers.Dense(config.latent_dim, dtype="float32", name="z_mean")',
           'layers.Dense(128, dtype="float32", name="z_mean")'))),
    M("02", "encoder", "returns [z_mean, z_mean]",
      sub(("[z_mean, z_log_var]", "[z_mean, z_mean]"))),
    M("02", "encoder", "model not named 'encoder'", sub(('name="encoder"', 'name="enc"'))),
    # -------------------------------------------------------------- 02 sampling
    M("02", "sampling", "exp(z_log_var) instead of exp(0.5 * z_log_var)",
      sub(("ops.exp(0.5 * z_log_var)", "ops.exp(z_log_var)"))),
    M("02", "sampling", "0.5 * exp(z_log_var)",
      sub(("ops.exp(0.5 * z_log_var)", "0.5 * ops.exp(z_log_var)"))),
    M("02", "sampling", "eps times z_log_var itself",
      sub(("ops.exp(0.5 * z_log_var)", "z_log_var"))),
    M("02", "sampling", "NumPy noise",
      sub((EPS, 'eps = np.random.normal(size=tuple(z_mean.shape)).astype("float32")'))),
    M("02", "sampling", "integer seed (the same eps every call)",
      sub(("seed=self.seed_generator", "seed=self.seed"))),
    M("02", "sampling", "uniform noise", sub(("keras.random.normal(", "keras.random.uniform("))),
    M("02", "sampling", "z_mean left out", sub(("return z_mean + ", "return "))),
    M("02", "sampling", "one eps shared by the whole batch",
      sub(("ops.shape(z_mean), dtype", "ops.shape(z_mean)[-1:], dtype"))),
    M("02", "sampling", "eps added, not multiplied",
      sub(("ops.exp(0.5 * z_log_var) * eps", "ops.exp(0.5 * z_log_var) + eps"))),
    # --------------------------------------------------------------- 02 decoder
    M("02", "decoder", "missing output activation (linear)",
      sub(("activation=config.output_activation,", ""))),
    M("02", "decoder", "sigmoid hard-coded (not config.output_activation)",
      sub(("activation=config.output_activation,", 'activation="sigmoid",'))),
    M("02", "decoder", "tanh output for a [0, 1] config",
      sub(("activation=config.output_activation,", 'activation="tanh",'))),
    M("02", "decoder", "relu output",
      sub(("activation=config.output_activation,", 'activation="relu",'))),
    M("02", "decoder", "ReLU instead of LeakyReLU in the up-sampling",
      sub((DEC_ACT, 'layers.ReLU(name=f"up{i}_act")(x)'))),
    M("02", "decoder", "ReLU after the projection",
      sub((PROJ_ACT, 'layers.ReLU(name="project_act")(x)'))),
    M("02", "decoder", "no activation after the transposed convolutions",
      sub(("x = " + DEC_ACT, "pass"))),
    M("02", "decoder", "strides 1 in the transposed convolutions",
      sub(("strides=2,", "strides=1,"))),
    M("02", "decoder", "1 output channel",
      sub(("images = layers.Conv2D(\n        3,", "images = layers.Conv2D(\n        1,"))),
    M("02", "decoder", "stage filters = reversed(filters) (64, 32, 16)",
      sub(("stage_filters = list(reversed(config.filters[:-1])) + [config.filters[0]]",
           "stage_filters = list(reversed(config.filters))"))),
    # ---------------------------------------------------------------- 03 losses
    M("03", "losses", "KL sign flipped", sub(("per_dim = -0.5 *", "per_dim = 0.5 *"))),
    M("03", "losses", "KL mean over the latent dimensions, not sum",
      sub((KL_RET, "return ops.mean(per_dim, axis=-1)"))),
    M("03", "losses", "KL without the 0.5", sub(("per_dim = -0.5 *", "per_dim = -1.0 *"))),
    M("03", "losses", "KL forgot the exp", sub(("- ops.exp(z_log_var))", "- z_log_var)"))),
    M("03", "losses", "KL summed over the batch too (a scalar)",
      sub((KL_RET, "return ops.sum(per_dim)"))),
    M("03", "losses", "KL per dimension (no sum)", sub((KL_RET, "return per_dim"))),
    M("03", "losses", "reconstruction: mean over the pixels, not sum",
      sub((REC_RET, "return ops.mean(per_pixel, axis=(1, 2, 3))"))),
    M("03", "losses", "reconstruction: summed over the batch too",
      sub((REC_RET, "return ops.sum(per_pixel)"))),
    M("03", "losses", "reconstruction: value_range ignored",
      sub(("low, high = value_range", "low, high = 0.0, 1.0"))),
    M("03", "losses", "BCE target and prediction swapped",
      sub(("ops.binary_crossentropy(x, x_hat)", "ops.binary_crossentropy(x_hat, x)"))),
    M("03", "losses", "BCE with from_logits=True on sigmoid outputs",
      sub(("ops.binary_crossentropy(x, x_hat)",
           "ops.binary_crossentropy(x, x_hat, from_logits=True)"))),
    M("03", "losses", "kind ignored (always MSE)", sub(('if kind == "mse":', "if True:"))),
    M("03", "losses", "MSE via keras.losses.mean_squared_error (channel mean)",
      sub(("per_pixel = ops.square(x - x_hat)",
           "per_pixel = keras.losses.mean_squared_error(x, x_hat)[..., None]"))),
    M("03", "losses", "beta ignored in vae_loss",
      sub((TOTAL, "total = reconstruction + kl"))),
    M("03", "losses", "KL subtracted in vae_loss",
      sub((TOTAL, 'total = reconstruction - ops.cast(beta, "float32") * kl'))),
    M("03", "losses", "vae_loss sums the reconstruction over the batch",
      sub(("reconstruction = ops.mean(", "reconstruction = ops.sum("))),
    M("03", "losses", "vae_loss does not pass kind, value_range on",
      sub(("reconstruction_loss(images, reconstructions, kind, value_range)",
           "reconstruction_loss(images, reconstructions)"))),
    M("03", "losses", "vae_loss does not pass value_range on",
      sub(("reconstruction_loss(images, reconstructions, kind, value_range)",
           "reconstruction_loss(images, reconstructions, kind)"))),
    # ------------------------------------------------------------- 03 vae_model
    M("03", "vae_model", "loss forgets the KL",
      sub(('total = losses["total"]', 'total = losses["reconstruction"]'))),
    M("03", "vae_model", "KL weight 1.0 (kl_weight ignored)",
      sub(("            self.kl_weight,\n", "            1.0,\n"))),
    M("03", "vae_model", "KL weighted by the fixed self.beta",
      sub(("            self.kl_weight,\n", "            self.beta,\n"))),
    M("03", "vae_model", "KL tracker not updated", sub((KL_TRACK, "pass"))),
    M("03", "vae_model", "reconstruction tracker not updated", sub((REC_TRACK, "pass"))),
    M("03", "vae_model", "trackers not weighted by the batch size",
      sub((KL_TRACK, 'self.kl_tracker.update_state(losses["kl"])'))),
    M("03", "vae_model", "KL tracker fed the reconstruction",
      sub(('self.kl_tracker.update_state(losses["kl"]',
           'self.kl_tracker.update_state(losses["reconstruction"]'))),
    M("03", "vae_model", "class not registered for saving",
      sub(('@keras.saving.register_keras_serializable(package="student")\n', ""))),
    M("03", "vae_model", "decodes z_mean, not a sample",
      sub(("z = self.sampling([z_mean, z_log_var])", "z = z_mean"))),
    M("03", "vae_model", "reconstruction kind not passed to vae_loss (always MSE)",
      sub(("            self.reconstruction,\n            self.value_range,\n", ""))),
    M("03", "vae_model", "value_range not passed to vae_loss",
      sub(("            self.value_range,\n", ""))),
    M("03", "vae_model", "Sampling not given the seed",
      sub(('Sampling(seed=seed, name="sampling")', 'Sampling(name="sampling")'))),
    M("03", "vae_model", "tracker named 'kl', not 'kl_loss'",
      sub(('keras.metrics.Mean(name="kl_loss")', 'keras.metrics.Mean(name="kl")'))),
    # ------------------------------------------------------------- 04 callbacks
    M("04", "callbacks", "FaceGrid draws a new z every time",
      sub(("self.model.decoder(self.fixed_z,",
           "self.model.decoder(keras.random.normal(keras.ops.shape(self.fixed_z)),"))),
    M("04", "callbacks", "FaceGrid saves every epoch",
      sub(("if (epoch + 1) % self.interval:", "if False:"))),
    M("04", "callbacks", "FaceGrid counts epochs from 0",
      sub(("if (epoch + 1) % self.interval:", "if epoch % self.interval:"))),
    M("04", "callbacks", "grids saved outside run_dir/samples",
      sub(('self.folder / f"epoch_', 'Path(tempfile.gettempdir()) / f"epoch_'),
          ("from pathlib import Path", "import tempfile\nfrom pathlib import Path"))),
    M("04", "callbacks", "save_grid without value_range",
      sub((", value_range=self.value_range)", ")"))),
    M("04", "callbacks", "checkpoint monitors val_loss (warm-up epochs win)",
      sub((MONITOR, 'monitor="val_loss"'))),
    M("04", "callbacks", "checkpoint monitors the training loss",
      sub((MONITOR, 'monitor="loss"'))),
    M("04", "callbacks", "checkpoint mode='max'", sub(('mode="min"', 'mode="max"'))),
    M("04", "callbacks", "checkpoint keeps every epoch (save_best_only=False)",
      sub(("save_best_only=True", "save_best_only=False"))),
    M("04", "callbacks", "checkpoint written as model.keras",
      sub(('"best.keras"', '"model.keras"'))),
    M("04", "callbacks", "TensorBoard missing",
      sub(('keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),', ""))),
    M("04", "callbacks", "sample interval hard-coded (5)",
      sub(("config.sample_interval,", "5,"))),
    # ---------------------------------------------------------- 04 build_my_vae
    M("04", "build_my_vae", "beta hard-coded to 1.0", sub(("beta=config.beta,", "beta=1.0,"))),
    M("04", "build_my_vae", "reconstruction loss not passed",
      sub(("reconstruction=config.reconstruction_loss,", ""))),
    M("04", "build_my_vae", "value_range not passed", sub(("value_range=config.value_range,", ""))),
    M("04", "build_my_vae", "seed not passed", sub(("seed=config.seed,", ""))),
    M("04", "build_my_vae", "not compiled",
      sub(("vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))",
           "pass"))),
    M("04", "build_my_vae", "learning rate hard-coded (1e-3)",
      sub(("learning_rate=config.learning_rate", "learning_rate=1e-3"))),
    # -------------------------------------------------------- 04 training run
    M("04", "training_run", "trained with the KL sign flipped (negative kl_loss)",
      lambda tmp: _run_dir(tmp, kl=-2.0)),
    M("04", "training_run", "trained without FaceGrid (no sample grids)",
      lambda tmp: _run_dir(tmp, samples=False)),
    M("04", "training_run", "checkpoint never written (no best.keras)",
      lambda tmp: _run_dir(tmp, best=False)),
    M("04", "training_run", "losses went NaN", lambda tmp: _run_dir(tmp, loss="nan")),
    # ------------------------------------------------------------ 05 generation
    M("05", "sample_faces", "uniform latents", sub((PRIOR, PRIOR.replace("normal", "uniform")))),
    M("05", "sample_faces", "seed ignored", sub((PRIOR, "z = keras.random.normal((n, latent_dim))"))),
    M("05", "sample_faces", "seed hard-coded (0)",
      sub((PRIOR, "z = keras.random.normal((n, latent_dim), seed=0)"))),
    M("05", "sample_faces", "NumPy latents, unseeded",
      sub((PRIOR, 'z = np.random.normal(size=(n, latent_dim)).astype("float32")'))),
    M("05", "sample_faces", "latents scaled by 0.1",
      sub((PRIOR, "z = 0.1 * keras.random.normal((n, latent_dim), seed=seed)"))),
    M("05", "sample_faces", "returns (z, images)", sub(("return images, z", "return z, images"))),
    M("05", "interpolate_faces", "ends left out",
      sub(("np.linspace(0.0, 1.0, steps)", "np.linspace(0.0, 1.0, steps + 2)[1:-1]"))),
    M("05", "interpolate_faces", "path runs from b to a",
      sub((PATH, "z = t * z_mean[0] + (1 - t) * z_mean[1]"))),
    M("05", "interpolate_faces", "interpolates z_log_var (the wrong head)",
      sub(("z_mean, _ = vae.encoder(", "_, z_mean = vae.encoder("))),
    M("05", "interpolate_faces", "steps ignored (always 8)",
      sub(("np.linspace(0.0, 1.0, steps)", "np.linspace(0.0, 1.0, 8)"))),
    M("05", "interpolate_faces", "a sample instead of z_mean",
      sub(("z_mean = keras.ops.convert_to_numpy(z_mean)",
           "z_mean = keras.ops.convert_to_numpy(z_mean) + np.random.normal(size=z_mean.shape)"))),
    M("05", "latent_grid", "meshgrid indexing swapped ('xy')",
      sub(('indexing="ij"', 'indexing="xy"'))),
    M("05", "latent_grid", "dims ignored (always 0, 1)",
      sub(("z[:, dims[0]]", "z[:, 0]"), ("z[:, dims[1]]", "z[:, 1]"))),
    M("05", "latent_grid", "span ignored (always 2)",
      sub(("np.linspace(-span, span, n)", "np.linspace(-2.0, 2.0, n)"))),
    M("05", "latent_grid", "grid from 0 to span",
      sub(("np.linspace(-span, span, n)", "np.linspace(0.0, span, n)"))),
    M("05", "latent_grid", "random values outside dims (not 0)",
      sub(('z = np.zeros((n * n, latent_dim), dtype="float32")',
           'z = np.random.default_rng(0).standard_normal((n * n, latent_dim)).astype("float32")'))),
    M("05", "latent_grid", "not reshaped to (n, n, ...)",
      sub(("return images.reshape(n, n, *images.shape[1:])", "return images"))),
    # ----------------------------------------------------------- 06 experiment
    M("06", "my_experiment", "two settings varied (beta and latent_dim)",
      lambda base: {"a": base, "b": base.replace(beta=2.0, latent_dim=8)}),
    M("06", "my_experiment", "one run only",
      lambda base: {"mine_bce": base.replace(reconstruction_loss="bce")}),
    M("06", "my_experiment", "every run also changes the seed",
      lambda base: {"a": base.replace(seed=1, beta=2.0), "b": base.replace(seed=1)}),
    M("06", "my_experiment", "the same config twice (nothing varied)",
      lambda base: {"a": base, "b": base}),
    M("06", "my_experiment", "only the run names differ",
      lambda base: {"a": base.replace(name="a"), "b": base.replace(name="b")}),
    M("06", "my_experiment", "a list, not a dict",
      lambda base: [base.replace(reconstruction_loss="mse"),
                    base.replace(reconstruction_loss="bce")]),
]
# fmt: on

NOTEBOOKS = {"01": "01_setup", "02": "02_model", "03": "03_loss", "04": "04_train",
             "05": "05_generate", "06": "06_analysis"}
# What a part's self-check needs besides its own cell (as test_checks_training's part()).
NEEDS = {"vae_model": ("sampling", "losses"),
         "build_my_vae": ("encoder", "sampling", "decoder", "losses", "vae_model")}


# ------------------------------------------------------------------ the parts
@functools.cache
def cells() -> dict[str, str]:
    """{part: source} of the solutions' %%export cells, as a student exports them."""
    from instructor.export_cells import completed_parts

    return completed_parts(HERE / "solutions")


def part_module(name: str, edits=()) -> types.ModuleType:
    """Run a solution part (after the assembled module's header), with edits."""
    from helpers import student

    source = cells()[name]
    for old, new in edits:
        if old not in source:
            raise SystemExit(f"{name}: the edit's text is not in the reference: {old!r}")
        source = source.replace(old, new)
    module = types.ModuleType(f"student_{name}")
    exec(student.HEADER, module.__dict__)
    for needed in NEEDS.get(name, ()):
        exec(cells()[needed], module.__dict__)
    filename = f"<student {name}>"  # cached as IPython caches a cell: autograph reads it
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def _run_dir(tmp, kl=2.0, loss="12.0", samples=True, best=True):
    """A finished 04 run directory (as check_training_run reads it)."""
    from helpers.config import preset
    from helpers.runs import RunPaths

    paths = RunPaths(tmp)
    preset("smoke").save(paths.config)
    paths.history.write_text(
        "epoch,kl_loss,loss,reconstruction_loss,val_loss\n"
        f"0,{kl},{loss},10.0,13.0\n1,{kl},{loss},9.0,12.0\n"
    )
    if best:
        paths.best_model.write_bytes(b"x")
    if samples:
        paths.samples.mkdir(parents=True, exist_ok=True)
        (paths.samples / "epoch_001.png").write_bytes(b"x")
    return tmp


def reference_experiment(base):
    """06's my_experiment, as the solution writes it."""
    return {"mine_mse": base.replace(reconstruction_loss="mse"),
            "mine_bce": base.replace(reconstruction_loss="bce")}


# -------------------------------------------------------- the notebooks' checks
def notebook_check(part: str, edit, config):
    """Run the self-check cell of ``part``'s notebook on the edited part."""
    from helpers import checks, student

    if part == "training_run":
        with tempfile.TemporaryDirectory() as tmp:
            run = (edit or _run_dir)(Path(tmp))
            return checks.check_training_run(run)
    if part == "my_experiment":
        return checks.check_experiment(edit or reference_experiment, config)
    m = part_module(part, edit or ())
    if part == "preprocess":  # 01: both decoder ranges
        checks.check_preprocess(m.crop_resize_normalize, config=config)
        checks.check_preprocess(m.crop_resize_normalize,
                                config=config.replace(output_activation="tanh"))
    elif part == "pipeline":
        checks.check_pipeline(m.make_pipeline, config)
    elif part == "encoder":
        checks.check_encoder(m.build_encoder, config)
    elif part == "sampling":
        checks.check_sampling(m.Sampling)
    elif part == "decoder":
        checks.check_decoder(m.build_decoder, config)
    elif part == "losses":
        checks.check_reconstruction_loss(m.reconstruction_loss)
        checks.check_kl(m.kl_divergence)
        checks.check_total_loss(m.vae_loss)
        checks.check_total_loss(m.vae_loss, kind="bce")
    elif part == "vae_model":
        checks.check_vae_model(m.VAE)
    elif part == "callbacks":  # 04: every 3 epochs, the notebook's fixed z
        every_3 = config.replace(sample_interval=3)
        fixed_z = np.random.default_rng(config.seed).standard_normal(
            (16, config.latent_dim)).astype("float32")
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "my-callbacks"
            checks.check_callbacks(lambda: m.make_callbacks(every_3, run, fixed_z), run,
                                   config=every_3, fixed_z=fixed_z)
    elif part == "build_my_vae":
        checks.check_built_vae(m.build_my_vae, types.SimpleNamespace(**vars(m)), config)
    elif part == "sample_faces":
        checks.check_prior_samples(m.sample_faces, student._tiny_vae())
    elif part == "interpolate_faces":
        checks.check_interpolation(m.interpolate_faces)
    elif part == "latent_grid":
        checks.check_latent_grid(m.latent_grid)
    else:
        raise SystemExit(f"no notebook check for part {part!r}")


def later_check(part: str, edit, config):
    """The check helpers.student runs on the part when 04 assembles it (or None)."""
    from helpers import student

    if part not in student.PART_REGISTRY:
        return None
    m = part_module(part, edit)
    student.PART_REGISTRY[part].check(vars(m), config)
    return True


# ---------------------------------------------------------------- outcomes
# A fix: an instruction (an imperative, "expected ...", "instead") or the right code.
FIX_WORDS = re.compile(
    r"\b(use|pass|call|add|remove|drop|return|keep|put|set|write|apply|map|scale|"
    r"shuffle|seed|batch|sum|multiply|divide|decode|encode|draw|update|include|"
    r"start|end|take|weight|name it|needs?|must|should|expected|instead|belongs|"
    r"forgot|missing|wants|choose|vary|change|check your|see|save|sample|after every)\b"
    r"|\w=\w|\s=\s|\w\(|\w\s*[/*]\s*\d",  # code: strides=2, sigma = ..., f(, x / 255
    re.I,
)


def part_names(part: str, edit) -> set[str]:
    """The names the part defines (its functions, classes), and the part's name."""
    source = cells().get(part, "")
    names = set(re.findall(r"^(?:def|class)\s+(\w+)", source, re.M))
    return names | {part}


def classify(part: str, edit, error: BaseException | None) -> tuple[str, str]:
    """(outcome, first line of the message) for one run of a check."""
    if error is None:
        return "missed", ""
    text = str(error)
    lines = [line.strip(" -") for line in text.strip().splitlines()] or [type(error).__name__]
    first = lines[0] + (" " + lines[1] if lines[0].endswith(":") and len(lines) > 1 else "")
    from helpers.checks import CheckFailed

    if not isinstance(error, CheckFailed):
        return "caught", f"{type(error).__name__}: {first}"
    named = re.findall(r"`([\w.]+)", text)
    own = part_names(part, edit)
    names_part = any(n.split(".")[0] in own for n in named) or part == "my_experiment"
    if part == "training_run":
        names_part = "check_training_run" in text
    # A cascade: the hint blames another part's function ("because of kl_divergence").
    others = {n for p in cells() if p != part for n in part_names(p, None)} - own
    blamed = [n for n in sorted(others) if re.search(rf"because of `?{n}\b", text)]
    short = len(text.strip().splitlines()) <= 3 and len(text) <= 600
    if short and names_part and not blamed and FIX_WORDS.search(text.split(":", 1)[-1]):
        return "precise", first
    why = [] if short else ["long"]
    why += [] if names_part else ["names " + (", ".join(named) or "no part")]
    why += [f"blames {', '.join(blamed)}"] if blamed else []
    return "caught", f"[not precise: {'; '.join(why) or 'no fix'}] {first}"


def run(mistake: Mistake | None, part: str, config):
    """The error the notebook's check raised (None: it passed); its ✅ line is dropped."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            notebook_check(part, mistake.edit if mistake else None, config)
    except Exception as error:  # noqa: BLE001 -- the check's verdict
        return error
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[2])
    parser.add_argument("--only", help="one notebook (01..06) or part")
    parser.add_argument("--list", action="store_true", help="list the mistakes and stop")
    args = parser.parse_args(argv)
    chosen = [m for m in MISTAKES
              if not args.only or args.only in (m.notebook, m.part)]
    if args.list:
        for m in chosen:
            print(f"{m.notebook}  {m.part:<18} {m.description}")
        print(f"{len(chosen)} mistakes")
        return 0

    import keras

    from helpers.config import preset

    keras.utils.set_random_seed(0)
    config = preset("smoke")
    start = time.perf_counter()
    for part in dict.fromkeys(m.part for m in chosen):  # the reference passes
        error = run(None, part, config)
        if error is not None:
            raise SystemExit(f"the reference {part} fails its own check: {error}")
    rows = []
    for m in chosen:
        t0 = time.perf_counter()
        error = run(m, m.part, config)
        outcome, first = classify(m.part, m.edit, error)
        later = ""
        if outcome == "missed" and not callable(m.edit):
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    later = later_check(m.part, m.edit, config)
                later = "" if later is None else "passes"
            except Exception as late:  # noqa: BLE001
                later = "fails: " + str(late).strip().splitlines()[0][:100]
        rows.append(dict(notebook=m.notebook, part=m.part, mistake=m.description,
                         outcome=outcome, message=first, later=later,
                         seconds=round(time.perf_counter() - t0, 2)))
        line = f"{m.notebook}  {m.part:<17} {m.description[:52]:<52} {outcome:<8} "
        line += (first or (f"(04 assembly: {later})" if later else ""))[:150]
        print(line, flush=True)

    print()
    totals = {}
    for nb in [*NOTEBOOKS, "all"]:
        mine = [r for r in rows if nb in ("all", r["notebook"])]
        if not mine:
            continue
        counts = {k: sum(r["outcome"] == k for r in mine) for k in ("precise", "caught")}
        missed = sum(r["outcome"] == "missed" for r in mine)
        caught = counts["precise"] + counts["caught"]
        totals[nb] = dict(tried=len(mine), caught=caught, precise=counts["precise"],
                          missed=missed)
        label = NOTEBOOKS.get(nb, "overall")
        print(f"{label:<12} tried {len(mine):>3}  caught {caught:>3}  "
              f"precise {counts['precise']:>3}  missed {missed:>3}")
    missed = [f"{r['notebook']} {r['part']}: {r['mistake']}" for r in rows
              if r["outcome"] == "missed"]
    if missed:
        print("missed:\n  " + "\n  ".join(missed))
    print(json.dumps({"benchmark": "student_mistakes", "totals": totals,
                      "missed": missed, "seconds": round(time.perf_counter() - start, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
