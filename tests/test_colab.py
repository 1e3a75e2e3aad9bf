"""Colab as students meet it: Drive asked once, the cache reused, a quick start, and
nothing asked outside Colab (a fake Colab: in_colab, drive.mount and input patched)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from helpers import lab, student


def _no_input(prompt=""):
    raise AssertionError("input() must not be called here")


@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    """A Colab machine: Drive mounts into tmp_path/drive, local disk is tmp_path/vm."""
    monkeypatch.setattr(lab, "in_colab", lambda: True)
    monkeypatch.delenv(lab.WORKDIR_ENV, raising=False)
    monkeypatch.delenv(lab.USE_DRIVE_ENV, raising=False)
    monkeypatch.delenv("SMOKE", raising=False)
    monkeypatch.setattr(lab, "DRIVE_CHOICE_FILE", tmp_path / "choice")
    monkeypatch.setattr(lab, "DRIVE_MOUNT", tmp_path / "drive")
    monkeypatch.setattr(lab, "DRIVE_WORKDIR", tmp_path / "drive" / "MyDrive" / "lab")
    monkeypatch.setattr(lab, "COLAB_LOCAL_WORKDIR", tmp_path / "vm")
    monkeypatch.setattr(student, "_active_workdir", None)
    mounts = []

    def mount(path):
        mounts.append(path)
        (Path(path) / "MyDrive").mkdir(parents=True, exist_ok=True)

    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mount)
    # Only google.colab is faked: `google` itself is protobuf's real namespace.
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    return types.SimpleNamespace(root=tmp_path, mounts=mounts)


def answers(monkeypatch, *replies):
    """Make input() return ``replies`` in turn; return the prompts it was given."""
    prompts, queue = [], list(replies)

    def fake_input(prompt=""):
        prompts.append(prompt)
        reply = queue.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply

    monkeypatch.setattr("builtins.input", fake_input)
    return prompts


# Asking about Drive ---------------------------------------------------------------
def test_outside_colab_nothing_is_asked_and_drive_is_off(monkeypatch, tmp_path):
    monkeypatch.setattr(lab, "in_colab", lambda: False)
    monkeypatch.setattr(lab, "DRIVE_CHOICE_FILE", tmp_path / "choice")
    monkeypatch.setattr("builtins.input", _no_input)
    assert lab.drive_choice() is False
    assert lab.drive_choice(True) is False  # there is no Drive to use here
    assert not (tmp_path / "choice").exists()


def test_colab_asks_once_default_yes_and_remembers(fake_colab, monkeypatch):
    prompts = answers(monkeypatch, "")  # Enter: the default
    assert lab.drive_choice() is True
    assert len(prompts) == 1 and "Google Drive" in prompts[0] and "[Y/n]" in prompts[0]
    monkeypatch.setattr("builtins.input", _no_input)
    assert lab.drive_choice() is True  # remembered on this machine


def test_colab_no_is_remembered_and_explicit_arguments_win(fake_colab, monkeypatch):
    answers(monkeypatch, "maybe", "n")
    assert lab.drive_choice() is False
    monkeypatch.setattr("builtins.input", _no_input)
    assert lab.drive_choice() is False
    assert lab.drive_choice(use_drive=True) is True  # an explicit choice replaces it
    assert lab.drive_choice() is True


@pytest.mark.parametrize("value, expected", [("0", False), ("no", False), ("1", True)])
def test_environment_variable_decides_without_asking(
    fake_colab, monkeypatch, value, expected
):
    monkeypatch.setenv(lab.USE_DRIVE_ENV, value)
    monkeypatch.setattr("builtins.input", _no_input)
    assert lab.drive_choice() is expected


def test_no_stdin_means_the_default(fake_colab, monkeypatch, capsys):
    answers(monkeypatch, EOFError())
    assert lab.drive_choice() is True
    assert "no answer possible" in capsys.readouterr().out


def test_a_failed_mount_keeps_working_on_the_machine(fake_colab, monkeypatch, capsys):
    def refuse(path):
        raise ValueError("mount failed: credential propagation was unsuccessful")

    sys.modules["google.colab"].drive = types.SimpleNamespace(mount=refuse)
    assert lab.mount_drive() is False
    out = capsys.readouterr().out
    assert "could not be mounted" in out and "credential propagation" in out


# Finding and reusing the cache ------------------------------------------------------
@pytest.fixture
def fake_kaggle(tmp_path_factory, monkeypatch):
    """download_celeba replaced by a 200-image generated slice; counts the calls."""
    from helpers.celeba import find_celeba
    from helpers.synthetic import make_slice

    data = make_slice(
        tmp_path_factory.mktemp("kaggle"), n=200, layout="official", seed=0
    )
    calls = []

    def download_celeba(dest, source="kaggle", **options):
        calls.append((Path(dest), source))
        return find_celeba(data)

    monkeypatch.setattr(lab, "download_celeba", download_celeba)
    return calls


def counts(cache_dir: Path) -> dict:
    return json.loads((cache_dir / "meta.json").read_text())["counts"]


def test_one_copy_of_the_cache_on_drive_reused_by_the_next_notebook(
    fake_colab, fake_kaggle, monkeypatch, capsys
):
    import shutil

    answers(monkeypatch, "y")
    first = lab.setup_lab(preset_name="smoke", verbose=False)
    drive_cache = lab.DRIVE_WORKDIR / "cache" / "celeba-64px"
    assert first.on_drive and first.workdir == lab.DRIVE_WORKDIR
    assert fake_colab.mounts == [str(lab.DRIVE_MOUNT)]
    assert len(fake_kaggle) == 1
    assert fake_kaggle[0][0] == lab.COLAB_LOCAL_WORKDIR / "data" / "celeba"  # raw: VM
    assert sum(counts(drive_cache).values()) == 200  # the course's one copy
    assert first.cache_dir == lab.COLAB_LOCAL_WORKDIR / "cache" / "celeba-64px"
    assert student._active_workdir == lab.DRIVE_WORKDIR  # exported code on Drive

    # The next notebook: a fresh machine (nothing local, no remembered answer).
    shutil.rmtree(lab.COLAB_LOCAL_WORKDIR)
    lab.DRIVE_CHOICE_FILE.unlink()
    answers(monkeypatch, "")
    capsys.readouterr()
    second = lab.setup_lab(preset_name="smoke")
    out = capsys.readouterr().out
    assert len(fake_kaggle) == 1  # no download, no decoding
    assert "cache is ready" in out and "no download" in out
    assert "Copying the cache to this machine's disk" in out
    assert counts(second.cache_dir) == counts(drive_cache)
    assert second.cache_dir == first.cache_dir  # copied back to the machine's disk
    # The raw JPEGs are fetched only when a notebook asks for them.
    assert second.data_dir is not None and len(fake_kaggle) == 2

    # A quick notebook reads the Drive cache directly: no copy, no download.
    monkeypatch.setattr("builtins.input", _no_input)
    quick = lab.setup_lab(preset_name="smoke", quick=True, verbose=False)
    assert quick.cache_dir == drive_cache and not quick.quick
    assert len(fake_kaggle) == 2


def test_quick_start_caches_only_a_few_validation_images(
    fake_colab, fake_kaggle, monkeypatch
):
    monkeypatch.setattr(lab, "QUICK_IMAGES", 12)
    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    quick = lab.setup_lab(preset_name="smoke", quick=True, verbose=False)
    assert quick.quick and quick.cache_dir.name == "celeba-64px-quick12"
    assert counts(quick.cache_dir) == {"train": 0, "validation": 12, "test": 0}
    assert not (lab.DRIVE_WORKDIR / "cache" / "celeba-64px").exists()
    again = lab.setup_lab(preset_name="smoke", quick=True, verbose=False)
    assert again.cache_dir == quick.cache_dir and len(fake_kaggle) == 1
    # The full notebook makes the full cache and never takes the quick one.
    full = lab.setup_lab(preset_name="smoke", verbose=False)
    assert sum(counts(full.cache_dir).values()) == 200 and not full.quick


def test_declining_drive_keeps_everything_on_the_machine(
    fake_colab, fake_kaggle, monkeypatch
):
    monkeypatch.setattr("builtins.input", _no_input)
    result = lab.setup_lab(preset_name="smoke", use_drive=False, verbose=False)
    assert not result.on_drive and fake_colab.mounts == []
    assert result.workdir == lab.COLAB_LOCAL_WORKDIR
    assert result.cache_dir == lab.COLAB_LOCAL_WORKDIR / "cache" / "celeba-64px"
    assert not lab.DRIVE_WORKDIR.exists()


def test_a_cache_of_another_size_is_not_reused(tmp_path, cache_dir):
    from helpers.config import preset

    assert lab.ready_cache(cache_dir, preset("smoke")) is not None
    assert lab.ready_cache(cache_dir, preset("smoke", image_size=32)) is None
    assert lab.ready_cache(tmp_path / "missing", preset("smoke")) is None
