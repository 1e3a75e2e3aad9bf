"""How long will it take? ``describe_training_time(config, n_images)`` says, in one
sentence, from a ``MEASURED`` throughput of this device, architecture and
precision, or else from the design's FLOPs, the device's data-sheet peak
(``PEAK_TFLOPS``) and the share of it such a model reaches (``UTILISATION``).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from helpers.config import VAEConfig
from helpers.environment import detect_hardware
from helpers.precision import resolve_precision

# A training step costs about 3 forward passes (the forward pass and the gradients
# with respect to the activations and to the weights); validation costs one.
TRAIN_FLOPS_PER_FORWARD = 3
# Seconds before the first step (tracing, XLA compiling), low and high.
STARTUP_SECONDS = (20.0, 60.0)

_CPU_PRESET = ((32, 64, 128, 256), 128, 64)  # (filters, latent_dim, image_size)
_COLAB_PRESET = ((64, 128, 256, 512), 256, 64)
_CI = "fit() on the project's 2-core CI machine, TF 2.21, Keras 3.15"
_H200 = "measured under JAX on one NVIDIA H200 (benchmarks/gpu_colab_preset.sh)"
# Training images/s of fit() at batch 128 by (device: a word of Hardware.name or
# "cpu:N" for N cores, architecture, precision). The H200: JAX 0.11.2, Keras 3.15.1,
# XLA, 2026-11-27, 10.5-15.5 % of its matmul peak. Colab's T4 has no entry until
# `bash benchmarks/gpu_colab_preset.sh` runs there: it gets FLOPs estimates.
MEASURED: dict[tuple[str, tuple, str], tuple[float, str]] = {
    ("cpu:2", _CPU_PRESET, "float32"): (780.0, _CI),
    ("H200", _COLAB_PRESET, "float32"): (21386.0, _H200),
    ("H200", _COLAB_PRESET, "mixed_float16"): (55638.0, _H200),
    ("H200", _COLAB_PRESET, "mixed_bfloat16"): (57143.0, _H200),
}

# Dense peak TFLOP/s from the makers' data sheets (None: no fast path). "float32"
# on Ampere and newer is TF32, which TensorFlow and JAX use for it by default.
PEAK_TFLOPS: dict[str, dict[str, float | None]] = {
    "T4": {"float32": 8.1, "mixed_float16": 65.0, "mixed_bfloat16": None},
    "P100": {"float32": 9.3, "mixed_float16": 18.7, "mixed_bfloat16": None},
    "V100": {"float32": 15.7, "mixed_float16": 125.0, "mixed_bfloat16": None},
    "A100": {"float32": 156.0, "mixed_float16": 312.0, "mixed_bfloat16": 312.0},
    "L4": {"float32": 60.0, "mixed_float16": 121.0, "mixed_bfloat16": 121.0},
    "A10G": {"float32": 62.5, "mixed_float16": 125.0, "mixed_bfloat16": 125.0},
    "H100": {"float32": 494.0, "mixed_float16": 989.0, "mixed_bfloat16": 989.0},
    "H200": {"float32": 494.0, "mixed_float16": 989.0, "mixed_bfloat16": 989.0},
}
# A CPU core's float32 rate: the CI machine's 4096x4096 matmul, ~400 GFLOP/s on 2.
CPU_CORE_GFLOPS = 200.0

# Share of the peak a small conv VAE reaches in fit() (low, high). CPU: 0.55-0.69
# measured; GPU float32: the 40-60 % of a T4. Mixed precision reaches less
# of the far higher tensor-core peak: 10 % on the H200 (a lower bound for a T4).
UTILISATION = {
    ("cpu", "float32"): (0.45, 0.65),
    ("gpu", "float32"): (0.35, 0.6),
    ("gpu", "mixed"): (0.1, 0.3),
}


@dataclass(frozen=True)
class TimeEstimate:
    """A range of seconds (start-up included), its basis, device and precision."""

    low_seconds: float
    high_seconds: float
    epochs: int
    basis: str
    device: str
    precision: str

    def describe(self) -> str:
        """Return e.g. 'about 10 to 30 min (15 to 45 s per epoch)'."""
        text = "about " + _span(self.low_seconds, self.high_seconds)
        if self.epochs > 1:
            per_epoch = _span(
                (self.low_seconds - STARTUP_SECONDS[0]) / self.epochs,
                (self.high_seconds - STARTUP_SECONDS[1]) / self.epochs,
            )
            text += f" ({per_epoch} per epoch)"
        return text


def rough_duration(seconds: float) -> str:
    """Return a duration rounded for an estimate: '40 s', '12 min', '2 h 05 min'."""
    if seconds < 117.5:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    minutes = seconds / 60
    if minutes < 59.5:
        return f"{max(1, round(minutes))} min"
    hours, minutes = divmod(5 * round(minutes / 5), 60)
    return f"{hours} h {minutes:02d} min"


def _span(low: float, high: float) -> str:
    low, high = rough_duration(low), rough_duration(high)
    return low if low == high else f"{low} to {high}"


def forward_flops(model) -> int:
    """Return a built model's forward FLOPs per image: 2 x the multiply-adds of its
    ``Conv2D``, ``Conv2DTranspose`` and ``Dense`` layers, nested ones included."""
    from keras import layers

    macs = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, layers.Conv2DTranspose):  # an input pixel: one kernel
            macs += math.prod(layer.input.shape[1:3]) * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Conv2D):  # an output pixel: one kernel
            macs += math.prod(layer.output.shape[1:3]) * math.prod(layer.kernel.shape)
        elif isinstance(layer, layers.Dense):
            macs += math.prod(layer.kernel.shape)
    return 2 * macs


def model_flops(config: VAEConfig) -> int:
    """Return the forward FLOPs per image of ``config``'s VAE design (a formula: no
    model is built, no part of the lab's solution is needed)."""
    from helpers.checks.model import design_flops

    return design_flops(config)


def training_flops(config: VAEConfig) -> int:
    """Return the FLOPs of one training image (3 x forward)."""
    return TRAIN_FLOPS_PER_FORWARD * model_flops(config)


def _words(name: str) -> list[str]:
    """Split a device name into words: "NVIDIA A100-SXM4-40GB" -> nvidia, a100, ..."""
    return re.split(r"[^a-z0-9]+", name.lower())


def peak_tflops(device, precision: str) -> float | None:
    """Return the device's dense peak TFLOP/s for ``precision``, None if unknown."""
    if device.kind == "cpu":
        cores = os.cpu_count() or 1
        return CPU_CORE_GFLOPS * cores / 1000 if precision == "float32" else None
    if device.kind != "gpu":
        return None
    for key, peaks in PEAK_TFLOPS.items():
        if key.lower() in _words(device.name):
            return peaks.get(precision) or peaks["float32"]
    return None


def images_per_second(config: VAEConfig, device=None, precision: str | None = None):
    """Return (low, high, basis) training images/s of ``config`` here, or None.
    ``device``: a ``Hardware`` (default: this machine's); ``precision``: resolved."""
    device = device or detect_hardware()
    precision = precision or resolve_precision(config.precision, device)
    architecture = (tuple(config.filters), config.latent_dim, config.image_size)
    cpu = device.kind == "cpu"
    here = {f"cpu:{os.cpu_count()}"} if cpu else set(_words(device.name))
    for (name, design, measured_in), (rate, source) in MEASURED.items():
        if name.lower() in here and (design, measured_in) == (architecture, precision):
            return rate, rate, f"measured: {rate:,.0f} images/s, {source}"
    peak = peak_tflops(device, precision)
    if peak is None:
        return None
    mode = "float32" if precision == "float32" else "mixed"
    low, high = UTILISATION.get((device.kind, mode), UTILISATION[("gpu", mode)])
    flops = training_flops(config)
    basis = (
        f"estimate from FLOPs: {flops / 1e9:.2f} GFLOP per training image, "
        f"{peak:g} TFLOP/s peak at {low:.0%} to {high:.0%}"
    )
    return peak * 1e12 * low / flops, peak * 1e12 * high / flops, basis


def estimate_training_time(config, n_images, epochs=None, n_validation=0, device=None):
    """Return a TimeEstimate for training ``config`` here, or None (no basis).

    ``n_images`` are trained and ``n_validation`` evaluated per epoch, for
    ``epochs`` (default ``config.epochs``) on ``device`` (default: this machine's).
    """
    device = device or detect_hardware()
    precision = resolve_precision(config.precision, device)
    rates = images_per_second(config, device, precision)
    if rates is None:
        return None
    low_rate, high_rate, basis = rates
    epochs = config.epochs if epochs is None else epochs
    # A validation image is a forward pass: a third of a training image's cost.
    work = epochs * (n_images + n_validation / TRAIN_FLOPS_PER_FORWARD)
    return TimeEstimate(
        STARTUP_SECONDS[0] + work / high_rate,
        STARTUP_SECONDS[1] + work / low_rate,
        epochs,
        basis,
        device.describe(),
        precision,
    )


def describe_training_time(config, n_images, epochs=None, n_validation=0, device=None):
    """Return one sentence: how long training should take here, and on what basis
    (the arguments are ``estimate_training_time``'s)."""
    device = device or detect_hardware()
    epochs = config.epochs if epochs is None else epochs
    what = (
        f"Training the {config.name} preset for {epochs} epoch"
        f"{'s' if epochs != 1 else ''} on {n_images:,} images"
    )
    estimate = estimate_training_time(config, n_images, epochs, n_validation, device)
    if estimate is None:
        return (
            f"{what} on {device.describe()}: no measurement or peak figure for this "
            "device, so no estimate; the progress bar shows the time per epoch."
        )
    return (
        f"{what}: {estimate.describe()} on {estimate.device} in "
        f"{estimate.precision} ({estimate.basis})."
    )

