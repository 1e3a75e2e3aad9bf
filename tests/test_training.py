"""Training: every callback's file, resume after an exception and after kill -9, the
NaN guard, KL warm-up, the epoch order on resume, refused configs."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers.config import preset
from helpers.errors import DataError, TrainingError
from helpers.runs import RunPaths, read_info

ROOT = Path(__file__).resolve().parents[1]
HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None

TESTS = Path(__file__).resolve().parent


def toy_images(n: int) -> np.ndarray:
    """The first ``n`` images of toy_data: (n, 64, 64, 3) float32 in [0, 1]."""
    return np.random.default_rng(0).random((n, 64, 64, 3), "float32")


def toy_data(n_train=64, n_val=32, batch=32):
    """Return (train_ds, val_ds): two batches of 32 and one, uniform in [0, 1].

    The subprocess scripts import this very function, so both sides see the same
    images.
    """
    import tensorflow as tf

    images = np.random.default_rng(0).random((n_train + n_val, 64, 64, 3), "float32")
    make = lambda x: tf.data.Dataset.from_tensor_slices(x).batch(batch)  # noqa: E731
    return make(images[:n_train]), make(images[n_train:])


# Preamble of the subprocess scripts: TensorFlow first, then toy_data from here.
SCRIPT_HEAD = f"""
import sys, time, json
import tensorflow as tf
sys.path.insert(0, {str(TESTS)!r})
from test_training import toy_data
"""


def smoke(**changes):
    return preset("smoke", **{"epochs": 3, "sample_interval": 2, **changes})


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def tensorboard_scalars(folder: Path) -> dict[str, list[int]]:
    """Return {tag: [steps]} of every scalar in the event files under ``folder``."""
    import tensorflow as tf

    tags: dict[str, list[int]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


class Interrupt(Exception):
    pass


def interrupt_at(epoch):
    import keras

    def stop(e, logs=None):
        if e == epoch:
            raise Interrupt(f"simulated disconnect before epoch {epoch + 1}")

    return keras.callbacks.LambdaCallback(on_epoch_begin=stop)


def test_every_callback_leaves_its_file(cache_dir, tmp_path):
    from helpers.runs import load_run
    from helpers.training import train

    config = smoke(kl_warmup_epochs=2, beta=1.0, train_limit=128, val_limit=32)
    history = train(config, cache_dir, tmp_path, verbose=0)
    paths = RunPaths(tmp_path)

    rows = read_csv(paths.history)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for name in ("loss", "reconstruction_loss", "kl_loss"):
        assert name in rows[0] and f"val_{name}" in rows[0]
    # KL warm-up: beta * min(1, epoch / 2) at each epoch's start.
    assert [float(r["kl_weight"]) for r in rows] == [0.0, 0.5, 1.0]
    # The score best.keras is chosen by: reconstruction + target beta * KL.
    for prefix in ("", "val_"):
        for r in rows:
            expected = float(r[f"{prefix}reconstruction_loss"]) + 1.0 * float(
                r[f"{prefix}kl_loss"]
            )
            assert float(r[f"{prefix}loss_at_target_beta"]) == pytest.approx(expected)
    assert float(history.model.kl_weight.numpy()) == 1.0
    assert history.epoch == [0, 1, 2] and history.initial_epoch == 0
    assert int(history.model.optimizer.iterations.numpy()) == 3 * 2

    assert sorted(p.name for p in paths.samples.iterdir()) == ["epoch_002.png"]
    from PIL import Image

    assert Image.open(paths.sample_grid(2)).size == (8 * 66 + 2, 8 * 66 + 2)
    assert paths.loss_curves.stat().st_size > 1000
    assert np.load(paths.fixed_z).shape == (64, config.latent_dim)
    info = read_info(tmp_path)
    assert (info["status"], info["epochs_done"]) == ("finished", 3)
    assert info["cache_dir"] == str(Path(cache_dir).resolve())
    run = load_run(tmp_path)
    assert run.config == config
    assert run.vae.decode(np.zeros((2, config.latent_dim), "float32")).shape == (
        2,
        64,
        64,
        3,
    )
    assert (
        json.loads((paths.backup / "training_metadata.json").read_text())["epoch"] == 3
    )
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*tmp-*"))

    if HAS_TENSORBOARD:
        for split in ("train", "validation"):
            tags = tensorboard_scalars(paths.tensorboard / split)
            for name in ("epoch_loss", "epoch_reconstruction_loss", "epoch_kl_loss"):
                assert tags[name] == [0, 1, 2], (split, name)


def test_resume_after_interruption_continues_where_it_stopped(tmp_path):
    from helpers.training import train

    config = smoke()
    with pytest.raises(Interrupt):
        train(config, toy_data(), tmp_path, verbose=0, callbacks=[interrupt_at(2)])
    paths = RunPaths(tmp_path)
    assert read_info(tmp_path)["status"] == "failed"
    assert read_info(tmp_path)["epochs_done"] == 2
    fixed_z = paths.fixed_z.read_bytes()
    first_rows = read_csv(paths.history)
    assert [r["epoch"] for r in first_rows] == ["0", "1"]
    # A crash after CSVLogger wrote epoch 2's row but before the backup, with a
    # half-written line after it: resume must drop both.
    with open(paths.history, "a", newline="") as handle:
        handle.write("2,1,2,3,4,5,6\r\n3,1.5,2")

    history = train(config, toy_data(), tmp_path, verbose=0)
    assert history.initial_epoch == 2
    assert history.epoch == [0, 1, 2]
    rows = read_csv(paths.history)
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert rows[:2] == first_rows
    assert paths.fixed_z.read_bytes() == fixed_z
    assert int(history.model.optimizer.iterations.numpy()) == 3 * 2
    assert sorted(p.name for p in paths.samples.iterdir()) == ["epoch_002.png"]

    # Training longer is allowed and continues from epoch 3.
    longer = train(config.replace(epochs=4), toy_data(), tmp_path, verbose=0)
    assert longer.initial_epoch == 3 and longer.epoch == [0, 1, 2, 3]
    assert int(longer.model.optimizer.iterations.numpy()) == 4 * 2
    assert read_info(tmp_path)["epochs_done"] == 4


def _decoder_weights(model):
    return [np.array(w) for w in model.decoder.get_weights()]


def test_resume_reproduces_the_uninterrupted_run_and_best_is_by_target_beta(tmp_path):
    """Check a run stopped after epoch 2 and resumed logs the same losses as one
    that never stopped (same data order, optimizer, KL weight and noise), and that
    best.keras is the epoch with the lowest val_loss_at_target_beta, not the
    warm-up epoch whose val_loss leaves out the KL."""
    import keras

    from helpers.runs import load_run
    from helpers.training import train

    config = smoke(epochs=4, kl_warmup_epochs=2, beta=20.0)
    weights = {}
    keep = keras.callbacks.LambdaCallback(
        on_epoch_end=lambda e, logs=None: weights.update(
            {e: _decoder_weights(keep.model)}
        )
    )
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    train(config, toy_data(), straight, verbose=0, callbacks=[keep])
    with pytest.raises(Interrupt):
        train(config, toy_data(), resumed, verbose=0, callbacks=[interrupt_at(2)])
    train(config, toy_data(), resumed, verbose=0)

    rows, again = read_csv(straight / "history.csv"), read_csv(resumed / "history.csv")
    assert [r["epoch"] for r in again] == ["0", "1", "2", "3"]
    for row, other in zip(rows, again):
        for key, value in row.items():
            assert float(other[key]) == pytest.approx(float(value), rel=1e-6), (
                row["epoch"],
                key,
            )
    scores = [float(r["val_loss_at_target_beta"]) for r in rows]
    val_loss = [float(r["val_loss"]) for r in rows]
    print("val_loss", val_loss, "at target beta", scores)
    best = int(np.argmin(scores))
    assert int(np.argmin(val_loss)) == 0 != best  # warm-up epoch 0 wins val_loss
    for got, want in zip(_decoder_weights(load_run(straight).vae), weights[best]):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(
        _decoder_weights(load_run(resumed).vae),
        _decoder_weights(load_run(straight).vae),
    ):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_resume_restores_the_best_score_from_history(tmp_path):
    """Check the checkpoint's best-so-far comes back, also from an older history.csv
    without the score column (recomputed from its reconstruction and KL)."""
    from helpers.training import _history_best, _truncate_history

    path = tmp_path / "history.csv"
    header = "epoch,kl_loss,loss,reconstruction_loss,val_kl_loss,val_loss,val_reconstruction_loss\r\n"
    rows = "0,9,100,100,9,90,90\r\n1,2,120,110,2,110,100\r\n2,1,99,98,1,99,98\r\n"
    path.write_text(header + rows, newline="")
    # Scores at beta 10: 180, 120, 108 (val_loss would pick epoch 0's 90).
    _truncate_history(path, 2)
    assert _history_best(path, "val_loss_at_target_beta", beta=10) == 120
    assert _history_best(path, "val_loss", None) == 90
    path.write_text("epoch,val_loss_at_target_beta\r\n0,7\r\n1,5\r\n", newline="")
    _truncate_history(path, 2)
    assert _history_best(path, "val_loss_at_target_beta", beta=10) == 5


KILL_SCRIPT = SCRIPT_HEAD + """
import keras
from helpers.config import preset
from helpers.training import train
def slow_down(batch, logs=None):
    time.sleep(0.4)
slow = keras.callbacks.LambdaCallback(on_train_batch_end=slow_down)
config = preset("smoke", epochs=4, sample_interval=2)
train(config, toy_data(), sys.argv[1], verbose=0, callbacks=[slow])
"""


def test_resume_after_sigkill_mid_training(tmp_path):
    from helpers.callbacks import AtomicBackupAndRestore
    from helpers.training import train

    run_dir = tmp_path / "run"
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow"}
    process = subprocess.Popen(
        [sys.executable, str(script), str(run_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    history_csv = RunPaths(run_dir).history
    deadline = time.time() + 120
    while time.time() < deadline and process.poll() is None:
        if history_csv.exists() and history_csv.read_text().count("\n") >= 3:
            break  # header + epochs 0 and 1 written: epoch 2 is under way
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-3000:]
    fixed_z = RunPaths(run_dir).fixed_z.read_bytes()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()

    backup = RunPaths(run_dir).backup
    done = AtomicBackupAndRestore(backup).completed_epochs()
    assert done in (1, 2)  # the kill may land just before epoch 1's backup
    # What a kill during a save would leave: half-written temporary files.
    (backup / "tmp-weights-00003.weights.h5").write_bytes(b"\x89HDF\r\n")
    (backup / ".training_metadata.json.tmp").write_text('{"epoch": 3, "we')

    history = train(
        preset("smoke", epochs=4, sample_interval=2), toy_data(), run_dir, verbose=0
    )
    assert history.initial_epoch == done
    assert history.epoch == [0, 1, 2, 3]
    assert [r["epoch"] for r in read_csv(history_csv)] == ["0", "1", "2", "3"]
    assert RunPaths(run_dir).fixed_z.read_bytes() == fixed_z
    assert int(history.model.optimizer.iterations.numpy()) == 4 * 2
    assert read_info(run_dir)["status"] == "finished"
    assert sorted(p.name for p in RunPaths(run_dir).samples.iterdir()) == [
        "epoch_002.png",
        "epoch_004.png",
    ]
    assert sorted(p.name for p in backup.iterdir()) == [  # the previous: a fallback
        "training_metadata.json",
        "weights-00003.weights.h5",
        "weights-00004.weights.h5",
    ]


def test_nan_loss_stops_with_advice_and_keeps_last_good_state(tmp_path):
    import keras

    from helpers.callbacks import AtomicBackupAndRestore
    from helpers.training import train

    def poison(epoch, logs=None):  # the reconstruction blows up in epoch 2
        if epoch == 1:
            kernel = poisoner.model.decoder.get_layer("reconstruction").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))

    poisoner = keras.callbacks.LambdaCallback(on_epoch_begin=poison)
    with pytest.raises(TrainingError) as error:
        train(smoke(), toy_data(), tmp_path, verbose=0, callbacks=[poisoner])
    message = str(error.value)
    assert message.startswith("training stopped in epoch 2: the loss became NaN")
    assert "reconstruction_loss=nan" in message
    assert "the reconstruction term diverged" in message
    assert "--learning-rate 1e-4" in message and "BCE needs [0, 1]" in message
    info = read_info(tmp_path)
    assert (info["status"], info["epochs_done"]) == ("failed", 1)
    assert AtomicBackupAndRestore(RunPaths(tmp_path).backup).completed_epochs() == 1


def test_train_command_prepares_raw_data_then_trains(slice_dir, tmp_path, capsys):
    from vaelab.cli import main

    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    argv = [
        "train",
        "--preset",
        "smoke",
        "--data",
        str(slice_dir),
        "--cache",
        str(cache),
        "--run-dir",
        str(run_dir),
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--val-limit",
        "16",
        "--verbose",
        "0",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"Preparing {slice_dir} into the cache {cache}" in out
    assert f"TensorBoard   tensorboard --logdir {run_dir / 'tensorboard'}" in out
    assert read_info(run_dir)["cache_dir"] == str(cache.resolve())
    assert len(read_csv(run_dir / "history.csv")) == 1
    # The same command with another latent size is refused, without a traceback.
    assert main(argv + ["--latent-dim", "8"]) == 2
    assert "use a new --run-dir" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nowhere")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err


def test_kl_warmup_ramps_linearly():
    import keras

    from helpers.callbacks import KLWarmup

    class Holder:
        kl_weight = keras.Variable(4.0)

    warmup = KLWarmup(beta=4.0, warmup_epochs=4)
    warmup.set_model(Holder())
    seen = []
    for epoch in range(6):
        warmup.on_epoch_begin(epoch)
        logs = {}
        warmup.on_epoch_end(epoch, logs)
        seen.append(logs["kl_weight"])
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    with pytest.raises(ValueError, match="warmup_epochs=0"):
        KLWarmup(1.0, 0)


def test_changed_model_config_is_refused_but_more_epochs_allowed(tmp_path):
    from helpers.training import check_run_config, train

    paths = RunPaths(tmp_path)
    check_run_config(smoke(), paths)
    with pytest.raises(TrainingError) as error:
        train(smoke(latent_dim=16, filters=(8, 16, 32)), toy_data(), tmp_path)
    message = str(error.value)
    assert "latent_dim: 32 in the run, 16 now" in message
    assert "filters: (16, 32, 64) in the run, (8, 16, 32) now" in message
    assert "use a new --run-dir" in message
    check_run_config(smoke(epochs=10), paths)
    assert json.loads(paths.config.read_text())["epochs"] == 10


def test_data_outside_the_decoder_range_is_refused(tmp_path):
    import tensorflow as tf

    from helpers.training import train

    images = np.full((8, 64, 64, 3), 255.0, "float32")
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(4)
    with pytest.raises(DataError, match=r"images are in \[255, 255\] but the decoder"):
        train(smoke(), (dataset, dataset), tmp_path)


def test_truncate_history_keeps_one_row_per_completed_epoch(tmp_path):
    from helpers.training import _history_best, _truncate_history

    path = tmp_path / "history.csv"
    header = "epoch,loss,val_loss\r\n"
    path.write_text(
        header + "0,3,2.5\r\n1,2,1.5\r\n1,2,1.25\r\n2,1,9\r\n3,0", newline=""
    )
    _truncate_history(path, 2)
    assert _history_best(path, "val_loss", None) == 1.25
    assert path.read_bytes() == (header + "0,3,2.5\r\n1,2,1.25\r\n").encode()
    _truncate_history(path, 0)
    assert not path.exists()


def test_a_resumed_run_streams_the_epochs_it_has_not_seen(cache_dir):
    """Check skipping E passes of a pipeline gives epoch E's order, as fit sees it."""
    from helpers.student import solution_module
    from helpers.training import _datasets, epoch_steps, skip_iterations

    config = preset("smoke", batch_size=32, train_limit=None, seed=5)

    def first_batches(skip):
        import tensorflow as tf

        tf.random.set_seed(config.seed)
        train_ds, _, _ = _datasets(config, cache_dir, solution_module())
        skip_iterations(train_ds, skip)
        stream = iter(train_ds.repeat())
        steps = epoch_steps(train_ds)
        return [next(stream).numpy() for _ in range(steps * (4 - skip))][:: steps], steps

    straight, steps = first_batches(0)
    resumed, _ = first_batches(3)
    assert steps == 5  # 160 training images in batches of 32
    np.testing.assert_array_equal(resumed[0], straight[3])
    assert not np.array_equal(resumed[0], straight[0])


def test_an_endless_pipeline_is_refused():
    import tensorflow as tf

    from helpers.training import epoch_steps

    with pytest.raises(DataError, match="never ends"):
        epoch_steps(tf.data.Dataset.range(4).repeat())
    assert epoch_steps(tf.data.Dataset.range(10).filter(lambda x: x < 5).batch(2)) == 3
