"""``python -m vaelab train``: train (or resume) a VAE run from the command line."""

from __future__ import annotations

import contextlib
from pathlib import Path

from helpers.cache import cache_info, prepare_cache
from helpers.config import PRESETS, VAEConfig, preset
from helpers.errors import DataError, TrainingError
from helpers.runs import RunPaths, read_info
from helpers.training import train
from vaelab.cli.data import report_lines
from vaelab.validate import SEED, output_dir, real, whole

# flag -> (config field, type, help); the types refuse bad numbers while parsing,
# VAEConfig checks the rest: both before anything is written.
_OVERRIDES = {
    "--epochs": ("epochs", whole(1, 100_000), "passes over the training split"),
    "--latent-dim": ("latent_dim", whole(2, 512), "size of z"),
    "--beta": ("beta", real(0.0, 1e6), "weight of the KL term"),
    "--learning-rate": ("learning_rate", real(1e-12, 1.0), "Adam's step size"),
    "--batch-size": ("batch_size", whole(1, 4096), "images per step"),
    "--reconstruction-loss": ("reconstruction_loss", str, "mse or bce"),
    "--kl-warmup-epochs": (
        "kl_warmup_epochs",
        whole(0, 100_000),
        "epochs to ramp the KL weight",
    ),
    "--train-limit": ("train_limit", whole(1), "use the first N training images"),
    "--val-limit": ("val_limit", whole(1), "use the first N validation images"),
    "--sample-interval": (
        "sample_interval",
        whole(1, 100_000),
        "epochs between sample grids",
    ),
    "--seed": ("seed", SEED, "seed of weights, noise and data order"),
    "--precision": (
        "precision",
        str,
        "float32, mixed_float16, mixed_bfloat16, or auto: the fastest on this device",
    ),
}


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
            "folder/zip with --data (or run `python -m vaelab demo`)"
        )
    if (data / "meta.json").exists():  # a cache: a damaged one says so, not "no CelebA"
        cache_info(data)
        return data
    with contextlib.suppress(DataError, FileNotFoundError, ValueError):
        cache_info(data)
        return data
    config = config or VAEConfig()
    target = Path(cache) if cache else data.parent / "cache"
    print(f"Preparing {data} into the cache {target} (once) ...")
    summary = prepare_cache(
        data, target, image_size=config.image_size, crop=config.crop
    )
    for line in report_lines(summary):
        print(line)
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
        type=output_dir,
        help="run directory (default: runs/<preset>); re-run to resume",
    )
    parser.add_argument(
        "--cache",
        default=None,
        type=output_dir,
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
        train(config, cache_dir, run_dir, verbose=verbose)
        print_run_summary(run_dir)
        return 0

    return handler
