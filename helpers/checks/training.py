"""Self-checks for 04_train (the loss step, the callbacks, the run) and 06: tiny
models and stand-ins that record what they get, against values computed by hand."""

import dataclasses
import json
import math
import re
import types
from pathlib import Path

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, _stand_in
from helpers.checks._common import LAB_PACKAGES, self_check
from helpers.checks.loss import _by_hand, _check_loss, _check_reloads
from helpers.checks.loss import _check_trackers, _evaluate, _tiny_parts, _tiny_vae
from helpers.checks.loss import _weighted_means

BEST_MODEL_MONITOR = "val_loss_at_target_beta"  # train() logs it every epoch
_LOSSES = ("loss", "reconstruction_loss", "kl_loss")
_IMAGES = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")


@self_check("VAE")
def check_train_step(vae_class, beta: float = 2.0) -> None:
    """Check the VAE on tiny parts (z = z_mean): loss = reconstruction + beta * KL and
    the trackers, in evaluate() and a weight-changing training step; .keras reloads."""
    import keras

    keras.utils.set_random_seed(0)
    encoder, decoder = _tiny_parts(-20.0)  # z = z_mean
    name, images = getattr(vae_class, "__name__", "VAE"), _IMAGES.copy()
    vae = _tiny_vae(vae_class, encoder, decoder, beta, what=name)
    if not hasattr(vae, "decoder") or not hasattr(vae, "encoder"):
        raise CheckFailed(
            f"`{name}` keeps no .encoder / .decoder: store both (self.encoder = ...)"
        )
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    logs = {k: float(v) for k, v in _evaluate(vae, name, images, 16).items()}
    rec, kl, z_mean, z_log_var = _by_hand(encoder, decoder, images)
    _check_trackers(logs, rec, kl, z_mean, z_log_var, images, "evaluate()")
    _check_loss(logs["loss"], rec, kl, beta, beta, images, "evaluate()", 2e-3)
    _weighted_means(vae, name, np.concatenate([images, images[:4] * 0.5]))
    before = [np.array(_numpy(w)) for w in vae.trainable_weights]
    vae.reset_metrics()  # Keras < 3.15 (Colab's 3.13) keeps them in train_on_batch
    what = f"{name}.train_step"
    step = _call(vae.train_on_batch, images, return_dict=True, what=what)["loss"]
    _check_loss(float(step), rec, kl, beta, beta, images, "a training step", 2e-3)
    after = [np.array(_numpy(w)) for w in vae.trainable_weights]
    if not before or all(np.allclose(a, b) for a, b in zip(before, after)):
        raise CheckFailed(
            f"a training step of `{name}` changed no weight: let Keras do the step "
            "(override compute_loss), or apply the gradients in train_step"
        )
    _check_reloads(vae, encoder, images)
    _passed(
        f"check_train_step passed: `{name}` trains on {rec:.4g} + {beta:g} * {kl:.4g}"
    )


def check_precision_step(vae_class, policy: str = "mixed_float16") -> None:
    """Check the VAE class trains under ``policy``: in float16 an own train_step takes
    the gradient of ``self.optimizer.scale_loss(loss)``; the losses are finite."""
    import keras
    import tensorflow as tf  # what 04 feeds fit(): a tf.data stream of image batches

    from helpers.precision import precision_scope

    own_step = getattr(vae_class, "train_step", None) is not keras.Model.train_step
    own_test = getattr(vae_class, "test_step", None) is not keras.Model.test_step
    if policy == "float32" and not own_step:
        return
    name = getattr(vae_class, "__name__", "VAE")
    keras.utils.set_random_seed(0)
    with precision_scope(policy):
        vae = _tiny_vae(vae_class, *_tiny_parts(-20.0), 1.0, what=name)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    scaled, scale_loss = [], vae.optimizer.scale_loss
    vae.optimizer.scale_loss = lambda loss: scaled.append(1) or scale_loss(loss)
    stream = tf.data.Dataset.from_tensor_slices(_IMAGES).batch(8)
    what = f"{name}.train_step under {policy}"
    history = _call(vae.fit, stream, epochs=1, verbose=0, what=what)
    if policy == "mixed_float16" and not scaled:
        raise CheckFailed(
            f"`{name}.train_step` never calls self.optimizer.scale_loss: in {policy} "
            "take the gradient of scale_loss(total), not of total, or training stalls"
        )
    write = f"`{name}` has its own train_step: write test_step too (no gradient)"
    try:
        what = f"{name}.test_step under {policy}"
        tested = _call(vae.evaluate, stream, verbose=0, return_dict=True, what=what)
    except CheckFailed as error:
        if own_step and not own_test:
            raise CheckFailed(write) from error
        raise
    trained = {k: v[-1] for k, v in history.history.items()}
    for step, found in (("train_step", trained), ("test_step", tested)):
        fix = write if own_step else "update the trackers in compute_loss"
        if missing := [k for k in _LOSSES if k not in found]:
            raise CheckFailed(
                f"`{name}.{step}` does not report {missing}: report them (the resume "
                "and the checkpoint read them)"
                + (f"; {fix}" if step == "test_step" and own_step else "")
            )
        if step == "test_step" and float(found["reconstruction_loss"]) == 0.0:
            raise CheckFailed(f"`{name}.test_step` gives reconstruction_loss 0: {fix}")
        if bad := [k for k, v in found.items() if not math.isfinite(float(v))]:
            raise CheckFailed(f"`{name}.{step}` under {policy} gave non-finite {bad}")
    _passed(f"check_precision_step passed: `{name}` trains under {policy}")


def _check_own(callback, config, fixed_z, samples: Path) -> list[str]:
    """What is wrong with the callback, run on a stand-in that decodes 0.5; a
    value_range kept from the config becomes (-1, 1): 0.5 must show as grey 191."""
    from PIL import Image

    name, interval = type(callback).__name__, config.sample_interval
    calls, epoch, epochs = [], 0, 2 * interval + 1

    def decode(z):
        calls.append((epoch, np.array(_numpy(z), dtype="float32")))
        return np.full((len(calls[-1][1]), *config.image_shape), 0.5, "float32")

    model = types.SimpleNamespace(decoder=_stand_in(decode), stop_training=False)
    model.decode, model.value_range = model.decoder, (-1.0, 1.0)
    old = getattr(callback, "value_range", None)  # None: a design of the student's own
    swap = isinstance(old, (tuple, list)) and tuple(old) == config.value_range
    for png in samples.glob("*.png"):
        png.unlink()
    callback.set_model(model)
    callback.set_params({"epochs": epochs, "steps": 1, "verbose": 0})
    if swap:
        callback.value_range = (-1.0, 1.0)
    _call(callback.on_train_begin, {}, what=f"{name}.on_train_begin")
    for epoch in range(epochs):
        _call(callback.on_epoch_begin, epoch, {}, what=name)
        logs = dict.fromkeys(("val_loss",) + _LOSSES, 1.0)
        _call(callback.on_epoch_end, epoch, logs, what=f"{name}.on_epoch_end")
    if swap:
        callback.value_range = old
    if not calls:
        return [
            f"{name} decoded nothing in {epochs} epochs: in on_epoch_end, decode the "
            f"fixed z with self.model.decoder every {interval} epochs"
        ]
    want = {e for e in range(epochs) if (e + 1) % interval == 0}
    got, problems = [e for e, _ in calls], []
    if len(set(got)) != len(got):
        problems.append(f"{name} decodes several times in one epoch: once is enough")
    extra = set(got) - want - {epochs - 1}
    if extra and interval > 1 and len(set(got)) >= epochs - 1:
        problems.append(f"{name} decodes every epoch: decode only every {interval}")
    elif extra or not want <= set(got):
        problems.append(
            f"{name} decoded after epochs {sorted(set(got))}, expected {sorted(want)}"
            ": Keras counts epochs from 0; test (epoch + 1) % interval == 0"
        )
    first = calls[0][1]
    if any(z.shape != first.shape or not np.allclose(z, first) for _, z in calls):
        problems.append(f"{name} draws a new z every time: decode the fixed_z")
    elif first.shape != fixed_z.shape or not np.allclose(first, fixed_z, atol=1e-6):
        problems.append(f"{name} decoded another z than fixed_z: decode fixed_z")
    pngs = sorted(samples.glob("*.png"))
    if len(pngs) < len(set(got)):
        problems.append(
            f"{name} decoded {len(set(got))} times but wrote {len(pngs)} PNGs into "
            "run_dir/samples: save each grid there (helpers.plots.save_grid)"
        )
    elif pngs and swap:
        middle = 2 + int(config.image_size) // 2  # the first tile, past save_grid's pad
        grey = np.asarray(Image.open(pngs[0]).convert("RGB"))[middle, middle, 0]
        if abs(int(grey) - 128) <= 1:  # 128: 0.5 in save_grid's default (0, 1)
            problems.append(
                f"{name}'s grids ignore its value_range: with value_range=(-1.0, 1.0)"
                f" a decoded 0.5 shows as grey {grey}, not 191: pass it on, "
                "save_grid(..., value_range=self.value_range)"
            )
    return problems


@self_check("make_callbacks")
def check_callbacks(callbacks, run_dir, config=None, fixed_z=None) -> None:
    """Check 04's callbacks (or their maker): best.keras and TensorBoard in run_dir,
    the student's own decoding ``fixed_z`` each sample_interval; lists every fault."""
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if callable(callbacks):
        callbacks = _call(callbacks, what="make_callbacks")
    if not isinstance(callbacks, (list, tuple)):
        raise CheckFailed(f"it returned a {type(callbacks).__name__}: return a list")
    found, problems, own, lab = {}, [], [], []  # found: {class name: first instance}
    for index, item in enumerate(callbacks):
        if isinstance(item, type):
            problems.append(f"item {index} is the class {item.__name__}: call it")
            continue
        names = [cls.__name__ for cls in type(item).__mro__]
        if "Callback" not in names:
            problems.append(f"item {index} is a {names[0]}, not a Keras callback")
        found = dict.fromkeys(names, item) | found
        pkg = type(item).__module__.split(".")[0]
        (lab if pkg in LAB_PACKAGES else own if pkg != "keras" else []).append(item)
    problems += _checkpoint_problems(found.get("ModelCheckpoint"), paths)
    board, root = found.get("TensorBoard"), paths.root.resolve()
    if board is None:
        problems.append("missing TensorBoard: log the losses to run_dir/tensorboard")
    elif root not in (log_dir := Path(str(board.log_dir)).resolve(), *log_dir.parents):
        problems.append(f"TensorBoard writes to {log_dir}: keep it inside {root}")
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
    what = f", and {type(own[0]).__name__} decodes the fixed z"
    every = f" every {config.sample_interval} epochs" if config is not None else ""
    _passed(f"check_callbacks passed: best model, TensorBoard in {root}{what}{every}")


def _checkpoint_problems(checkpoint, paths) -> list[str]:
    """What is wrong with the ModelCheckpoint: monitor, mode, best only, path."""
    if checkpoint is None:
        return ["missing ModelCheckpoint: keep the best model in run_dir/best.keras"]
    problems, monitor = [], getattr(checkpoint, "monitor", None)
    mode = getattr(checkpoint, "mode", None)  # Keras < 3.9 keeps only monitor_op
    low = getattr(checkpoint, "monitor_op", None) in (np.less, np.less_equal)
    if monitor != BEST_MODEL_MONITOR:
        train = not str(monitor).startswith("val_")
        problems.append(
            f"ModelCheckpoint monitors {monitor!r}: use monitor={BEST_MODEL_MONITOR!r}"
            " (mode='min'), the validation loss at the target beta that train() logs."
            " Plain val_loss weighs the KL by the warm-up's weight, so it is smallest "
            "in a warm-up epoch and would keep a model trained without its KL"
            + "; and a training loss is not measured on held-out faces" * train
        )
    elif not (mode == "min" if mode is not None else low):
        problems.append(f"ModelCheckpoint has mode={mode or 'max'!r}: use mode='min'")
    if not getattr(checkpoint, "save_best_only", False):
        problems.append("ModelCheckpoint needs save_best_only=True")
    path = getattr(checkpoint, "filepath", None)
    if path is None or Path(str(path)).resolve() != paths.best_model.resolve():
        problems.append(f"ModelCheckpoint writes {path}: save to {paths.best_model}")
    return problems


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
        if not log.get(key):
            raise CheckFailed(
                f"history.csv has no {key!r}: your VAE must report reconstruction_loss "
                "and kl_loss, and fit needs validation_data"
            )
        if not all(math.isfinite(v) for v in log[key]):
            raise CheckFailed(f"{key} became NaN or infinite: see 04's NaN advice")
    kl, epochs = log["kl_loss"][-1], len(log["loss"])
    if kl < 1e-3:
        raise CheckFailed(
            f"the KL is {kl:.2g} nats: the posterior collapsed onto the prior (check "
            "the loss scale: sum the reconstruction per image)"
        )
    if not paths.best_model.exists():
        raise CheckFailed(f"{paths.best_model} is missing: check your ModelCheckpoint")
    grids = len(list(paths.samples.glob("*.png")))
    if not grids and epochs >= json.loads(paths.config.read_text())["sample_interval"]:
        raise CheckFailed(f"no sample grid in {paths.samples}: check your callback")
    origins = paths.root / "student_parts.json"
    whose = json.loads(origins.read_text()) if origins.exists() else {}
    lab = ", ".join(part for part, who in whose.items() if who == "lab")
    _passed(
        f"check_training_run passed: {epochs} epochs, val_loss "
        f"{log['val_loss'][-1]:.4g}, KL {kl:.3g} nats, best.keras, {grids} grids; "
        + (f"the lab's parts: {lab}" if lab else "all parts yours")
    )


@self_check("build_my_vae")
def check_built_vae(build, parts, config) -> None:
    """Check ``build(parts, config)``: the parts' VAE with the config's settings,
    compiled with Adam at config.learning_rate."""
    name = "build_my_vae"
    vae = _call(build, parts, config, what=name)
    vae_class = getattr(getattr(parts, "module", parts), "VAE", None)
    if vae_class is not None and not isinstance(vae, vae_class):
        raise CheckFailed(f"`{name}` returned a {type(vae).__name__}: use parts.VAE")
    decoder = getattr(vae, "decoder", None)
    if decoder is None or getattr(vae, "encoder", None) is None:
        raise CheckFailed(
            f"the `{name}` model has no encoder/decoder: pass "
            "parts.build_encoder(config) and parts.build_decoder(config)"
        )
    latent = int(decoder.inputs[0].shape[-1])
    if latent != config.latent_dim:
        raise CheckFailed(
            f"the decoder takes z of size {latent}, the config's latent_dim is "
            f"{config.latent_dim}: build both networks from the same config"
        )
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
    # Also values other than the VAE's defaults (beta 1, mse, [0, 1]); BCE: sigmoid
    kind = "bce" if config.reconstruction_loss == "mse" else "mse"
    act = "tanh" if config.output_activation == "sigmoid" else "sigmoid"
    sigmoid = {"output_activation": "sigmoid"}
    for cfg in (
        config,
        config.replace(beta=config.beta + 1.5, reconstruction_loss=kind, **sigmoid),
        config.replace(reconstruction_loss="mse", output_activation=act),
    ):
        built = vae if cfg is config else _call(build, parts, cfg, what=name)
        for source in ("beta", "reconstruction_loss", "value_range"):
            field, want = source.removesuffix("_loss"), getattr(cfg, source)
            got = getattr(built, field, want)  # a VAE of the student's own may lack one
            if field == "value_range":
                want, got = tuple(want), got and tuple(float(v) for v in got)
            given = f" (given a config with {source}={want!r})" * (cfg is not config)
            if got != want:
                raise CheckFailed(
                    f"the model's {field} is {got!r}, the config's is {want!r}{given}"
                    f": pass {field}=config.{source} to `{name}`'s VAE(...)"
                )
    _passed(
        f"check_built_vae passed: your {type(vae).__name__}, {type(optimizer).__name__}"
    )


@self_check("my_experiment")
def check_experiment(experiments, base) -> None:
    """Check ``{run name: VAEConfig}`` (or a function of ``base`` returning it): two
    or more runs named fit for folders, one setting varied, the rest as ``base``."""
    from helpers.config import VAEConfig

    if callable(experiments):
        experiments = _call(experiments, base, what="my_experiment")
    if not isinstance(experiments, dict) or len(experiments) < 2:
        raise CheckFailed("return a dict {run name: config} of at least two runs")
    for name, cfg in experiments.items():
        if not isinstance(cfg, VAEConfig):
            raise CheckFailed(f"run {name!r} is no VAEConfig: use base.replace(...)")
        if not re.fullmatch(r"[A-Za-z0-9_.=-]+", str(name)):
            raise CheckFailed(f"run name {name!r}: use letters, digits, _ . = -")
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
