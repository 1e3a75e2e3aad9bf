"""
Title: Input pipeline: per-epoch JPEG decoding vs the uint8 cache and make_pipeline
Author: CelebA VAE lab
Date created: 2026/11/26
Last modified: 2026/11/26
Description: Time one epoch of each input path and the one-off cache preparation.

Run::

    python benchmarks/input_pipeline.py            # a generated 5,000-image slice
    python benchmarks/input_pipeline.py --n 20000
    python benchmarks/input_pipeline.py --data data/celeba   # a real copy

It prints images/s of a plain per-epoch JPEG pipeline (read, decode, crop, resize
every epoch, written here) and of the lab's: the solutions' ``make_pipeline``
(``helpers.solution``) over the uint8 cache, what training streams; each
timed over one full epoch after one warm-up epoch; their ratio; the time to
prepare the cache and that time scaled to CelebA's 202,599 images; and bytes per
cached image. The last line is one JSON object with the same numbers.

Targets: cached >= 10x the decode path; full-CelebA prepare < 2 minutes on
2 cores. Timings move with other load on the machine: the load average and the
CPU seconds per image are printed too.
"""

"""## Setup"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from helpers.cache import load_split, prepare_cache  # noqa: E402
from helpers.celeba import CELEBA_TOTAL, find_celeba, read_partitions  # noqa: E402
from helpers.config import preset  # noqa: E402
from vaelab.solution import make_pipeline  # noqa: E402
from vaelab.synthetic import make_slice  # noqa: E402

"""## Timing helpers"""


def cpu_seconds() -> float:
    """Return CPU seconds used by this process and its finished children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def epoch_rate(dataset) -> tuple[float, int]:
    """Iterate one warm-up epoch, then time one epoch; return (images/s, images)."""
    for _ in dataset:
        pass
    count, start = 0, time.perf_counter()
    for batch in dataset:
        count += int(batch.shape[0])
    return count / (time.perf_counter() - start), count


def jpeg_pipeline(data, batch_size: int, crop=(19, 39, 140, 140), size: int = 64):
    """The plain reference: read, decode, crop and resize every JPEG every epoch."""
    files = find_celeba(data)
    train = sorted(i for i, split in read_partitions(files).items() if split == 0)
    paths = [str(files.image_path(i)) for i in train]
    left, top, width, height = crop

    def load(path):
        image = tf.io.decode_jpeg(tf.io.read_file(path), channels=3)
        face = tf.image.crop_to_bounding_box(image, top, left, height, width)
        face = tf.image.resize(face, (size, size), antialias=True)
        return face / 255.0

    dataset = tf.data.Dataset.from_tensor_slices(paths)
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


"""## Run"""


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="slice size (default 5000)")
    parser.add_argument("--data", type=Path, help="use this CelebA folder instead")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=None, help="prepare workers")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="input_pipeline_") as tmp:
        data = args.data
        if data is None:
            print(f"generating a {args.n:,}-image slice ...", flush=True)
            data = make_slice(Path(tmp) / "slice", n=args.n, seed=0)
        cache = Path(tmp) / "cache"

        cpu0, start = cpu_seconds(), time.perf_counter()
        summary = prepare_cache(data, cache, progress=False, workers=args.workers)
        prepare_s = time.perf_counter() - start
        prepare_cpu = cpu_seconds() - cpu0
        total = sum(summary["counts"].values())
        celeba_s = prepare_s * CELEBA_TOTAL / total

        jpeg = jpeg_pipeline(data, args.batch_size)
        decode_rate, n_decode = epoch_rate(jpeg)
        config = preset("cpu", batch_size=args.batch_size)
        images = load_split(cache, "train")[0]
        cached = make_pipeline(images, config, training=True)
        cached_rate, n_cached = epoch_rate(cached)
    assert n_decode == n_cached, (n_decode, n_cached)

    cpus = os.cpu_count()
    print(
        f"machine: {cpus} CPU cores, load average {os.getloadavg()[0]:.1f}, "
        f"TensorFlow {tf.__version__}"
    )
    print(
        f"prepare: {total:,} images in {prepare_s:.2f} s "
        f"({total / prepare_s:,.0f} images/s, "
        f"{1e3 * prepare_cpu / total:.2f} CPU-ms per image)"
    )
    print(
        f"  full CelebA ({CELEBA_TOTAL:,} images) extrapolated: {celeba_s:.0f} s "
        f"(target < 120 s); from CPU time on 2 free cores: "
        f"{prepare_cpu / total * CELEBA_TOTAL / 2:.0f} s"
    )
    print(f"  {summary['bytes_per_image']:,.0f} bytes per cached image")
    print(f"epoch of {n_decode:,} train images:")
    print(f"  per-epoch JPEG decode: {decode_rate:10,.0f} images/s")
    print(f"  uint8 cache:           {cached_rate:10,.0f} images/s")
    print(f"  ratio: {cached_rate / decode_rate:.1f}x (target >= 10x)")
    result = {
        "decode_img_s": round(decode_rate, 1),
        "cached_img_s": round(cached_rate, 1),
        "ratio": round(cached_rate / decode_rate, 2),
        "prepare_s": round(prepare_s, 3),
        "celeba_prepare_s": round(celeba_s, 1),
        "bytes_per_image": summary["bytes_per_image"],
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
