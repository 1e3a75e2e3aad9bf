"""
Title: Training throughput: images/s, model FLOP utilisation, and Keras' own VAE
Author: CelebA VAE lab
Date created: 2025/06/01
Last modified: 2026/11/27
Description: Images/s of fit() per precision, with FLOP/s over the matmul peak.

Run::

    python benchmarks/train_throughput.py                     # cpu preset, float32
    python benchmarks/train_throughput.py --preset colab --precision mixed_float16
    python benchmarks/train_throughput.py --precision float32,mixed_bfloat16 --jit on
    python benchmarks/train_throughput.py --reference        # vs keras.io's VAE (TF)
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --preset colab

For each precision (``float32``, ``mixed_float16``, ``mixed_bfloat16`` or ``auto``,
comma-separated) it builds the preset's VAE from ``helpers.solution`` (the solutions'
parts) under that Keras dtype
policy, warms ``fit()`` up (tracing and compiling), then times ``--rounds`` rounds of
``--steps`` steps and keeps the best. The data are NumPy batches of random images in
[0, 1] from a Python generator: no ``tf.data`` and no TensorFlow import on this path,
so it runs under JAX on a machine without TensorFlow.

Model FLOP utilisation (MFU) = achieved FLOP/s / peak FLOP/s. Achieved: training
FLOPs per image (3 x the forward pass; the forward pass is 2 x the multiply-adds of
every Conv2D, Conv2DTranspose and Dense layer, counted from the model's layers by
``helpers.timing.forward_flops``) x images/s. Peak: the best time of an n x n matmul
in the policy's compute dtype (float32, float16 or bfloat16), measured in the same
run. On Ampere and newer GPUs "float32" runs as TF32 in both (the frameworks'
default), so its peak is TF32's too.

``--reference`` (TensorFlow only) also times the keras.io-style VAE that overrides
``train_step`` with ``tf.GradientTape``, on the same layers and loss, alternating
rounds with ours; the target is ratio (ours / reference) >= 1.0.

Each timed configuration prints one JSON line: device, backend, preset, precision,
jit, batch, img_s, step_ms, train_gflop_per_img, achieved_tflops, matmul_tflops,
mfu (and reference_img_s, ratio with ``--reference``).
"""

"""## Setup"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

from helpers.config import PRESETS, preset  # noqa: E402
from helpers.environment import detect_hardware  # noqa: E402
from helpers.precision import PRECISIONS, precision_scope  # noqa: E402
from helpers.student import build_student_vae, solution_module  # noqa: E402
from helpers.timing import forward_flops  # noqa: E402
from vaelab.solution import build_decoder, build_encoder  # noqa: E402

BACKEND = keras.backend.backend()

def lab_vae(config):
    """The lab's VAE: the solutions' parts (helpers.solution), compiled."""
    return build_student_vae(solution_module(), config)


"""## The reference: keras.io's VAE, with our layers and our loss"""


class Sampling(layers.Layer):
    """Uses (z_mean, z_log_var) to sample z, the vector encoding a face."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


class ReferenceVAE(keras.Model):
    """keras.io's VAE: a custom ``train_step`` with ``tf.GradientTape``."""

    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(
            name="reconstruction_loss"
        )
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [
            self.total_loss_tracker,
            self.reconstruction_loss_tracker,
            self.kl_loss_tracker,
        ]

    def train_step(self, data):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(
                ops.sum(ops.square(data - reconstruction), axis=(1, 2, 3))
            )
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


def build_reference(config):
    """Return the reference VAE on our encoder/decoder layers (same weights' shapes)."""
    base = build_encoder(config)
    z_mean, z_log_var = base.outputs
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(base.inputs, [z_mean, z_log_var, z], name="encoder")
    return ReferenceVAE(encoder, build_decoder(config))


"""## The peak: a matmul in the policy's compute dtype"""

COMPUTE_DTYPE = {
    "float32": "float32",
    "mixed_float16": "float16",
    "mixed_bfloat16": "bfloat16",
}


def matmul_tflops(dtype="float32", n=None, repeats=10) -> float:
    """Return the best TFLOP/s of an n x n matmul in ``dtype`` on this device.

    n defaults to 8192 on an accelerator and 4096 on a CPU (2048 for 16-bit types,
    which CPUs run slowly).
    """
    accelerator = detect_hardware().kind != "cpu"
    if n is None:
        n = 8192 if accelerator else (4096 if dtype == "float32" else 2048)
    rng = np.random.default_rng(0)
    a_np = (rng.standard_normal((n, n)) / np.sqrt(n)).astype("float32")
    b_np = (rng.standard_normal((n, n)) / np.sqrt(n)).astype("float32")
    if BACKEND == "jax":
        import jax
        import jax.numpy as jnp

        a, b = jnp.asarray(a_np, dtype), jnp.asarray(b_np, dtype)
        matmul = jax.jit(jnp.matmul)

        def run():
            matmul(a, b).block_until_ready()

    elif BACKEND == "tensorflow":
        import tensorflow as tf

        a, b = tf.cast(a_np, dtype), tf.cast(b_np, dtype)
        total = tf.function(lambda x, y: tf.reduce_sum(tf.cast(x @ y, "float32")))

        def run():
            total(a, b).numpy()  # waits for the device

    else:
        a, b = ops.cast(a_np, dtype), ops.cast(b_np, dtype)

        def run():
            ops.convert_to_numpy(ops.sum(ops.matmul(a, b)))

    run()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e12


"""## Timing fit()"""


def batches(batch_size, image_size=64, n_batches=8):
    """Yield random ((B, H, W, 3),) float32 batches in [0, 1] forever (NumPy only)."""
    rng = np.random.default_rng(0)
    pool = [
        rng.random((batch_size, image_size, image_size, 3), dtype="float32")
        for _ in range(n_batches)
    ]
    while True:
        for batch in pool:
            yield (batch,)


def timed_fit(model, data, steps) -> float:
    """Return the seconds one ``fit`` of ``steps`` steps takes."""
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return time.perf_counter() - start


def build(config, precision, jit, reference=False):
    """Build and compile a model under ``precision``; return (model, policy)."""
    keras.utils.set_random_seed(config.seed)
    with precision_scope(precision) as policy:
        model = (build_reference if reference else lab_vae)(config)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit
        )
    return model, policy


def throughput(config, precision, jit, steps, warmup, rounds, reference=False):
    """Return {name: best img/s} for ours (and the reference), alternating rounds."""
    names = ["ours"] + (["reference"] if reference else [])
    models, data = {}, batches(config.batch_size, config.image_size)
    for name in names:
        models[name], policy = build(config, precision, jit, name == "reference")
        timed_fit(models[name], data, warmup)  # traces (and compiles) the step
    best = {name: float("inf") for name in names}
    for _ in range(rounds):
        for name in names:
            best[name] = min(best[name], timed_fit(models[name], data, steps))
        names.reverse()  # neither model always runs first
    rates = {name: steps * config.batch_size / best[name] for name in best}
    return rates, policy


def parse_jit(text):
    return {"auto": "auto", "on": True, "off": False}[text]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[5])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument(
        "--precision",
        default="float32",
        help="comma-separated: " + ", ".join(PRECISIONS) + " (default float32)",
    )
    parser.add_argument(
        "--jit",
        choices=["auto", "on", "off"],
        default="auto",
        help="jit_compile (XLA): auto is Keras' default (on for GPUs, off on CPUs)",
    )
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (best)")
    parser.add_argument(
        "--reference",
        action="store_true",
        help="also time keras.io's train_step VAE (TensorFlow backend only)",
    )
    parser.add_argument(
        "--inter-op-threads",
        type=int,
        default=None,
        help="TensorFlow inter-op threads (default: TF's choice)",
    )
    args = parser.parse_args(argv)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    for name in precisions:
        if name not in PRECISIONS:
            parser.error(f"--precision {name}: choose from {', '.join(PRECISIONS)}")
    if args.reference and BACKEND != "tensorflow":
        parser.error("--reference needs the TensorFlow backend (tf.GradientTape)")
    if args.inter_op_threads:
        import tensorflow as tf

        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)

    config = preset(args.preset, batch_size=args.batch_size)
    device = detect_hardware()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Keras {keras.__version__} ({BACKEND}), {device.describe()}, "
        f"load average {load:.1f}",
        flush=True,
    )
    flops = 3 * forward_flops(lab_vae(config))
    print(
        f"Model: {config.name} preset, batch {config.batch_size}, "
        f"{config.image_size}x{config.image_size}; training FLOPs per image = 3 x "
        f"forward (2 x MACs of conv/dense) = {flops / 1e9:.3f} GFLOP",
        flush=True,
    )
    jit = parse_jit(args.jit)
    for precision in precisions:
        rates, policy = throughput(
            config,
            precision,
            jit,
            args.steps,
            args.warmup,
            args.rounds,
            args.reference,
        )
        peak = matmul_tflops(COMPUTE_DTYPE[policy])
        ours = rates["ours"]
        achieved = ours * flops / 1e12
        result = {
            "device": device.describe(),
            "backend": BACKEND,
            "keras": keras.__version__,
            "preset": config.name,
            "precision": policy,
            "jit": args.jit,
            "batch": config.batch_size,
            "img_s": round(ours, 1),
            "step_ms": round(1000 * config.batch_size / ours, 3),
            "train_gflop_per_img": round(flops / 1e9, 4),
            "achieved_tflops": round(achieved, 3),
            "matmul_tflops": round(peak, 3),
            "mfu": round(achieved / peak, 4),
        }
        if "reference" in rates:
            result["reference_img_s"] = round(rates["reference"], 1)
            result["ratio"] = round(ours / rates["reference"], 3)
        print(
            f"[{policy}, jit={args.jit}] {ours:,.0f} img/s, {achieved:.3g} TFLOP/s "
            f"= {achieved / peak:.1%} of the {peak:.3g} TFLOP/s "
            f"{COMPUTE_DTYPE[policy]} matmul",
            flush=True,
        )
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
