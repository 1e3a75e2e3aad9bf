"""Keras callbacks the lab needs and Keras does not have, plus crash-safe versions.

- ``SampleGrid`` decodes the same latent vectors every few epochs, so students watch
  faces emerge from noise.
- ``KLWarmup`` ramps the KL weight from 0 to beta over the first epochs.
- ``TargetBetaLoss`` logs ``loss_at_target_beta`` and ``val_loss_at_target_beta``
  (reconstruction + target beta * KL): the score the best model is chosen by,
  which a warm-up cannot game.
- ``AtomicBackupAndRestore`` and ``AtomicModelCheckpoint`` are Keras' own callbacks
  whose files are written to a temporary name and renamed into place, so a run
  killed at any moment (``kill -9``, a Colab disconnect) never leaves a half-written
  file behind.
- ``nan_error`` turns a run stopped by ``keras.callbacks.TerminateOnNaN`` into a
  ``TrainingError`` that says what diverged and what to do.

Why the backup needs help: Keras' ``BackupAndRestore`` writes
``latest.weights.h5`` and then ``training_metadata.json`` in place. A kill during
the first write leaves a truncated HDF5 file (restoring raises ``OSError``); a kill
during the second leaves broken JSON (restoring raises ``JSONDecodeError``); a kill
between the two pairs the new weights with the old epoch number. Here each epoch's
weights go to their own file, and the metadata, renamed into place last, names the
file it belongs to: it is the single commit point, so the pair always matches.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
from pathlib import Path

import keras
import numpy as np

from helpers.errors import DamagedFileError, TrainingError, is_disk_full
from helpers.files import atomic_write_text, read_json
from helpers.integrity import keras_file_problem, weights_file_problem
from helpers.plots import save_grid

METADATA = "training_metadata.json"


def _fsync(path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _finite_logs(logs) -> bool:
    """True when the epoch's loss is a finite number (or absent)."""
    loss = (logs or {}).get("loss")
    return loss is None or bool(np.isfinite(loss))


class KLWarmup(keras.callbacks.Callback):
    """Ramp the model's ``kl_weight`` linearly from 0 to ``beta``.

    At the start of epoch ``e`` (0-based) the weight is
    ``beta * min(1, e / warmup_epochs)``: 0 in the first epoch, ``beta`` from epoch
    ``warmup_epochs`` on. The value is added to the epoch logs as ``kl_weight``, so
    it appears in history.csv, TensorBoard and the progress bar.

    Args:
        beta: the final KL weight.
        warmup_epochs: epochs the ramp lasts (>= 1).
    """

    def __init__(self, beta, warmup_epochs):
        super().__init__()
        if warmup_epochs < 1:
            raise ValueError(f"warmup_epochs={warmup_epochs}: must be >= 1")
        self.beta = float(beta)
        self.warmup_epochs = int(warmup_epochs)

    def weight(self, epoch: int) -> float:
        """Return the KL weight used during 0-based ``epoch``."""
        return self.beta * min(1.0, epoch / self.warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.weight(epoch))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = float(keras.ops.convert_to_numpy(self.model.kl_weight))


class TargetBetaLoss(keras.callbacks.Callback):
    """Log the epoch's loss at the target beta: ``reconstruction + beta * kl``.

    During a KL warm-up, Keras' ``loss`` and ``val_loss`` use the ramped weight:
    0 in the first epoch, so that epoch's ``val_loss`` is the reconstruction alone
    and a checkpoint watching ``val_loss`` keeps a model trained without its KL
    term. ``val_loss_at_target_beta = val_reconstruction_loss + beta *
    val_kl_loss`` scores every epoch by the same objective, the one the run aims at,
    so choose the best model by it. It is added to the epoch logs (and so to
    history.csv, TensorBoard and the progress bar) for the training data
    (``loss_at_target_beta``) and, when validation ran, the validation data.

    Put it before the callbacks that read it (``CSVLogger``, ``ModelCheckpoint``).

    Args:
        beta: the target KL weight (``config.beta``).
    """

    def __init__(self, beta):
        super().__init__()
        self.beta = float(beta)

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for prefix in ("", "val_"):
            score = target_beta_loss(logs, self.beta, prefix)
            if score is not None:
                logs[f"{prefix}loss_at_target_beta"] = score


def target_beta_loss(logs, beta: float, prefix: str = "") -> float | None:
    """Return ``logs[prefix + "reconstruction_loss"] + beta * logs[prefix +
    "kl_loss"]``, or None when either is missing."""
    try:
        reconstruction = float(logs[f"{prefix}reconstruction_loss"])
        kl = float(logs[f"{prefix}kl_loss"])
    except (KeyError, TypeError, ValueError):
        return None
    return reconstruction + float(beta) * kl


def seed_state_variables(model) -> list:
    """Every ``SeedGenerator`` state in ``model``: the variables it has but not weights.

    ``save_weights`` keeps the weights and the optimizer; the state of a layer's
    ``keras.random.SeedGenerator`` (the sampling noise) is a variable outside
    both, so whatever layer a student writes, the backup keeps these separately.
    """
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _restore_seed_states(model, states, weights) -> None:
    """Assign the seed states a backup recorded, in the model's variable order.

    By position, not by name: Keras numbers unnamed generators per process, so
    the same layer may be ``seed_generator_3`` after a restart.
    """
    variables = seed_state_variables(model)
    if not variables:
        return
    if states is None or len(states) != len(variables):
        print(
            f"Note: {weights.name} holds no sampling-noise state for this model; "
            "the resumed run draws other noise than an uninterrupted one would."
        )
        return
    for variable, state in zip(variables, states):
        variable.assign(np.asarray(state, dtype=variable.dtype))


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` that survives being killed mid-write.

    Each save writes ``weights-<epoch>.weights.h5`` (temporary name, fsync, rename),
    then ``training_metadata.json`` naming that file (same way), then deletes older
    weight files. The metadata is the commit point: a kill before its rename leaves
    the previous, complete backup in force. Restoring reads the metadata and loads
    exactly the weights it names (model, optimizer state with its step counter, KL
    weight) and restores every ``SeedGenerator``'s state from the metadata.

    An epoch whose loss is NaN or infinite is not backed up, so the last good state
    survives a divergence. The backup is kept after training (``delete_checkpoint``
    is False) so a finished run can be trained longer.

    Damage: each weights file is verified (``helpers.integrity``) before it is
    renamed into place, the previous epoch's file is kept beside it, and a resume
    verifies the file it loads. When the metadata is damaged or names a damaged or
    missing file, the resume falls back to the newest good weights file it finds
    and says so; with none, it stops with a message naming the folder.

    Args:
        backup_dir: a folder used by this callback only.
    """

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.backup_path = Path(backup_dir)

    _trusted = None  # (metadata file's stat, resolved metadata) once verified

    def completed_epochs(self) -> int:
        """Return the epochs the current backup has completed (0: no backup)."""
        metadata = self._read_metadata()
        return int(metadata["epoch"]) if metadata else 0

    def _weight_files(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every committed weights file, newest first."""
        found = []
        for path in self.backup_path.glob("weights-*.weights.h5"):
            digits = path.name[len("weights-") : -len(".weights.h5")]
            if digits.isdigit():
                found.append((int(digits), path))
        return sorted(found, reverse=True)

    def _read_metadata(self):
        """Return {"epoch", "weights", ...} of the newest trustworthy backup, or None.

        The weights it names are verified once (again after each new backup).
        """
        path = self.backup_path / METADATA
        if not path.exists() and not self._weight_files():
            return None
        stamp = _stamp(path)
        if self._trusted is not None and self._trusted[0] == stamp:
            return self._trusted[1]
        problem, metadata, limit = None, None, None
        if path.exists():
            try:
                metadata = read_json(path, "")
                epoch, weights = int(metadata["epoch"]), str(metadata["weights"])
            except (DamagedFileError, KeyError, TypeError, ValueError) as error:
                problem = f"{path.name} is damaged ({_reason(error)})"
                metadata = None
            else:
                weights_path = self.backup_path / weights
                if not weights_path.is_file():
                    problem = f"{path.name} names {weights}, which is missing"
                else:
                    problem = weights_file_problem(weights_path)
                    if problem is not None:
                        problem = f"{weights} is damaged ({problem})"
                if problem is not None:
                    metadata = None
                    limit = epoch
        else:
            problem = f"{path.name} is missing"
        if metadata is None:
            metadata = self._fall_back(problem, limit)
        self._trusted = (stamp, metadata)
        return metadata

    def _fall_back(self, problem: str, limit: int | None) -> dict:
        """Return the metadata of the newest good weights file (after ``problem``)."""
        for epoch, weights in self._weight_files():
            if limit is not None and epoch > limit:
                continue
            if weights_file_problem(weights) is None:
                print(
                    f"The backup in {self.backup_path}: {problem}. Resuming from the "
                    f"previous good copy, {weights.name} (after epoch {epoch}); the "
                    "epochs after it are trained again."
                )
                return {"epoch": epoch, "batch": -1, "weights": weights.name}
        raise TrainingError(
            f"the backup in {self.backup_path} is damaged ({problem}) and holds no "
            f"earlier good copy: delete {self.backup_path} to restart from epoch 1 "
            "(best.keras and history.csv are kept), or use a new --run-dir"
        )

    def _load_model(self):
        if not self.model.built:
            raise ValueError("build the model (call it on a batch) before fit()")
        metadata = self._read_metadata()
        if metadata is None:
            return
        optimizer = self.model.optimizer
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        weights = self.backup_path / metadata["weights"]
        try:
            self.model.load_weights(weights)
        except (ValueError, OSError, KeyError) as error:
            raise TrainingError(
                f"the backup {weights} does not fit this model ({error}): delete "
                f"{self.backup_path} to restart from epoch 1, or use a new --run-dir"
            ) from None
        self.model._initial_epoch = int(metadata["epoch"])
        _restore_seed_states(self.model, metadata.get("seed_states"), weights)

    def on_epoch_end(self, epoch, logs=None):
        if _finite_logs(logs) and not self.model.stop_training:
            super().on_epoch_end(epoch, logs)

    def _save_model(self):
        self.backup_path.mkdir(parents=True, exist_ok=True)
        name = f"weights-{self._current_epoch:05d}.weights.h5"
        tmp = self.backup_path / f"tmp-{name}"
        with _removed_on_failure(tmp):
            self.model.save_weights(tmp, overwrite=True)
            _fsync(tmp)
        problem = weights_file_problem(tmp)
        if problem is not None:  # never commit a backup that cannot be read back
            tmp.unlink(missing_ok=True)
            raise TrainingError(
                f"the backup just written to {tmp} cannot be read back ({problem}); "
                "is the disk full or failing? The previous backup is kept: free "
                "some space and re-run the same command to resume."
            )
        os.replace(tmp, self.backup_path / name)
        metadata = {
            "epoch": self._current_epoch,
            "batch": self._last_batch_seen,
            "weights": name,
            "seed_states": [
                np.asarray(v).tolist() for v in seed_state_variables(self.model)
            ],
        }
        atomic_write_text(self.backup_path / METADATA, json.dumps(metadata) + "\n")
        self._trusted = (_stamp(self.backup_path / METADATA), metadata)
        # Keep this epoch's weights and the previous good ones (the fallback).
        keep = {name} | {p.name for _, p in self._weight_files()[:2]}
        for old in self.backup_path.glob("*weights-*.weights.h5"):
            if old.name not in keep:
                old.unlink(missing_ok=True)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` that writes to a temporary name first.

    ``model.save`` writes the ``.keras`` zip in place; a kill during the write
    would leave a corrupt ``best.keras``. Here the model is saved as
    ``.tmp-best.keras`` and renamed over ``best.keras`` once complete. Takes the
    same arguments as ``ModelCheckpoint`` (use ``verbose=0``: its message would name
    the temporary file).
    """

    def _get_file_path(self, epoch, batch, logs):
        final = Path(super()._get_file_path(epoch, batch, logs))
        return str(final.with_name(f".tmp-{final.name}"))

    def _save_model(self, epoch, batch, logs):
        tmp = Path(self._get_file_path(epoch, batch, logs))
        tmp.unlink(missing_ok=True)
        with _removed_on_failure(tmp):
            super()._save_model(epoch, batch, logs)
            if tmp.exists():
                _fsync(tmp)
        if tmp.exists():
            final = tmp.with_name(tmp.name[len(".tmp-") :])
            problem = keras_file_problem(tmp)
            if problem is not None:  # verified before it replaces the last good one
                tmp.unlink(missing_ok=True)
                raise TrainingError(
                    f"the model just saved for {final} cannot be read back "
                    f"({problem}); is the disk full or failing? The previous "
                    f"{final.name} is kept: free some space and re-run the same "
                    "command to resume."
                )
            os.replace(tmp, final)


@contextlib.contextmanager
def _removed_on_failure(tmp: Path):
    """Delete ``tmp`` if the block fails; a full disk becomes an ENOSPC OSError.

    h5py and Keras report a full disk in many ways (OSError without errno,
    RuntimeError with "errno = 28" in its text); the command line then says
    "no space left ... while writing <file>" for each of them.
    """
    try:
        yield
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, Exception) and is_disk_full(error):
            raise OSError(
                errno.ENOSPC, "No space left on device", str(tmp.parent)
            ) from None
        raise


def _stamp(path: Path):
    """(size, mtime) of a file, or None: a changed file is read again."""
    try:
        status = path.stat()
    except OSError:
        return None
    return (status.st_size, status.st_mtime_ns)


def _reason(error: Exception) -> str:
    if isinstance(error, DamagedFileError):
        return error.problem
    return f"{type(error).__name__}: {error}"


def stopped_by_nan(model, history) -> bool:
    """True when ``fit`` stopped early because the loss became NaN or infinite."""
    losses = (getattr(history, "history", None) or {}).get("loss") or []
    return bool(model.stop_training and losses and not np.isfinite(losses[-1]))


def nan_error(history, epoch: int) -> TrainingError:
    """Return the error explaining a NaN stop, from the last epoch's logs.

    Args:
        history: the ``History`` returned by ``fit``.
        epoch: the 1-based epoch that diverged.
    """
    logs = {k: v[-1] for k, v in history.history.items() if v}
    bad = tuple(
        name
        for name in ("reconstruction_loss", "kl_loss")
        if name in logs and not math.isfinite(logs[name])
    )
    terms = {
        ("reconstruction_loss",): "the reconstruction term diverged",
        ("kl_loss",): "the KL term diverged (z_log_var grew until exp() overflowed)",
        ("reconstruction_loss", "kl_loss"): "both the reconstruction and the KL "
        "term diverged (the weights became NaN)",
    }.get(bad, "the total loss overflowed")
    values = ", ".join(
        f"{k}={logs[k]:.4g}"
        for k in ("loss", "reconstruction_loss", "kl_loss")
        if k in logs
    )
    return TrainingError(
        f"training stopped in epoch {epoch}: the loss became NaN/infinite ({values}); "
        f"{terms}. Lower the learning rate (e.g. --learning-rate 1e-4), and check "
        "that the inputs are in the decoder's range (BCE needs [0, 1]). The last "
        "good checkpoint is kept: re-run the same command to resume from it."
    )
