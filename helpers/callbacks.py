"""Keras callbacks the lab needs and Keras lacks, and crash-safe versions of its own
(Keras' ``BackupAndRestore`` writes weights, then metadata, in place: a kill between
loses the backup; here the metadata naming each epoch's weights file commits it)."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import math
import os
from pathlib import Path

import keras
import numpy as np

from helpers.errors import DamagedFileError, TrainingError, is_disk_full
from helpers.files import (
    atomic_write_text,
    keras_file_problem,
    read_json,
    weights_file_problem,
)

METADATA = "training_metadata.json"


class KLWarmup(keras.callbacks.Callback):
    """Set the model's ``kl_weight`` to ``beta * min(1, epoch / warmup_epochs)``
    (0-based epochs; ValueError if ``warmup_epochs`` < 1), logged as ``kl_weight``."""

    def __init__(self, beta, warmup_epochs):
        super().__init__()
        if warmup_epochs < 1:
            raise ValueError(f"warmup_epochs={warmup_epochs}: must be >= 1")
        self.beta = float(beta)
        self.warmup_epochs = int(warmup_epochs)

    def on_epoch_begin(self, epoch, logs=None):
        self.model.kl_weight.assign(self.beta * min(1.0, epoch / self.warmup_epochs))

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["kl_weight"] = float(keras.ops.convert_to_numpy(self.model.kl_weight))


class TargetBetaLoss(keras.callbacks.Callback):
    """Log ``loss_at_target_beta`` (and ``val_``): reconstruction + ``beta`` * KL, the
    score a KL warm-up's ``val_loss`` is not. Put it before the callbacks reading it."""

    def __init__(self, beta):
        super().__init__()
        self.beta = float(beta)

    def on_epoch_end(self, epoch, logs=None):
        for prefix in ("", "val_") if logs is not None else ():
            score = target_beta_loss(logs, self.beta, prefix)
            if score is not None:
                logs[f"{prefix}loss_at_target_beta"] = score


def target_beta_loss(logs, beta: float, prefix: str = "") -> float | None:
    """Return ``logs``' ``prefix`` reconstruction_loss + ``beta`` * kl_loss, or None."""
    try:
        reconstruction = float(logs[f"{prefix}reconstruction_loss"])
        return reconstruction + float(beta) * float(logs[f"{prefix}kl_loss"])
    except (KeyError, TypeError, ValueError):
        return None


def seed_state_variables(model) -> list:
    """Every ``SeedGenerator`` state in ``model`` (the sampling noise): the variables
    that are not weights, so ``save_weights`` does not keep them."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` that survives being killed mid-write: a
    verified ``weights-<epoch>.weights.h5``, then metadata naming it and the
    ``SeedGenerator`` states; the previous weights: the fallback (none: TrainingError).
    A non-finite epoch is not backed up; the backup is kept after training."""

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), save_freq="epoch", delete_checkpoint=False)
        self.backup_path = Path(backup_dir)

    def completed_epochs(self) -> int:
        """Return the epochs the current backup has completed (0: no backup)."""
        return int(self._metadata["epoch"]) if self._metadata else 0

    def _weight_files(self) -> list[tuple[int, Path]]:
        """(epoch, path) of every committed weights file, newest first."""
        paths = self.backup_path.glob("weights-*.weights.h5")
        found = [(p.name[len("weights-") : -len(".weights.h5")], p) for p in paths]
        return sorted(((int(d), p) for d, p in found if d.isdigit()), reverse=True)

    @functools.cached_property
    def _metadata(self):
        """The newest good backup's metadata or None; read once (the run lock)."""
        path = self.backup_path / METADATA
        if not path.exists():
            missing = f"{path.name} is missing"
            return self._fall_back(missing, None) if self._weight_files() else None
        try:
            metadata = read_json(path, "")
            limit, weights = int(metadata["epoch"]), str(metadata["weights"])
        except (DamagedFileError, KeyError, TypeError, ValueError) as error:
            reason = getattr(error, "problem", f"{type(error).__name__}: {error}")
            return self._fall_back(f"{path.name} is damaged ({reason})", None)
        if not (self.backup_path / weights).is_file():
            return self._fall_back(f"{path.name} names a missing {weights}", limit)
        if problem := weights_file_problem(self.backup_path / weights):
            return self._fall_back(f"{weights} is damaged ({problem})", limit)
        return metadata

    def _fall_back(self, problem: str, limit: int | None) -> dict:
        """The metadata of the newest good weights file up to epoch ``limit``."""
        for epoch, weights in self._weight_files():
            if (limit is None or epoch <= limit) and not weights_file_problem(weights):
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
        if (metadata := self._metadata) is None:
            return
        if not self.model.optimizer.built:  # its variables, to load them into
            self.model.optimizer.build(self.model.trainable_variables)
        weights = self.backup_path / metadata["weights"]
        try:
            self.model.load_weights(weights)
        except (ValueError, OSError, KeyError) as error:
            raise TrainingError(
                f"the backup {weights} does not fit this model ({error}): delete "
                f"{self.backup_path} to restart from epoch 1, or use a new --run-dir"
            ) from None
        self.model._initial_epoch = int(metadata["epoch"])
        # By position, not by name: Keras numbers unnamed generators per process.
        variables = seed_state_variables(self.model)
        states = metadata.get("seed_states")
        if variables and (states is None or len(states) != len(variables)):
            print(
                f"Note: {weights.name} holds no sampling-noise state for this model; "
                "the resumed run draws other noise than an uninterrupted one would."
            )
            return
        for variable, state in zip(variables, states or []):
            variable.assign(np.asarray(state, dtype=variable.dtype))

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if (loss is None or np.isfinite(loss)) and not self.model.stop_training:
            super().on_epoch_end(epoch, logs)

    def _save_model(self):
        self.backup_path.mkdir(parents=True, exist_ok=True)
        name = f"weights-{self._current_epoch:05d}.weights.h5"
        tmp = self.backup_path / f"tmp-{name}"
        with _saved(tmp, self.backup_path / name, weights_file_problem, "backup"):
            self.model.save_weights(tmp, overwrite=True)
        states = [np.asarray(v).tolist() for v in seed_state_variables(self.model)]
        metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
        metadata.update(weights=name, seed_states=states)
        atomic_write_text(self.backup_path / METADATA, json.dumps(metadata) + "\n")
        self._metadata = metadata
        keep = {name} | {p.name for _, p in self._weight_files()[:2]}
        for old in self.backup_path.glob("*weights-*.weights.h5"):
            if old.name not in keep:
                old.unlink(missing_ok=True)


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``keras.callbacks.ModelCheckpoint`` saving to ``.tmp-NAME``, renamed over NAME
    once verified (use ``verbose=0``: its message names the temporary file)."""

    def _get_file_path(self, epoch, batch, logs):
        final = Path(super()._get_file_path(epoch, batch, logs))
        return str(final.with_name(f".tmp-{final.name}"))

    def _save_model(self, epoch, batch, logs):
        tmp = Path(self._get_file_path(epoch, batch, logs))
        tmp.unlink(missing_ok=True)
        final = tmp.with_name(tmp.name[len(".tmp-") :])
        with _saved(tmp, final, keras_file_problem, final.name):
            super()._save_model(epoch, batch, logs)


@contextlib.contextmanager
def _saved(tmp: Path, final: Path, problem_of, previous: str):
    """Rename what the block writes to ``tmp`` over ``final`` once fsynced and whole;
    delete it if the block fails (a full disk, "errno = 28": an ENOSPC OSError)."""
    try:
        yield
        if tmp.exists():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        if isinstance(error, Exception) and is_disk_full(error):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp.parent))
        raise
    if not tmp.exists():
        return
    if (problem := problem_of(tmp)) is not None:
        tmp.unlink(missing_ok=True)
        raise TrainingError(
            f"{tmp} was just written but cannot be read back ({problem}); is the "
            f"disk full or failing? The previous {previous} is kept: free some "
            "space and re-run the same command to resume."
        )
    os.replace(tmp, final)


def nan_error(history, epoch: int) -> TrainingError | None:
    """Return the error explaining why ``fit`` stopped in (1-based) ``epoch`` of
    ``history`` (its last loss is NaN or infinite: TerminateOnNaN), else None."""
    logs = {k: v[-1] for k, v in history.history.items() if v}
    if math.isfinite(logs.get("loss", 0.0)):
        return None
    parts = ("reconstruction_loss", "kl_loss")
    bad = tuple(name for name in parts if not math.isfinite(logs.get(name, 0.0)))
    terms = {
        ("reconstruction_loss",): "the reconstruction term diverged",
        ("kl_loss",): "the KL term diverged (z_log_var grew until exp() overflowed)",
        parts: "both the reconstruction and the KL term diverged (the weights "
        "became NaN)",
    }.get(bad, "the total loss overflowed")
    values = ", ".join(f"{k}={logs[k]:.4g}" for k in ("loss", *parts) if k in logs)
    return TrainingError(
        f"training stopped in epoch {epoch}: the loss became NaN/infinite ({values}); "
        f"{terms}. Lower the learning rate (e.g. --learning-rate 1e-4), and check "
        "that the inputs are in the decoder's range (BCE needs [0, 1]). The last "
        "good checkpoint is kept: re-run the same command to resume from it."
    )
