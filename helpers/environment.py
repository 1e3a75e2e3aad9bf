"""Where the lab runs: in a notebook or not, in Colab or not, and on which hardware.

The hardware is detected here and only here: ``lab.choose_preset`` picks the preset
from :func:`detect_hardware` and :func:`pick_strategy` builds the ``tf.distribute``
strategy from the same answer, so the two cannot disagree.

Typical use::

    from helpers.environment import detect_hardware, pick_strategy
    print(detect_hardware())        # "GPU x1", "TPU" or "CPU only"
    strategy = pick_strategy()      # what training runs under

Importing this module does not import TensorFlow.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

_TPU_VARIABLES = ("COLAB_TPU_ADDR", "TPU_NAME", "TPU_ACCELERATOR_TYPE")


def in_notebook() -> bool:
    """Return True inside a running Jupyter/IPython kernel (where widgets render)."""
    ipython = sys.modules.get("IPython")  # never imported: certainly no kernel
    shell = ipython.get_ipython() if ipython else None
    return shell is not None and hasattr(shell, "kernel")


def in_colab() -> bool:
    """Return True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def tpu_vm() -> bool:
    """Return True on a TPU VM (the TPU chips are local devices)."""
    return bool(list(Path("/dev").glob("accel*")) or list(Path("/dev").glob("vfio/*")))


def tpu_present() -> bool:
    """Return True when a TPU is attached (Colab TPU runtime or TPU VM)."""
    return any(os.environ.get(name) for name in _TPU_VARIABLES) or tpu_vm()


@dataclass(frozen=True)
class Hardware:
    """The accelerator training will use: kind "tpu", "gpu" or "cpu", and how many."""

    kind: str
    count: int = 1

    @property
    def accelerated(self) -> bool:
        return self.kind != "cpu"

    def __str__(self) -> str:
        if self.kind == "gpu":
            return f"GPU x{self.count}"
        return "TPU" if self.kind == "tpu" else "CPU only"


def detect_hardware() -> Hardware:
    """Return the accelerator Keras will train on (a TPU first, then GPUs)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        if tpu_present():
            return Hardware("tpu")
        import tensorflow as tf  # optional: only under the TensorFlow backend

        gpus = tf.config.list_physical_devices("GPU")
        return Hardware("gpu", len(gpus)) if gpus else Hardware("cpu")
    if backend == "jax":
        import jax  # optional: only under the JAX backend

        devices = [d for d in jax.devices() if d.platform != "cpu"]
        if devices:
            return Hardware(devices[0].platform, len(devices))
    return Hardware("cpu")


def pick_strategy(verbose: bool = True, hardware: Hardware | None = None):
    """Return the ``tf.distribute`` strategy for this machine, printing which.

    TPUStrategy when a TPU is attached (Colab TPU runtime), MirroredStrategy over all
    GPUs when there are several, else the default (one-device) strategy. Under a
    non-TensorFlow Keras backend, returns None.

    Args:
        verbose: print the choice.
        hardware: what :func:`detect_hardware` found (detected when None).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        if verbose:
            print(f"Keras backend {keras.backend.backend()}: no tf.distribute strategy")
        return None
    import tensorflow as tf  # optional: only under the TensorFlow backend

    hardware = hardware or detect_hardware()
    strategy, what = None, ""
    if hardware.kind == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
                tpu=os.environ.get("TPU_NAME", "local" if tpu_vm() else "")
            )
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            strategy = tf.distribute.TPUStrategy(resolver)
            what = f"TPUStrategy over {strategy.num_replicas_in_sync} TPU cores"
        except (ValueError, RuntimeError, tf.errors.OpError) as error:
            print(f"A TPU seems present but could not be used ({error}); not using it.")
    if strategy is None:
        gpus = tf.config.list_logical_devices("GPU")
        if len(gpus) > 1:
            strategy = tf.distribute.MirroredStrategy()
            what = f"MirroredStrategy over {len(gpus)} GPUs"
        else:
            strategy = tf.distribute.get_strategy()
            what = f"default strategy on {'the GPU' if gpus else 'the CPU'}"
    if verbose:
        print(f"Training with the {what}.")
    return strategy
