"""The whole lab in one command, without CelebA: ``python -m vaelab demo``.

Makes a generated stand-in for CelebA (cartoon faces, ``vaelab.synthetic``), decodes
it once into the uint8 cache, trains the ``cpu`` preset on it and writes the loss
curves and sample grids: a few minutes on 2 CPU cores. Running it again resumes or,
once finished, just prints where the results are.
"""

from __future__ import annotations

import time
from pathlib import Path

from helpers.cache import prepare_cache
from helpers.config import preset
from helpers.training import train
from vaelab.cli.train import print_run_summary
from vaelab.synthetic import make_slice

DEFAULT_N = 3000

NOT_CELEBA = (
    "NOTE: the demo trains on GENERATED cartoon faces (vaelab.synthetic), a stand-in\n"
    "for CelebA so that everything runs without a download. The results show that\n"
    "the pipeline works, not what a VAE learns from real faces: for that, download\n"
    "CelebA (`python -m vaelab download`) and train on it (`python -m vaelab "
    "train`)."
)


def run_demo(
    out="runs/demo",
    n: int = DEFAULT_N,
    epochs: int | None = None,
    data_dir="data",
    verbose="auto",
) -> Path:
    """Make the generated slice, prepare it, train the cpu preset; return the run dir.

    Args:
        out: the run directory.
        n: generated images in the slice (about 80% of them train).
        epochs: override the preset's epochs (15).
        data_dir: where the slice ("slice") and its cache ("cache") go.
        verbose: Keras progress output.
    """
    start = time.perf_counter()
    print(NOT_CELEBA + "\n")
    suffix = "" if n == DEFAULT_N else f"_{n}"
    slice_dir = Path(data_dir) / f"slice{suffix}"
    cache_dir = Path(data_dir) / f"cache{suffix}"
    config = preset("cpu", epochs=epochs)
    if config.epochs < config.sample_interval:  # at least one grid of faces
        config = config.replace(sample_interval=config.epochs)
    print(f"1/3 Generating {n} stand-in faces in {slice_dir} (once) ...")
    make_slice(slice_dir, n, progress=True)
    print(f"2/3 Decoding them into the cache {cache_dir} (once) ...")
    prepare_cache(slice_dir, cache_dir, image_size=config.image_size, crop=config.crop)
    print(f"3/3 Training the 'cpu' preset ({config.epochs} epochs) into {out} ...")
    train(config, cache_dir, out, verbose=verbose)
    print_run_summary(out)
    print(
        f"\nDemo finished in {time.perf_counter() - start:.0f} s. Look at "
        f"{Path(out) / 'loss_curves.png'} and {Path(out) / 'samples'}/."
    )
    print("Reminder: these are generated stand-in faces, not CelebA.")
    return Path(out)
