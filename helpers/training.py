"""Train a VAE into a run directory, and resume it after a crash or disconnect.

Typical use::

    from helpers.config import preset
    from helpers.training import train
    history = train(preset("cpu"), "data/cache", "runs/cpu")   # run it again: resumes

or ``python -m helpers train --preset cpu --data data/cache --run-dir runs/cpu``.
04_train calls ``train_student(parts, ...)`` with the parts the student wrote.

What trains is always a set of *parts* (``helpers.student.PARTS``): the student's,
assembled by ``helpers.student.load_student_parts``, or by default the lab's
reference, ``helpers.solution``, which is generated from the solutions' ``%%export``
cells. The parts give the pipeline (``make_pipeline``), the model (``VAE`` around
``build_encoder`` / ``build_decoder``) and the checkpoint, TensorBoard and sample
callbacks (``make_callbacks``). This module is the scaffolding around them, and its
guarantees hold for whatever the parts are:

- exact resume: the backup keeps the weights, the optimizer and every
  ``SeedGenerator``'s state (the sampling noise); the data order of epoch E is the
  E-th iteration of the parts' own pipeline, so a resumed run skips E iterations
  before training (making an iterator draws the reshuffle seed, reading none);
- crash-safe files: history.csv, the backup and any ``ModelCheckpoint`` the parts
  return are written atomically (``helpers.callbacks``);
- mixed precision: the model is built under the run's policy, and a ``train_step``
  that would not scale its loss under float16 is refused before training
  (``helpers.checks.check_precision_step``);
- the NaN guard, the KL warm-up and the best-model score.

Training runs on one device (one GPU, or the CPU): no ``tf.distribute`` strategy.

Everything is Keras' own machinery: ``fit()`` with ``CSVLogger``,
``TerminateOnNaN`` and ``BackupAndRestore``, plus the lab's ``KLWarmup`` and
``TargetBetaLoss`` (``helpers.callbacks``).

How resume works
----------------
At the end of every epoch the callbacks run in this order: history.csv gets the
epoch's row, TensorBoard its scalars, samples/ its grid, best.keras the model if
val_loss_at_target_beta improved, and last the backup (weights, optimizer state,
epoch number, the sampling noise's state), which is the commit point. Every file is
written to a temporary name and renamed into place, so a kill at any moment leaves
each file either old or new, never half-written. Re-running the same command reads
the backup's epoch count E, truncates history.csv to epochs 0..E-1 (dropping a row
written after the last backup and any half-written line), tells ModelCheckpoint the
best score so far (read from history.csv), and ``fit()`` continues at epoch E with
the optimizer's step counter and the noise intact: the resumed epochs are the ones
an uninterrupted run trains.

Which model is best
-------------------
best.keras is the epoch with the lowest ``val_loss_at_target_beta`` =
val reconstruction + ``config.beta`` * val KL (``helpers.callbacks.TargetBetaLoss``;
``loss_at_target_beta`` without validation data). Keras' ``val_loss`` uses the KL
weight of the epoch, which a warm-up ramps up from 0: it would crown an epoch
trained and scored without its KL term. fixed_z.npy
is made once and never regenerated.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import math
import os
from pathlib import Path

import numpy as np

from helpers.cache import cache_info
from helpers.config import VAEConfig
from helpers.environment import detect_hardware
from helpers.errors import DataError, LabError, TrainingError, sigterm_stops
from helpers.files import atomic_write_bytes, atomic_write_text
from helpers.plots import plot_history, read_history
from helpers.precision import precision_scope, run_precision
from helpers.runs import RunPaths, read_config, read_info, write_info
from helpers.student import TRAINING_PARTS, build_student_vae, solution_module

# Fields that may change when a run is resumed; any other change is a new experiment.
RESUMABLE_FIELDS = ("name", "epochs", "learning_rate", "sample_interval", "precision")
# Latent vectors decoded into every sample grid (an 8 x 8 grid).
N_FIXED_Z = 64
# best.keras minimises this (with "val_" when there is validation data).
BEST_MODEL_SCORE = "loss_at_target_beta"


def train(
    config: VAEConfig,
    data,
    run_dir,
    parts=None,
    build=None,
    verbose="auto",
    callbacks=(),
):
    """Train (or resume) the VAE of ``parts`` and write everything into ``run_dir``.

    Only one process trains a run directory at a time: a second one is refused at
    once with a message naming the process that holds it (``helpers.locks``).
    A resumed run must be given the data it started on: run.json keeps the
    cache's fingerprint (``helpers.fingerprint``), and other data is refused
    before anything is written. A best.keras that fails its check is set aside
    (``best.keras.damaged``) and written anew; a damaged backup falls back to the
    previous good one (``AtomicBackupAndRestore``).

    Args:
        config: the run's settings; on an existing run only ``RESUMABLE_FIELDS``
            (e.g. more ``epochs``) may differ from its config.json.
        data: a prepared cache folder (``helpers.cache.prepare_cache``), streamed
            by the parts' ``make_pipeline``; or a tuple ``(train_ds, val_ds)`` of
            ``tf.data`` datasets of (B, H, W, 3) float32 batches in
            ``config.value_range`` (``val_ds`` may be None).
        run_dir: the run directory (see ``helpers.runs``); created if missing.
        parts: a ``helpers.student.StudentParts`` or module with the parts
            (default: the lab's reference, ``helpers.solution``).
        build: ``fn(parts, config) -> VAE`` (default:
            ``helpers.student.build_student_vae``); compiled with Adam at
            ``config.learning_rate`` if it comes back uncompiled.
        verbose: passed to ``fit`` ("auto", 0, 1 or 2).
        callbacks: extra Keras callbacks, run after the lab's own.

    Returns:
        ``keras.callbacks.History`` of the whole run, read back from history.csv
        (also epochs of earlier sessions); ``.model`` is the trained VAE and
        ``.initial_epoch`` the 0-based epoch this session started at.

    Raises:
        TrainingError: the loss became NaN, the model breaks a guarantee the
            scaffolding needs, or ``run_dir`` holds a different run.
        DataError: the data is not a cache, or not in the decoder's value range.
        BusyError: another process is training in ``run_dir``.
    """
    from helpers.locks import run_lock

    with sigterm_stops(), run_lock(run_dir, "train"):
        return _train_locked(config, data, run_dir, parts, build, verbose, callbacks)


def train_student(parts, config: VAEConfig, cache_dir, run_dir, build=None, **kwargs):
    """Train the model built from YOUR parts into ``run_dir`` (resumable).

    ``train`` with the student's parts: their pipeline, their VAE (built by
    ``build``, 04's ``build_my_vae``) and their callbacks, inside the lab's
    scaffolding. ``run_dir/student_parts.json`` records whose code each part was.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    origins = parts.origins() if hasattr(parts, "origins") else {}
    atomic_write_text(
        run_dir / "student_parts.json", json.dumps(origins, indent=2) + "\n"
    )
    return train(config, cache_dir, run_dir, parts=parts, build=build, **kwargs)


def _train_locked(config: VAEConfig, data, run_dir, parts, build, verbose, callbacks):
    """``train`` while holding the run directory's lock."""
    import keras  # loads TensorFlow: only when training starts, not for `--help`

    from helpers.callbacks import AtomicBackupAndRestore, nan_error, stopped_by_nan

    module = getattr(parts, "module", parts) if parts is not None else None
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
    monitor = ("" if val_ds is None else "val_") + BEST_MODEL_SCORE
    best = _truncate_history(paths.history, start, monitor, beta=config.beta)
    policy = run_precision(config, paths, start)
    vae = _build_checked_model(config, module, build, policy)
    write_architecture(paths, vae)
    view = _given_callbacks(module.make_callbacks, config, paths, fixed_z, best)
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
    _announce(paths, start, config.epochs)
    if start < config.epochs:
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
        _record_stop(error, paths, backup, lab_callbacks)
        raise
    if stopped_by_nan(vae, fit_history):
        done = backup.completed_epochs()
        error = nan_error(fit_history, epoch=done + 1)
        write_info(paths.root, status="failed", epochs_done=done, error=str(error))
        raise error
    write_info(paths.root, status="finished", epochs_done=max(start, config.epochs))
    return _run_history(vae, paths, fit_history, start)


def _build_checked_model(config: VAEConfig, module, build, policy: str):
    """The parts' VAE, built under ``policy``, whose step is checked before any
    training step is taken (a train_step that would stall in float16 is refused)."""
    from helpers.checks import CheckFailed
    from helpers.checks.training import check_precision_step

    with precision_scope(policy):
        vae = _build_model(lambda c: (build or build_student_vae)(module, c), config)
    try:
        check_precision_step(type(vae), policy)
    except CheckFailed as error:
        raise TrainingError(f"not training in {policy}: {error}") from None
    vae.jit_compile = _jit_compile()
    return vae


def _lab_callbacks(config: VAEConfig, paths: RunPaths, vae, backup, view) -> list:
    """The lab's callbacks around the student's ``view`` (make_callbacks), in order."""
    import keras

    from helpers.callbacks import KLWarmup, TargetBetaLoss
    from helpers.progress import RunETA  # imports Keras

    def restore_learning_rate(logs=None):
        vae.optimizer.learning_rate = config.learning_rate

    def record_epoch(epoch, logs=None):
        write_info(paths.root, epochs_done=backup.completed_epochs())

    warmup = []
    if config.kl_warmup_epochs:
        warmup = [KLWarmup(config.beta, config.kl_warmup_epochs)]
    return [
        *warmup,
        TargetBetaLoss(config.beta),  # before the log and the checkpoint read it
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(str(paths.history), append=True),
        *view,
        backup,  # the commit point: after every other file of the epoch
        keras.callbacks.LambdaCallback(
            on_train_begin=restore_learning_rate, on_epoch_end=record_epoch
        ),
        RunETA(config.epochs),
    ]


def _record_stop(error: BaseException, paths: RunPaths, backup, callbacks) -> None:
    """A run stopped by ``error``: close the open logs, remove temporary files,
    and say in run.json how it ended."""
    import keras

    for callback in callbacks:  # close the open files of the CSV log and TensorBoard
        if isinstance(
            callback, (keras.callbacks.CSVLogger, keras.callbacks.TensorBoard)
        ):
            with contextlib.suppress(Exception):
                callback.on_train_end()
    remove_temporary_files(paths)  # first: on a full disk it frees the space
    status = "interrupted" if isinstance(error, KeyboardInterrupt) else "failed"
    write_status(
        paths,
        status=status,
        epochs_done=backup.completed_epochs(),
        error=f"{type(error).__name__}: {error}"[:500],
    )


def remove_temporary_files(paths: RunPaths) -> list[Path]:
    """Delete the temporary files a stopped save left in a run; return them.

    ``.tmp-*.keras`` (a model checkpoint being written), ``backup/tmp-*`` (a
    backup being written) and this process's ``.NAME.PID.tmp`` atomic writes.
    Committed files (best.keras, the backup's weights and metadata) are kept.
    """
    patterns = [
        (paths.root, ".tmp-*.keras"),
        (paths.backup, "tmp-*"),
        (paths.root, f".*.{os.getpid()}.tmp"),
        (paths.backup, f".*.{os.getpid()}.tmp"),
    ]
    removed = []
    for folder, pattern in patterns:
        for path in folder.glob(pattern) if folder.is_dir() else []:
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path)
    return removed


def write_status(paths: RunPaths, **fields) -> None:
    """Write ``fields`` into run.json even on a full disk (in place, as a last resort).

    The atomic write needs room for a second copy; when the disk has none, the
    file is overwritten in place (a few hundred bytes, in blocks it already
    has). If even that fails, a warning says so; the error being reported wins.
    """
    try:
        write_info(paths.root, **fields)
        return
    except OSError:
        pass
    try:
        info = {**read_info(paths.root), **fields}
        text = (json.dumps(info, indent=2) + "\n").encode()
        with open(paths.info, "r+b") as handle:
            handle.write(text)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
    except (OSError, LabError) as error:
        import sys

        print(
            f"warning: could not record status {fields.get('status')!r} in "
            f"{paths.info} ({error})",
            file=sys.stderr,
        )


def epoch_steps(dataset) -> int:
    """Return the batches in one pass over a finite ``tf.data`` pipeline.

    Raises:
        DataError: the pipeline is infinite or its length cannot be known
            (``repeat()``, ``filter``): one pass must be one epoch.
    """
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
    """Advance a ``tf.data`` pipeline's reshuffle seed by ``count`` passes.

    A ``shuffle(..., reshuffle_each_iteration=True)`` draws each pass's order when
    an iterator of it is made (also by ``repeat()``), whatever the pipeline around
    it: making ``count`` iterators (reading nothing) puts a fresh pipeline where an
    uninterrupted run's is after ``count`` epochs, so a resumed run trains on the
    same orders.
    """
    for _ in range(count):
        iter(dataset)


def _build_model(factory, config: VAEConfig):
    """Build (and compile, if needed) the model; call it once to create weights."""
    import keras

    vae = factory(config)
    if not getattr(vae, "compiled", False):
        vae.compile(optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate))
    try:
        vae(np.zeros((1, *config.image_shape), "float32"))  # BackupAndRestore needs it
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
    return vae


def write_architecture(paths: RunPaths, vae) -> list[dict]:
    """Write architecture.json: every layer of the built encoder and decoder.

    The report's architecture table comes from it, so it shows the model that
    trained (the student's, whatever they built), not a formula of the config.
    """
    rows = []
    for part in ("encoder", "decoder"):
        network = getattr(vae, part, None)
        for layer in getattr(network, "layers", []):
            shape = getattr(layer, "output", None)
            shape = getattr(shape, "shape", None) if shape is not None else None
            if isinstance(getattr(layer, "output", None), (list, tuple)):
                shape = [tuple(o.shape)[1:] for o in layer.output]
            elif shape is not None:
                shape = tuple(shape)[1:]
            rows.append(
                {
                    "part": part,
                    "layer": layer.name,
                    "class": type(layer).__name__,
                    "output": json.loads(json.dumps(shape)),
                    "parameters": int(layer.count_params()) if layer.built else 0,
                }
            )
    text = "[\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]\n"
    atomic_write_text(paths.architecture, text)
    return rows


def _given_callbacks(make_callbacks, config, paths: RunPaths, fixed_z, best):
    """Return the parts' callbacks, each ModelCheckpoint made crash-safe.

    A plain ``keras.callbacks.ModelCheckpoint`` writes its file in place; here it
    becomes an ``AtomicModelCheckpoint`` (same arguments, written to a temporary
    name and renamed). On resume it starts from the best score so far, so it does
    not overwrite best.keras with a worse model.
    """
    import keras

    from helpers.callbacks import AtomicModelCheckpoint

    given = list(make_callbacks(config, paths.root, fixed_z))
    history = read_history(paths.history) if paths.history.exists() else {}
    for callback in given:
        if type(callback) is keras.callbacks.ModelCheckpoint:
            callback.__class__ = AtomicModelCheckpoint
        if isinstance(callback, keras.callbacks.ModelCheckpoint):
            values = [v for v in history.get(callback.monitor, []) if math.isfinite(v)]
            if values and paths.best_model.exists():
                callback.best = min(values)
    return given


def _jit_compile() -> bool:
    """The measured XLA default of this device (``helpers.environment``)."""
    return detect_hardware().jit_compile


def check_run_config(config: VAEConfig, paths: RunPaths) -> None:
    """Write config.json for a new run, or check that ``config`` may resume it.

    Raises:
        TrainingError: a field outside ``RESUMABLE_FIELDS`` differs from the run's.
    """
    if not paths.config.exists():
        config.save(paths.config)
        return
    old = read_config(paths.root)
    changed = [
        f.name
        for f in dataclasses.fields(VAEConfig)
        if getattr(old, f.name) != getattr(config, f.name)
    ]
    refused = [name for name in changed if name not in RESUMABLE_FIELDS]
    if refused:
        differences = "; ".join(
            f"{name}: {getattr(old, name)!r} in the run, "
            f"{getattr(config, name)!r} now"
            for name in refused
        )
        raise TrainingError(
            f"{paths.root} already holds a run with a different setup ({differences}). "
            "A run can only be resumed with the same model and data settings (only "
            f"{', '.join(RESUMABLE_FIELDS[1:])} may change): use a new --run-dir for "
            "this experiment, or delete the old folder."
        )
    if changed:
        config.save(paths.config)


def check_run_data(paths: RunPaths, data) -> dict | None:
    """Return the fingerprint of cache ``data``; refuse data other than the run's.

    A run that has trained at least one epoch (a backup or best.keras exists) and
    whose run.json records a fingerprint may only continue on a cache with the same
    fingerprint (the same images, attributes, ids and settings; the folder may have
    moved). Nothing is written here.

    Returns:
        The fingerprint (``helpers.cache.cache_fingerprint``), or None when
        ``data`` is a pair of datasets.

    Raises:
        TrainingError: the run was trained on other data.
        DamagedFileError: run.json is damaged.
    """
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
    from helpers.integrity import keras_file_problem

    if not paths.best_model.exists():
        return
    problem = keras_file_problem(paths.best_model)
    if problem is None:
        return
    aside = paths.best_model.with_name(paths.best_model.name + ".damaged")
    os.replace(paths.best_model, aside)
    print(
        f"{paths.best_model} is damaged ({problem}): moved it to {aside.name}; "
        "the resumed run writes a new best.keras after its next epoch."
    )


def _preset_flag(config: VAEConfig) -> str:
    """The --preset value a config came from, or PRESET when it is no preset's."""
    from helpers.config import PRESETS

    return config.name if config.name in PRESETS else "PRESET"


def _datasets(config: VAEConfig, data, module):
    """Return (train_ds, val_ds, cache_dir or None).

    From a cache, both splits are streamed by the parts' ``make_pipeline`` from
    the cache's uint8 arrays (the first ``train_limit`` / ``val_limit`` images).
    """
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise DataError("data must be a cache folder or a (train_ds, val_ds) tuple")
        return data[0], data[1], None
    from helpers.cache import load_split

    cache_dir = Path(data)
    info = cache_info(cache_dir)
    size = info.get("image_size")
    if size is not None and int(size) != config.image_size:
        raise DataError(
            f"the cache {cache_dir} holds {size}x{size} images but the config wants "
            f"image_size={config.image_size} (train has no --image-size: the size "
            f"comes with --preset {_preset_flag(config)}): prepare a cache at that "
            "size, "
            f"`python -m helpers prepare --data CELEBA --cache NEW_CACHE --image-size "
            f"{config.image_size}`, and train with --data NEW_CACHE"
        )
    splits = []
    for split, limit, training in (
        ("train", config.train_limit, True),
        ("validation", config.val_limit, False),
    ):
        images = np.asarray(load_split(cache_dir, split)[0][:limit])
        splits.append(module.make_pipeline(images, config, training=training))
    return splits[0], splits[1], cache_dir


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
        raise DataError(
            "the data contains NaN or infinite pixels: re-prepare the cache"
        )
    low, high = config.value_range
    lo, hi = float(images.min()), float(images.max())
    if lo < low - 1e-3 or hi > high + 1e-3:
        raise DataError(
            f"the images are in [{lo:.3g}, {hi:.3g}] but the decoder "
            f"(output_activation={config.output_activation!r}) produces [{low:g}, "
            f"{high:g}]: build the datasets with value_range=config.value_range"
        )


def _fixed_z(config: VAEConfig, paths: RunPaths) -> np.ndarray:
    """Load fixed_z.npy, or make it from ``config.seed`` (once per run).

    A damaged fixed_z.npy is made again: it is a pure function of the seed.
    """
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
    z = np.random.default_rng(config.seed).standard_normal(
        (N_FIXED_Z, config.latent_dim)
    )
    z = z.astype("float32")
    buffer = io.BytesIO()
    np.save(buffer, z)
    atomic_write_bytes(paths.fixed_z, buffer.getvalue())
    return z


def _truncate_history(
    path: Path, completed: int, monitor="val_loss", beta: float | None = None
) -> float | None:
    """Keep only history.csv rows of epochs < ``completed``; return their best monitor.

    Rows of epochs the backup does not cover (written just before a crash) and a
    half-written last line are dropped, so the resumed run writes each epoch once.
    A ``*loss_at_target_beta`` monitor missing from an older history.csv is
    recomputed from its reconstruction and KL columns with ``beta``.
    """
    if not path.exists():
        return None
    with open(path, newline="") as handle:  # keep CSVLogger's \r\n line ends
        text = handle.read()
    lines = text.splitlines(keepends=True)
    if not lines or not lines[0].endswith("\n"):
        path.unlink()
        return None
    header = next(csv.reader([lines[0]]))
    rows = {}
    for line in lines[1:]:
        fields = next(csv.reader([line]), [])
        if not line.endswith("\n") or len(fields) != len(header):
            continue
        with contextlib.suppress(ValueError):
            if int(fields[0]) < completed:
                rows[int(fields[0])] = line
    kept = [lines[0]] + [rows[e] for e in sorted(rows)]
    if len(kept) == 1:
        path.unlink()
    elif "".join(kept) != text:
        atomic_write_text(path, "".join(kept))  # kept as read: \r\n line ends
    records = [dict(zip(header, next(csv.reader([rows[e]])))) for e in rows]
    if monitor in header:
        values = [float(record[monitor]) for record in records]
    elif monitor.endswith(BEST_MODEL_SCORE) and beta is not None:
        from helpers.callbacks import target_beta_loss

        prefix = monitor[: -len(BEST_MODEL_SCORE)]
        values = [target_beta_loss(record, beta, prefix) for record in records]
        if None in values:
            return None
    else:
        return None
    finite = [v for v in values if math.isfinite(v)]
    return min(finite) if finite else None


def _announce(paths: RunPaths, start: int, epochs: int) -> None:
    if start >= epochs:
        print(
            f"{paths.root}: already trained {start} epochs (config.epochs={epochs}); "
            "pass a larger --epochs to train longer."
        )
    elif start:
        print(
            f"Resuming {paths.root} at epoch {start + 1}/{epochs} "
            "(weights, optimizer, log and fixed z restored)."
        )


def _run_history(vae, paths: RunPaths, fit_history, start: int):
    """Return a History of the whole run from history.csv; draw loss_curves.png."""
    import keras

    full = read_history(paths.history) if paths.history.exists() else {}
    history = keras.callbacks.History()
    history.set_model(vae)
    history.params = fit_history.params
    history.epoch = [int(e) for e in full.pop("epoch", [])]
    history.history = full
    history.initial_epoch = start
    if history.epoch:
        import matplotlib.pyplot as plt

        figure = plot_history(
            {"epoch": history.epoch, **full},
            paths.loss_curves,
            title=f"{paths.root.name}: {len(history.epoch)} epochs",
        )
        plt.close(figure)
    return history
