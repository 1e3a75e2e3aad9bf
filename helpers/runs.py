"""The run directory: where one training run keeps everything (``RunPaths`` names
each file; also ``.lock`` while ``train`` runs, ``helpers-error-*.log`` after an
unexpected error), and how to reopen it."""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from helpers.config import PRESETS, VAEConfig
from helpers.errors import DamagedFileError, LabError
from helpers.files import atomic_write_text, check_keras_file, read_json

# The lab's reference parts (the solutions' %%export cells): a student release ships
# the given ones as helpers/solution.py, a checkout all of them in vaelab/solution.py.
SOLUTION_FILE = Path(__file__).with_name("solution.py")
SOLUTION_MODULES = ("helpers.solution", "vaelab.solution")


def solution_spec():
    """The import spec of the lab's reference parts, or None where none ship."""
    for name in SOLUTION_MODULES:
        with contextlib.suppress(ModuleNotFoundError):  # no vaelab: not a checkout
            if spec := importlib.util.find_spec(name):
                return spec
    return None


def _file(name: str) -> property:
    return property(lambda self: self.root / name)


@dataclass(frozen=True)
class RunPaths:
    """Every file of a run directory, by name."""

    root: Path

    config = _file("config.json")  # the VAEConfig (VAEConfig.save)
    info = _file("run.json")  # the cache it trained on, epochs done, status
    best_model = _file("best.keras")  # best so far by val_loss_at_target_beta
    # helpers.pretrained's download, where 04 trained no model; best.keras wins
    instructor_model = _file("instructor.keras")
    backup = _file("backup")  # resume state of an interrupted run
    history = _file("history.csv")  # one row per epoch: the losses and val_ losses
    fixed_z = _file("fixed_z.npy")  # the latents decoded into every sample grid
    architecture = _file("architecture.json")  # the trained model's layers
    samples = _file("samples")  # sample_grid(epoch) PNGs
    tensorboard = _file("tensorboard")
    loss_curves = _file("loss_curves.png")

    def sample_grid(self, epoch: int) -> Path:
        """PNG of the fixed-z faces after ``epoch`` (1-based)."""
        return self.samples / f"epoch_{epoch:03d}.png"


def read_info(run_dir) -> dict:
    """Return run.json ({} before the run wrote it); DamagedFileError if garbled."""
    path = RunPaths(Path(run_dir)).info
    fix = (
        "delete it and re-run the same `python -m vaelab train` command: it is "
        "written again (the epochs done come from the backup)"
    )
    return read_json(path, fix) if path.exists() else {}


def read_config(run_dir) -> VAEConfig:
    """Return config.json as a VAEConfig; DamagedFileError if garbled or invalid."""
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
    info = {**read_info(run_dir), **fields}
    atomic_write_text(RunPaths(Path(run_dir)).info, json.dumps(info, indent=2) + "\n")
    return info


@dataclass
class Run:
    """A reopened run: its config, its best model, and where its data is."""

    paths: RunPaths
    config: VAEConfig
    vae: object  # the parts' VAE, or a PretrainedVAE (instructor.keras)
    cache_dir: Path | None
    info: dict


def load_run(run_dir) -> Run:
    """Reopen a run directory: config, best model (else instructor.keras) and the
    cache it trained on, with a UserWarning if that cache changed since. Raises
    LabError (no run directory, no model yet) or DamagedFileError."""
    paths = RunPaths(Path(run_dir))
    if not paths.config.exists():
        raise LabError(
            f"{paths.root} is not a run directory (no config.json): train one "
            "with `python -m vaelab train --data DATA --run-dir DIR`"
        )
    if not paths.best_model.exists():
        if paths.instructor_model.exists():
            return load_instructor_run(paths.root)
        raise LabError(
            f"{paths.root} has no best.keras yet: let training finish at least "
            "one epoch (re-run the same train command to resume)"
        )
    import keras

    if spec := solution_spec():  # registers the lab's classes ("lab>VAE")
        importlib.import_module(spec.name)
    config = read_config(paths.root)
    info = read_info(run_dir)
    preset = config.name if config.name in PRESETS else "PRESET"
    fix = (
        "the run's best model is damaged: to resume from the backup, run the train "
        f"command that made it, `python -m vaelab train --data DATA --run-dir "
        f"{paths.root} --preset {preset}` (a new best.keras is written at the "
        "next epoch), or train again in a new --run-dir"
    )
    check_keras_file(paths.best_model, fix)
    try:
        vae = keras.models.load_model(paths.best_model, compile=False)
    except Exception as error:  # Keras raises many kinds for a bad file
        raise DamagedFileError(
            paths.best_model, f"{type(error).__name__}: {error}"[:300], fix
        ) from None
    cache = Path(info["cache_dir"]) if info.get("cache_dir") else None
    recorded = info.get("data")  # none in an older run; a moved cache fails to load
    if cache and recorded and cache.exists():
        from helpers.cache import cache_fingerprint

        with contextlib.suppress(LabError):  # damaged: loading a split says so
            if cache_fingerprint(cache)["digest"] != recorded.get("digest"):
                warnings.warn(
                    f"the cache {cache} has changed since {paths.root} was trained on "
                    "it (it was prepared again from other data): images read from it "
                    "are not the ones the run trained and was validated on.",
                    stacklevel=2,
                )
    return Run(paths, config, vae, cache, info)


def load_instructor_run(run_dir, cache_dir=None):
    """Return a ``Run`` of the ``instructor.keras`` in ``run_dir``, its config and info
    from the file, its cache ``cache_dir``, else the one run.json names, else None."""
    from helpers.portable import INSTRUCTOR_FILE, load_portable_model

    paths = RunPaths(Path(run_dir))
    vae = load_portable_model(paths.instructor_model)
    cache_dir = cache_dir or read_info(paths.root).get("cache_dir")
    info = {**vae.info, "model": INSTRUCTOR_FILE}
    return Run(paths, vae.config, vae, Path(cache_dir) if cache_dir else None, info)
