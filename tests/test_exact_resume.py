"""Exact resume of the STUDENT's code: 04's path, after kill -9 and under precision.

The parts are the solutions' %%export cells written as a student's exports (the
same files `%%export` writes), assembled by load_student_parts and trained by
train_student, each session in its own process as Colab sessions are. The run is
killed with SIGKILL at an epoch boundary and in the middle of an epoch, resumed by
the same call, and compared with an uninterrupted run: every variable (weights,
optimizer slots, the KL weight, the sampling noise's seed state) must be equal.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from instructor import export_cells
from helpers import student

ROOT = Path(__file__).resolve().parents[1]

SESSION = r"""
import os, signal, sys
import numpy as np
import keras
from helpers import student
from helpers.config import preset
from helpers.training import train_student

workdir, cache, run, kill, out = sys.argv[1:6]
config = preset("smoke", epochs=3, batch_size=16, train_limit=64, val_limit=32)
parts = student.load_student_parts(workdir, config=config, check=False, verbose=False)

def boundary(epoch, logs=None):  # after epoch 1's backup, before epoch 2
    if kill == "boundary" and epoch == 1:
        os.kill(os.getpid(), signal.SIGKILL)

def middle(batch, logs=None):  # two batches into epoch 2
    if kill == "middle" and state["epoch"] == 1 and batch == 1:
        os.kill(os.getpid(), signal.SIGKILL)

state = {}
killer = keras.callbacks.LambdaCallback(
    on_epoch_begin=lambda e, logs=None: (state.update(epoch=e), boundary(e)),
    on_train_batch_end=middle,
)
history = train_student(parts, config, cache, run, verbose=0, callbacks=[killer])
model = history.model
values = [np.asarray(v) for v in model.variables]
values += [np.asarray(v) for v in model.optimizer.variables]
np.savez(out, *values)
"""


@pytest.fixture(scope="module")
def student_workdir(tmp_path_factory):
    """A work directory holding the solutions' parts as a student's exports."""
    workdir = tmp_path_factory.mktemp("workdir")
    sources = export_cells.parts_from_notebooks(sorted((ROOT / "solutions").glob("0*.ipynb")))
    for part in student.PARTS:  # 01-05 done, as a student who reached 06 has
        student.export_source(part, sources[part], workdir)
    return workdir


def session(tmp_path, workdir, cache_dir, run, kill="none") -> subprocess.CompletedProcess:
    script = tmp_path / "session.py"
    script.write_text(SESSION)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow"}
    out = tmp_path / f"{run.name}-{kill}.npz"
    done = subprocess.run(
        [sys.executable, str(script), str(workdir), str(cache_dir), str(run), kill, str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    done.out = out
    return done


def variables(path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[f"arr_{i}"] for i in range(len(data.files))]


@pytest.mark.parametrize("kill", ["boundary", "middle"])
def test_the_students_run_resumes_exactly_after_sigkill(
    kill, student_workdir, cache_dir, tmp_path
):
    straight = session(tmp_path, student_workdir, cache_dir, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr[-3000:]
    killed = session(tmp_path, student_workdir, cache_dir, tmp_path / "resumed", kill)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = session(tmp_path, student_workdir, cache_dir, tmp_path / "resumed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    want, got = variables(straight.out), variables(resumed.out)
    assert len(want) == len(got)
    worst = max(float(np.max(np.abs(a.astype(float) - b.astype(float)))) for a, b in zip(want, got))
    print(f"kill at the {kill}: max abs difference {worst}")
    assert worst == 0.0
    rows = (tmp_path / "resumed" / "history.csv").read_text().splitlines()
    assert rows == (tmp_path / "straight" / "history.csv").read_text().splitlines()
