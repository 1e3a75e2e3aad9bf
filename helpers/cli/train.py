"""``python -m helpers train``: train (or resume) a VAE run from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path

from helpers.cache import cache_info, prepare_cache
from helpers.config import PRESETS, VAEConfig, preset
from helpers.environment import pick_strategy
from helpers.errors import DataError, TrainingError
from helpers.runs import print_run_summary
from helpers.training import train

_OVERRIDES = {  # flag -> (config field, type, help)
    "--epochs": ("epochs", int, "passes over the training split"),
    "--latent-dim": ("latent_dim", int, "size of z"),
    "--beta": ("beta", float, "weight of the KL term"),
    "--learning-rate": ("learning_rate", float, "Adam's step size"),
    "--batch-size": ("batch_size", int, "images per step"),
    "--reconstruction-loss": ("reconstruction_loss", str, "mse or bce"),
    "--kl-warmup-epochs": ("kl_warmup_epochs", int, "epochs to ramp the KL weight"),
    "--upsampling": ("upsampling", str, "transpose or resize"),
    "--train-limit": ("train_limit", int, "use the first N training images"),
    "--val-limit": ("val_limit", int, "use the first N validation images"),
    "--sample-interval": ("sample_interval", int, "epochs between sample grids"),
    "--seed": ("seed", int, "seed of weights, noise and data order"),
}


def add_config_arguments(parser) -> None:
    """Add --preset and the config overrides of ``_OVERRIDES`` to ``parser``."""
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="cpu",
        help="starting settings (default: cpu)",
    )
    for flag, (field, kind, text) in _OVERRIDES.items():
        parser.add_argument(
            flag,
            dest=field,
            type=kind,
            default=None,
            help=f"{text} (default: the preset's)",
        )


def config_from_args(args) -> VAEConfig:
    """Return the preset of ``args`` with the given overrides (bad values: LabError)."""
    overrides = {field: getattr(args, field) for field, *_ in _OVERRIDES.values()}
    try:
        return preset(args.preset, **overrides)
    except ValueError as error:
        raise TrainingError(str(error)) from None


def resolve_data(data, cache=None, config: VAEConfig | None = None) -> Path:
    """Return a cache folder for ``data``, preparing one if ``data`` is raw CelebA.

    Args:
        data: a prepared cache, or a CelebA folder / zip (official or Kaggle layout).
        cache: where to prepare the cache (default: a folder "cache" beside ``data``).
        config: gives image_size and crop for preparing.
    """
    data = Path(data)
    if not data.exists():
        raise DataError(
            f"{data} does not exist: pass a prepared cache or a CelebA "
            "folder/zip with --data (or run `python -m helpers demo`)"
        )
    with contextlib.suppress(DataError, FileNotFoundError, ValueError):
        cache_info(data)
        return data
    config = config or VAEConfig()
    target = Path(cache) if cache else data.parent / "cache"
    print(f"Preparing {data} into the cache {target} (once) ...")
    prepare_cache(data, target, image_size=config.image_size, crop=config.crop)
    return target


def train_command(parser):
    """Add the ``train`` command's arguments; return its handler."""
    parser.add_argument(
        "--data",
        required=True,
        help="prepared cache folder, or a CelebA folder/zip to prepare",
    )
    parser.add_argument(
        "--run-dir",
        default=None,
        help="run directory (default: runs/<preset>); re-run to resume",
    )
    parser.add_argument(
        "--cache",
        default=None,
        help="where to prepare raw --data (default: DATA/../cache)",
    )
    parser.add_argument(
        "--verbose",
        default="auto",
        choices=["auto", "0", "1", "2"],
        help="Keras progress output (default: auto, a progress bar)",
    )
    add_config_arguments(parser)

    def handler(args) -> int:
        config = config_from_args(args)
        run_dir = Path(args.run_dir or Path("runs") / args.preset)
        cache_dir = resolve_data(args.data, args.cache, config)
        verbose = args.verbose if args.verbose == "auto" else int(args.verbose)
        train(config, cache_dir, run_dir, strategy=pick_strategy(), verbose=verbose)
        print_run_summary(run_dir)
        return 0

    return handler
