"""Train a VAE into a run directory, and resume it after a crash or disconnect.

Typical use::

    from helpers.config import preset
    from helpers.training import train
    history = train(preset("cpu"), "data/cache", "runs/cpu")   # run it again: resumes

or ``python -m helpers train --preset cpu --data data/cache --run-dir runs/cpu``.

Everything is Keras' own machinery: ``fit()`` with ``ModelCheckpoint``,
``TensorBoard``, ``CSVLogger``, ``TerminateOnNaN`` and ``BackupAndRestore``, plus
the lab's ``SampleGrid`` and ``KLWarmup`` (``helpers.callbacks``).

How resume works
----------------
At the end of every epoch the callbacks run in this order: history.csv gets the
epoch's row, TensorBoard its scalars, samples/ its grid, best.keras the model if
val_loss improved, and last the backup (weights, optimizer state, epoch number),
which is the commit point. Every file is written to a temporary name and renamed
into place, so a kill at any moment leaves each file either old or new, never
half-written. Re-running the same command reads the backup's epoch count E,
truncates history.csv to epochs 0..E-1 (dropping a row written after the last backup
and any half-written line), tells ModelCheckpoint the best val_loss so far, and
``fit()`` continues at epoch E with the optimizer's step counter intact. fixed_z.npy
is made once and never regenerated.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import io
import math
from pathlib import Path

import numpy as np

from helpers.cache import cache_info
from helpers.config import VAEConfig
from helpers.errors import DataError, TrainingError
from helpers.files import atomic_write_bytes, atomic_write_text
from helpers.plots import plot_history, read_history
from helpers.runs import RunPaths, write_info

# Fields that may change when a run is resumed; any other change is a new experiment.
RESUMABLE_FIELDS = ("name", "epochs", "learning_rate", "sample_interval")
# Latent vectors decoded into every sample grid (an 8 x 8 grid).
N_FIXED_Z = 64


def train(
    config: VAEConfig, data, run_dir, strategy=None, verbose="auto", callbacks=()
):
    """Train (or resume) a VAE and write everything into ``run_dir``.

    Args:
        config: the run's settings; on an existing run only ``RESUMABLE_FIELDS``
            (e.g. more ``epochs``) may differ from its config.json.
        data: a prepared cache folder (``helpers.cache.prepare_cache``), or a tuple
            ``(train_ds, val_ds)`` of ``tf.data`` datasets of (B, H, W, 3) float32
            batches in ``config.value_range`` (``val_ds`` may be None).
        run_dir: the run directory (see ``helpers.runs``); created if missing.
        strategy: a ``tf.distribute`` strategy
            (``helpers.environment.pick_strategy()``), or None.
        verbose: passed to ``fit`` ("auto", 0, 1 or 2).
        callbacks: extra Keras callbacks, run after the lab's own.

    Returns:
        ``keras.callbacks.History`` of the whole run, read back from history.csv
        (also epochs of earlier sessions); ``.model`` is the trained VAE and
        ``.initial_epoch`` the 0-based epoch this session started at.

    Raises:
        TrainingError: the loss became NaN, or ``run_dir`` holds a different run.
        DataError: the data is not a cache, or not in the decoder's value range.
    """
    import keras  # loads TensorFlow: only when training starts, not for `--help`

    from helpers.callbacks import (
        AtomicBackupAndRestore,
        AtomicModelCheckpoint,
        KLWarmup,
        SampleGrid,
        nan_error,
        stopped_by_nan,
    )
    from helpers.model import build_vae

    paths = RunPaths(Path(run_dir))
    paths.root.mkdir(parents=True, exist_ok=True)
    check_run_config(config, paths)
    backup = AtomicBackupAndRestore(paths.backup)
    start = backup.completed_epochs()
    train_ds, val_ds, cache_dir, steps = _datasets(config, data, strategy, start)
    _check_batch(val_ds if val_ds is not None else train_ds, config)

    keras.utils.set_random_seed(config.seed)
    fixed_z = _fixed_z(config, paths)
    monitor = "loss" if val_ds is None else "val_loss"
    best = _truncate_history(paths.history, start, monitor)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        vae = build_vae(config)
        vae(np.zeros((1, *config.image_shape), "float32"))  # BackupAndRestore needs it

    def restore_learning_rate(logs=None):
        vae.optimizer.learning_rate = config.learning_rate

    def record_epoch(epoch, logs=None):
        write_info(paths.root, epochs_done=backup.completed_epochs())

    csv_logger = keras.callbacks.CSVLogger(str(paths.history), append=True)
    tensorboard = _tensorboard(paths)
    lab_callbacks = [
        *(
            [KLWarmup(config.beta, config.kl_warmup_epochs)]
            if config.kl_warmup_epochs
            else []
        ),
        keras.callbacks.TerminateOnNaN(),
        csv_logger,
        *([tensorboard] if tensorboard else []),
        SampleGrid(
            fixed_z, paths.sample_grid, config.sample_interval, config.value_range
        ),
        AtomicModelCheckpoint(
            str(paths.best_model),
            monitor=monitor,
            save_best_only=True,
            initial_value_threshold=(best if paths.best_model.exists() else None),
        ),
        backup,  # the commit point: after every other file of the epoch
        keras.callbacks.LambdaCallback(
            on_train_begin=restore_learning_rate, on_epoch_end=record_epoch
        ),
    ]
    write_info(
        paths.root,
        cache_dir=str(Path(cache_dir).resolve()) if cache_dir else None,
        epochs=config.epochs,
        epochs_done=start,
        status="running",
        error=None,
    )
    _announce(paths, start, config.epochs)
    try:
        fit_history = vae.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            initial_epoch=start,
            steps_per_epoch=steps,
            verbose=verbose,
            shuffle=False,
            callbacks=lab_callbacks + list(callbacks),
        )
    except BaseException as error:
        for callback in (csv_logger, tensorboard):  # close their open files
            with contextlib.suppress(Exception):  # (None: no TensorBoard)
                callback.on_train_end()
        write_info(
            paths.root, status="failed", error=f"{type(error).__name__}: {error}"
        )
        raise
    if stopped_by_nan(vae, fit_history):
        done = backup.completed_epochs()
        error = nan_error(fit_history, epoch=done + 1)
        write_info(paths.root, status="failed", epochs_done=done, error=str(error))
        raise error
    write_info(paths.root, status="finished", epochs_done=max(start, config.epochs))
    return _run_history(vae, paths, fit_history, start)


def _tensorboard(paths: RunPaths):
    """Return Keras' TensorBoard callback, or None (with a note) if not installed."""
    import keras

    if importlib.util.find_spec("tensorboard") is None:
        print(
            "Note: the tensorboard package is not installed, so no TensorBoard logs "
            "are written (`pip install tensorboard` to get them)."
        )
        return None
    return keras.callbacks.TensorBoard(str(paths.tensorboard), write_graph=False)


def check_run_config(config: VAEConfig, paths: RunPaths) -> None:
    """Write config.json for a new run, or check that ``config`` may resume it.

    Raises:
        TrainingError: a field outside ``RESUMABLE_FIELDS`` differs from the run's.
    """
    if not paths.config.exists():
        config.save(paths.config)
        return
    old = VAEConfig.load(paths.config)
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


def _datasets(config: VAEConfig, data, strategy, start_epoch: int = 0):
    """Return (train_ds, val_ds, cache_dir or None, steps per epoch or None).

    From a cache, the training stream repeats with one order per epoch drawn from
    (seed, epoch), starting at ``start_epoch``: a resumed run sees the same data
    order as an uninterrupted one.
    """
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise DataError("data must be a cache folder or a (train_ds, val_ds) tuple")
        return data[0], data[1], None, None
    from helpers.datasets import make_dataset  # imports TensorFlow

    cache_dir = Path(data)
    info = cache_info(cache_dir)
    size = info.get("image_size")
    if size is not None and int(size) != config.image_size:
        raise DataError(
            f"the cache {cache_dir} holds {size}x{size} images but the config wants "
            f"image_size={config.image_size}: prepare a cache at that size "
            "(`python -m helpers prepare --image-size ...`) or change --image-size"
        )
    tpu = strategy is not None and "TPU" in type(strategy).__name__
    common = dict(
        batch_size=config.batch_size,
        value_range=config.value_range,
        seed=config.seed,
        drop_remainder=tpu,
    )
    train_ds = make_dataset(
        cache_dir,
        "train",
        shuffle=True,
        limit=config.train_limit,
        repeat=True,
        start_epoch=start_epoch,
        **common,
    )
    val_ds = make_dataset(
        cache_dir, "validation", shuffle=False, limit=config.val_limit, **common
    )
    n_train = min(
        info["counts"]["train"], config.train_limit or info["counts"]["train"]
    )
    if tpu and n_train < config.batch_size:
        raise DataError(
            f"{n_train} training images make no full batch of {config.batch_size} "
            "(a TPU needs full batches): lower --batch-size"
        )
    steps = n_train // config.batch_size if tpu else -(-n_train // config.batch_size)
    return train_ds, val_ds, cache_dir, steps


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
    """Load fixed_z.npy, or make it from ``config.seed`` (once per run)."""
    if paths.fixed_z.exists():
        return np.load(paths.fixed_z)
    z = np.random.default_rng(config.seed).standard_normal(
        (N_FIXED_Z, config.latent_dim)
    )
    z = z.astype("float32")
    buffer = io.BytesIO()
    np.save(buffer, z)
    atomic_write_bytes(paths.fixed_z, buffer.getvalue())
    return z


def _truncate_history(path: Path, completed: int, monitor="val_loss") -> float | None:
    """Keep only history.csv rows of epochs < ``completed``; return their best monitor.

    Rows of epochs the backup does not cover (written just before a crash) and a
    half-written last line are dropped, so the resumed run writes each epoch once.
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
    if monitor not in header:
        return None
    column = header.index(monitor)
    values = [float(next(csv.reader([rows[e]]))[column]) for e in rows]
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
