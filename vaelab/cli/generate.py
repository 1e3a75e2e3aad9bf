"""``python -m vaelab sample`` and ``explore``: new faces and figures from a run."""

from __future__ import annotations

import numpy as np

from helpers.errors import LabError
from helpers.generate import (
    _load_split_images,
    decode,
    fit_latent_gmm,
    latent_dim,
    sample_gmm,
    write_figures,
)
from helpers.plots import save_grid
from helpers.runs import load_run
from vaelab.validate import (
    MAX_EVAL_IMAGES,
    MAX_GRID_FACES,
    SEED,
    output_dir,
    output_file_of,
    real,
    whole,
)


def sample_command(parser):
    """Add the ``sample`` command's arguments; return its handler."""
    parser.add_argument(
        "--run-dir", required=True, help="a run directory (config.json, " "best.keras)"
    )
    parser.add_argument(
        "--n",
        type=whole(1, MAX_GRID_FACES),
        default=64,
        help=f"faces to decode, at most {MAX_GRID_FACES} (default 64)",
    )
    parser.add_argument(
        "--out", required=True, type=output_file_of(".png"), help="PNG file to write"
    )
    parser.add_argument(
        "--temperature",
        type=real(0.0, 10.0),
        default=1.0,
        help="scale of the prior's standard deviation, 0 to 10 (default 1)",
    )
    parser.add_argument(
        "--gmm",
        action="store_true",
        help="sample from a 10-component "
        "Gaussian mixture fitted to the encoded training faces",
    )
    parser.add_argument(
        "--fit-n",
        type=whole(10, MAX_EVAL_IMAGES),
        default=5000,
        help=f"training images the mixture is fitted to, 10 to {MAX_EVAL_IMAGES:,} "
        "(default 5000)",
    )
    parser.add_argument("--seed", type=SEED, default=0)

    def handler(args) -> int:
        run = load_run(args.run_dir)
        if args.gmm:
            train, _ = _load_split_images(run, "train", args.fit_n)
            gmm = fit_latent_gmm(run.vae, train, seed=args.seed)
            images = sample_gmm(run.vae, gmm, args.n, seed=args.seed)
            how = f"a {gmm.n_components}-component GMM fitted to {len(train)} faces"
        else:
            z = np.random.default_rng(args.seed).standard_normal(
                (args.n, latent_dim(run.vae))
            )
            images = decode(run.vae, args.temperature * z)  # N(0, t^2 I)
            how = f"N(0, I) at temperature {args.temperature:g}"
        path = save_grid(images, args.out, value_range=run.config.value_range)
        print(f"wrote {path}: {args.n} faces sampled from {how}")
        return 0

    return handler


def explore_command(parser):
    """Add the ``explore`` command's arguments; return its handler."""
    parser.add_argument("--run-dir", required=True, help="a run directory")
    parser.add_argument(
        "--out", required=True, type=output_dir, help="folder for the figures"
    )
    parser.add_argument(
        "--n",
        type=whole(2, MAX_EVAL_IMAGES),
        default=2000,
        help="faces per split to encode "
        "for the GMM, PCA and attribute vectors (default 2000)",
    )
    parser.add_argument("--seed", type=SEED, default=0)

    def handler(args) -> int:
        run = load_run(args.run_dir)
        train, _ = _load_split_images(run, "train", args.n)
        val, val_attrs = _load_split_images(run, "validation", args.n)
        if len(val) < 2:
            raise LabError("the validation split needs at least 2 faces to interpolate")
        paths = write_figures(
            run.vae,
            args.out,
            run.config.value_range,
            train,
            val,
            val_attrs,
            seed=args.seed,
        )
        print(f"wrote {len(paths)} figures:")
        for path in paths:
            print(f"  {path}")
        return 0

    return handler
