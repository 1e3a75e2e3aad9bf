"""Self-checks for 04_train (the loss step, the callbacks, the run) and 06.

Each builds what it needs (tiny models, stand-ins that record what they get) and
compares with values computed by hand, or with properties.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
from pathlib import Path

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, _StandIn
from helpers.checks._common import LAB_PACKAGES, self_check
from helpers.checks.loss import _by_hand, _check_loss, _check_reloads
from helpers.checks.loss import _check_trackers, _evaluate, _tiny_parts, _tiny_vae
from helpers.checks.loss import _weighted_means

# What the best-model checkpoint must monitor: the lab's train() logs it every epoch
# (helpers.callbacks.TargetBetaLoss). Only the name is inspected here, so the check
# also works on callbacks made outside train().
BEST_MODEL_MONITOR = "val_loss_at_target_beta"
_LOSSES = ("loss", "reconstruction_loss", "kl_loss")


def _package(instance) -> str:
    return type(instance).__module__.split(".")[0]


# --------------------------------------------------------------------- train step
@self_check("VAE")
def check_train_step(vae_class, beta: float = 2.0) -> None:
    """Check the VAE class's loss step on a tiny encoder with z_log_var -20: loss =
    reconstruction + beta * KL and both trackers in evaluate() and in a training
    step, which changes the weights; a .keras file reloads."""
    import keras

    keras.utils.set_random_seed(0)
    encoder, decoder = _tiny_parts(-20.0)  # z = z_mean
    name = getattr(vae_class, "__name__", "VAE")
    vae = _tiny_vae(vae_class, encoder, decoder, beta, what=name)
    if not hasattr(vae, "decoder") or not hasattr(vae, "encoder"):
        raise CheckFailed(
            f"`{name}` keeps no `encoder` / `decoder` attribute: store them "
            "(self.encoder = encoder), the callbacks and 05 decode with vae.decoder"
        )
    images = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    logs = {k: float(v) for k, v in _evaluate(vae, name, images, 16).items()}
    rec, kl, z_mean, z_log_var = _by_hand(encoder, decoder, images)
    _check_trackers(logs, rec, kl, z_mean, z_log_var, images, "evaluate()")
    _check_loss(logs["loss"], rec, kl, beta, beta, images, "evaluate()", 2e-3)
    _weighted_means(vae, name, np.concatenate([images, images[:4] * 0.5]))
    before = [np.array(_numpy(w)) for w in vae.trainable_weights]
    # Keras before 3.15 (Colab's 3.13) does not reset the trackers in
    # train_on_batch: the step's loss would include the evaluations above.
    vae.reset_metrics()
    trained = _call(
        lambda: vae.train_on_batch(images, return_dict=True),
        what=f"{name}.train_step",
    )
    where = "a training step"
    _check_loss(float(trained["loss"]), rec, kl, beta, beta, images, where, 2e-3)
    after = [np.array(_numpy(w)) for w in vae.trainable_weights]
    if not before or all(np.allclose(a, b) for a, b in zip(before, after)):
        raise CheckFailed(
            f"one training step of `{name}` changed no weight: let Keras do the "
            "step (override compute_loss), or apply the gradients in train_step"
        )
    _check_reloads(vae, encoder, images)
    _passed(
        f"check_train_step passed: `{name}` trains on reconstruction + beta * KL "
        f"({rec:.4g} + {beta:g} * {kl:.4g}), reports both terms, and reloads from "
        ".keras"
    )


def _overrides(vae_class, method: str) -> bool:
    import keras

    return getattr(vae_class, method, None) is not getattr(keras.Model, method)


def check_precision_step(vae_class, policy: str = "mixed_float16") -> None:
    """Check the VAE class trains under a mixed-precision ``policy``: a
    ``train_step`` of its own must take the gradient of
    ``self.optimizer.scale_loss(loss)`` under float16, or training stalls silently;
    both steps must report finite losses."""
    import keras
    import tensorflow as tf  # what 04 feeds fit(): a tf.data stream of image batches

    from helpers.precision import precision_scope

    own_step = _overrides(vae_class, "train_step")
    if policy == "float32" and not own_step:
        return
    name = getattr(vae_class, "__name__", "VAE")
    keras.utils.set_random_seed(0)
    with precision_scope(policy):
        encoder, decoder = _tiny_parts(-20.0)
        vae = _tiny_vae(vae_class, encoder, decoder, 1.0, what=name)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    scaled = []
    if hasattr(vae.optimizer, "scale_loss"):
        scale_loss = vae.optimizer.scale_loss
        vae.optimizer.scale_loss = lambda loss: scaled.append(1) or scale_loss(loss)
    images = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    stream = tf.data.Dataset.from_tensor_slices(images).batch(8)
    history = _call(
        lambda: vae.fit(stream, epochs=1, verbose=0),
        what=f"{name}.train_step under {policy}",
    )
    if policy == "mixed_float16" and not scaled:
        raise CheckFailed(
            f"`{name}.train_step` never calls self.optimizer.scale_loss: under "
            "mixed_float16 take the gradient of `scaled = self.optimizer."
            "scale_loss(total)` (not of `total`), or training stalls"
        )
    write_test_step = "write test_step too (the same losses, no gradient)"
    try:
        tested = _call(
            lambda: vae.evaluate(stream, verbose=0, return_dict=True),
            what=f"{name}.test_step under {policy}",
        )
    except CheckFailed as error:
        if own_step and not _overrides(vae_class, "test_step"):
            raise CheckFailed(
                f"`{name}` has its own train_step but Keras' test_step cannot score "
                f"the validation data with it: {write_test_step}"
            ) from error
        raise
    trained = {k: v[-1] for k, v in history.history.items()}
    for step, found in (("train_step", trained), ("test_step", tested)):
        validation = step == "test_step"
        missing = [k for k in _LOSSES if k not in found]
        if missing:
            raise CheckFailed(
                f"`{name}.{step}` reports {sorted(found)}, without "
                f"{', '.join(missing)}: history.csv, the checkpoint's monitor and "
                "the resume read them"
                + (f"; {write_test_step}" if validation and own_step else "")
            )
        if validation and float(found["reconstruction_loss"]) == 0.0:
            fix = write_test_step if own_step else "update the trackers in compute_loss"
            raise CheckFailed(
                f"`{name}.test_step` reports reconstruction_loss 0 on images its "
                f"train_step reconstructs with an error: validation computes no "
                f"loss; {fix}"
            )
        bad = [k for k, v in found.items() if not math.isfinite(float(v))]
        if bad:
            raise CheckFailed(
                f"`{name}.{step}` under {policy} gave non-finite {', '.join(bad)}"
            )
    _passed(f"check_precision_step passed: `{name}` trains under {policy}")


# ----------------------------------------------------------------------- callbacks
def _drive(callback, config):
    """Run ``callback`` on a stand-in model that records (epoch, z) decodes."""
    calls, epoch = [], None

    def decode(z):
        calls.append((epoch, np.array(_numpy(z), dtype="float32")))
        return np.full((len(calls[-1][1]), *config.image_shape), 0.5, "float32")

    decoder = _StandIn(decode)
    model = types.SimpleNamespace(decoder=decoder, decode=decoder, stop_training=False)
    model.value_range = config.value_range
    callback.set_model(model)
    epochs = 2 * config.sample_interval + 1
    callback.set_params({"epochs": epochs, "steps": 1, "verbose": 0})
    name = type(callback).__name__
    _call(callback.on_train_begin, {}, what=f"{name}.on_train_begin")
    for epoch in range(epochs):
        _call(callback.on_epoch_begin, epoch, {}, what=name)
        logs = dict.fromkeys(("val_loss",) + _LOSSES, 1.0)
        _call(callback.on_epoch_end, epoch, logs, what=f"{name}.on_epoch_end")
    return calls, epochs


def _check_own(callback, config, fixed_z, samples: Path) -> list[str]:
    """What is wrong with the student's callback, driven for a few epochs."""
    name, interval = type(callback).__name__, config.sample_interval
    calls, epochs = _drive(callback, config)
    if not calls:
        return [
            f"{name} decoded nothing in {epochs} epochs: in on_epoch_end, decode "
            f"the fixed z with self.model.decoder every {interval} epochs"
        ]
    want = {e for e in range(epochs) if (e + 1) % interval == 0}
    got, problems = [e for e, _ in calls], []
    if len(set(got)) != len(got):
        problems.append(f"{name} decodes several times in one epoch: once is enough")
    extra = set(got) - want - {epochs - 1}
    if extra and interval > 1 and len(set(got)) >= epochs - 1:
        problems.append(
            f"{name} decodes every epoch: only every config.sample_interval = "
            f"{interval} epochs ((epoch + 1) % interval == 0)"
        )
    elif extra or not want <= set(got):
        problems.append(
            f"{name} decoded after the 0-based epochs {sorted(set(got))}, expected "
            f"{sorted(want)}: Keras counts epochs from 0, so test "
            "(epoch + 1) % interval == 0"
        )
    first = calls[0][1]
    if any(
        z.shape != first.shape or not np.allclose(z, first, atol=1e-6)
        for _, z in calls[1:]
    ):
        problems.append(
            f"{name} draws a new z every time: keep the fixed_z given to it and "
            "decode that, so the grids show the same faces getting sharper"
        )
    elif first.shape != fixed_z.shape or not np.allclose(first, fixed_z, atol=1e-6):
        problems.append(
            f"{name} decoded a z of shape {first.shape}, not the fixed_z given to "
            f"make_callbacks {fixed_z.shape}: decode that same array"
        )
    pngs = sorted(samples.glob("*.png"))
    if len(pngs) < len(set(got)):
        problems.append(
            f"{name} decoded {len(set(got))} times but wrote {len(pngs)} PNGs into "
            "run_dir/samples: save each grid there, e.g. helpers.plots.save_grid("
            "images, run_dir / 'samples' / f'epoch_{epoch + 1:03d}.png', "
            "value_range=...)"
        )
    elif pngs:
        problems += _grid_follows_value_range(callback, config, samples)
    return problems


def _grid_follows_value_range(callback, config, samples: Path) -> list[str]:
    """The grids use the callback's value_range, not save_grid's (0, 1)."""
    from PIL import Image

    try:
        kept = tuple(float(v) for v in getattr(callback, "value_range", None))
    except TypeError:
        return []  # a callback of the student's own design: nothing to swap
    if kept != tuple(float(v) for v in config.value_range):
        return []
    other = (-1.0, 1.0) if kept == (0.0, 1.0) else (0.0, 1.0)
    for png in samples.glob("*.png"):
        png.unlink()
    callback.value_range = other
    try:
        _drive(callback, config)  # the stand-in decodes 0.5
    finally:
        callback.value_range = kept
    pngs = sorted(samples.glob("*.png"))
    if not pngs:
        return []
    middle = 2 + int(config.image_size) // 2  # the first tile, past save_grid's pad
    grid = np.asarray(Image.open(pngs[0]).convert("RGB"))
    got = int(grid[middle, middle, 0])
    want = int(
        np.clip(np.rint((0.5 - other[0]) * 255.0 / (other[1] - other[0])), 0, 255)
    )
    if abs(got - 128) <= 1 and abs(got - want) > 2:  # 128: 0.5 in save_grid's (0, 1)
        return [
            f"{type(callback).__name__}'s grids ignore its value_range: with "
            f"value_range={other} a decoded 0.5 shows as grey {got}, expected "
            f"{want}. Pass it on: save_grid(..., value_range=self.value_range) (a "
            "tanh decoder's grids are clipped otherwise)"
        ]
    return []


@self_check("make_callbacks")
def check_callbacks(callbacks, run_dir, config=None, fixed_z=None) -> None:
    """Check 04's callbacks (a list, or a function returning it): a ModelCheckpoint
    (val_loss_at_target_beta, min, best only, run_dir/best.keras), a TensorBoard in
    run_dir, and one of the student's own, which (given ``config`` and ``fixed_z``)
    must decode fixed_z every config.sample_interval epochs into run_dir/samples.
    CheckFailed lists every missing or misconfigured callback."""
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if callable(callbacks) and not isinstance(callbacks, (list, tuple)):
        callbacks = _call(callbacks, what="make_callbacks")
    if not isinstance(callbacks, (list, tuple)):
        raise CheckFailed(
            f"`make_callbacks` returned {type(callbacks).__name__}: return a list "
            "of callbacks"
        )
    found, problems = {}, []  # {class name: the first callback of it or a subclass}
    for index, item in enumerate(callbacks):
        if isinstance(item, type):
            problems.append(
                f"item {index} is the class {item.__name__}, not an instance: add "
                "the parentheses and arguments"
            )
            continue
        names = [cls.__name__ for cls in type(item).__mro__]
        if "Callback" not in names:
            problems.append(
                f"item {index} is a {type(item).__name__}, not a Keras callback"
            )
        for name in names:
            found.setdefault(name, item)
    problems += _checkpoint_problems(found.get("ModelCheckpoint"), paths)
    board = found.get("TensorBoard")
    if board is None:
        problems.append("missing TensorBoard: log the losses to run_dir/tensorboard")
    else:
        log_dir, root = Path(str(board.log_dir)).resolve(), paths.root.resolve()
        if log_dir != root and root not in log_dir.parents:
            problems.append(
                f"TensorBoard writes to {board.log_dir}: keep it inside the run "
                f"directory {paths.root}"
            )
    instances = [c for c in callbacks if not isinstance(c, type)]
    lab = [c for c in instances if _package(c) in LAB_PACKAGES]
    own = [c for c in instances if _package(c) not in ("keras", *LAB_PACKAGES)]
    if not own:
        problems.append(
            "missing your own callback: subclass keras.callbacks.Callback and "
            "decode the fixed z in its on_epoch_end"
            + (f" ({type(lab[0]).__name__} is the lab's: write yours)" if lab else "")
        )
    elif config is not None and fixed_z is not None and not problems:
        fixed_z = np.asarray(fixed_z, dtype="float32")
        for callback in own:
            problems += _check_own(callback, config, fixed_z, paths.samples)
    if problems:
        raise CheckFailed("callbacks to fix:\n- " + "\n- ".join(problems))
    what = f", and {type(own[0]).__name__} decodes the fixed z" if own else ""
    every = f" every {config.sample_interval} epochs" if config is not None else ""
    _passed(
        f"check_callbacks passed: best model and TensorBoard go to "
        f"{paths.root}{what}{every}"
    )


def _checkpoint_problems(checkpoint, paths) -> list[str]:
    """What is wrong with the ModelCheckpoint: monitor, mode, best only, path."""
    if checkpoint is None:
        return [
            "missing ModelCheckpoint: keep the best model on held-out faces in "
            "run_dir/best.keras (05 and 06 load it)"
        ]
    problems = []
    monitor = getattr(checkpoint, "monitor", None)
    mode = getattr(checkpoint, "mode", None)
    if mode is None:  # Keras < 3.9 keeps no mode
        minimises = getattr(checkpoint, "monitor_op", None) in (np.less, np.less_equal)
    else:
        minimises = mode == "min"
    if monitor != BEST_MODEL_MONITOR:
        problems.append(
            f"ModelCheckpoint monitors {monitor!r}: use "
            f"monitor={BEST_MODEL_MONITOR!r} (with mode='min'), the validation loss "
            "at the target beta that train() logs. Plain val_loss weighs the KL by "
            "the warm-up's weight, so it is smallest in a warm-up epoch (KL weight "
            "near 0) and would keep a model trained without its KL"
            + (
                ""
                if str(monitor).startswith("val_")
                else "; and a training loss is not measured on held-out faces"
            )
        )
    elif not minimises:
        problems.append(
            f"ModelCheckpoint has mode={mode or 'max'!r}: a loss is best when it is "
            "smallest, use mode='min'"
        )
    if not getattr(checkpoint, "save_best_only", False):
        problems.append(
            "ModelCheckpoint needs save_best_only=True, or it keeps the last "
            "epoch instead of the best"
        )
    filepath = getattr(checkpoint, "filepath", None)
    if filepath is None or Path(str(filepath)).resolve() != paths.best_model.resolve():
        problems.append(
            f"ModelCheckpoint writes {filepath}: save to {paths.best_model} (05 and "
            "06 load it)"
        )
    return problems


# ------------------------------------------------------------------------- the run
@self_check("the run")
def check_training_run(run_dir, history=None) -> None:
    """Check a finished training run: finite losses, a KL, a best model, grids."""
    from helpers.plots import read_history
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if history is not None and not getattr(history, "epoch", None):
        raise CheckFailed("the run has no finished epoch: run the training cell")
    if not paths.history.exists():
        raise CheckFailed(f"{paths.history} is missing: did training run?")
    log = read_history(paths.history)
    for key in _LOSSES + ("val_loss",):
        values = log.get(key)
        if not values:
            raise CheckFailed(
                f"history.csv has no {key!r} column: your VAE must report "
                "reconstruction_loss and kl_loss, and fit needs validation_data"
            )
        if not all(math.isfinite(v) for v in values):
            raise CheckFailed(f"{key} became NaN or infinite: see 04's NaN advice")
    if log["kl_loss"][-1] < 1e-3:
        raise CheckFailed(
            f"the KL is {log['kl_loss'][-1]:.2g} nats: the posterior collapsed "
            "onto the prior (check the loss scale: sum the reconstruction per image)"
        )
    if not paths.best_model.exists():
        raise CheckFailed(f"{paths.best_model} is missing: check your ModelCheckpoint")
    grids = sorted(paths.samples.glob("*.png"))
    interval = json.loads(paths.config.read_text())["sample_interval"]
    if len(log["loss"]) >= interval and not grids:
        raise CheckFailed(
            f"no sample grid in {paths.samples} after {len(log['loss'])} epochs: "
            "check your callback"
        )
    origins = paths.root / "student_parts.json"
    whose = json.loads(origins.read_text()) if origins.exists() else {}
    lab = [part for part, who in whose.items() if who == "lab"]
    _passed(
        f"check_training_run passed: {len(log['loss'])} epochs, val_loss "
        f"{log['val_loss'][-1]:.4g}, KL {log['kl_loss'][-1]:.3g} nats, best.keras "
        f"and {len(grids)} grids"
        + (f"; the lab's parts: {', '.join(lab)}" if lab else "; all parts yours")
    )


# --------------------------------------------------------------- the assembled model
def _check_vae_settings(vae, config, name, probing=False) -> None:
    """The VAE's beta, reconstruction and value_range are ``config``'s."""
    fields = (
        ("beta", "beta", config.beta),
        ("reconstruction", "reconstruction_loss", config.reconstruction_loss),
        ("value_range", "value_range", tuple(config.value_range)),
    )
    for field, source, want in fields:
        got = getattr(vae, field, want)  # a VAE of the student's own may lack one
        if field == "value_range" and got is not None:
            got = tuple(float(v) for v in got)
        if got != want:
            given = f" (given a config with {source}={want!r})" if probing else ""
            raise CheckFailed(
                f"the model's {field} is {got!r}, the config's is {want!r}{given}: "
                f"pass {field}=config.{source} to `{name}`'s VAE(...)"
            )


@self_check("build_my_vae")
def check_built_vae(build, parts, config) -> None:
    """Check ``build(parts, config)``: the parts' VAE with the config's settings,
    compiled with Adam at config.learning_rate."""
    name = "build_my_vae"
    vae = _call(build, parts, config, what=name)
    vae_class = getattr(getattr(parts, "module", parts), "VAE", None)
    if vae_class is not None and not isinstance(vae, vae_class):
        raise CheckFailed(
            f"`{name}` returned a {type(vae).__name__}, not the VAE class of your "
            "parts: build parts.VAE(...)"
        )
    encoder, decoder = getattr(vae, "encoder", None), getattr(vae, "decoder", None)
    if encoder is None or decoder is None:
        raise CheckFailed(
            f"the model from `{name}` has no encoder/decoder: pass "
            "parts.build_encoder(config) and parts.build_decoder(config)"
        )
    latent = int(decoder.inputs[0].shape[-1])
    if latent != config.latent_dim:
        raise CheckFailed(
            f"the decoder takes z of size {latent}, the config says latent_dim="
            f"{config.latent_dim}: build both networks from the same config"
        )
    _check_vae_settings(vae, config, name)
    optimizer = getattr(vae, "optimizer", None)
    if optimizer is None or not getattr(vae, "compiled", True):
        raise CheckFailed(
            f"the model from `{name}` is not compiled: vae.compile(optimizer="
            "keras.optimizers.Adam(learning_rate=config.learning_rate))"
        )
    rate = float(_numpy(optimizer.learning_rate))
    if not math.isclose(rate, config.learning_rate, rel_tol=1e-5):
        raise CheckFailed(
            f"the optimizer's learning rate is {rate:g}, the config's "
            f"{config.learning_rate:g}: use config.learning_rate"
        )
    # Again with configs whose values differ from the VAE's defaults (beta 1, "mse",
    # (0, 1)): a hard-coded or forgotten setting shows here. BCE needs a sigmoid.
    other_kind = "bce" if config.reconstruction_loss == "mse" else "mse"
    other_range = "tanh" if config.output_activation == "sigmoid" else "sigmoid"
    for probe in (
        config.replace(
            beta=config.beta + 1.5,
            reconstruction_loss=other_kind,
            output_activation="sigmoid",
        ),
        config.replace(reconstruction_loss="mse", output_activation=other_range),
    ):
        other = _call(build, parts, probe, what=name)
        _check_vae_settings(other, probe, name, probing=True)
    _passed(
        f"check_built_vae passed: your {type(vae).__name__} with your encoder and "
        f"decoder (latent {latent}), beta {config.beta:g}, "
        f"{type(optimizer).__name__} at {rate:g}"
    )


# ---------------------------------------------------------------- 06: an experiment
@self_check("my_experiment")
def check_experiment(experiments, base) -> None:
    """Check ``{run name: VAEConfig}`` (or a function of ``base`` returning it):
    two or more runs with names fit for folders, exactly one setting varied, the
    rest as ``base``."""
    from helpers.config import VAEConfig

    if callable(experiments):
        experiments = _call(experiments, base, what="my_experiment")
    if not isinstance(experiments, dict) or len(experiments) < 2:
        raise CheckFailed(
            "return a dict {run name: config} with at least two runs to compare"
        )
    for name, cfg in experiments.items():
        if not isinstance(cfg, VAEConfig):
            raise CheckFailed(
                f"run {name!r} is a {type(cfg).__name__}: make each one with "
                "base.replace(setting=value)"
            )
        if not re.fullmatch(r"[A-Za-z0-9_.=-]+", str(name)):
            raise CheckFailed(
                f"run name {name!r}: use letters, digits, _ . = - (it names a folder)"
            )
    fields = [f.name for f in dataclasses.fields(VAEConfig) if f.name != "name"]
    configs = experiments.values()
    changed = {f for c in configs for f in fields if getattr(c, f) != getattr(base, f)}
    varying = {f for f in fields if len({repr(getattr(c, f)) for c in configs}) > 1}
    if not varying:
        raise CheckFailed("all runs have the same settings: change one setting")
    if len(varying) > 1:
        raise CheckFailed(
            f"the runs differ in {', '.join(sorted(varying))}: change ONE setting so "
            "a difference in the results has one cause"
        )
    if changed - varying - {"epochs"}:
        raise CheckFailed(
            f"every run also changes {', '.join(sorted(changed - varying))} from the "
            "sweeps' base: keep the rest as the base so your runs compare with them"
        )
    (field,) = varying
    values = ", ".join(f"{getattr(c, field)!r}" for c in configs)
    _passed(f"check_experiment passed: {len(experiments)} runs vary {field} ({values})")
