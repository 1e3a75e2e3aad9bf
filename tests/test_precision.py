"""Mixed precision: what "auto" picks per device, the policy applied around the model
build and restored, the config field and --precision flag, and resuming a run."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from helpers.config import VAEConfig, preset
from helpers.environment import Hardware, detect_hardware
from helpers.errors import TrainingError
from helpers.precision import precision_scope, resolve_precision, run_precision
from helpers.runs import RunPaths, write_info

T4 = Hardware("gpu", 1, "Tesla T4", (7, 5), "tensorflow")
P100 = Hardware("gpu", 1, "Tesla P100-PCIE-16GB", (6, 0), "tensorflow")
A100 = Hardware("gpu", 1, "NVIDIA A100-SXM4-40GB", (8, 0), "tensorflow")
H200 = Hardware("gpu", 1, "NVIDIA H200", (9, 0), "jax")
TPU = Hardware("tpu", 8, "TPU", None, "tensorflow")
CPU = Hardware("cpu", 1, "AMD EPYC, 2 cores", None, "tensorflow")


@pytest.mark.parametrize(
    "device, expected",
    [
        (T4, "mixed_float16"),  # tensor cores, no fast bfloat16
        (P100, "float32"),  # no tensor cores
        (A100, "mixed_bfloat16"),
        (H200, "mixed_bfloat16"),
        (TPU, "mixed_bfloat16"),
        (CPU, "float32"),
    ],
)
def test_auto_precision_per_device(device, expected):
    assert resolve_precision("auto", device) == expected
    assert resolve_precision("float32", device) == "float32"  # explicit wins


def test_xla_default_per_device():
    assert CPU.jit_compile is False  # measured slower on the CI CPU
    assert T4.jit_compile is True and TPU.jit_compile is True
    assert Hardware("cpu", name="x", backend="jax").jit_compile  # JAX always jits


def test_this_machine_is_a_cpu_and_trains_in_float32():
    device = detect_hardware()
    assert device.kind == "cpu" and device.name
    assert "CPU" in device.describe()
    assert resolve_precision("auto") == "float32"


def test_unknown_precision_is_refused_by_the_config_and_the_resolver():
    with pytest.raises(ValueError, match="precision.*mixed_bfloat16"):
        preset("smoke", precision="float16")
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("half")
    assert VAEConfig().precision == "auto"
    assert VAEConfig.from_dict(preset("smoke").to_dict()).precision == "auto"


def test_precision_scope_builds_layers_in_the_policy_and_restores_it():
    before = keras.config.dtype_policy().name
    with precision_scope("mixed_bfloat16") as policy:
        layer = keras.layers.Dense(2)
        assert policy == "mixed_bfloat16"
    assert layer.dtype_policy.name == "mixed_bfloat16"
    assert layer.compute_dtype == "bfloat16" and layer.variable_dtype == "float32"
    assert keras.config.dtype_policy().name == before
    with pytest.raises(RuntimeError):
        with precision_scope("mixed_float16"):
            raise RuntimeError("a failed build")
    assert keras.config.dtype_policy().name == before  # restored on errors too


def test_a_run_keeps_its_precision_when_resumed(tmp_path, capsys):
    paths = RunPaths(tmp_path)
    paths.root.mkdir(exist_ok=True)
    config = preset("smoke", precision="mixed_bfloat16")
    assert run_precision(config, paths, completed_epochs=0) == "mixed_bfloat16"
    write_info(tmp_path, precision="mixed_float16")
    # A new run ignores what an old info.json says; a resumed one keeps it.
    assert run_precision(config, paths, completed_epochs=0) == "mixed_bfloat16"
    auto = config.replace(precision="auto")
    assert run_precision(auto, paths, completed_epochs=2) == "mixed_float16"
    assert "Resuming in mixed_float16" in capsys.readouterr().out
    with pytest.raises(TrainingError, match="--precision mixed_float16"):
        run_precision(config.replace(precision="float32"), paths, 2)
    write_info(tmp_path, precision="float32")
    assert run_precision(config, paths, 2) == "mixed_bfloat16"  # no loss scaling


def test_train_command_takes_precision(tmp_path):
    import argparse

    from vaelab.cli import train as cli_train

    parser = argparse.ArgumentParser()
    cli_train.add_config_arguments(parser)
    args = parser.parse_args(["--preset", "smoke", "--precision", "mixed_float16"])
    assert cli_train.config_from_args(args).precision == "mixed_float16"
    args = parser.parse_args(["--preset", "smoke", "--precision", "fp8"])
    with pytest.raises(TrainingError, match="precision"):
        cli_train.config_from_args(args)


def test_training_records_the_policy_and_restores_the_global_one(tmp_path, capsys):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import toy_data

    from helpers.runs import read_info
    from helpers.training import train

    history = train(
        preset("smoke", epochs=1, precision="float32"), toy_data(), tmp_path, verbose=0
    )
    assert read_info(tmp_path)["precision"] == "float32"
    assert history.model.dtype_policy.name == "float32"
    assert history.model.jit_compile is False  # this CPU's measured default
    out = capsys.readouterr().out
    assert "Precision: float32" in out and "XLA: off" in out
    assert "[run] epoch 1/1 done" in out
    assert keras.config.dtype_policy().name == "float32"


def _no_skipped_variables(record) -> bool:
    return not [w for w in record if "Skipping variable loading" in str(w.message)]


@pytest.mark.parametrize(
    "first, then", [("mixed_float16", "auto"), ("float32", "mixed_bfloat16")]
)
def test_mixed_precision_trains_and_resumes_with_its_optimizer_state(
    tmp_path, capsys, first, then
):
    import sys
    import warnings
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_training import toy_data

    from helpers.training import train

    history = train(preset("smoke", epochs=1, precision=first), toy_data(), tmp_path)
    assert history.model.dtype_policy.name == first
    assert np.isfinite(history.history["loss"]).all()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        resumed = train(
            preset("smoke", epochs=2, precision=then), toy_data(), tmp_path, verbose=0
        )
    assert resumed.initial_epoch == 1 and _no_skipped_variables(record)
    assert np.isfinite(resumed.history["loss"]).all()
    expected = first if then == "auto" else then
    assert resumed.model.dtype_policy.name == expected
    assert f"Precision: {expected}" in capsys.readouterr().out
