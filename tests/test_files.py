"""Atomic writes: the target is replaced whole and no temporary file is left."""

import os

import pytest

from helpers.files import atomic_write_bytes, atomic_write_text


def test_atomic_write_replaces_the_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "history.csv"
    atomic_write_text(path, "epoch,loss\r\n0,1.5\r\n")
    assert path.read_bytes() == b"epoch,loss\r\n0,1.5\r\n"  # line ends kept
    assert atomic_write_bytes(path, b"new") == path
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["history.csv"]


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    atomic_write_text(path, "old")

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_text() == "old"


def test_temporary_names_are_per_process_and_leftovers_of_the_dead_go(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "evaluation.json"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / ".evaluation.json.tmp").write_text("old style, half")
    (tmp_path / f".evaluation.json.{dead.pid}.tmp").write_text("half")
    alive = tmp_path / f".evaluation.json.{os.getppid()}.tmp"  # a live writer's
    alive.write_text("being written")
    atomic_write_text(path, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [alive.name, path.name]
