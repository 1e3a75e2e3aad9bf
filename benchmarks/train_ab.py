"""
Title: The CLI's training throughput, this checkout vs another (A/B, one run)
Author: CelebA VAE lab
Date created: 2026/12/02
Last modified: 2026/12/02
Description: images/s of `helpers.training.train` on one cache, two checkouts alternating.

Run::

    git worktree add /tmp/before <commit>          # the checkout to compare with
    python benchmarks/train_ab.py --baseline /tmp/before --rounds 3

Each round trains a fresh run directory with each checkout's ``train()`` (what
``python -m vaelab train`` calls) in its own process, on the same generated cache,
and times the epochs after the first (tracing and compiling are left out) with a
callback. Rounds alternate A, B, A, B, ... so load on the machine hits both; the
best round of each is kept. It prints images/s of both and their ratio, and a JSON
line. Nothing is asserted: machines differ and are noisy.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

SESSION = r"""
import json, sys, time
import keras
from helpers.config import preset
from helpers.training import train
cache, run, n, epochs, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
config = preset("cpu", epochs=epochs, batch_size=batch, train_limit=n, val_limit=64,
                sample_interval=1000, precision="float32")
times = []
timer = keras.callbacks.LambdaCallback(
    on_epoch_begin=lambda e, logs=None: times.append(time.perf_counter()),
    on_epoch_end=lambda e, logs=None: times.append(time.perf_counter()))
train(config, cache, run, verbose=0, callbacks=[timer])
spans = [times[i + 1] - times[i] for i in range(2, len(times), 2)]  # epochs 2..
print(json.dumps({"img_s": n / min(spans)}))
"""


def one_run(checkout: Path, cache: Path, tmp: Path, tag: str, args) -> float:
    script = tmp / "session.py"
    script.write_text(SESSION)
    env = {**os.environ, "PYTHONPATH": str(checkout), "TF_CPP_MIN_LOG_LEVEL": "3"}
    run = Path(tempfile.mkdtemp(dir=tmp, prefix=f"run-{tag}-"))
    out = subprocess.run(
        [sys.executable, str(script), str(cache), str(run), str(args.n),
         str(args.epochs), str(args.batch_size)],
        env=env, cwd=tmp, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["img_s"]


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="checkout B")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=1024, help="training images")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from helpers.cache import prepare_cache
    from vaelab.synthetic import make_slice

    with tempfile.TemporaryDirectory(prefix="train_ab_") as tmp:
        tmp = Path(tmp)
        data = make_slice(tmp / "slice", n=int(args.n * 1.3) + 200, seed=0)
        prepare_cache(data, tmp / "cache", progress=False)
        best = {"this": 0.0, "baseline": 0.0}
        for _ in range(args.rounds):
            for tag, checkout in (("this", HERE), ("baseline", args.baseline)):
                rate = one_run(checkout, tmp / "cache", tmp, tag, args)
                best[tag] = max(best[tag], rate)
                print(f"{tag:>8}: {rate:7.1f} images/s", flush=True)
    result = {
        "this_img_s": round(best["this"], 1),
        "baseline_img_s": round(best["baseline"], 1),
        "ratio": round(best["this"] / best["baseline"], 3),
        "load_average": round(os.getloadavg()[0], 1),
    }
    print(f"this / baseline: {result['ratio']:.3f} (best of {args.rounds} rounds each)")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
