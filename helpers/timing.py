"""How long will it take? Training-time estimates for a config on this runtime.

A cell that may run for more than a minute says so first::

    from helpers.timing import describe_training_time
    print(describe_training_time(config, n_images=162_770))
    # Training the colab preset for 40 epochs on 162,770 images: about 11 to 31 min
    # (15 to 45 s per epoch) on GPU: Tesla T4 (compute capability 7.5) in
    # mixed_float16 (estimate from FLOPs: 1.71 GFLOP per training image, 65 TFLOP/s
    # peak at 10% to 30%).

Two sources, and the sentence says which one it used:

1. ``MEASURED``: images per second that ``benchmarks/train_throughput.py`` measured,
   each labelled with its device, backend and date. Used when this device, the
   model's architecture and the precision match an entry.
2. Otherwise the model's FLOPs (counted from its layers) over the device's peak
   (``PEAK_TFLOPS``, the makers' dense figures) times the fraction of that peak
   this kind of model reaches (``UTILISATION``, a range, from the measurements).
   Labelled "estimate from FLOPs".
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

from helpers.config import VAEConfig
from helpers.environment import detect_hardware
from helpers.precision import resolve_precision

# A training step costs about 3 forward passes: the forward pass, the gradient with
# respect to the activations and the one with respect to the weights.
TRAIN_FLOPS_PER_FORWARD = 3
# Validation runs the forward pass only.
VALIDATION_FLOPS_PER_FORWARD = 1
# Seconds before the first step (tracing, XLA compiling), low and high.
STARTUP_SECONDS = (20.0, 60.0)


@dataclass(frozen=True)
class Measurement:
    """Training images per second measured for one architecture on one device.

    Attributes:
        device: a word of ``Hardware.name`` it applies to ("T4" for "Tesla T4"), or
            "cpu:N" for a CPU with N cores.
        filters: the architecture's ``VAEConfig.filters`` (with latent_dim and
            image_size it fixes the cost per image).
        latent_dim: ``VAEConfig.latent_dim``.
        image_size: ``VAEConfig.image_size``.
        precision: the resolved policy ("float32", "mixed_float16", ...).
        images_per_second: training throughput of ``fit()`` (None: not measured yet).
        source: how, where and when it was measured.
    """

    device: str
    filters: tuple[int, ...]
    latent_dim: int
    image_size: int
    precision: str
    images_per_second: float | None
    source: str


_CPU_PRESET = dict(filters=(32, 64, 128, 256), latent_dim=128, image_size=64)
_COLAB_PRESET = dict(filters=(64, 128, 256, 512), latent_dim=256, image_size=64)
_H200 = "measured under JAX on one NVIDIA H200 (benchmarks/gpu_colab_preset.sh)"

MEASURED: tuple[Measurement, ...] = (
    # 2 CPU cores (Colab's CPU runtime also has 2): REFERENCE.md's figure for this
    # architecture on the project's CI machine, TF 2.21, Keras 3.15, batch 128.
    Measurement(
        "cpu:2",
        **_CPU_PRESET,
        precision="float32",
        images_per_second=780.0,
        source="fit() on the project's 2-core CI machine, TF 2.21, Keras 3.15",
    ),
    # One NVIDIA H200, JAX 0.11.2, Keras 3.15.1, XLA, batch 128, 300 steps x 2
    # rounds, benchmarks/gpu_colab_preset.sh, 2026-11-27 (two runs agreed within
    # 2 %). MFU against the matmul peak of the dtype measured in the same run:
    # 10.5 % (TF32), 15.5 % (float16), 14.3 % (bfloat16): at batch 128 this model
    # leaves a big GPU mostly idle. Mixed precision: 2.6x float32.
    Measurement(
        "H200",
        **_COLAB_PRESET,
        precision="float32",
        images_per_second=21386.0,
        source=_H200,
    ),
    Measurement(
        "H200",
        **_COLAB_PRESET,
        precision="mixed_float16",
        images_per_second=55638.0,
        source=_H200,
    ),
    Measurement(
        "H200",
        **_COLAB_PRESET,
        precision="mixed_bfloat16",
        images_per_second=57143.0,
        source=_H200,
    ),
    # Slots for Colab's T4, to be filled from `bash benchmarks/gpu_colab_preset.sh`
    # run in Colab (TensorFlow backend): until then the T4 gets FLOPs estimates.
    Measurement(
        "T4",
        **_COLAB_PRESET,
        precision="float32",
        images_per_second=None,
        source="not measured yet",
    ),
    Measurement(
        "T4",
        **_COLAB_PRESET,
        precision="mixed_float16",
        images_per_second=None,
        source="not measured yet",
    ),
)

# Dense peak TFLOP/s per GPU from the makers' data sheets, by precision. "float32"
# on Ampere and newer is TF32: TensorFlow and JAX use it for float32 convolutions
# and matmuls by default. None: no fast path for that type.
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
# A CPU core's float32 rate, from the CI machine's 4096x4096 matmul (about 400
# GFLOP/s on 2 cores).
CPU_CORE_GFLOPS = 200.0

# Fraction of the data-sheet peak a small conv VAE reaches in fit() (low, high).
# CPU float32: 0.55-0.69 measured on the CI machine. GPU float32: the 40-60 %
# of a T4's rate. Mixed precision reaches a smaller share of the far higher
# tensor-core peak (element-wise ops and memory traffic do not speed up as much):
# the H200 reached 10 % of its data-sheet bfloat16 peak at batch 128, a lower bound
# for a small GPU such as the T4, which this model fills far better.
UTILISATION = {
    ("cpu", "float32"): (0.45, 0.65),
    ("gpu", "float32"): (0.35, 0.6),
    ("gpu", "mixed"): (0.1, 0.3),
}


@dataclass(frozen=True)
class TimeEstimate:
    """A time range and where it comes from.

    Attributes:
        low_seconds, high_seconds: the expected range (equal for a measurement),
            start-up (tracing, compiling) included.
        epochs: the epochs it covers.
        basis: "measured ..." or "estimate from FLOPs ...".
        device: the device's description.
        precision: the resolved precision.
    """

    low_seconds: float
    high_seconds: float
    epochs: int
    basis: str
    device: str
    precision: str

    def describe(self) -> str:
        """Return e.g. 'about 10 to 30 min (15 to 45 s per epoch)'."""
        low, high = rough_duration(self.low_seconds), rough_duration(self.high_seconds)
        text = f"about {low}" if low == high else f"about {low} to {high}"
        if self.epochs > 1:
            per_low = rough_duration(
                (self.low_seconds - STARTUP_SECONDS[0]) / self.epochs
            )
            per_high = rough_duration(
                (self.high_seconds - STARTUP_SECONDS[1]) / self.epochs
            )
            per = per_low if per_low == per_high else f"{per_low} to {per_high}"
            text += f" ({per} per epoch)"
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


# Counting FLOPs -------------------------------------------------------------------
def forward_flops(model) -> int:
    """Return a model's forward FLOPs per image: 2 x multiply-adds of its layers.

    Counts every ``Conv2D``, ``Conv2DTranspose`` and ``Dense`` layer, also inside
    nested models; activations, additions and the loss are left out (a few %).
    """
    from keras import layers

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


def _architecture(config: VAEConfig) -> VAEConfig:
    """The fields that fix the cost per image (others set to their defaults)."""
    return VAEConfig(
        image_size=config.image_size,
        latent_dim=config.latent_dim,
        filters=config.filters,
        kernel_size=config.kernel_size,
    )


@functools.lru_cache(maxsize=16)
def _flops(architecture: VAEConfig) -> int:
    from helpers.checks.model import design_flops  # the design, by formula

    return design_flops(architecture)


def model_flops(config: VAEConfig) -> int:
    """Return the forward FLOPs per image of ``config``'s VAE (built once, cached)."""
    return _flops(_architecture(config))


def training_flops(config: VAEConfig) -> int:
    """Return the FLOPs of one training image (3 x forward)."""
    return TRAIN_FLOPS_PER_FORWARD * model_flops(config)


# Throughput ------------------------------------------------------------------------
def _measured(config: VAEConfig, device, precision: str) -> Measurement | None:
    for entry in MEASURED:
        if entry.images_per_second is None or entry.precision != precision:
            continue
        if (entry.filters, entry.latent_dim, entry.image_size) != (
            tuple(config.filters),
            config.latent_dim,
            config.image_size,
        ):
            continue
        if device.kind == "cpu":
            if entry.device == f"cpu:{os.cpu_count()}":
                return entry
        elif entry.device.lower() in _words(device.name):
            return entry
    return None


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
    words = _words(device.name)
    for key, peaks in PEAK_TFLOPS.items():
        if key.lower() in words:
            return peaks.get(precision) or peaks["float32"]
    return None


def images_per_second(config: VAEConfig, device=None, precision: str | None = None):
    """Return (low, high, basis) training images/s of ``config`` here, or None.

    Args:
        config: the run's config (its architecture and precision matter).
        device: a ``helpers.environment.Hardware`` (default: this machine's).
        precision: the resolved precision (default: ``config.precision`` resolved).
    """
    device = device or detect_hardware()
    precision = precision or resolve_precision(config.precision, device)
    entry = _measured(config, device, precision)
    if entry is not None:
        rate = entry.images_per_second
        return rate, rate, f"measured: {rate:,.0f} images/s, {entry.source}"
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


def estimate_training_time(
    config: VAEConfig,
    n_images: int,
    epochs: int | None = None,
    n_validation: int = 0,
    device=None,
) -> TimeEstimate | None:
    """Return how long training ``config`` should take here (None: no basis).

    Args:
        config: the run's config.
        n_images: training images per epoch.
        epochs: epochs to run (default: ``config.epochs``).
        n_validation: validation images evaluated after each epoch.
        device: a ``helpers.environment.Hardware`` (default: this machine's).
    """
    device = device or detect_hardware()
    precision = resolve_precision(config.precision, device)
    rates = images_per_second(config, device, precision)
    if rates is None:
        return None
    low_rate, high_rate, basis = rates
    epochs = config.epochs if epochs is None else epochs
    # Validation is a forward pass: a third of a training image's cost.
    work = epochs * (n_images + n_validation * VALIDATION_FLOPS_PER_FORWARD / 3)
    return TimeEstimate(
        STARTUP_SECONDS[0] + work / high_rate,
        STARTUP_SECONDS[1] + work / low_rate,
        epochs,
        basis,
        device.describe(),
        precision,
    )


def describe_training_time(
    config: VAEConfig,
    n_images: int,
    epochs: int | None = None,
    n_validation: int = 0,
    device=None,
) -> str:
    """Return one sentence: how long training should take here, and on what basis.

    Args:
        config: the run's config.
        n_images: training images per epoch (e.g. ``len(train_images)``).
        epochs: epochs to run (default: ``config.epochs``).
        n_validation: validation images evaluated after each epoch.
        device: a ``helpers.environment.Hardware`` (default: this machine's).
    """
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


# Preparing the cache -----------------------------------------------------------------
# JPEG decode + crop + antialiased resize with PIL, per CPU core: REFERENCE.md's
# ~2,600 images/s PIL loop on the project's 2-core CI machine (tf.data: ~3,700).
DECODE_IMAGES_PER_CORE_SECOND = (1000.0, 1300.0)


def describe_prepare_time(n_images: int, cores: int | None = None) -> str:
    """Return one sentence: how long decoding ``n_images`` into the cache should take.

    Args:
        n_images: images to decode (202,599 for all of CelebA).
        cores: CPU cores decoding (default: this machine's).
    """
    cores = cores or os.cpu_count() or 1
    low_rate, high_rate = (rate * cores for rate in DECODE_IMAGES_PER_CORE_SECOND)
    low = rough_duration(n_images / high_rate)
    high = rough_duration(n_images / low_rate)
    span = f"about {low}" if low == high else f"about {low} to {high}"
    return (
        f"Decoding {n_images:,} images into the cache: {span} on {cores} CPU "
        f"core{'s' if cores != 1 else ''} (estimate from the CI machine's decode "
        "rate), once per course: later notebooks reuse the cache."
    )
