"""A trained model when 04 has not made one: train it now, or fetch the instructor's.

Also the time estimates the notebooks print before a long cell. They come from the
model's FLOPs (counted from the config, 6 FLOP per multiply-add for a training step)
and an assumed sustained rate per device, so they are labelled as estimates: measured
figures for a device, where the lab has them, replace them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from helpers.config import VAEConfig
from helpers.errors import LabError

# The instructor's trained `colab` model (a best.keras of the lab's VAE): one place
# to change. The SHA-256 is filled in when the file is published; until then
# fetching refuses instead of downloading an unchecked file.
INSTRUCTOR_MODEL_URL = (
    "https://github.com/vae-celeba-lab/vae-celeba-lab/releases/download/"
    "models-v1/colab-best.keras"
)
INSTRUCTOR_MODEL_SHA256 = ""

# Sustained training FLOP/s assumed per device (estimates, not measurements): a T4
# reaches 40-60 % of its 8.1 TFLOP/s float32 peak; two CPU cores about 0.25 TFLOP/s.
ASSUMED_FLOPS = {"GPU": 3.5e12, "TPU": 20e12, "CPU": 0.25e12}


def macs_per_image(config: VAEConfig) -> int:
    """Multiply-adds of one forward pass (encoder + decoder) for ``config``."""
    k2, size = config.kernel_size**2, config.image_size
    macs, channels = 0, 3
    for filters in config.filters:  # strided convs halve the side
        size //= 2
        macs += size * size * k2 * channels * filters
        channels = filters
    flat = size * size * channels
    macs += 2 * flat * config.latent_dim + config.latent_dim * flat  # heads, project
    stages = list(reversed(config.filters[:-1])) + [config.filters[0]]
    for filters in stages:  # a stride-2 transpose conv: k*k per INPUT pixel
        macs += size * size * k2 * channels * filters
        size, channels = size * 2, filters
    return macs + size * size * 9 * channels * 3  # the 3x3 output conv


def device_kind() -> str:
    """'GPU', 'TPU' or 'CPU': what Keras will train on."""
    from helpers.lab import accelerator

    name = accelerator()
    return "GPU" if name.startswith("GPU") else "TPU" if name == "TPU" else "CPU"


def training_seconds(config: VAEConfig, n_train: int, epochs=None, device=None):
    """Estimate the seconds ``epochs`` epochs of ``n_train`` images take (FLOPs)."""
    epochs = config.epochs if epochs is None else epochs
    flops = 6 * macs_per_image(config) * n_train * epochs
    # plus start-up (building and compiling the step) and per-epoch overheads
    return 15 + 2 * epochs + flops / ASSUMED_FLOPS[device or device_kind()]


def describe_seconds(seconds: float) -> str:
    """'about 40 s', 'about 12 min', 'about 1.5 h'."""
    if seconds < 90:
        return f"about {max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


def announce(what: str, seconds: float, device=None) -> None:
    """Print what a long cell will do and roughly how long, labelled an estimate."""
    device = device or device_kind()
    print(
        f"{what}: {describe_seconds(seconds)} on this {device} (an estimate from "
        f"the model's FLOPs at an assumed {ASSUMED_FLOPS[device] / 1e12:g} "
        "TFLOP/s, not a measurement)."
    )


def train_count(config: VAEConfig, cache_dir) -> int:
    """Training images a run of ``config`` uses from the cache."""
    from helpers.cache import cache_info

    count = int(cache_info(cache_dir)["counts"]["train"])
    return min(count, config.train_limit or count)


def fetch_instructor_model(run_dir, config: VAEConfig, url=None, sha256=None) -> Path:
    """Download the instructor's best.keras (hash-checked) into ``run_dir``.

    Raises:
        LabError: no SHA-256 published yet, or the download failed.
    """
    import keras

    url = url or INSTRUCTOR_MODEL_URL
    sha256 = sha256 or INSTRUCTOR_MODEL_SHA256
    if not sha256:
        raise LabError(
            "the instructor has not published the trained model's SHA-256 yet "
            f"(helpers.pretrained.INSTRUCTOR_MODEL_SHA256; URL {url}): ask for the "
            "URL and SHA-256 and pass them, fetch_instructor_model(run_dir, config, "
            "url=..., sha256=...), or train the model now"
        )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=f"instructor-{sha256[:12]}.keras",
            origin=url,
            file_hash=sha256,
            hash_algorithm="sha256",
            cache_dir=str(run_dir),
            cache_subdir="download",
        )
    except Exception as error:
        raise LabError(
            f"could not fetch the instructor's model from {url} ({error}); check "
            "the URL and your connection, or train the model now"
        ) from error
    shutil.copyfile(path, run_dir / "best.keras")
    if not (run_dir / "config.json").exists():
        config.save(run_dir / "config.json")
    print(f"the instructor's model is in {run_dir / 'best.keras'} (SHA-256 checked)")
    return run_dir / "best.keras"


def ensure_model(lab, choice: str = "train", url=None, sha256=None, verbose=True):
    """Return the run of ``lab.run_dir``, training or fetching its model if missing.

    Args:
        lab: the ``Lab`` of ``setup_lab()``.
        choice: what to do when best.keras is missing: "train" (your parts, as
            04_train assembled them, with the lab's where 04's switch said so) or
            "download" (the instructor's model; see ``fetch_instructor_model``).
        url, sha256: override the instructor's published file.

    Returns:
        ``helpers.runs.Run`` with the loaded model.
    """
    import json

    from helpers import student
    from helpers.runs import load_run

    run_dir = Path(lab.run_dir)
    student.import_student_module(lab.workdir, verbose=verbose)
    if not (run_dir / "best.keras").exists():
        config = lab.config
        seconds = training_seconds(config, train_count(config, lab.cache_dir))
        print(
            f"No trained model in {run_dir} (04_train has not finished here). Two "
            f'ways on: IF_NO_MODEL = "train" trains it now ({describe_seconds(seconds)}'
            ', an estimate from FLOPs); IF_NO_MODEL = "download" loads the '
            "instructor's trained model."
        )
        if choice == "download":
            fetch_instructor_model(run_dir, config, url, sha256)
        elif choice == "train":
            record = run_dir / "student_parts.json"
            origins = json.loads(record.read_text()) if record.exists() else {}
            use_lab = [part for part, who in origins.items() if who == "lab"]
            parts = student.load_student_parts(
                lab.workdir, use_lab, config=config, check=False, verbose=verbose
            )
            announce(f"Training {config.epochs} epochs now", seconds)
            student.train_student(parts, config, lab.cache_dir, run_dir, verbose=2)
        else:
            raise LabError(f'IF_NO_MODEL = {choice!r}: choose "train" or "download"')
    return load_run(run_dir)
