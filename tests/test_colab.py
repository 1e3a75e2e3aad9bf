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
    from vaelab.synthetic import make_slice

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


# The copy on Drive is verified -------------------------------------------------------
from helpers import drive_copy  # noqa: E402


def _fresh_machine():
    """The next notebook on a new Colab machine: nothing local, nothing remembered."""
    import shutil

    shutil.rmtree(lab.COLAB_LOCAL_WORKDIR, ignore_errors=True)
    lab.DRIVE_CHOICE_FILE.unlink(missing_ok=True)


@pytest.fixture
def no_waiting(monkeypatch):
    """time.sleep recorded instead of slept; each call may run a pending action."""
    slept, actions = [], []

    def sleep(seconds):
        slept.append(seconds)
        if actions:
            actions.pop(0)()

    monkeypatch.setattr(drive_copy.time, "sleep", sleep)
    monkeypatch.setenv(drive_copy.WAIT_ENV, "45")
    return types.SimpleNamespace(slept=slept, actions=actions)


def _drive_cache():
    return lab.DRIVE_WORKDIR / "cache" / "celeba-64px"


def test_the_cache_on_drive_is_flushed_and_has_a_manifest(
    fake_colab, fake_kaggle, monkeypatch, capsys
):
    import hashlib

    synced = []
    real_fsync = drive_copy.os.fsync
    monkeypatch.setattr(
        drive_copy.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))
    )
    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    lab.setup_lab(preset_name="smoke")
    out = capsys.readouterr().out
    assert "verified:" in out and "SHA-256 match" in out
    manifest = drive_copy.read_manifest(_drive_cache())
    files = sorted(
        p.relative_to(_drive_cache()).as_posix()
        for p in _drive_cache().rglob("*")
        if p.is_file() and p.name != drive_copy.MANIFEST
    )
    assert sorted(manifest["files"]) == files and "meta.json" in files
    for rel, entry in manifest["files"].items():
        data = (_drive_cache() / rel).read_bytes()
        assert entry == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert len(synced) >= len(files)  # every file flushed (and the manifest)
    assert drive_copy.problems(_drive_cache()) == []


def _largest(folder: Path) -> Path:
    arrays = [p for p in folder.rglob("*.npy") if p.is_file()]
    return max(arrays, key=lambda p: p.stat().st_size)


def test_a_still_syncing_cache_is_waited_for_then_used(
    fake_colab, fake_kaggle, monkeypatch, capsys, no_waiting
):
    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    lab.setup_lab(preset_name="smoke", verbose=False)
    big = _largest(_drive_cache())
    data = big.read_bytes()
    big.write_bytes(b"")  # how Drive shows it on the next machine for a while
    import os

    os.utime(big, (0, 0))  # an old file, not one written after the manifest
    no_waiting.actions.append(lambda: big.write_bytes(data))  # synced after a while
    _fresh_machine()
    capsys.readouterr()
    second = lab.setup_lab(preset_name="smoke")
    out = capsys.readouterr().out
    assert "The CelebA cache on Google Drive is not complete yet" in out
    assert f"{big.name} has 0 bytes of" in out and "Waiting up to 45 s" in out
    assert "is complete now" in out and "cache is ready" in out
    assert len(fake_kaggle) == 1  # waited: no download, no decoding
    assert no_waiting.slept and sum(counts(second.cache_dir).values()) == 200


def test_a_cache_that_never_completes_is_rebuilt_not_trained_on(
    fake_colab, fake_kaggle, monkeypatch, capsys, no_waiting
):
    import os

    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    lab.setup_lab(preset_name="smoke", verbose=False)
    big = _largest(_drive_cache())
    size = big.stat().st_size
    big.write_bytes(b"\0" * 10)
    os.utime(big, (0, 0))
    _fresh_machine()
    capsys.readouterr()
    second = lab.setup_lab(preset_name="smoke")
    out = capsys.readouterr().out
    assert "still incomplete after waiting 45 s" in out and "not using it" in out
    assert sum(no_waiting.slept) == pytest.approx(45)  # bounded
    assert len(fake_kaggle) == 2  # made again from the data
    assert big.stat().st_size == size  # and the Drive copy replaced by a whole one
    assert drive_copy.problems(_drive_cache()) == []
    assert sum(counts(second.cache_dir).values()) == 200


def test_same_size_other_bytes_is_copied_again_then_rebuilt(
    fake_colab, fake_kaggle, monkeypatch, capsys, no_waiting
):
    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    lab.setup_lab(preset_name="smoke", verbose=False)
    big = _largest(_drive_cache())
    big.write_bytes(b"\0" * big.stat().st_size)  # right size, wrong bytes
    _fresh_machine()
    capsys.readouterr()
    second = lab.setup_lab(preset_name="smoke")
    out = capsys.readouterr().out
    assert "does not match what was written" in out and big.name in out
    assert "copying again" in out and "making the cache again" in out
    assert len(fake_kaggle) == 2
    assert not (lab.COLAB_LOCAL_WORKDIR / "cache" / "celeba-64px.copying").exists()
    assert sum(counts(second.cache_dir).values()) == 200


def _run_on_drive(files: dict) -> Path:
    run = lab.DRIVE_WORKDIR / "runs" / "smoke"
    run.mkdir(parents=True)
    for name, data in files.items():
        (run / name).write_bytes(data)
    drive_copy.write_manifest(run)
    return run


def test_a_short_run_on_drive_stops_setup_after_a_bounded_wait(
    fake_colab, fake_kaggle, monkeypatch, no_waiting
):
    import os

    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    run = _run_on_drive({"best.keras": b"k" * 5000, "history.csv": b"epoch\n"})
    (run / "best.keras").write_bytes(b"")
    os.utime(run / "best.keras", (0, 0))
    with pytest.raises(lab.DataError) as caught:
        lab.setup_lab(preset_name="smoke", verbose=False)
    message = str(caught.value)
    assert "smoke on Google Drive is still incomplete after waiting 45 s" in message
    assert "best.keras has 0 bytes of 5.0 kB" in message
    assert "Nothing was trained or loaded" in message
    assert fake_kaggle == []  # stopped before anything else


def test_a_run_written_after_its_manifest_is_not_short(
    fake_colab, fake_kaggle, monkeypatch, no_waiting
):
    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    run = _run_on_drive({"best.keras": b"k" * 5000})
    (run / "best.keras").write_bytes(b"k" * 10)  # a later epoch, newer than it
    import os

    later = drive_copy.read_manifest(run)["written_at"] + 30
    os.utime(run / "best.keras", (later, later))
    lab.setup_lab(preset_name="smoke", verbose=False)
    assert no_waiting.slept == []


def test_flush_drive_records_changed_runs_and_can_unmount(fake_colab, monkeypatch):
    unmounted = []
    sys.modules["google.colab"].drive.flush_and_unmount = lambda: unmounted.append(1)
    monkeypatch.setenv(lab.USE_DRIVE_ENV, "yes")
    monkeypatch.setattr(lab, "_celeba_lab", lambda *a: {"cache_dir": a[0], "quick": 0})
    session = lab.setup_lab(preset_name="smoke", source="kaggle", verbose=False)
    run = session.runs_dir / "smoke"
    run.mkdir(parents=True)
    (run / "best.keras").write_bytes(b"model")
    assert session.flush_drive() == [run]
    assert drive_copy.read_manifest(run)["files"]["best.keras"]["size"] == 5
    assert session.flush_drive() == []  # nothing changed since
    session.flush_drive(unmount=True)
    assert unmounted == [1]


def test_runs_are_flushed_after_every_cell(tmp_path, monkeypatch):
    class Events:
        def __init__(self):
            self.hooks = []

        def register(self, name, hook):
            self.hooks.append((name, hook))

    shell = types.SimpleNamespace(events=Events())
    monkeypatch.setattr("IPython.get_ipython", lambda: shell)
    monkeypatch.setattr(drive_copy, "_hooks", {})
    runs = tmp_path / "runs"
    assert drive_copy.keep_flushed(runs) and drive_copy.keep_flushed(runs)
    assert [name for name, _ in shell.events.hooks] == ["post_run_cell"]  # once
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "history.csv").write_text("epoch\n0\n")
    shell.events.hooks[0][1]()  # a cell ended
    assert drive_copy.problems(runs / "r1") == []


def test_exported_code_is_flushed_and_a_newer_cache_file_still_counts(tmp_path):
    import os

    code = tmp_path / "student"
    code.mkdir()
    (code / "encoder.py").write_text("def build_encoder(): ...\n")
    assert drive_copy.flush(tmp_path / "runs", [code]) == [code]
    assert drive_copy.read_manifest(code)["files"]["encoder.py"]["size"] == 25
    (code / "encoder.py").write_text("")  # 0 bytes, stamped after the manifest
    later = drive_copy.read_manifest(code)["written_at"] + 30
    os.utime(code / "encoder.py", (later, later))
    assert drive_copy.problems(code, allow_newer=True) == []  # a run went on
    assert drive_copy.problems(code) == ["encoder.py has 0 bytes of 25 bytes"]


def test_declining_drive_says_where_the_work_goes_and_what_is_lost(
    fake_colab, fake_kaggle, monkeypatch, capsys
):
    answers(monkeypatch, "n")
    result = lab.setup_lab(preset_name="smoke")
    out = capsys.readouterr().out
    assert f"Work folder on this machine only: {lab.COLAB_LOCAL_WORKDIR}" in out
    assert "LOST when this runtime ends" in out and "use_drive=True" in out
    assert not result.on_drive and result.flush_drive() == []
