"""``python -m vaelab demo``: slice, cache, a short cpu-preset run, then resume."""

from __future__ import annotations

import csv

from helpers.runs import RunPaths, read_info
from vaelab import demo
from vaelab.cli import main


def test_demo_makes_the_slice_trains_and_a_rerun_trains_nothing(tmp_path, capsys):
    out, data = tmp_path / "run", tmp_path / "data"
    argv = ["demo", "--out", str(out), "--n", "40", "--epochs", "1"]
    assert main(argv + ["--data-dir", str(data)]) == 0
    first = capsys.readouterr().out
    assert first.startswith(demo.NOT_CELEBA)  # never mistaken for CelebA
    assert "Reminder: these are generated stand-in faces" in first
    assert (data / "slice_40" / "generated_slice.json").exists()
    assert (data / "cache_40" / "meta.json").exists()
    paths = RunPaths(out)
    with open(paths.history, newline="") as handle:
        assert [r["epoch"] for r in csv.DictReader(handle)] == ["0"]
    assert read_info(out)["status"] == "finished"
    assert paths.best_model.exists() and paths.loss_curves.exists()
    assert sorted(p.name for p in paths.samples.glob("*.png")) == ["epoch_001.png"]
    best = paths.best_model.stat().st_mtime_ns

    assert main(argv + ["--data-dir", str(data)]) == 0  # finished: nothing to train
    again = capsys.readouterr().out
    assert f"Run {out}: 1 epochs, finished" in again
    assert paths.best_model.stat().st_mtime_ns == best
    with open(paths.history, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 1
