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
