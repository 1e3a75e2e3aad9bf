"""Mixed precision for a model build. "auto": ``mixed_bfloat16`` on Ampere and newer
and TPUs (float32's range: no loss scaling), ``mixed_float16`` on older tensor cores (a
T4: 65 TFLOP/s against 8.1; Keras scales the loss), else ``float32``. Variables stay
float32: a checkpoint loads under any precision."""

from __future__ import annotations

import contextlib

from helpers.environment import detect_hardware
from helpers.errors import TrainingError
from helpers.runs import read_info

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def resolve_precision(precision: str, device=None) -> str:
    """Return ``precision`` with "auto" resolved for ``device`` (a ``Hardware``;
    default: this machine's); ValueError if it is not one of ``PRECISIONS``."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision={precision!r} is not allowed: choose one of "
            + ", ".join(PRECISIONS)
        )
    if precision != "auto":
        return precision
    device = device or detect_hardware()
    if device.bfloat16_fast:
        return "mixed_bfloat16"
    return "mixed_float16" if device.tensor_cores else "float32"


@contextlib.contextmanager
def precision_scope(precision: str = "auto", device=None):
    """Set Keras' global dtype policy inside the block (build the model there: layers
    keep the policy they were created under); yields the resolved policy name."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name := resolve_precision(precision, device))
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def run_precision(config, paths, completed_epochs: int) -> str:
    """Return the policy to train a run in: with ``completed_epochs``, "auto" resumes
    in the one run.json records, even on another device. TrainingError: an explicit
    switch to or from ``mixed_float16`` on resume (its optimizer has loss scaling)."""
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
