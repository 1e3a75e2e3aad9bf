"""A trained model when 04 has not made one: train it now, or fetch the instructor's.

The time it would take comes from ``helpers.timing`` (measured where the lab has a
measurement for this device, else an estimate from FLOPs, labelled as such).
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


def train_count(config: VAEConfig, cache_dir, split: str = "train") -> int:
    """Images of ``split`` ("train" or "validation") a run of ``config`` uses."""
    from helpers.cache import cache_info

    count = int(cache_info(cache_dir)["counts"][split])
    limit = config.train_limit if split == "train" else config.val_limit
    return min(count, limit or count)


def describe_run_time(config: VAEConfig, cache_dir, epochs=None) -> str:
    """Return ``helpers.timing.describe_training_time`` for ``config`` on the cache."""
    from helpers.timing import describe_training_time

    return describe_training_time(
        config,
        n_images=train_count(config, cache_dir),
        n_validation=train_count(config, cache_dir, "validation"),
        epochs=epochs,
    )


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
        print(
            f"No trained model in {run_dir} (04_train has not finished here). Two "
            'ways on: IF_NO_MODEL = "train" trains it now; IF_NO_MODEL = "download" '
            "loads the instructor's trained model.\n"
            + describe_run_time(config, lab.cache_dir)
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
            student.train_student(parts, config, lab.cache_dir, run_dir, verbose=2)
        else:
            raise LabError(f'IF_NO_MODEL = {choice!r}: choose "train" or "download"')
    return load_run(run_dir)
