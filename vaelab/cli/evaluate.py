"""``python -m vaelab evaluate``: measure a trained run and print the table."""

from __future__ import annotations

from pathlib import Path

from helpers.metrics import SMALL_N_NOTE, evaluate, format_table, write_report
from vaelab.validate import MAX_EVAL_IMAGES, SEED, whole


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
        type=whole(2, MAX_EVAL_IMAGES),
        default=1000,
        help=f"images (and samples) to evaluate, 2 to {MAX_EVAL_IMAGES:,} "
        "(default 1000)",
    )
    parser.add_argument(
        "--fid",
        action="store_true",
        help="FID with InceptionV3 " "(downloads ~90 MB of weights on first use)",
    )
    parser.add_argument("--kid", action="store_true", help="KID with InceptionV3")
    parser.add_argument("--seed", type=SEED, default=0)

    def handler(args) -> int:
        report = evaluate(
            args.run_dir,
            args.split,
            args.n,
            fid=args.fid,
            kid=args.kid,
            seed=args.seed,
            write=False,
        )
        # The table first: a full or read-only disk cannot lose the numbers.
        print(f"{report['split']} split: {report['split_note']}\n")
        print(format_table(report["rows"]))
        if args.fid or args.kid:
            print(f"\nNote: {SMALL_N_NOTE}.")
        written = [p for p in write_report(report, Path(args.run_dir)) if p]
        if written:
            print(f"\nwrote {' and '.join(map(str, written))}")
        return 0

    return handler
