"""Where the lab runs: in a notebook or not, in Colab or not, and on which hardware
(detected here only, so the preset and the precision cannot disagree)."""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from dataclasses import dataclass, field
from pathlib import Path

_TPU_VARIABLES = ("COLAB_TPU_ADDR", "TPU_NAME", "TPU_ACCELERATOR_TYPE")


def ipython_shell():
    """The running IPython shell, or None (IPython never imported: certainly none)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython else None


def in_notebook() -> bool:
    """Return True inside a running Jupyter/IPython kernel (where widgets render)."""
    return hasattr(ipython_shell(), "kernel")


def in_colab() -> bool:
    """Return True inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def tpu_vm() -> bool:
    """Return True on a TPU VM (the TPU chips are local devices)."""
    return bool(list(Path("/dev").glob("accel*")) or list(Path("/dev").glob("vfio/*")))


@dataclass(frozen=True)
class Hardware:
    """The accelerator training will use: kind "tpu", "gpu" or "cpu", how many, and
    (not compared) the first one's name, compute capability (7, 5) and backend."""

    kind: str
    count: int = 1
    name: str = field(default="", compare=False)
    compute_capability: tuple[int, int] | None = field(default=None, compare=False)
    backend: str = field(default="", compare=False)

    @property
    def accelerated(self) -> bool:
        return self.kind != "cpu"

    @property
    def tensor_cores(self) -> bool:
        """True for CUDA GPUs with float16 tensor cores (Volta, 7.0, and newer)."""
        return self.kind == "gpu" and (self.compute_capability or (0, 0)) >= (7, 0)

    @property
    def bfloat16_fast(self) -> bool:
        """True where bfloat16 runs at the float16 rate: TPUs, Ampere (8.0) and up."""
        ampere = self.tensor_cores and self.compute_capability >= (8, 0)
        return self.kind == "tpu" or ampere

    @property
    def jit_compile(self) -> bool:
        """XLA: on accelerators and under JAX; not on TensorFlow CPUs (0.77x the
        images/s on the 2-core CI CPU, benchmarks/train_throughput.py)."""
        return self.backend == "jax" or self.kind != "cpu"

    def describe(self) -> str:
        """One line such as 'GPU: Tesla T4 (compute capability 7.5)'."""
        count = f" x{self.count}" if self.count > 1 else ""
        text = f"{self.kind.upper()}{count}: {self.name or self.kind.upper()}"
        if self.compute_capability:
            text += " (compute capability {}.{})".format(*self.compute_capability)
        return text

    def __str__(self) -> str:
        return {"gpu": f"GPU x{self.count}", "tpu": "TPU"}.get(self.kind, "CPU only")


def _cpu_name() -> str:
    name = platform.processor() or platform.machine() or "CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as handle:
        models = [line for line in handle if line.startswith("model name")]
        name = models[0].split(":", 1)[1].strip() if models else name
    return f"{name}, {os.cpu_count()} cores"


def _capability(value) -> tuple[int, int] | None:  # (7, 5), "7.5" or None
    if not value:
        return None
    parts = value.split(".") if isinstance(value, str) else value
    return int(parts[0]), int(parts[1] if len(parts) > 1 else 0)


def detect_hardware() -> Hardware:
    """Return the accelerator Keras will train on (a TPU first, then GPUs)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        if any(os.environ.get(name) for name in _TPU_VARIABLES) or tpu_vm():
            return Hardware("tpu", name="TPU", backend=backend)
        import tensorflow as tf  # optional: only under the TensorFlow backend

        if gpus := tf.config.list_physical_devices("GPU"):
            info = tf.config.experimental.get_device_details(gpus[0]) or {}
            name = info.get("device_name", "GPU")
            capability = _capability(info.get("compute_capability"))
            return Hardware("gpu", len(gpus), name, capability, backend)
    if backend == "jax":
        import jax  # optional: only under the JAX backend

        if devices := [d for d in jax.devices() if d.platform != "cpu"]:
            first = devices[0]
            kind = "tpu" if first.platform == "tpu" else "gpu"
            name = getattr(first, "device_kind", first.platform.upper())
            capability = kind == "gpu" and getattr(first, "compute_capability", None)
            return Hardware(kind, len(devices), name, _capability(capability), backend)
    return Hardware("cpu", 1, _cpu_name(), None, backend)


_custom_widget_manager = False


def ipywidgets_major() -> int | None:
    """The installed ipywidgets' major version (7 on Colab), or None without it."""
    from importlib import metadata

    try:
        return int(metadata.version("ipywidgets").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return None


def enable_colab_widgets() -> bool:
    """Switch on Colab's custom widget manager once, so ipywidgets 8 renders there
    (googlecolab/colabtools #3020, #4525); True if switched on now."""
    global _custom_widget_manager
    major = ipywidgets_major() or 0
    if _custom_widget_manager or not in_colab() or major < 8:
        return False
    _custom_widget_manager = True  # tried: a failure is said once, not at every bar
    try:
        from google.colab import output  # type: ignore[import-not-found]

        output.enable_custom_widget_manager()
    except Exception as error:  # an older Colab without it, or not a kernel
        print(
            f"note: ipywidgets {major} needs Colab's custom widget manager, which "
            f"could not be switched on ({type(error).__name__}); sliders and "
            "progress bars may not render. `pip install ipywidgets==7.7.1` and "
            "restart the runtime to use Colab's own."
        )
        return False
    return True
