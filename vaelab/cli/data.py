"""``python -m vaelab download`` and ``prepare``: get CelebA, decode it once.

Neither command imports TensorFlow.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers import celeba
from helpers.cache import META, prepare_cache
from helpers.download import SOURCES, download_celeba
from helpers.errors import DownloadError
from helpers.preprocess import DEFAULT_CROP, DEFAULT_IMAGE_SIZE, check_crop
from vaelab.validate import output_dir, whole


def report_lines(summary: dict, first: int = 5) -> list[str]:
    """Say which images a policy handled: counts, the first ``first`` names per
    kind, where the full list is. ``summary`` is from :func:`prepare_cache`."""
    meta_path = Path(summary["cache_dir"]) / META
    lines = []
    for key, label, field in (
        ("skipped_files", "skipped (unreadable or truncated)", "reason"),
        ("reframed_files", "not a 178x218 frame (face box scaled)", "note"),
    ):
        items = summary.get(key) or []
        lines.append(f"  {label}: {len(items)}")
        for item in items[:first]:
            lines.append(f"    {item['file']}: {item[field]}")
        if items:
            name = key.removesuffix("_files")
            more = f"{len(items) - first} more; " if len(items) > first else ""
            lines.append(f"    ({more}full list: {meta_path}, under {name!r})")
    return lines



def download_command(parser):
    """Add the download options to ``parser`` and return the handler."""
    parser.add_argument(
        "--source",
        choices=SOURCES,
        default="kaggle",
        help="where to get CelebA from (default: kaggle)",
    )
    parser.add_argument(
        "--from",
        dest="origin",
        metavar="URL_OR_PATH",
        help="the zip URL (url source) or zip/folder (local source)",
    )
    parser.add_argument("--sha256", help="expected SHA-256 of the url source's zip")
    parser.add_argument(
        "--dest",
        required=True,
        type=output_dir,
        help="folder that receives the data",
    )
    parser.add_argument(
        "--expected-images",
        type=whole(1),
        default=None,
        help="exact image count to require (CelebA: 202599)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="download again even if a verified copy is present",
    )

    def handler(args) -> int:
        origin = {"url": {"url": args.origin}, "local": {"path": args.origin}}
        if args.origin and args.source not in origin:
            raise DownloadError("--from is only used by --source url or local.")
        files = download_celeba(
            args.dest,
            args.source,
            sha256=args.sha256,
            expected_images=args.expected_images,
            force=args.force,
            **origin.get(args.source, {}),
        )
        print(f"layout: {files.layout}; use it with --data {files.root}")
        return 0

    return handler


# Command line ----------------------------------------------------------------------
def _parse_crop(text: str) -> tuple[int, int, int, int]:
    try:
        return check_crop([int(v) for v in text.split(",")], celeba.IMAGE_SIZE)
    except ValueError as error:
        raise argparse.ArgumentTypeError(
            f"{error}; write it as LEFT,TOP,WIDTH,HEIGHT, e.g. 19,39,140,140"
        ) from None


def prepare_command(parser: argparse.ArgumentParser):
    """Add prepare's options to ``parser``; return its handler."""
    parser.description = (
        "Decode every CelebA image once (crop the face box, resize, antialiased) "
        "into a compact uint8 cache that training reads much faster than JPEGs. "
        "Safe to interrupt and rerun; a finished cache is reused."
    )
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        help="CelebA folder (official or Kaggle layout) or a .zip of either",
    )
    parser.add_argument(
        "--cache",
        required=True,
        type=output_dir,
        help="folder to write the cache into",
    )
    parser.add_argument(
        "--image-size",
        type=whole(8, 1024),
        default=DEFAULT_IMAGE_SIZE,
        help=f"side of the stored square images (default {DEFAULT_IMAGE_SIZE})",
    )
    parser.add_argument(
        "--crop",
        type=_parse_crop,
        default=DEFAULT_CROP,
        metavar="L,T,W,H",
        help="face box in the 178x218 frame (default %s)"
        % ",".join(map(str, DEFAULT_CROP)),
    )
    parser.add_argument(
        "--workers",
        type=whole(1, 256),
        default=None,
        help="decoding processes (default: one per CPU core)",
    )

    def handler(args) -> int:
        summary = prepare_cache(
            args.data, args.cache, args.image_size, args.crop, True, args.workers
        )
        counts = ", ".join(f"{k} {v:,}" for k, v in summary["counts"].items())
        verb = "reused" if summary["reused"] else "written"
        print(f"cache {verb}: {summary['cache_dir']}")
        print(f"  images: {counts} ({sum(summary['counts'].values()):,} in all)")
        for line in report_lines(summary):
            print(line)
        print(
            f"  {summary['bytes_per_image']:,.0f} bytes per image; "
            f"took {summary['seconds']:.1f} s"
        )
        cache = str(summary["cache_dir"])
        print(f"Train on it: python -m vaelab train --preset cpu --data {cache} --run-dir runs/cpu")
        return 0

    return handler
