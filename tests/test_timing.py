"""Honest times: the whole run's ETA, FLOPs counted from the layers, estimates that
say whether they were measured or derived, the benchmark's JSON line, and the
declared lowest versions being the tested ones."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import timing
from helpers.config import preset
from helpers.environment import Hardware
from helpers.progress import RunETA, format_duration, progress

ROOT = Path(__file__).resolve().parents[1]
T4 = Hardware("gpu", 1, "Tesla T4", (7, 5), "tensorflow")
H200 = Hardware("gpu", 1, "NVIDIA H200", (9, 0), "jax")
CPU2 = Hardware("cpu", 1, "AMD EPYC, 2 cores", None, "tensorflow")


# The whole run's ETA -----------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_epochs(callback, clock, first, last, seconds, total):
    """Drive ``callback`` through epochs first..last-1 of ``seconds`` each."""
    callback.set_params({"epochs": total})
    callback.on_train_begin()
    for epoch in range(first, last):
        callback.on_epoch_begin(epoch)
        clock.now += seconds[epoch - first]
        callback.on_epoch_end(epoch, {"loss": 1.0})
    callback.on_train_end()


def test_eta_counts_the_whole_run_and_leaves_out_the_compiling_epoch():
    clock, lines = FakeClock(), []
    eta = RunETA(clock=clock, printer=lines.append)
    run_epochs(eta, clock, 0, 3, [100, 10, 20], total=10)
    assert lines[0].startswith("[run] epoch 1/10 done: 1 epoch in 1 min 40 s")
    assert "about 15 min 00 s left" in lines[0]  # 9 more epochs x 100 s
    assert "epoch 2/10" in lines[1] and "about 1 min 20 s left" in lines[1]
    # (10 + 20) / 2 = 15 s per epoch after the first, 7 epochs left.
    assert "epoch 3/10" in lines[2] and "2 min 10 s this session" in lines[2]
    assert "about 1 min 45 s left" in lines[2]


def test_eta_of_a_resumed_run_counts_from_the_resumed_epoch():
    clock, lines = FakeClock(), []
    eta = RunETA(total_epochs=40, clock=clock, printer=lines.append)
    run_epochs(eta, clock, 37, 40, [30, 30, 30], total=40)
    assert [line.split(":")[0] for line in lines] == [
        "[run] epoch 38/40 done",
        "[run] epoch 39/40 done",
        "[run] epoch 40/40 done",
    ]
    assert "1 epoch in 30 s" in lines[0] and "about 1 min 00 s left" in lines[0]
    assert lines[-1].endswith("the run is complete.")


def test_eta_prints_between_keras_epochs_with_fit(capsys):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    x = np.zeros((4, 2), "float32")
    model.fit(x, x[:, :1], epochs=3, initial_epoch=1, verbose=0, callbacks=[RunETA()])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "[run]" in ln]
    assert [ln.split(" done")[0] for ln in lines] == [
        "[run] epoch 2/3",
        "[run] epoch 3/3",
    ]


def test_durations_and_progress_bar():
    assert format_duration(42.4) == "42 s"
    assert format_duration(725) == "12 min 05 s"
    assert format_duration(7380) == "2 h 03 min"
    shown = io.StringIO()
    bar = progress(range(3), desc="evaluate", unit="img", file=shown)
    assert list(bar) == [0, 1, 2]
    assert "evaluate" in shown.getvalue() and "3/3" in shown.getvalue()
    assert "img/s" in shown.getvalue()
    assert list(progress(range(2), disable=True)) == [0, 1]


# FLOPs ------------------------------------------------------------------------------
def analytic_forward_flops(c) -> int:
    """2 x multiply-adds of the VAE of ``c`` (transpose upsampling), by hand."""
    macs, size, channels = 0, c.image_size, 3
    for filters in c.filters:  # strided encoder convs
        size //= 2
        macs += size * size * filters * c.kernel_size**2 * channels
        channels = filters
    flat = size * size * channels
    macs += 2 * flat * c.latent_dim  # z_mean and z_log_var
    macs += c.latent_dim * flat  # decoder projection
    stages = list(reversed(c.filters[:-1])) + [c.filters[0]]
    for filters in stages:  # each input pixel of a transpose conv feeds k*k*out
        macs += size * size * channels * c.kernel_size**2 * filters
        size, channels = size * 2, filters
    macs += size * size * 3 * 9 * channels  # the 3x3 output conv
    return 2 * macs


@pytest.mark.parametrize("name", ["smoke", "cpu", "colab"])
def test_flops_are_counted_from_the_layers(name):
    config = preset(name)
    assert timing.model_flops(config) == analytic_forward_flops(config)
    assert timing.training_flops(config) == 3 * analytic_forward_flops(config)


def test_flops_match_the_reference_figures():
    # REFERENCE.md: cpu preset about 74 M MACs, colab preset about 284 M MACs.
    assert timing.model_flops(preset("cpu")) / 2e6 == pytest.approx(74, rel=0.02)
    assert timing.model_flops(preset("colab")) / 2e6 == pytest.approx(284, rel=0.02)


# Estimates --------------------------------------------------------------------------
def test_a_t4_gets_an_estimate_from_flops_labelled_as_such():
    config = preset("colab")
    text = timing.describe_training_time(config, 162_770, device=T4)
    assert "estimate from FLOPs" in text and "65 TFLOP/s" in text
    assert "mixed_float16" in text and "Tesla T4" in text and "40 epochs" in text
    fp32 = timing.estimate_training_time(
        config.replace(precision="float32"), 162_770, device=T4
    )
    mixed = timing.estimate_training_time(config, 162_770, device=T4)
    assert fp32.low_seconds > mixed.high_seconds > mixed.low_seconds > 0
    per_epoch = (fp32.high_seconds - timing.STARTUP_SECONDS[1]) / 40
    # The figure: 60-90 s per epoch in float32 on a T4.
    assert 60 <= per_epoch <= 110


def test_a_measured_device_uses_the_measurement():
    text = timing.describe_training_time(preset("colab"), 162_770, device=H200)
    assert "measured: 57,143 images/s" in text and "mixed_bfloat16" in text
    estimate = timing.estimate_training_time(preset("colab"), 1000, 2, device=H200)
    low, high = timing.STARTUP_SECONDS  # only the start-up is uncertain
    assert estimate.low_seconds == pytest.approx(low + 2000 / 57143.0)
    assert estimate.high_seconds == pytest.approx(high + 2000 / 57143.0)


def test_cpu_measurement_applies_to_the_same_core_count(monkeypatch):
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 2)
    text = timing.describe_training_time(preset("cpu"), 4000, device=CPU2)
    assert text.startswith("Training the cpu preset for 15 epochs on 4,000 images")
    assert "measured: 780 images/s" in text
    monkeypatch.setattr(timing.os, "cpu_count", lambda: 8)
    assert "estimate from FLOPs" in timing.describe_training_time(
        preset("cpu"), 4000, device=CPU2
    )


def test_no_basis_says_so_instead_of_guessing():
    tpu = Hardware("tpu", 8, "TPU", None, "tensorflow")
    text = timing.describe_training_time(preset("colab"), 1000, device=tpu)
    assert "no estimate" in text
    assert timing.estimate_training_time(preset("colab"), 1000, device=tpu) is None


def test_rough_durations():
    assert [timing.rough_duration(s) for s in (1, 42, 100, 725, 7380)] == [
        "5 s",
        "40 s",
        "100 s",
        "12 min",
        "2 h 05 min",
    ]


# The benchmark -----------------------------------------------------------------------
def test_benchmark_prints_images_per_second_and_mfu():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "train_throughput.py"),
            "--preset",
            "smoke",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--rounds",
            "1",
            "--batch-size",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    line = json.loads(result.stdout.strip().splitlines()[-1])
    assert line["preset"] == "smoke" and line["precision"] == "float32"
    assert line["batch"] == 8 and line["img_s"] > 0
    assert line["train_gflop_per_img"] == pytest.approx(
        3 * analytic_forward_flops(preset("smoke")) / 1e9, rel=1e-3
    )
    assert line["mfu"] == pytest.approx(
        line["img_s"] * line["train_gflop_per_img"] / 1e3 / line["matmul_tflops"],
        rel=0.05,
    )


def test_benchmark_imports_no_tensorflow_on_the_jax_path():
    source = (ROOT / "benchmarks" / "train_throughput.py").read_text()
    top_level = [ln for ln in source.splitlines() if ln.startswith(("import", "from"))]
    assert not [ln for ln in top_level if "tensorflow" in ln]
    assert "tf.data" not in source.split('"""## Timing fit()"""')[1]


# Declared versions are tested versions -----------------------------------------------
def test_declared_floors_are_the_ones_the_lowest_versions_script_tests():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = {re.split(r"[<>=!~ ]", d)[0]: d for d in project["dependencies"]}
    assert "tensorflow" not in core  # Colab's own TensorFlow is never replaced
    keras_floor = re.search(r">=([\d.]+)", core["keras"]).group(1)
    extra = {
        re.split(r"[<>=!~ ]", d)[0]: d
        for d in project["optional-dependencies"]["tensorflow"]
    }
    tf_floor = re.search(r">=([\d.]+)", extra["tensorflow"]).group(1)
    # Keras 3.3-3.6 restart a resumed run silently; 3.7 breaks tf.distribute.
    assert tuple(map(int, keras_floor.split("."))) >= (3, 8)
    script = (ROOT / ".ci" / "lowest-versions").read_text()
    tested_tf = re.search(r"TF_VERSION:-([\d.]+)", script).group(1)
    tested_keras = re.search(r"KERAS_VERSION:-([\d.]+)", script).group(1)
    assert tested_keras.startswith(keras_floor) and tested_tf.startswith(tf_floor)


@pytest.mark.parametrize("name", ["smoke", "cpu", "colab"])
def test_the_designs_flops_are_the_built_models(name):
    """The estimate's FLOPs formula (checks.model.design_layers, which the parameter
    checks use too) counts what the solution's built VAE computes."""
    from helpers.checks.model import design_flops
    from helpers.config import preset
    from helpers.student import build_student_vae, solution_module

    config = preset(name)
    built = build_student_vae(solution_module(), config)
    assert design_flops(config) == timing.forward_flops(built)
