"""How long will training take? ``describe_training_time`` says, in one sentence, from
a ``MEASURED`` throughput of this device, design and precision, or else from the
design's FLOPs, the device's data-sheet peak and the share of it reached."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

from helpers.environment import detect_hardware
from helpers.precision import PRECISIONS, resolve_precision

# Training an image: ~3 forward passes (forward, 2 gradient passes); validating: 1.
TRAIN_FLOPS_PER_FORWARD = 3
STARTUP_SECONDS = (20.0, 60.0)  # before the first step (tracing, XLA), low and high

_CPU_PRESET = ((32, 64, 128, 256), 128, 64)  # (filters, latent_dim, image_size)
_COLAB_PRESET = ((64, 128, 256, 512), 256, 64)
_CI = "fit() on the project's 2-core CI machine, TF 2.21, Keras 3.15"
_H200 = "measured under JAX on one NVIDIA H200 (benchmarks/gpu_colab_preset.sh)"
# fit()'s training images/s at batch 128 by (a word of Hardware.name, or "cpu:N" for N
# cores; design; precision). H200: JAX 0.11.2, Keras 3.15.1, XLA, 2026-11-27, 10.5 to
# 15.5 % of its matmul peak. Colab's T4: FLOPs estimates until that script runs there.
MEASURED: dict[tuple[str, tuple, str], tuple[float, str]] = {
    ("cpu:2", _CPU_PRESET, "float32"): (780.0, _CI),
    ("H200", _COLAB_PRESET, "float32"): (21386.0, _H200),
    ("H200", _COLAB_PRESET, "mixed_float16"): (55638.0, _H200),
    ("H200", _COLAB_PRESET, "mixed_bfloat16"): (57143.0, _H200),
}

# Dense peak TFLOP/s in PRECISIONS' order (None: no fast path), from the data sheets.
# float32 on Ampere and newer is TF32, TF's and JAX's default.
PEAK_TFLOPS: dict[str, tuple[float, float, float | None]] = {
    "T4": (8.1, 65.0, None),
    "P100": (9.3, 18.7, None),
    "V100": (15.7, 125.0, None),
    "A100": (156.0, 312.0, 312.0),
    "L4": (60.0, 121.0, 121.0),
    "A10G": (62.5, 125.0, 125.0),
    "H100": (494.0, 989.0, 989.0),
    "H200": (494.0, 989.0, 989.0),
}
# A CPU core's float32 rate: the CI machine's 4096x4096 matmul, ~400 GFLOP/s on 2.
CPU_CORE_GFLOPS = 200.0

# Share of the peak a conv VAE reaches in fit() (low, high). CPU: 0.55-0.69 measured;
# GPU float32: 40-60 % of a T4 (the issue); mixed: 10 % of the H200's, a lower bound.
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
            low = (self.low_seconds - STARTUP_SECONDS[0]) / self.epochs
            high = (self.high_seconds - STARTUP_SECONDS[1]) / self.epochs
            text += f" ({_span(low, high)} per epoch)"
        return text


def rough_duration(seconds: float) -> str:
    """Return a duration rounded for an estimate: '40 s', '12 min', '2 h 05 min'."""
    if seconds < 117.5:
        return f"{max(5, 5 * round(seconds / 5)):.0f} s"
    if seconds / 60 < 59.5:
        return f"{max(1, round(seconds / 60))} min"
    hours, minutes = divmod(5 * round(seconds / 300), 60)
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


def model_flops(config) -> int:
    """Return the forward FLOPs per image of ``config``'s design (no model built)."""
    from helpers.checks.model import design_flops

    return design_flops(config)


def training_flops(config) -> int:
    """Return the FLOPs of one training image (3 x forward)."""
    return TRAIN_FLOPS_PER_FORWARD * model_flops(config)


def _rates(config, device, precision: str):
    """(low, high, basis) training images/s of ``config`` on ``device``, or None."""
    design = (tuple(config.filters), config.latent_dim, config.image_size)
    words = re.split(r"[^A-Z0-9]+", device.name.upper())  # "A100", "SXM4", ...
    for name in [f"cpu:{os.cpu_count()}"] if device.kind == "cpu" else words:
        if (name, design, precision) in MEASURED:
            rate, source = MEASURED[name, design, precision]
            return rate, rate, f"measured: {rate:,.0f} images/s, {source}"
    peaks = [PEAK_TFLOPS[word] for word in words if word in PEAK_TFLOPS]
    if device.kind == "cpu" and precision == "float32":
        peak = CPU_CORE_GFLOPS * (os.cpu_count() or 1) / 1000
    elif device.kind == "gpu" and peaks:
        peak = peaks[0][PRECISIONS.index(precision) - 1] or peaks[0][0]
    else:
        return None
    mode = "float32" if precision == "float32" else "mixed"
    low, high = UTILISATION[(device.kind, mode)]
    flops = training_flops(config)
    basis = (
        f"estimate from FLOPs: {flops / 1e9:.2f} GFLOP per training image, "
        f"{peak:g} TFLOP/s peak at {low:.0%} to {high:.0%}"
    )
    return peak * 1e12 * low / flops, peak * 1e12 * high / flops, basis


def estimate_training_time(config, n_images, epochs=None, n_validation=0, device=None):
    """Return a TimeEstimate for training ``config`` here, or None (no basis):
    ``n_images`` trained and ``n_validation`` evaluated per epoch, for ``epochs``
    (default ``config.epochs``) on ``device`` (a ``Hardware``; default: this one)."""
    device = device or detect_hardware()
    precision = resolve_precision(config.precision, device)
    rates = _rates(config, device, precision)
    if rates is None:
        return None
    epochs = config.epochs if epochs is None else epochs
    work = epochs * (n_images + n_validation / TRAIN_FLOPS_PER_FORWARD)
    low, high = [s + work / rate for s, rate in zip(STARTUP_SECONDS, rates[1::-1])]
    return TimeEstimate(low, high, epochs, rates[2], device.describe(), precision)


def describe_training_time(config, n_images, epochs=None, n_validation=0, device=None):
    """Return one sentence: how long training should take here, and on what basis
    (the arguments are ``estimate_training_time``'s)."""
    device = device or detect_hardware()
    epochs = config.epochs if epochs is None else epochs
    what = f"Training the {config.name} preset for {epochs} epoch{'s' * (epochs != 1)}"
    what += f" on {n_images:,} images"
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
