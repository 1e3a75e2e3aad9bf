"""
Title: Training throughput: our VAE vs Keras' own VAE example, and vs the matmul peak
Author: CelebA VAE lab
Date created: 2025/06/01
Last modified: 2025/06/01
Description: Images/s of fit() for our VAE and a keras.io-style reference, and GFLOP/s.

Run::

    python benchmarks/train_throughput.py              # 4 rounds of 30 steps each
    python benchmarks/train_throughput.py --steps 100 --jit   # also with XLA

Both models have exactly the same layers: the ``cpu`` preset's architecture (conv
32-64-128-256, 4x4 stride 2, latent 128, Conv2DTranspose decoder), built by
``helpers.model.build_encoder`` / ``build_decoder``. "Ours" is ``helpers.model.VAE``
(overrides ``compute_loss``; Keras runs the step). The reference is written the way
keras.io's ``examples/generative/vae.py`` writes it: the encoder outputs
``[z_mean, z_log_var, z]`` through a ``Sampling`` layer with a ``SeedGenerator(1337)``,
and a subclassed ``keras.Model`` overrides ``train_step`` with ``tf.GradientTape``
and three ``Mean`` trackers under ``metrics``. Its loss is ours (squared error
summed over pixels + KL), not the example's BCE, so both do the same arithmetic.

Both train with ``fit()`` on the same ``tf.data`` pipeline of 64x64 images in
batches of 128, Adam, Keras' default ``jit_compile="auto"`` (no XLA on a CPU-only
machine, XLA on a GPU). Each is warmed up, then timed over ``--steps`` steps; the
rounds alternate and the best round counts, so other load on the machine hurts both
alike. Model FLOPs are counted analytically: forward FLOPs = 2 x multiply-adds of
every Conv2D, Conv2DTranspose and Dense layer; a training step is taken as 3x the
forward pass (forward + backward for inputs + backward for weights). The peak is
one fp32 4096x4096 ``tf.matmul`` (2 n^3 FLOPs) timed in the same run.

Targets: ratio (ours / reference) >= 1.0 and >= 70 % of the matmul rate.
The last line is one JSON object: ours_img_s, reference_img_s, ratio,
matmul_gflops, model_gflops, peak_fraction.
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
import tensorflow as tf  # noqa: E402
from keras import layers, ops  # noqa: E402

from helpers.config import preset  # noqa: E402
from helpers.model import VAE, build_decoder, build_encoder  # noqa: E402

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


"""## Counting FLOPs"""


def forward_flops(model) -> int:
    """Return 2 x multiply-adds of every Conv2D, Conv2DTranspose and Dense layer."""
    macs = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape  # each input pixel feeds k*k*c_out
            k1, k2 = layer.kernel_size
            macs += h * w * c_in * k1 * k2 * layer.filters
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            k1, k2 = layer.kernel_size
            macs += h * w * c_out * k1 * k2 * layer.input.shape[-1]
        elif isinstance(layer, layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    return 2 * macs


def matmul_gflops(n=4096, repeats=10) -> float:
    """Return the best GFLOP/s of an fp32 n x n ``tf.matmul``."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


"""## Timing fit()"""


def dataset(batch_size, n=1024, image_size=64):
    """Random images in [0, 1] as a repeating, prefetched tf.data pipeline."""
    images = np.random.default_rng(0).random((n, image_size, image_size, 3), "float32")
    ds = tf.data.Dataset.from_tensor_slices(images).repeat().batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def timed_fit(model, data, steps) -> float:
    """Return the seconds one ``fit`` of ``steps`` steps takes."""
    start = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
    return time.perf_counter() - start


def compare(config, steps, warmup, rounds, jit):
    """Return (ours img/s, reference img/s), best of ``rounds`` alternating rounds."""
    data = dataset(config.batch_size)
    models = {}
    for name, build in (("ours", VAE.from_vae_config), ("reference", build_reference)):
        keras.utils.set_random_seed(config.seed)
        model = build(config)
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate), jit_compile=jit
        )
        timed_fit(model, data, warmup)  # traces (and compiles) the train step
        models[name] = model
    best = {name: float("inf") for name in models}
    order = list(models)
    for _ in range(rounds):
        for name in order:
            best[name] = min(best[name], timed_fit(models[name], data, steps))
        order.reverse()  # neither model always runs first
    return tuple(steps * config.batch_size / best[name] for name in models)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[5])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    parser.add_argument(
        "--inter-op-threads",
        type=int,
        default=None,
        help="TensorFlow inter-op threads (default: TF's choice)",
    )
    parser.add_argument(
        "--jit", action="store_true", help="also time both with jit_compile=True (XLA)"
    )
    args = parser.parse_args(argv)

    if args.inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.inter_op_threads)
    config = preset("cpu")
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, {device}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    flops = 3 * forward_flops(VAE.from_vae_config(config))
    print(
        f"Model: cpu preset, batch {config.batch_size}, 64x64; training FLOPs per "
        f"image = 3 x forward (2 x MACs of conv/dense) = {flops / 1e6:.0f} MFLOP"
    )
    peak = matmul_gflops()
    print(f"fp32 4096x4096 matmul: {peak:.0f} GFLOP/s")

    settings = [("auto", "auto")] + ([("jit", True)] if args.jit else [])
    results = {}
    for label, jit in settings:
        ours, reference = compare(config, args.steps, args.warmup, args.rounds, jit)
        results[label] = (ours, reference)
        print(
            f"[jit_compile={jit}] ours {ours:.0f} img/s, reference {reference:.0f} "
            f"img/s, ratio {ours / reference:.3f}, ours at "
            f"{ours * flops / 1e9:.0f} GFLOP/s = {ours * flops / 1e9 / peak:.1%} "
            "of the matmul rate"
        )
    ours, reference = results["auto"]
    print(
        json.dumps(
            {
                "ours_img_s": round(ours, 1),
                "reference_img_s": round(reference, 1),
                "ratio": round(ours / reference, 3),
                "matmul_gflops": round(peak, 1),
                "model_gflops": round(ours * flops / 1e9, 1),
                "peak_fraction": round(ours * flops / 1e9 / peak, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
