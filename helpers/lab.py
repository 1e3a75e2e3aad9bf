"""The notebooks' set-up: pick the data, the preset and the folders in one call.

Every notebook starts with::

    lab = setup_lab()            # real CelebA in Colab, the generated slice on CI
    lab.config, lab.cache_dir, lab.run_dir

The one environment switch ``SMOKE=1`` (set by CI) selects the tiny profile: the
generated CelebA-format slice and the ``smoke`` preset, so CI runs exactly what
students run, only smaller. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.cache import prepare_cache
from helpers.config import VAEConfig, preset, smoke_mode
from helpers.download import download_celeba
from helpers.environment import detect_hardware, in_colab
from helpers.student import register_magic, set_workdir
from helpers.synthetic import make_slice

WORKDIR_ENV = "VAE_LAB_WORKDIR"
SMOKE_SLICE_IMAGES = 600
DRIVE_WORKDIR = Path("/content/drive/MyDrive/vae-lab")


@dataclass(frozen=True)
class Lab:
    """Where this session's data, cache and runs live, and the config to use."""

    workdir: Path
    data_dir: Path
    cache_dir: Path
    runs_dir: Path
    config: VAEConfig
    generated_data: bool

    @property
    def run_dir(self) -> Path:
        """The default run directory for ``config`` (one per preset)."""
        return self.runs_dir / self.config.name


def accelerator() -> str:
    """Describe the device Keras will use: 'GPU x1', 'TPU' or 'CPU only'."""
    return str(detect_hardware())


def describe_environment() -> str:
    """One line per version that matters, and the device, for the first cell."""
    import keras  # loads TensorFlow: only when a notebook sets up

    lines = [
        f"Python {platform.python_version()}",
        f"Keras {keras.__version__} " f"(backend: {keras.backend.backend()})",
        f"NumPy {np.__version__}",
    ]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # optional: only under the TensorFlow backend

        lines.append(f"TensorFlow {tf.__version__}")
    lines.append(f"Device: {accelerator()}")
    return "\n".join(lines)


def default_workdir(use_drive: bool = False) -> Path:
    """The folder for data and runs: $VAE_LAB_WORKDIR, Google Drive, or ~/vae-lab."""
    if os.environ.get(WORKDIR_ENV):
        return Path(os.environ[WORKDIR_ENV])
    if use_drive:
        return DRIVE_WORKDIR
    return Path("/content/vae-lab") if in_colab() else Path.home() / "vae-lab"


def mount_drive() -> None:
    """Mount Google Drive in Colab so runs survive a disconnect."""
    from google.colab import drive  # type: ignore[import-not-found]

    drive.mount("/content/drive")


def choose_preset(smoke: bool | None = None) -> str:
    """Return "smoke" under SMOKE=1, "colab" with an accelerator, else "cpu"."""
    if smoke_mode() if smoke is None else smoke:
        return "smoke"
    return "colab" if detect_hardware().accelerated else "cpu"


def setup_lab(
    source: str = "auto",
    preset_name: str | None = None,
    workdir: str | os.PathLike | None = None,
    use_drive: bool = False,
    seed: int | None = None,
    verbose: bool = True,
    **overrides,
) -> Lab:
    """Get the data, build the cache and choose the config, printing what it chose.

    Args:
        source: "auto" (the generated slice under SMOKE=1, else Kaggle), "generated",
            or a ``download_celeba`` source: "kaggle", "opendatasets", "url", "local".
            Pass ``url=`` / ``path=`` / ``sha256=`` in ``overrides`` for the last two.
        preset_name: "smoke", "cpu" or "colab" (default: ``choose_preset()``).
        workdir: folder for data, cache and runs (default: ``default_workdir``).
        use_drive: in Colab, mount Google Drive and keep everything there.
        seed: seed for Keras, NumPy and Python (default: the preset's).
        verbose: print versions, device and choices.
        **overrides: VAEConfig fields to change, plus ``url``, ``path``, ``sha256``.

    Returns:
        A ``Lab`` with the folders and the config.
    """
    import keras  # loads TensorFlow: only when a notebook sets up

    download_options = {
        k: overrides.pop(k) for k in ("url", "path", "sha256") if k in overrides
    }
    if use_drive and in_colab():
        mount_drive()
    root = Path(workdir) if workdir else default_workdir(use_drive)
    set_workdir(root)  # where `%%export` cells save the student's parts
    register_magic()
    smoke = smoke_mode()
    generated = source == "generated" or (source == "auto" and smoke)
    name = preset_name or choose_preset(smoke)
    config = preset(name, seed=seed, **overrides)
    keras.utils.set_random_seed(config.seed)
    if verbose:
        print(describe_environment())
        if name == "cpu":
            print(
                "No GPU found: using the `cpu` preset (a few thousand images, minutes "
                "per run). In Colab: Runtime > Change runtime type > GPU."
            )
    if generated:
        data_dir = root / "data" / "generated-slice"
        make_slice(data_dir, n=SMOKE_SLICE_IMAGES, layout="official", seed=0)
        if verbose:
            print(
                f"Data: a GENERATED CelebA-format slice of {SMOKE_SLICE_IMAGES} "
                f"cartoon faces (a stand-in, not CelebA) in {data_dir}"
            )
    else:
        kind = "kaggle" if source == "auto" else source
        data_dir = download_celeba(
            root / "data" / "celeba", source=kind, **download_options
        ).root
        if verbose:
            print(f"Data: CelebA in {data_dir}")
    # Kaggle's copy lives in kagglehub's cache (e.g. .../versions/2): name by source.
    name = "generated-slice" if generated else "celeba"
    cache_dir = root / "cache" / f"{name}-{config.image_size}px"
    prepare_cache(
        data_dir,
        cache_dir,
        image_size=config.image_size,
        crop=config.crop,
        progress=verbose,
    )
    lab = Lab(root, data_dir, cache_dir, root / "runs", config, generated)
    if verbose:
        print(f"Preset: {config.name}   cache: {cache_dir}   runs: {lab.runs_dir}")
    return lab
