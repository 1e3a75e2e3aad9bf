"""The notebooks' set-up: preset choice from the one hardware test, and setup_lab."""

from __future__ import annotations

import json

import pytest

from helpers import environment, lab, student
from helpers.environment import Hardware
from helpers.errors import DataError
from vaelab.synthetic import make_slice


@pytest.mark.parametrize(
    "hardware, preset_name",
    [
        (Hardware("cpu"), "cpu"),
        (Hardware("gpu", 1), "colab"),
        (Hardware("gpu", 2), "colab"),
        (Hardware("tpu"), "colab"),
    ],
)
def test_preset_follows_the_detected_hardware(monkeypatch, hardware, preset_name):
    monkeypatch.setattr(lab, "detect_hardware", lambda: hardware)
    assert lab.choose_preset(smoke=False) == preset_name
    assert lab.choose_preset(smoke=True) == "smoke"
    assert lab.accelerator() == str(hardware)


def test_smoke_mode_picks_the_smoke_preset(monkeypatch):
    monkeypatch.setenv("SMOKE", "1")
    assert lab.choose_preset() == "smoke"


def test_a_tpu_runtime_gets_the_accelerator_preset_and_the_tpu_strategy(monkeypatch):
    """Check preset and strategy read the same test: a TPU runtime is not a CPU."""
    monkeypatch.setenv("COLAB_TPU_ADDR", "10.0.0.2:8470")
    assert environment.detect_hardware() == Hardware("tpu")
    assert lab.choose_preset(smoke=False) == "colab"
    monkeypatch.delenv("COLAB_TPU_ADDR")
    monkeypatch.setattr(environment, "tpu_vm", lambda: False)
    assert environment.detect_hardware() == Hardware("cpu")  # this CI machine
    assert lab.choose_preset(smoke=False) == "cpu"


def test_hardware_is_described_in_one_line():
    assert [str(Hardware(*k)) for k in [("cpu",), ("gpu", 2), ("tpu",)]] == [
        "CPU only",
        "GPU x2",
        "TPU",
    ]
    assert not Hardware("cpu").accelerated and Hardware("tpu").accelerated


def test_smoke_without_a_generated_slice_says_how_to_make_one(tmp_path, monkeypatch):
    """The students' package holds no slice generator: SMOKE=1 needs one made."""
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.delenv(lab.WORKDIR_ENV, raising=False)
    monkeypatch.delenv(lab.GENERATED_SLICE_ENV)
    monkeypatch.setattr(student, "_active_workdir", None)
    with pytest.raises(DataError) as caught:
        lab.setup_lab(workdir=tmp_path, verbose=False)
    message = str(caught.value)
    assert f"{tmp_path / 'data' / 'generated-slice'} holds none" in message
    assert "python -m vaelab make-slice --out" in message and "unset SMOKE" in message
    assert not (tmp_path / "cache").exists()  # nothing half-made


def test_setup_lab_under_smoke_uses_the_generated_slice(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SMOKE", "1")
    monkeypatch.delenv(lab.WORKDIR_ENV, raising=False)
    monkeypatch.setattr(student, "_active_workdir", None)
    monkeypatch.setattr(lab, "detect_hardware", lambda: Hardware("cpu"))
    monkeypatch.delenv(lab.GENERATED_SLICE_ENV)  # the workdir's slice, not CI's
    make_slice(tmp_path / "data" / "generated-slice", n=lab.SMOKE_SLICE_IMAGES)
    result = lab.setup_lab(workdir=tmp_path, seed=5)
    out = capsys.readouterr().out
    assert result.config.name == "smoke" and result.config.seed == 5
    assert result.generated_data and result.workdir == tmp_path
    assert result.data_dir == tmp_path / "data" / "generated-slice"
    assert result.cache_dir == tmp_path / "cache" / "generated-slice-64px"
    assert result.run_dir == tmp_path / "runs" / "smoke"
    meta = json.loads((result.cache_dir / "meta.json").read_text())
    assert sum(meta["counts"].values()) == lab.SMOKE_SLICE_IMAGES
    assert meta["image_size"] == 64 and meta["crop"] == list(result.config.crop)
    assert "GENERATED CelebA-format slice" in out and "Device: CPU only" in out
    assert student._active_workdir == tmp_path  # %%export cells save there
    again = lab.setup_lab(workdir=tmp_path, verbose=False)  # reuses slice and cache
    assert again.cache_dir == result.cache_dir
    assert capsys.readouterr().out == ""
