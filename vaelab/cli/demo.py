"""``python -m vaelab demo``: the whole lab on generated faces, no download."""

from __future__ import annotations

from vaelab.demo import DEFAULT_N, run_demo
from vaelab.validate import output_dir, whole


def demo_command(parser):
    """Add the ``demo`` command's arguments; return its handler."""
    parser.description = (
        "Train the cpu preset on a generated stand-in for CelebA "
        "(no download) and write loss curves and sample grids."
    )
    parser.add_argument(
        "--out",
        default="runs/demo",
        type=output_dir,
        help="run directory " "(default runs/demo; run again to resume)",
    )
    parser.add_argument(
        "--n",
        type=whole(3, 202_599),
        default=DEFAULT_N,
        help=f"generated images (default {DEFAULT_N})",
    )
    parser.add_argument(
        "--epochs",
        type=whole(1, 100_000),
        default=None,
        help="epochs (default: the cpu preset's 15)",
    )
    parser.add_argument(
        "--data-dir",
        default="data",
        type=output_dir,
        help="where the slice and its cache go (default data/)",
    )

    def handler(args) -> int:
        run_demo(args.out, args.n, args.epochs, args.data_dir)
        return 0

    return handler
