"""Mixed precision: which one a device should use, and applying it to a model build.

``VAEConfig.precision`` is one of ``PRECISIONS``. "auto" resolves per device:

- CUDA GPU with tensor cores (compute capability >= 7.0, e.g. Colab's T4, 7.5):
  ``mixed_float16``. The T4's tensor cores do about 65 TFLOP/s in float16 against
  8.1 TFLOP/s in float32, and only mixed precision uses them. Keras wraps the
  optimizer in a ``LossScaleOptimizer`` so small float16 gradients do not vanish.
- Ampere and newer (>= 8.0: A100, L4, H100) and TPUs: ``mixed_bfloat16``. Their
  bfloat16 tensor-core rate equals the float16 one, and bfloat16 has float32's
  exponent range, so no loss scaling is needed (no skipped steps, one less
  optimizer wrapper). ``benchmarks/gpu_colab_preset.sh`` measures both.
- CPUs and older GPUs: ``float32``. A CPU has no faster half-precision units; the
  casts only cost time.

Variables always stay float32 (that is what "mixed" means), so a checkpoint written
under one precision loads under any other. Typical use::

    with precision_scope(config.precision) as policy:   # "mixed_float16", ...
        vae = build_vae(config)                         # layers compute in it
    # the previous global policy is back here
"""

from __future__ import annotations

import contextlib

from helpers.environment import detect_hardware
from helpers.errors import TrainingError
from helpers.runs import read_info

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def auto_precision(device=None) -> str:
    """Return the precision "auto" means on ``device`` (default: this machine's).

    Args:
        device: a ``helpers.environment.Hardware``, or None to detect it.
    """
    if device is None:
        device = detect_hardware()
    if device.bfloat16_fast:
        return "mixed_bfloat16"
    if device.tensor_cores:
        return "mixed_float16"
    return "float32"


def resolve_precision(precision: str, device=None) -> str:
    """Return ``precision`` with "auto" replaced by the device's choice.

    Raises:
        ValueError: ``precision`` is not one of ``PRECISIONS``.
    """
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision={precision!r} is not allowed: choose one of "
            + ", ".join(PRECISIONS)
        )
    return auto_precision(device) if precision == "auto" else precision


@contextlib.contextmanager
def precision_scope(precision: str = "auto", device=None):
    """Set Keras' global dtype policy inside the ``with`` block, then restore it.

    Layers take the global policy when they are created, so build the model inside
    the block; it keeps computing in that precision after the block ends.

    Yields:
        The resolved policy name ("float32", "mixed_float16" or "mixed_bfloat16").
    """
    import keras

    name = resolve_precision(precision, device)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def run_precision(config, paths, completed_epochs: int) -> str:
    """Return the policy to train a run in: the run's own when resuming.

    A run keeps the precision it started with (recorded in its info.json): "auto"
    resumes in it even on another device, so the numbers and the optimizer state
    carry on. An explicit change between ``mixed_float16`` and another precision
    is refused, because Keras' loss-scale optimizer has variables the others lack
    and the Adam state would silently start again.

    Args:
        config: the run's ``VAEConfig``.
        paths: its ``helpers.runs.RunPaths``.
        completed_epochs: epochs the run's backup holds (0: a new run).

    Raises:
        TrainingError: an explicit precision that cannot resume this run.
    """
    wanted = resolve_precision(config.precision)
    recorded = read_info(paths.root).get("precision") if completed_epochs else None
    if not recorded or recorded == wanted:
        return wanted
    if config.precision == "auto":
        print(
            f"Resuming in {recorded}, the precision this run started with "
            f"(auto would pick {wanted} on this device)."
        )
        return recorded
    if "mixed_float16" in (recorded, wanted):
        raise TrainingError(
            f"{paths.root} was trained in {recorded}; resuming it in {wanted} would "
            "drop the optimizer's state (mixed_float16 adds loss scaling). Resume "
            f"with --precision {recorded} (or auto), or start a new --run-dir."
        )
    return wanted
