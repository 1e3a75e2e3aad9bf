"""Self-checks for 04_train: the model's loss step, the callbacks, the run.

None of them imports the lab's reference model: each builds what it needs (tiny
models, fake decoders that record what they are given) and compares with values
computed by hand here, or with properties.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from helpers.checks._common import CheckFailed, _call, _numpy, _passed, self_check
from helpers.checks.loss import (
    _check_reloads,
    _close,
    _set_log_var,
    _tiny_vae,
    _weighted_means,
)
from helpers.checks.loss import _tiny_parts as _seeded_tiny_parts

# What the best-model checkpoint must monitor: the lab's train() logs it every epoch
# (helpers.callbacks.TargetBetaLoss, before the student's callbacks). Only the name is
# inspected here, so the check also works on callbacks made outside train().
BEST_MODEL_MONITOR = "val_loss_at_target_beta"


# --------------------------------------------------------------------- train step
def _tiny_parts():
    """The loss check's tiny encoder and decoder, with z_log_var ~ -20 (z is z_mean)."""
    encoder, decoder = _seeded_tiny_parts()
    _set_log_var(encoder, -20.0)
    return encoder, decoder


def _minimises(checkpoint) -> bool:
    """True when the checkpoint keeps the smallest value (Keras < 3.9 keeps no mode)."""
    mode = getattr(checkpoint, "mode", None)
    if mode is not None:
        return mode == "min"
    return getattr(checkpoint, "monitor_op", None) in (np.less, np.less_equal)


def _diagnose(loss, r, kl, beta, name, where) -> None:
    """Fail naming the mistake when ``loss`` is not ``r + beta * kl``."""
    if not math.isfinite(loss):
        raise CheckFailed(f"`{name}` gave the loss {loss} in {where}: make it finite")
    if _close(loss, r + beta * kl):
        return
    diagnoses = [
        (r, "forgets the KL: the loss is the reconstruction alone; add beta * KL"),
        (kl * beta, "forgets the reconstruction: the loss is beta * KL alone"),
        (r + kl, "ignores beta: multiply the KL by self.beta (here 2)"),
        (r - beta * kl, "adds the KL with the wrong sign: it is a penalty, + beta*KL"),
        (
            r / (8 * 8 * 3) + beta * kl,
            "averages the reconstruction over the pixels: sum it per image "
            "(then average over the batch), or the KL wins and the posterior "
            "collapses",
        ),
        (r * 16 + beta * kl * 16, "sums over the batch: average over the images"),
    ]
    for value, hint in diagnoses:
        if _close(loss, value):
            raise CheckFailed(f"`{name}`'s loss in {where} {hint}")
    raise CheckFailed(
        f"`{name}`'s loss in {where} is {loss:.4g}, but reconstruction + beta * KL "
        f"= {r:.4g} + {beta:g} * {kl:.4g} = {r + beta * kl:.4g} here: compute both "
        "terms from the model's outputs (sum per image, mean over the batch)"
    )


@self_check("VAE")
def check_train_step(vae_class, beta: float = 2.0) -> None:
    """Check your VAE class's loss: reconstruction + beta * KL, tracked and trained.

    Builds ``vae_class(encoder, decoder, beta=2, reconstruction="mse",
    value_range=(0, 1), seed=0)`` around a tiny encoder whose ``z_log_var`` is
    -20 (so ``z`` is ``z_mean``), evaluates it on 16 images and compares the
    reported ``loss``, ``reconstruction_loss`` and ``kl_loss`` with the ELBO
    computed by hand; then checks one training step changes the weights and the
    model reloads from a ``.keras`` file.

    Raises:
        CheckFailed: naming the mistake (KL forgotten, beta ignored, KL sign,
            per-pixel averaging, missing trackers, no update, no reload).
    """
    import keras

    keras.utils.set_random_seed(0)
    encoder, decoder = _tiny_parts()
    name = getattr(vae_class, "__name__", "VAE")
    vae = _tiny_vae(vae_class, encoder, decoder, beta, what=name)
    if not hasattr(vae, "decoder") or not hasattr(vae, "encoder"):
        raise CheckFailed(
            f"`{name}` keeps no `encoder` / `decoder` attribute: store them "
            "(self.encoder = encoder), the callbacks and 05 decode with vae.decoder"
        )
    images = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    vae.compile(optimizer=keras.optimizers.SGD(learning_rate=0.01))
    logs = _call(
        lambda: vae.evaluate(images, batch_size=16, verbose=0, return_dict=True),
        what=f"{name}.compute_loss (or test_step)",
    )
    mean, log_var = (_numpy(t) for t in encoder(images))
    recon = _numpy(decoder(mean))
    r = float(((images - recon) ** 2).reshape(16, -1).sum(1).mean())
    kl = float((-0.5 * (1 + log_var - mean**2 - np.exp(log_var))).sum(1).mean())
    missing = [k for k in ("reconstruction_loss", "kl_loss") if k not in logs]
    if missing:
        raise CheckFailed(
            f"`{name}` reports {sorted(logs)}, without {', '.join(missing)}: track "
            "each term with keras.metrics.Mean(name='reconstruction_loss') / "
            "(name='kl_loss'), update them in compute_loss, and list them under "
            "the `metrics` property"
        )
    _diagnose(float(logs["loss"]), r, kl, beta, name, "evaluate")
    if not _close(float(logs["kl_loss"]), kl):
        raise CheckFailed(
            f"kl_loss reports {float(logs['kl_loss']):.4g}, the KL is {kl:.4g}: "
            "update the KL tracker with the KL itself (not beta * KL)"
        )
    if not _close(float(logs["reconstruction_loss"]), r):
        raise CheckFailed(
            f"reconstruction_loss reports {float(logs['reconstruction_loss']):.4g}"
            f", the reconstruction term is {r:.4g}: update its tracker with it"
        )
    _weighted_means(vae, name, np.concatenate([images, images[:4] * 0.5]))
    before = [np.array(_numpy(w)) for w in vae.trainable_weights]
    # Keras before 3.15 (Colab's 3.13) does not reset the trackers in
    # train_on_batch: the step's loss would include the evaluations above.
    vae.reset_metrics()
    trained = _call(
        lambda: vae.train_on_batch(images, return_dict=True),
        what=f"{name}.train_step",
    )
    _diagnose(float(trained["loss"]), r, kl, beta, name, "training")
    after = [np.array(_numpy(w)) for w in vae.trainable_weights]
    if not before or all(np.allclose(a, b) for a, b in zip(before, after)):
        raise CheckFailed(
            f"one training step of `{name}` changed no weight: let Keras do the "
            "step (override compute_loss), or apply the gradients in train_step"
        )
    _check_reloads(vae, encoder, images)  # registered, and the same encoder
    _passed(
        f"check_train_step passed: `{name}` trains on reconstruction + beta * KL "
        f"({r:.4g} + {beta:g} * {kl:.4g}), reports both terms, and reloads from "
        ".keras"
    )


def _overrides(vae_class, method: str) -> bool:
    import keras

    return getattr(vae_class, method, None) is not getattr(keras.Model, method)


def check_precision_step(vae_class, policy: str = "mixed_float16") -> None:
    """Check your VAE class trains under a mixed-precision ``policy``.

    Keras' own ``train_step`` (what a ``compute_loss`` VAE uses) scales the loss
    under float16 itself; a ``train_step`` of your own must do it: the gradient of
    ``self.optimizer.scale_loss(loss)``, which the ``LossScaleOptimizer`` unscales.
    Without it the step shrinks as the loss scale grows, and training stalls
    without an error. ``train()`` runs this before training under such a policy
    (and for any VAE with its own ``train_step``), so the run never starts wrong.

    Raises:
        CheckFailed: the step does not scale the loss, reports non-finite or
            missing losses (loss, reconstruction_loss, kl_loss; validation too).
    """
    import keras

    from helpers.precision import precision_scope

    own_step = _overrides(vae_class, "train_step")
    if policy == "float32" and not own_step:
        return
    name = getattr(vae_class, "__name__", "VAE")
    keras.utils.set_random_seed(0)
    with precision_scope(policy):
        encoder, decoder = _tiny_parts()
        vae = _tiny_vae(vae_class, encoder, decoder, 1.0, what=name)
        vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    scaled = []
    if hasattr(vae.optimizer, "scale_loss"):
        scale_loss = vae.optimizer.scale_loss
        vae.optimizer.scale_loss = lambda loss: scaled.append(1) or scale_loss(loss)
    import tensorflow as tf  # what 04 feeds fit(): a tf.data stream of image batches

    images = np.random.default_rng(0).random((16, 8, 8, 3)).astype("float32")
    stream = tf.data.Dataset.from_tensor_slices(images).batch(8)
    history = _call(
        lambda: vae.fit(stream, epochs=1, verbose=0),
        what=f"{name}.train_step under {policy}",
    )
    logs = {k: v[-1] for k, v in history.history.items()}
    if policy == "mixed_float16" and not scaled:
        raise CheckFailed(
            f"`{name}.train_step` never calls self.optimizer.scale_loss: under "
            "mixed_float16 take the gradient of `scaled = self.optimizer."
            "scale_loss(total)` (not of `total`), or training stalls"
        )
    try:
        tested = _call(
            lambda: vae.evaluate(stream, verbose=0, return_dict=True),
            what=f"{name}.test_step under {policy}",
        )
    except CheckFailed as error:
        if own_step and not _overrides(vae_class, "test_step"):
            raise CheckFailed(
                f"`{name}` has its own train_step but Keras' test_step cannot score "
                "the validation data with it: write test_step too (the same losses, "
                "no gradient)"
            ) from error
        raise
    for where, found in (("train_step", logs), ("test_step", tested)):
        _check_step_logs(found, f"{name}.{where}", policy, own_step)
    _passed(f"check_precision_step passed: `{name}` trains under {policy}")


def _check_step_logs(found: dict, what: str, policy: str, own_step: bool) -> None:
    """A step's logs: the three losses, a real validation loss, all finite."""
    missing = [k for k in ("loss", "reconstruction_loss", "kl_loss") if k not in found]
    if missing:
        raise CheckFailed(
            f"`{what}` reports {sorted(found)}, without "
            f"{', '.join(missing)}: history.csv, the checkpoint's monitor and "
            "the resume read them"
            + (
                "; write test_step too (the same losses, no gradient)"
                if what.endswith(".test_step") and own_step
                else ""
            )
        )
    if what.endswith(".test_step") and float(found["reconstruction_loss"]) == 0.0:
        raise CheckFailed(
            f"`{what}` reports reconstruction_loss 0 on images its "
            "train_step reconstructs with an error: validation computes no loss; "
            + (
                "write test_step too (the same losses, no gradient)"
                if own_step
                else "update the trackers in compute_loss"
            )
        )
    bad = [k for k, v in found.items() if not math.isfinite(float(v))]
    if bad:
        raise CheckFailed(
            f"`{what}` under {policy} gave non-finite {', '.join(bad)}"
        )


# ----------------------------------------------------------------------- callbacks
def _same_path(value, want: Path) -> bool:
    return value is not None and Path(str(value)).resolve() == want.resolve()


def _inside(value, root: Path) -> bool:
    if value is None:
        return False
    path, root = Path(str(value)).resolve(), root.resolve()
    return path == root or root in path.parents


class _RecordingDecoder:
    """Stands in for ``vae.decoder``: records every z and returns grey images."""

    def __init__(self, shape):
        self.shape, self.calls = tuple(shape), []
        self.epoch = None

    def __call__(self, z, training=False, **kwargs):
        z = np.array(_numpy(z), dtype="float32")
        self.calls.append((self.epoch, z))
        return np.full((len(z), *self.shape), 0.5, dtype="float32")

    predict = __call__


class _FakeModel:
    def __init__(self, decoder, value_range):
        self.decoder, self.value_range = decoder, value_range
        self.stop_training = False

    def decode(self, z):
        return self.decoder(z)


def _own_callbacks(callbacks):
    """The callbacks that are neither Keras' nor the lab's."""
    return [
        c
        for c in callbacks
        if not type(c).__module__.startswith(("keras", "helpers."))
        and not isinstance(c, type)
    ]


def _drive(callback, config, fixed_z, run_dir):
    """Run one callback through 2 * interval + 1 fake epochs; return decode calls."""
    decoder = _RecordingDecoder(config.image_shape)
    callback.set_model(_FakeModel(decoder, config.value_range))
    epochs = 2 * config.sample_interval + 1
    callback.set_params({"epochs": epochs, "steps": 1, "verbose": 0})
    logs = {"loss": 1.0, "val_loss": 1.0, "kl_loss": 1.0, "reconstruction_loss": 1.0}
    _call(callback.on_train_begin, {}, what=f"{type(callback).__name__}.on_train_begin")
    for epoch in range(epochs):
        decoder.epoch = epoch
        _call(callback.on_epoch_begin, epoch, {}, what=f"{type(callback).__name__}")
        _call(
            callback.on_epoch_end,
            epoch,
            dict(logs),
            what=f"{type(callback).__name__}.on_epoch_end",
        )
    return decoder.calls, epochs


def _check_own(callback, config, fixed_z, run_dir) -> list[str]:
    name = type(callback).__name__
    calls, epochs = _drive(callback, config, fixed_z, run_dir)
    interval = config.sample_interval
    want = {e for e in range(epochs) if (e + 1) % interval == 0}
    got = [e for e, _ in calls]
    if not calls:
        return [
            f"{name} decoded nothing in {epochs} epochs: in on_epoch_end, decode "
            f"the fixed z with self.model.decoder every {interval} epochs"
        ]
    problems = []
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
            f"{name} decoded a z of shape {first.shape} that is not the fixed_z "
            f"passed to make_callbacks {fixed_z.shape}: decode that same array, so "
            "every grid shows the same faces"
        )
    pngs = sorted((Path(run_dir) / "samples").glob("*.png"))
    if len(pngs) < len(set(got)):
        problems.append(
            f"{name} decoded {len(set(got))} times but wrote {len(pngs)} PNGs into "
            "run_dir/samples: save each grid there (the notebook and the report "
            "look for them), e.g. helpers.plots.save_grid(images, run_dir / "
            "'samples' / f'epoch_{epoch + 1:03d}.png', value_range=...)"
        )
    elif pngs:
        problems += _grid_follows_value_range(callback, config, fixed_z, run_dir)
    return problems


def _grey(level: float, value_range) -> int:
    """The grey level (0..255) a decoder value gets in a grid for ``value_range``."""
    low, high = (float(v) for v in value_range)
    return int(np.clip(np.rint((level - low) * 255.0 / (high - low)), 0, 255))


def _grid_follows_value_range(callback, config, fixed_z, run_dir) -> list[str]:
    """The grids use the value_range the callback was given (FaceGrid keeps it as
    ``self.value_range``), not save_grid's default (0, 1): the notebook's config is
    a [0, 1] one, so the callback is driven once more with the other range."""
    from PIL import Image

    kept = getattr(callback, "value_range", None)
    try:
        kept = tuple(float(v) for v in kept)
    except TypeError:
        return []  # a callback of the student's own design: nothing to swap
    if kept != tuple(float(v) for v in config.value_range):
        return []
    other = (-1.0, 1.0) if kept == (0.0, 1.0) else (0.0, 1.0)
    samples = Path(run_dir) / "samples"
    for png in samples.glob("*.png"):
        png.unlink()
    callback.value_range = other
    try:
        _drive(callback, config, fixed_z, run_dir)  # the stand-in decodes 0.5
    finally:
        callback.value_range = kept
    pngs = sorted(samples.glob("*.png"))
    if not pngs:
        return []
    grid = np.asarray(Image.open(pngs[0]).convert("RGB"))
    side = int(config.image_size)
    centre = grid[2 + side // 2, 2 + side // 2]  # the first tile, past save_grid's pad
    got, want, default = int(centre[0]), _grey(0.5, other), _grey(0.5, (0.0, 1.0))
    if abs(got - default) <= 1 and abs(got - want) > 2:
        name = type(callback).__name__
        return [
            f"{name}'s grids ignore its value_range: with value_range={other} a "
            f"decoded 0.5 shows as grey {got}, expected {want}. Pass it on: "
            "save_grid(..., value_range=self.value_range) (a tanh decoder's grids "
            "are clipped otherwise)"
        ]
    return []


@self_check("make_callbacks")
def check_callbacks(callbacks, run_dir, config=None, fixed_z=None) -> None:
    """Check the callbacks of 04_train: checkpoint, TensorBoard and your own.

    Looks for a ModelCheckpoint (val_loss_at_target_beta, best only,
    run_dir/best.keras), a
    TensorBoard writing inside run_dir, and a Callback of your own (not one of
    Keras' or the lab's). With ``config`` and ``fixed_z`` it also runs your callback
    through a few epochs on a stand-in model and checks it decodes exactly
    ``fixed_z`` after every ``config.sample_interval``-th epoch and saves the
    grids under run_dir/samples.

    Args:
        callbacks: the list, or a function of no arguments returning it
            (``lambda: make_callbacks(...)``), so an untouched TODO gets the
            friendly message.
        run_dir: the run directory they should write to.
        config: the VAEConfig passed to make_callbacks (sample_interval,
            image_size, value_range).
        fixed_z: the (N, latent_dim) array passed to make_callbacks.

    Raises:
        CheckFailed: listing every missing or misconfigured callback.
    """
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if callable(callbacks) and not isinstance(callbacks, (list, tuple)):
        callbacks = _call(callbacks, what="make_callbacks")
    if not isinstance(callbacks, (list, tuple)):
        raise CheckFailed(
            f"`make_callbacks` returned {type(callbacks).__name__}: return a list "
            "of callbacks"
        )
    found, problems = _callbacks_by_class(callbacks)
    problems += _checkpoint_problems(found.get("ModelCheckpoint"), paths)
    board = found.get("TensorBoard")
    if board is None:
        problems.append("missing TensorBoard: log the losses to run_dir/tensorboard")
    elif not _inside(getattr(board, "log_dir", None), paths.root):
        problems.append(
            f"TensorBoard writes to {board.log_dir}: keep it inside the run "
            f"directory {paths.root}"
        )
    own = _own_callbacks(callbacks)
    if not own:
        lab = [c for c in callbacks if type(c).__module__.startswith("helpers.")]
        problems.append(
            "missing your own callback: subclass keras.callbacks.Callback and "
            "decode the fixed z in its on_epoch_end"
            + (f" ({type(lab[0]).__name__} is the lab's: write yours)" if lab else "")
        )
    elif config is not None and fixed_z is not None and not problems:
        fixed_z = np.asarray(fixed_z, dtype="float32")
        for callback in own:
            problems += _check_own(callback, config, fixed_z, paths.root)
    if problems:
        raise CheckFailed("callbacks to fix:\n- " + "\n- ".join(problems))
    what = f", and {type(own[0]).__name__} decodes the fixed z" if own else ""
    _passed(
        "check_callbacks passed: best model and TensorBoard go to "
        f"{paths.root}{what}"
        + (f" every {config.sample_interval} epochs" if config is not None else "")
    )


def _callbacks_by_class(callbacks) -> tuple[dict, list[str]]:
    """{class name: the first callback of it, or of a subclass}, and the problems."""
    found: dict[str, object] = {}
    problems = []
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
    return found, problems


def _checkpoint_problems(checkpoint, paths) -> list[str]:
    """What is wrong with the ModelCheckpoint: monitor, mode, best only, path."""
    problems = []
    if checkpoint is None:
        problems.append(
            "missing ModelCheckpoint: keep the best model on held-out faces in "
            "run_dir/best.keras (05 and 06 load it)"
        )
    else:
        monitor = getattr(checkpoint, "monitor", None)
        if monitor != BEST_MODEL_MONITOR:
            problems.append(
                f"ModelCheckpoint monitors {monitor!r}: use "
                f"monitor={BEST_MODEL_MONITOR!r} (with mode='min'), the validation "
                "reconstruction + the target beta x validation KL that the lab's "
                "train() logs every epoch. Plain val_loss weighs the KL by the "
                "warm-up's current weight, so it is smallest in a warm-up epoch "
                "(KL weight near 0) and would keep a model trained without its KL"
                + (
                    ""
                    if str(monitor).startswith("val_")
                    else "; and a training loss is not measured on held-out faces"
                )
            )
        elif not _minimises(checkpoint):
            problems.append(
                f"ModelCheckpoint has mode={getattr(checkpoint, 'mode', 'max')!r}: a "
                "loss is best when it is smallest, use mode='min'"
            )
        if not getattr(checkpoint, "save_best_only", False):
            problems.append(
                "ModelCheckpoint needs save_best_only=True, or it keeps the last "
                "epoch instead of the best"
            )
        if not _same_path(getattr(checkpoint, "filepath", None), paths.best_model):
            problems.append(
                f"ModelCheckpoint writes {checkpoint.filepath}: save to "
                f"{paths.best_model} (05 and 06 load it)"
            )
    return problems


# ------------------------------------------------------------------------- the run
@self_check("the run")
def check_training_run(run_dir, history=None) -> None:
    """Check a finished training run: finite losses, a KL, a best model, grids.

    Raises:
        CheckFailed: no epochs, NaN losses, a KL of 0 (the KL is not in the loss or
            the posterior collapsed), no best.keras, or no sample grids.
    """
    import json

    from helpers.plots import read_history
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if history is not None and not getattr(history, "epoch", None):
        raise CheckFailed("the run has no finished epoch: run the training cell")
    if not paths.history.exists():
        raise CheckFailed(f"{paths.history} is missing: did training run?")
    log = read_history(paths.history)
    for key in ("loss", "reconstruction_loss", "kl_loss", "val_loss"):
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
    config_path = paths.config
    interval = json.loads(config_path.read_text())["sample_interval"]
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
_ABSENT = object()


def _settings_probes(config):
    """Configs whose beta, reconstruction loss and decoder range differ from
    ``config``'s (BCE needs a sigmoid decoder: two of them)."""
    other_kind = "bce" if config.reconstruction_loss == "mse" else "mse"
    other_range = "tanh" if config.output_activation == "sigmoid" else "sigmoid"
    return (
        config.replace(
            beta=config.beta + 1.5,
            reconstruction_loss=other_kind,
            output_activation="sigmoid",
        ),
        config.replace(reconstruction_loss="mse", output_activation=other_range),
    )


def _check_vae_settings(vae, config, name, probing=False) -> None:
    """The VAE's beta, reconstruction and value_range are ``config``'s."""
    fields = (
        ("beta", "beta", config.beta),
        ("reconstruction", "reconstruction_loss", config.reconstruction_loss),
        ("value_range", "value_range", tuple(config.value_range)),
    )
    for field, source, want in fields:
        got = getattr(vae, field, _ABSENT)  # a VAE of the student's own may lack one
        if got is _ABSENT:
            continue
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
    """Check ``build(parts, config)``: your VAE class, your parts, compiled.

    Raises:
        CheckFailed: not the assembled module's VAE, settings not from the config,
            encoder/decoder of the wrong size, or not compiled with Adam at
            ``config.learning_rate``.
    """
    module = getattr(parts, "module", parts)
    vae = _call(build, parts, config, what="build_my_vae")
    name = "build_my_vae"
    vae_class = getattr(module, "VAE", None)
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
    # The settings again with a config whose values differ from the VAE's defaults
    # (beta 1, "mse", (0, 1)): a hard-coded or forgotten one shows here.
    for probe in _settings_probes(config):
        other = _call(build, parts, probe, what="build_my_vae")
        _check_vae_settings(other, probe, name, probing=True)
    _passed(
        f"check_built_vae passed: your {type(vae).__name__} with your encoder and "
        f"decoder (latent {latent}), beta {config.beta:g}, "
        f"{type(optimizer).__name__} at {rate:g}"
    )


# ---------------------------------------------------------------- 06: an experiment
@self_check("my_experiment")
def check_experiment(experiments, base) -> None:
    """Check ``{run name: VAEConfig}``: at least two runs, one setting changed.

    Raises:
        CheckFailed: fewer than two runs, not VAEConfigs, bad names, or more than
            one setting changing between the runs (the effect could not be told
            apart).
    """
    import dataclasses
    import re

    from helpers.config import VAEConfig

    experiments = (
        _call(experiments, base, what="my_experiment")
        if callable(experiments)
        else experiments
    )
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
    changed = {
        f
        for cfg in experiments.values()
        for f in fields
        if getattr(cfg, f) != getattr(base, f)
    }
    varying = {
        f
        for f in fields
        if len({repr(getattr(c, f)) for c in experiments.values()}) > 1
    }
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
    values = ", ".join(f"{getattr(c, field)!r}" for c in experiments.values())
    _passed(f"check_experiment passed: {len(experiments)} runs vary {field} ({values})")
