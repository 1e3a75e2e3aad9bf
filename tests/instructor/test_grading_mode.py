"""Grades cannot be silently wrong: the course grades under SMOKE=1, or not at all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from instructor.release import write_nbgrader_course

REPO = Path(__file__).resolve().parents[2]


def test_the_course_config_sets_the_mode_the_checks_were_written_for(
    tmp_path, monkeypatch
):
    # the config imports nbgrader's preprocessors: only nbgrader ever runs it
    pytest.importorskip("nbgrader", reason="nbgrader is not installed (as on Colab)")
    write_nbgrader_course(tmp_path, REPO / "solutions", notebooks=["02_model"])
    monkeypatch.delenv("SMOKE", raising=False)

    class Config:  # what nbgrader's get_config() returns, enough for the file
        def __getattr__(self, name):
            value = type(self)()
            object.__setattr__(self, name, value)
            return value

    text = (tmp_path / "nbgrader_config.py").read_text(encoding="utf-8")
    config = Config()
    exec(compile(text, "nbgrader_config.py", "exec"), {"get_config": lambda: config})
    assert os.environ["SMOKE"] == "1"  # the kernels nbgrader starts inherit it
    assert config.Execute.timeout == 600
    assert config.ClearSolutions.text_stub == "YOUR ANSWER HERE"
    feedback = [p.__name__ for p in config.GenerateFeedback.preprocessors]
    assert "ClearHiddenTests" in feedback, feedback


def test_autograde_without_smoke_stops_the_kernel_loudly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SMOKE"}
    env.update(NBGRADER_EXECUTION="autograde", PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-c", "from helpers.lab import setup_lab; setup_lab()"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    from helpers.lab import WRONG_MODE_EXIT

    assert done.returncode == WRONG_MODE_EXIT
    assert "GRADING STOPPED" in done.stderr and "SMOKE=1" in done.stderr


def test_grading_mode_gives_each_student_a_work_folder_and_small_runs(
    tmp_path, monkeypatch
):
    from helpers import lab
    from helpers.config import grading_mode

    folder = tmp_path / "autograded" / "ada" / "03_loss"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    monkeypatch.delenv("VAE_LAB_WORKDIR", raising=False)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert grading_mode()
    assert lab.default_workdir() == tmp_path / "autograded" / "ada" / ".vae-lab"
    monkeypatch.setenv("VAE_LAB_WORKDIR", str(tmp_path / "mine"))
    assert lab.default_workdir() == tmp_path / "mine"  # the guide's old recipe
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")  # a student's own check
    assert not grading_mode()
    assert lab.GRADING_OVERRIDES["epochs"] == 1


def test_fid_is_not_attempted_while_grading(monkeypatch):
    from helpers.errors import LabError
    from helpers.metrics import inception_extractor

    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    with pytest.raises(LabError, match="not computed under nbgrader autograde"):
        inception_extractor()
