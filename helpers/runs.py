"""The run directory: where one training run keeps everything, and how to reopen it.

A run directory is self-describing, so a student can evaluate yesterday's model::

    run_dir/
      config.json          the VAEConfig (VAEConfig.save)
      run.json             the cache it trained on, epochs done, status
      best.keras           best model so far by val_loss_at_target_beta (ModelCheckpoint)
      instructor.keras     the instructor's portable model, where one was downloaded
                           instead (helpers.pretrained); best.keras wins over it
      backup/              resume state for an interrupted run (BackupAndRestore)
      history.csv          one row per epoch (CSVLogger): loss, reconstruction_loss,
                           kl_loss and their val_ versions
      fixed_z.npy          the latent vectors decoded into every sample grid
      samples/epoch_005.png  faces decoded from fixed_z, every sample_interval epochs
      tensorboard/         TensorBoard event files
      loss_curves.png      total, reconstruction and KL loss over the epochs
      .lock                train's lock (helpers.locks); .lock.owner.json names the
                           process holding it, while it does
      helpers-error-*.log  the traceback of an unexpected error, if one happened
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path

from helpers.config import VAEConfig
from helpers.errors import DamagedFileError, LabError
from helpers.files import atomic_write_text, read_json
from helpers.integrity import check_keras_file

# The lab's reference parts (generated; not in the student release).
SOLUTION_FILE = Path(__file__).with_name("solution.py")


@dataclass(frozen=True)
class RunPaths:
    """Every file of a run directory, by name."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def info(self) -> Path:
        return self.root / "run.json"

    @property
    def best_model(self) -> Path:
        return self.root / "best.keras"

    @property
    def instructor_model(self) -> Path:
        return self.root / "instructor.keras"

    @property
    def backup(self) -> Path:
        return self.root / "backup"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def fixed_z(self) -> Path:
        return self.root / "fixed_z.npy"

    @property
    def architecture(self) -> Path:
        """architecture.json: the trained model's layers, written by train()."""
        return self.root / "architecture.json"

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def loss_curves(self) -> Path:
        return self.root / "loss_curves.png"

    def sample_grid(self, epoch: int) -> Path:
        """PNG of the fixed-z faces after ``epoch`` (1-based)."""
        return self.samples / f"epoch_{epoch:03d}.png"


def read_info(run_dir) -> dict:
    """Return run.json as a dict ({} when the run has not written it yet).

    Raises:
        DamagedFileError: run.json is truncated or garbled.
    """
    path = RunPaths(Path(run_dir)).info
    if not path.exists():
        return {}
    return read_json(
        path,
        "delete it and re-run the same `python -m helpers train` command: it is "
        "written again (the epochs done come from the backup)",
    )


def read_config(run_dir) -> VAEConfig:
    """Return the run's config.json as a VAEConfig.

    Raises:
        DamagedFileError: config.json is truncated, garbled, or holds bad values.
    """
    path = RunPaths(Path(run_dir)).config
    fix = (
        "a run's settings cannot be recovered from its other files: restore "
        "config.json from a copy, or train again in a new --run-dir"
    )
    data = read_json(path, fix)
    try:
        return VAEConfig.from_dict(data)
    except (ValueError, TypeError) as error:
        raise DamagedFileError(path, str(error), fix) from None


def write_info(run_dir, **fields) -> dict:
    """Merge ``fields`` into run.json atomically and return the result."""
    paths = RunPaths(Path(run_dir))
    info = {**read_info(run_dir), **fields}
    atomic_write_text(paths.info, json.dumps(info, indent=2) + "\n")
    return info


@dataclass
class Run:
    """A reopened run: its config, its best model, and where its data is."""

    paths: RunPaths
    config: VAEConfig
    # the parts' VAE, or helpers.portable.PretrainedVAE for an instructor.keras
    # (typed loosely so importing this needs no Keras)
    vae: object
    cache_dir: Path | None
    info: dict


def load_run(run_dir) -> Run:
    """Reopen a run directory: config, best model and the cache it trained on.

    Warns (UserWarning) when the cache it trained on has changed since. A folder
    with no best.keras but the instructor's downloaded model (instructor.keras)
    gives that model (``load_instructor_run``).

    Raises:
        LabError: the folder is not a run directory, or has no saved model yet.
        DamagedFileError: config.json, run.json or best.keras is damaged.
    """
    paths = RunPaths(Path(run_dir))
    if not paths.config.exists():
        raise LabError(
            f"{paths.root} is not a run directory (no config.json): train one "
            "with `python -m helpers train --data DATA --run-dir DIR`"
        )
    if not paths.best_model.exists() and paths.instructor_model.exists():
        return load_instructor_run(paths.root)
    if not paths.best_model.exists():
        raise LabError(
            f"{paths.root} has no best.keras yet: let training finish at least "
            "one epoch (re-run the same train command to resume)"
        )
    import keras

    if SOLUTION_FILE.is_file():  # registers the lab's classes ("lab>VAE")
        importlib.import_module("helpers.solution")
    config = read_config(paths.root)
    info = read_info(run_dir)
    fix = (
        "the run's best model is damaged: to resume from the backup, run the train "
        f"command that made it, `python -m helpers train --data DATA --run-dir "
        f"{paths.root} --preset {_preset_flag(config)}` (a new best.keras is "
        "written at the next epoch), or train again in a new --run-dir"
    )
    check_keras_file(paths.best_model, fix)
    try:
        vae = keras.models.load_model(paths.best_model, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise DamagedFileError(
            paths.best_model, f"{type(error).__name__}: {error}"[:300], fix
        ) from None
    cache = info.get("cache_dir")
    if cache:
        _warn_if_cache_changed(paths.root, Path(cache), info.get("data"))
    return Run(paths, config, vae, Path(cache) if cache else None, info)


def _preset_flag(config: VAEConfig) -> str:
    """The --preset value a config came from, or PRESET when it is no preset's."""
    from helpers.config import PRESETS

    return config.name if config.name in PRESETS else "PRESET"


def load_instructor_run(run_dir, cache_dir=None):
    """Return a ``helpers.runs.Run`` of the ``instructor.keras`` in ``run_dir``.

    Its ``config`` is the one the model was trained with (from the file), its
    ``info`` what the file says of that training (``epochs_done``); ``cache_dir``
    is ``cache_dir``, else the one run.json names, else None.
    """
    from helpers.portable import INSTRUCTOR_FILE, load_portable_model

    paths = RunPaths(Path(run_dir))
    vae = load_portable_model(paths.instructor_model)
    if cache_dir is None:
        cache_dir = read_info(paths.root).get("cache_dir")
    info = {**vae.info, "model": INSTRUCTOR_FILE}
    return Run(paths, vae.config, vae, Path(cache_dir) if cache_dir else None, info)


def _warn_if_cache_changed(root: Path, cache: Path, recorded: dict | None) -> None:
    """Warn when the run's cache no longer holds the data the run trained on."""
    import warnings

    from helpers.cache import cache_fingerprint

    if not recorded or not cache.exists():
        return  # an older run, or a moved cache: loading it says what is wrong
    try:
        digest = cache_fingerprint(cache)["digest"]
    except LabError:
        return  # damaged: loading a split names the file and the fix
    if digest != recorded.get("digest"):
        warnings.warn(
            f"the cache {cache} has changed since {root} was trained on it (it was "
            "prepared again from other data): images read from it are not the ones "
            "the run trained and was validated on.",
            stacklevel=3,
        )


def print_run_summary(run_dir) -> None:
    """Print where a run's results are."""
    paths = RunPaths(Path(run_dir))
    info = read_info(run_dir)
    grids = sorted(paths.samples.glob("epoch_*.png"))
    print(f"\nRun {paths.root}: {info.get('epochs_done')} epochs, {info.get('status')}")
    print(f"  loss curves   {paths.loss_curves}")
    print(
        f"  sample grids  {paths.samples}/ ({len(grids)} PNGs"
        + (f", latest {grids[-1].name})" if grids else ")")
    )
    print(f"  best model    {paths.best_model}")
    print(f"  history       {paths.history}")
    print(f"  TensorBoard   tensorboard --logdir {paths.tensorboard}")
