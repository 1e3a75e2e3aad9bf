"""``python -m helpers evaluate``: measure a trained run and print the table."""

from __future__ import annotations

from pathlib import Path

from helpers.errors import LabError
from helpers.metrics import SMALL_N_NOTE, evaluate, format_table


def evaluate_command(parser):
    """Add the ``evaluate`` command's arguments; return its handler."""
    parser.add_argument("--run-dir", required=True, help="a run directory")
    parser.add_argument(
        "--split",
        default=None,
        choices=("validation", "test"),
        help="default: test when the cache has it (validation chose best.keras)",
    )
    parser.add_argument(
        "--n",
        type=int,
        default=1000,
        help="images (and samples) to evaluate (default 1000)",
    )
    parser.add_argument(
        "--fid",
        action="store_true",
        help="FID with InceptionV3 " "(downloads ~90 MB of weights on first use)",
    )
    parser.add_argument("--kid", action="store_true", help="KID with InceptionV3")
    parser.add_argument("--seed", type=int, default=0)

    def handler(args) -> int:
        if args.n < 2:
            raise LabError(f"--n {args.n}: evaluate at least 2 images")
        report = evaluate(
            args.run_dir, args.split, args.n, fid=args.fid, kid=args.kid, seed=args.seed
        )
        print(f"{report['split']} split: {report['split_note']}\n")
        print(format_table(report["rows"]))
        if args.fid or args.kid:
            print(f"\nNote: {SMALL_N_NOTE}.")
        root = Path(args.run_dir)
        print(f"\nwrote {root / 'evaluation.json'} and {root / 'evaluation.csv'}")
        return 0

    return handler
