"""A trained model when 04 has not made one: train it now, or fetch the instructor's,
a portable file (``helpers.portable``) that loads without the lab's code."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from helpers.config import VAEConfig
from helpers.errors import LabError
from helpers.portable import INSTRUCTOR_FILE

# The instructor's `colab` model (`python -m instructor export-model`). Until its
# SHA-256 is filled in, fetching refuses to download an unchecked file.
INSTRUCTOR_MODEL_URL = (
    "https://github.com/vae-celeba-lab/vae-celeba-lab/releases/download/"
    "models-v1/colab-portable.keras"
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
    """Download the instructor's portable model (hash-checked) into ``run_dir`` as
    instructor.keras, with config.json if missing; LabError: no SHA-256 or download."""
    import keras

    url, sha256 = url or INSTRUCTOR_MODEL_URL, sha256 or INSTRUCTOR_MODEL_SHA256
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
    target = run_dir / INSTRUCTOR_FILE
    os.replace(path, target)  # the same folder tree: one rename, never half a file
    with contextlib.suppress(OSError):  # other files in it: not ours to delete
        (run_dir / "download").rmdir()
    if not (run_dir / "config.json").exists():
        config.save(run_dir / "config.json")
    print(f"the instructor's model is in {target} (SHA-256 checked)")
    return target


def ensure_model(lab, choice: str = "train", url=None, sha256=None, verbose=True):
    """Return the ``Run`` of ``lab.run_dir``: your best.keras, else ``choice`` "train"
    trains your parts now, "download" fetches the instructor's model (once). LabError:
    another choice, or an instructor's model made for other images."""
    from helpers import student
    from helpers.runs import RunPaths, load_instructor_run, load_run
    from helpers.training import train_student

    if choice not in ("train", "download"):
        raise LabError(f'IF_NO_MODEL = {choice!r}: choose "train" or "download"')
    paths = RunPaths(Path(lab.run_dir))
    run_dir, config = paths.root, lab.config
    student.import_student_module(lab.workdir, verbose=verbose)
    if paths.best_model.exists():
        return load_run(run_dir)
    if choice == "download" and paths.instructor_model.exists():
        print(f"using the instructor's model already in {paths.instructor_model}")
    else:
        print(
            f"No trained model in {run_dir} (04_train has not finished here). Two "
            'ways on: IF_NO_MODEL = "train" trains it now; IF_NO_MODEL = "download" '
            "loads the instructor's trained model.\n"
            + describe_run_time(config, lab.cache_dir)
        )
        if choice == "train":
            record = run_dir / "student_parts.json"
            origins = json.loads(record.read_text()) if record.exists() else {}
            parts = student.load_student_parts(
                lab.workdir,
                [part for part, who in origins.items() if who == "lab"],
                config=config,
                check=False,
                parts=[*student.TRAINING_PARTS, "build_my_vae"],  # what trains
                verbose=verbose,
            )
            train_student(parts, config, lab.cache_dir, run_dir, verbose=2)
            return load_run(run_dir)
        fetch_instructor_model(run_dir, config, url, sha256)
    run = load_instructor_run(run_dir, cache_dir=lab.cache_dir)
    mine = (config.image_shape, config.value_range)
    theirs = (run.config.image_shape, run.config.value_range)
    if mine != theirs:
        raise LabError(
            f"the instructor's model {paths.instructor_model} was trained on "
            f"{theirs[0]} images in {theirs[1]}, but your config uses {mine[0]} images "
            f"in {mine[1]}: use the {run.config.name!r} preset's image_size and "
            'output_activation, or set IF_NO_MODEL = "train"'
        )
    return run
