"""Train a VAE into a run directory (``python -m vaelab train``) and resume it exactly
after a crash. Each epoch writes the log, TensorBoard, samples, best.keras (by
``val_loss_at_target_beta``: a warm-up's ``val_loss`` lacks the KL term) and last the
backup (weights, optimizer, sampling noise), the commit point: a re-run cuts
history.csv back to its E epochs and trains on with the pipeline's E-th pass."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from helpers.cache import cache_info
from helpers.config import PRESETS, VAEConfig
from helpers.environment import detect_hardware
from helpers.errors import DataError, LabError, TrainingError, sigterm_stops
from helpers.files import atomic_write_bytes, atomic_write_text
from helpers.plots import plot_history, read_history, read_history_rows
from helpers.precision import precision_scope, run_precision
from helpers.runs import RunPaths, read_config, read_info, write_info
from helpers.student import TRAINING_PARTS, build_student_vae, solution_module

# Fields that may change when a run is resumed; any other change is a new experiment.
RESUMABLE_FIELDS = ("name", "epochs", "learning_rate", "sample_interval", "precision")
N_FIXED_Z = 64  # latent vectors decoded into every sample grid (8 x 8)
BEST_MODEL_SCORE = "loss_at_target_beta"  # "val_" + it with validation data


def train(config, data, run_dir, parts=None, build=None, verbose="auto", callbacks=()):
    """Train (or resume) the VAE of ``parts`` (default: the lab's) into ``run_dir``.

    ``data``: a cache folder or ``(train_ds, val_ds)`` of (B, H, W, 3) float32 batches
    in ``config.value_range`` (``val_ds`` may be None); ``build(parts, config) -> VAE``.
    Returns the run's History (``.model``, 0-based ``.initial_epoch``). Raises
    TrainingError, DataError, or BusyError (``run_dir`` is in use)."""
    from helpers.locks import run_lock

    with sigterm_stops(), run_lock(run_dir, "train"):
        return _train_locked(config, data, run_dir, parts, build, verbose, callbacks)


def train_student(parts, config: VAEConfig, cache_dir, run_dir, build=None, **kwargs):
    """Train the model built from YOUR parts (by ``build``, 04's ``build_my_vae``)
    into ``run_dir``, resumably; student_parts.json records whose each part was."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    origins = json.dumps(parts.origins() if hasattr(parts, "origins") else {}, indent=2)
    atomic_write_text(run_dir / "student_parts.json", origins + "\n")
    return train(config, cache_dir, run_dir, parts=parts, build=build, **kwargs)


def _train_locked(config: VAEConfig, data, run_dir, parts, build, verbose, callbacks):
    import keras  # loads TensorFlow: only when training starts, not for `--help`

    from helpers.callbacks import AtomicBackupAndRestore, nan_error

    module = getattr(parts, "module", parts)  # a StudentParts, or a module
    module = module or solution_module(*TRAINING_PARTS, "build_my_vae")
    paths = RunPaths(Path(run_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    fingerprint = check_run_data(paths, data)  # before anything is written
    check_run_config(config, paths)
    backup = AtomicBackupAndRestore(paths.backup)
    start = backup.completed_epochs()
    _set_aside_damaged_best(paths)
    train_ds, val_ds, cache_dir = _datasets(config, data, module)
    _check_batch(val_ds if val_ds is not None else train_ds, config)

    keras.utils.set_random_seed(config.seed)
    fixed_z = _fixed_z(config, paths)
    _truncate_history(paths.history, start)
    policy = run_precision(config, paths, start)
    vae = _build_model(config, module, build, policy)
    write_architecture(paths, vae)
    view = _given_callbacks(module.make_callbacks, config, paths, fixed_z)
    lab_callbacks = _lab_callbacks(config, paths, vae, backup, view)
    write_info(
        paths.root,
        **({"data": fingerprint} if fingerprint else {}),
        cache_dir=str(Path(cache_dir).resolve()) if cache_dir else None,
        epochs=config.epochs,
        epochs_done=start,
        precision=policy,
        status="running",
        error=None,
    )
    if start >= config.epochs:
        print(
            f"{paths.root}: already trained {start} epochs (config.epochs="
            f"{config.epochs}); pass a larger --epochs to train longer."
        )
    else:
        if start:
            print(
                f"Resuming {paths.root} at epoch {start + 1}/{config.epochs} "
                "(weights, optimizer, log and fixed z restored)."
            )
        print(
            f"Precision: {policy} (config.precision={config.precision!r}); "
            f"XLA: {'on' if vae.jit_compile else 'off'}"
        )
    steps = epoch_steps(train_ds)
    skip_iterations(train_ds, start)  # epoch E's order: the pipeline's E-th
    try:
        fit_history = vae.fit(
            train_ds.repeat(),  # one iterator for the run: an epoch is one pass
            steps_per_epoch=steps,
            validation_data=val_ds,
            epochs=config.epochs,
            initial_epoch=start,
            verbose=verbose,
            shuffle=False,
            callbacks=lab_callbacks + list(callbacks),
        )
    except BaseException as error:
        open_logs = (keras.callbacks.CSVLogger, keras.callbacks.TensorBoard)
        for log in [c for c in lab_callbacks if isinstance(c, open_logs)]:
            with contextlib.suppress(Exception):
                log.on_train_end()
        remove_temporary_files(paths)  # first: on a full disk it frees the space
        write_status(
            paths,
            status="interrupted" if isinstance(error, KeyboardInterrupt) else "failed",
            epochs_done=backup.completed_epochs(),
            error=f"{type(error).__name__}: {error}"[:500],
        )
        raise
    done = backup.completed_epochs()
    if error := nan_error(fit_history, epoch=done + 1):
        write_info(paths.root, status="failed", epochs_done=done, error=str(error))
        raise error
    write_info(paths.root, status="finished", epochs_done=max(start, config.epochs))
    return _run_history(paths, fit_history, start)


def _build_model(config: VAEConfig, module, build, policy: str):
    """The parts' VAE built under ``policy``, compiled, run once, and checked."""
    import keras

    from helpers.checks import CheckFailed
    from helpers.checks.training import check_precision_step

    with precision_scope(policy):  # also for layers a build() creates
        vae = (build or build_student_vae)(module, config)
        if not getattr(vae, "compiled", False):
            vae.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        try:
            vae(np.zeros((1, *config.image_shape), "float32"))  # creates the weights
        except Exception as error:
            raise TrainingError(
                f"the model could not run on one image ({type(error).__name__}: "
                f"{error}): its call(images) must encode, sample and decode"
            ) from error
    if config.kl_warmup_epochs and not hasattr(vae, "kl_weight"):
        raise TrainingError(
            f"kl_warmup_epochs={config.kl_warmup_epochs} needs a model with a "
            "`kl_weight` variable that its loss multiplies the KL by (the warm-up "
            "ramps it): add one, or set kl_warmup_epochs=0"
        )
    try:
        check_precision_step(type(vae), policy)  # a float16 step that would stall
    except CheckFailed as error:
        raise TrainingError(f"not training in {policy}: {error}") from None
    vae.jit_compile = detect_hardware().jit_compile  # this device's measured default
    return vae


def _lab_callbacks(config: VAEConfig, paths: RunPaths, vae, backup, view) -> list:
    """The lab's callbacks around the parts' ``view`` (make_callbacks), in order."""
    import keras

    from helpers.callbacks import KLWarmup, TargetBetaLoss
    from helpers.progress import RunETA

    warmup = config.kl_warmup_epochs
    return [
        *([KLWarmup(config.beta, warmup)] if warmup else []),
        TargetBetaLoss(config.beta),  # before the log and the checkpoint read it
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(paths.history), append=True),
        *view,
        backup,  # the commit point: after every other file of the epoch
        keras.callbacks.LambdaCallback(
            on_train_begin=lambda logs=None: setattr(
                vae.optimizer, "learning_rate", config.learning_rate
            ),
            on_epoch_end=lambda epoch, logs=None: write_info(
                paths.root, epochs_done=backup.completed_epochs()
            ),
        ),
        RunETA(config.epochs),
    ]


def remove_temporary_files(paths: RunPaths) -> None:
    """Delete what stopped checkpoint saves left (atomic writes delete their own)."""
    for folder, pattern in [(paths.root, ".tmp-*.keras"), (paths.backup, "tmp-*")]:
        for path in folder.glob(pattern) if folder.is_dir() else []:
            with contextlib.suppress(OSError):
                path.unlink()


def write_status(paths: RunPaths, **fields) -> None:
    """Write ``fields`` into run.json, in place on a full disk (the atomic write
    needs room for a copy), else warn: the error being reported wins."""
    with contextlib.suppress(OSError):
        write_info(paths.root, **fields)
        return
    try:
        info = {**read_info(paths.root), **fields}
        with open(paths.info, "r+b") as handle:
            handle.write((json.dumps(info, indent=2) + "\n").encode())
            handle.truncate()  # flushes
            os.fsync(handle.fileno())
    except (OSError, LabError) as error:
        print(
            f"warning: could not record status {fields.get('status')!r} in "
            f"{paths.info} ({error})",
            file=sys.stderr,
        )


def epoch_steps(dataset) -> int:
    """Return one pass's batches of a tf.data pipeline; DataError if none or endless."""
    import tensorflow as tf

    steps = int(dataset.cardinality())
    if steps == int(tf.data.INFINITE_CARDINALITY):
        raise DataError(
            "the training pipeline never ends (it repeats): return one pass over "
            "the images from make_pipeline; the trainer repeats it, one pass an epoch"
        )
    if steps < 0:  # unknown (a filter, say): count one pass
        steps = sum(1 for _ in dataset.take(-1))
    if steps == 0:
        raise DataError("the training pipeline yields no batch: are there images?")
    return steps


def skip_iterations(dataset, count: int) -> None:
    """Advance a ``tf.data`` pipeline's reshuffle seed by ``count`` passes: each
    iterator made (also by ``repeat()``), even unread, draws a pass's order."""
    for _ in range(count):
        iter(dataset)


def write_architecture(paths: RunPaths, vae) -> None:
    """Write architecture.json: the encoder's and decoder's layers, as trained."""
    rows = []
    for part in ("encoder", "decoder"):
        for layer in getattr(getattr(vae, part, None), "layers", []):
            output = getattr(layer, "output", None)
            shape = None if output is None else list(output.shape)[1:]
            if isinstance(output, (list, tuple)):
                shape = [list(o.shape)[1:] for o in output]
            parameters = int(layer.count_params()) if layer.built else 0
            row = {"part": part, "layer": layer.name, "class": type(layer).__name__}
            rows.append(json.dumps({**row, "output": shape, "parameters": parameters}))
    atomic_write_text(paths.architecture, "[\n" + ",\n".join(rows) + "\n]\n")


def _given_callbacks(make_callbacks, config, paths: RunPaths, fixed_z):
    """The parts' callbacks, ModelCheckpoints made atomic and given the best so far."""
    import keras

    from helpers.callbacks import AtomicModelCheckpoint

    given = list(make_callbacks(config, paths.root, fixed_z))
    for callback in given:
        if type(callback) is keras.callbacks.ModelCheckpoint:
            callback.__class__ = AtomicModelCheckpoint
        if isinstance(callback, keras.callbacks.ModelCheckpoint):
            best = _history_best(paths.history, callback.monitor, config.beta)
            if best is not None and paths.best_model.exists():
                callback.best = best
    return given


def check_run_config(config: VAEConfig, paths: RunPaths) -> None:
    """Write config.json for a new run, or check that ``config`` may resume it."""
    old = read_config(paths.root) if paths.config.exists() else None
    changed = [n for n in vars(config) if old and getattr(old, n) != getattr(config, n)]
    refused = [name for name in changed if name not in RESUMABLE_FIELDS]
    if refused:
        differences = "; ".join(
            f"{name}: {getattr(old, name)!r} in the run, {getattr(config, name)!r} now"
            for name in refused
        )
        raise TrainingError(
            f"{paths.root} already holds a run with a different setup ({differences}). "
            "A run can only be resumed with the same model and data settings (only "
            f"{', '.join(RESUMABLE_FIELDS[1:])} may change): use a new --run-dir for "
            "this experiment, or delete the old folder."
        )
    if changed or old is None:
        config.save(paths.config)


def check_run_data(paths: RunPaths, data) -> dict | None:
    """Return cache ``data``'s fingerprint (None for datasets); check the run's."""
    from helpers.cache import cache_fingerprint, describe_cache

    if isinstance(data, (tuple, list)):
        return None
    fingerprint = cache_fingerprint(data)
    old = read_info(paths.root).get("data")
    trained = paths.best_model.exists() or any(paths.backup.glob("*weights-*.h5"))
    if not old or not trained or old.get("digest") == fingerprint["digest"]:
        return fingerprint
    raise TrainingError(
        f"{paths.root} was trained on {describe_cache(old)}, but --data gives other "
        f"data: {describe_cache(fingerprint)}. A run can only resume on the data it "
        f"started with: pass --data {old.get('cache_dir')} (or a copy of that "
        "cache), or use a new --run-dir to train on this data. Nothing was changed."
    )


def _set_aside_damaged_best(paths: RunPaths) -> None:
    """Rename a best.keras that fails its check to best.keras.damaged, saying so."""
    from helpers.files import keras_file_problem

    if problem := paths.best_model.exists() and keras_file_problem(paths.best_model):
        aside = paths.best_model.with_name(paths.best_model.name + ".damaged")
        os.replace(paths.best_model, aside)
        print(
            f"{paths.best_model} is damaged ({problem}): moved it to {aside.name}; "
            "the resumed run writes a new best.keras after its next epoch."
        )


def _datasets(config: VAEConfig, data, module):
    """(train_ds, val_ds, cache_dir or None), from a cache by ``make_pipeline``."""
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise DataError("data must be a cache folder or a (train_ds, val_ds) tuple")
        return data[0], data[1], None
    from helpers.cache import load_split

    cache_dir = Path(data)
    size = cache_info(cache_dir).get("image_size")
    if size is not None and int(size) != config.image_size:
        flag = config.name if config.name in PRESETS else "PRESET"
        raise DataError(
            f"the cache {cache_dir} holds {size}x{size} images but the config wants "
            f"image_size={config.image_size} (train has no --image-size: the size "
            f"comes with --preset {flag}): prepare a cache at that size, "
            f"`python -m vaelab prepare --data CELEBA --cache NEW_CACHE --image-size "
            f"{config.image_size}`, and train with --data NEW_CACHE"
        )

    def pipeline(split: str, limit, training: bool):
        images = np.asarray(load_split(cache_dir, split)[0][:limit])
        return module.make_pipeline(images, config, training=training)

    train_ds = pipeline("train", config.train_limit, True)
    return train_ds, pipeline("validation", config.val_limit, False), cache_dir


def _check_batch(dataset, config: VAEConfig) -> None:
    """Fail early when the images do not fit the model: shape, NaN or value range."""
    batch = next(iter(dataset.take(1)))
    images = np.asarray(batch[0] if isinstance(batch, (tuple, list)) else batch)
    if images.shape[1:] != config.image_shape:
        raise DataError(
            f"the data has images of shape {images.shape[1:]} but the model "
            f"expects {config.image_shape} (config.image_size)"
        )
    if not np.all(np.isfinite(images)):
        raise DataError("the data holds NaN or infinite pixels: re-prepare the cache")
    (low, high), lo, hi = config.value_range, images.min(), images.max()
    if lo < low - 1e-3 or hi > high + 1e-3:
        raise DataError(
            f"the images are in [{lo:.3g}, {hi:.3g}] but the decoder "
            f"(output_activation={config.output_activation!r}) produces [{low:g}, "
            f"{high:g}]: build the datasets with value_range=config.value_range"
        )


def _fixed_z(config: VAEConfig, paths: RunPaths) -> np.ndarray:
    """Load fixed_z.npy, or make it from ``config.seed`` (again if damaged)."""
    shape = (N_FIXED_Z, config.latent_dim)
    if paths.fixed_z.exists():
        try:
            z = np.load(paths.fixed_z, allow_pickle=False)
            if z.shape == shape and z.dtype == np.float32:
                return z
            problem = f"holds {z.dtype} {z.shape}, not float32 {shape}"
        except (ValueError, OSError, EOFError) as error:
            problem = str(error)
        print(f"{paths.fixed_z} is damaged ({problem}): made again from the seed.")
    z = np.random.default_rng(config.seed).standard_normal(shape).astype("float32")
    buffer = io.BytesIO()
    np.save(buffer, z)
    atomic_write_bytes(paths.fixed_z, buffer.getvalue())
    return z


def _truncate_history(path: Path, completed: int) -> None:
    """Keep history.csv's last whole row of each epoch < ``completed``."""
    if not path.exists():
        return
    with open(path, newline="") as handle:  # keep CSVLogger's \r\n line ends
        text = handle.read()
    lines = text.splitlines(keepends=True)
    width = len(next(csv.reader(lines[:1]), []))
    rows = {}
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        whole = line.endswith("\n") and len(fields) == width
        if whole and fields[0].isdigit() and int(fields[0]) < completed:
            rows[int(fields[0])] = line
    if not rows or not lines[0].endswith("\n"):
        return path.unlink()
    kept = lines[0] + "".join(rows[epoch] for epoch in sorted(rows))
    if kept != text:
        atomic_write_text(path, kept)


def _history_best(path: Path, monitor: str, beta: float) -> float | None:
    """The lowest finite ``monitor`` in history.csv (an old one's, recomputed)."""
    from helpers.callbacks import target_beta_loss

    values = []
    for row in read_history_rows(path):
        value = row.get(monitor)
        if value is None and monitor.endswith(BEST_MODEL_SCORE) and beta is not None:
            value = target_beta_loss(row, beta, monitor[: -len(BEST_MODEL_SCORE)])
        if value is not None and math.isfinite(value):
            values.append(value)
    return min(values, default=None)


def _run_history(paths: RunPaths, history, start: int):
    """Make ``fit``'s History the whole run's (history.csv); draw loss_curves.png."""
    import matplotlib.pyplot as plt

    full = read_history(paths.history) if paths.history.exists() else {}
    history.epoch = [int(e) for e in full.pop("epoch", [])]
    history.history, history.initial_epoch = full, start
    if history.epoch:
        title = f"{paths.root.name}: {len(history.epoch)} epochs"
        data = {"epoch": history.epoch, **full}
        plt.close(plot_history(data, paths.loss_curves, title=title))
    return history
