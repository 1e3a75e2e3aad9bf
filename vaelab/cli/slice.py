"""``python -m vaelab make-slice``: write a generated stand-in for CelebA."""

from __future__ import annotations

import argparse

from helpers.celeba import LAYOUTS
from vaelab.synthetic import make_slice
from vaelab.validate import SEED, output_dir, whole


def make_slice_command(parser: argparse.ArgumentParser):
    """Add make-slice's options to ``parser``; return its handler."""
    parser.description = (
        "Write a generated stand-in for CelebA: N cartoon faces (178x218 JPEGs) "
        "with truthful attribute and partition files, in CelebA's official or "
        "Kaggle layout. Not real data: use it to try the lab without a download."
    )
    parser.add_argument("--out", required=True, type=output_dir, help="folder to write")
    parser.add_argument(
        "--n", type=whole(1, 202_599), default=1000, help="images (default 1000)"
    )
    parser.add_argument(
        "--layout",
        choices=sorted(LAYOUTS),
        default="official",
        help="file layout to imitate (default official)",
    )
    parser.add_argument("--seed", type=SEED, default=0, help="seed (default 0)")

    def handler(args) -> int:
        out = make_slice(args.out, args.n, args.layout, args.seed, progress=True)
        print(
            f"{args.n} generated faces in the {args.layout} layout to {out}\n"
            "This is a procedurally generated stand-in, NOT CelebA (see README.txt)."
        )
        return 0

    return handler
