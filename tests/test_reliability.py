"""Reliability under misuse (issue 13): two processes on one folder, changed data,
damaged files, real-world list files and images, argument checks, no tracebacks."""

from __future__ import annotations

import argparse
import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import celeba
from helpers.cache import load_split, prepare_cache
from helpers.config import preset
from helpers.errors import DamagedFileError, DataError, LabError, TrainingError
from helpers.locks import BusyError, cache_lock, run_lock
from helpers.runs import RunPaths, load_run, read_info
from vaelab.cli.data import report_lines
from vaelab.synthetic import make_slice

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

# Holds a lock in another process until killed: prints "locked" once it has it.
HOLDER = """
import sys, time
from pathlib import Path
from helpers.locks import cache_lock, run_lock
kind, folder = sys.argv[1], Path(sys.argv[2])
with (cache_lock if kind == "cache" else run_lock)(folder, "holder"):
    if kind == "cache":  # the first prepare's working folder
        partial = folder.with_name(folder.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        (partial / "train_images.npy").write_bytes(b"half done")
    print("locked", flush=True)
    time.sleep(120)
"""


def start_holder(kind: str, folder: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, str(folder)],
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    assert process.stdout.readline().strip() == "locked"
    return process


def kill_9(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


def tiny(**changes):
    """A 32-pixel smoke config that trains an epoch of a small slice in ~2 s."""
    settings = dict(image_size=32, latent_dim=8, batch_size=16, epochs=1)
    settings.update(train_limit=None, val_limit=None, sample_interval=1)
    return preset("smoke", **{**settings, **changes})


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """Two 40-image slices (seeds 0 and 1), their 32-px caches, and a 2-epoch run."""
    from helpers.training import train

    root = tmp_path_factory.mktemp("reliability")
    caches = []
    for seed in (0, 1):
        data = make_slice(root / f"slice{seed}", n=40, seed=seed)
        cache = root / f"cache{seed}"
        prepare_cache(data, cache, image_size=32, progress=False)
        caches.append(cache)
    run_dir = root / "run"
    train(tiny(epochs=2), caches[0], run_dir, verbose=0)
    return caches, run_dir


def copy_run(small, tmp_path) -> Path:
    return Path(shutil.copytree(small[1], tmp_path / "run"))


# 1. Two processes, one directory ------------------------------------------------------
def test_a_second_prepare_is_refused_and_a_killed_holder_blocks_nothing(tmp_path):
    data = make_slice(tmp_path / "slice", n=20)
    cache = tmp_path / "cache"
    holder = start_holder("cache", cache)
    try:
        with pytest.raises(BusyError) as caught:
            prepare_cache(data, cache, image_size=32, progress=False)
        message = str(caught.value)
        assert str(cache) in message and f"pid {holder.pid}" in message
        assert "`holder`" in message and "since" in message
        # The first process's working folder is untouched.
        partial = tmp_path / "cache.partial"
        assert (partial / "train_images.npy").read_bytes() == b"half done"
        # The command line says the same in one line, exit code 2, no traceback.
        result = subprocess.run(
            [sys.executable, "-m", "vaelab", "prepare", "--data", str(data)]
            + ["--cache", str(cache), "--image-size", "32"],
            capture_output=True,
            text=True,
            env=ENV,
        )
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert f"error: {cache} is in use by pid {holder.pid}" in result.stderr
    finally:
        kill_9(holder)
    # kill -9 released the OS lock: the next prepare runs (and redoes the partial).
    summary = prepare_cache(data, cache, image_size=32, progress=False)
    assert sum(summary["counts"].values()) == 20
    assert not (tmp_path / "cache.partial").exists()


def test_a_second_train_is_refused_before_writing_anything(small, tmp_path):
    from helpers.training import train

    run_dir = tmp_path / "run"
    holder = start_holder("run", run_dir)
    try:
        with pytest.raises(BusyError, match=f"in use by pid {holder.pid}"):
            train(tiny(), small[0][0], run_dir, verbose=0)
        assert sorted(p.name for p in run_dir.iterdir()) == [
            ".lock",
            ".lock.owner.json",
        ]
    finally:
        kill_9(holder)
    with run_lock(run_dir):  # free again after the kill
        pass


def test_the_lock_is_refused_within_one_process_too_and_released_after(tmp_path):
    with cache_lock(tmp_path / "c"):
        with pytest.raises(BusyError, match="is in use by pid"):
            with cache_lock(tmp_path / "c"):
                pass
    with cache_lock(tmp_path / "c"):
        pass


# 2. Where the data came from ----------------------------------------------------------
def test_resuming_on_other_data_is_refused_and_run_json_is_kept(small, tmp_path):
    from helpers.training import train

    (cache0, cache1), run_dir = small
    info = read_info(run_dir)
    assert info["data"]["digest"] and info["data"]["counts"]["train"] > 0
    run = copy_run(small, tmp_path)
    before = (run / "run.json").read_bytes(), (run / "config.json").read_bytes()
    with pytest.raises(TrainingError) as caught:
        train(tiny(epochs=3), cache1, run, verbose=0)
    message = str(caught.value)
    assert "was trained on the cache" in message and str(cache0) in message
    assert f"--data {cache0}" in message and "new --run-dir" in message
    assert (
        (run / "run.json").read_bytes(),
        (run / "config.json").read_bytes(),
    ) == before
    # The same cache moved to another folder is the same data: allowed.
    moved = shutil.copytree(cache0, tmp_path / "moved")
    history = train(tiny(epochs=2), moved, run, verbose=0)
    assert history.initial_epoch == 2


def test_a_cache_is_rebuilt_when_its_source_changes_at_the_same_path(tmp_path, capsys):
    data, cache = tmp_path / "slice", tmp_path / "cache"
    make_slice(data, n=20, seed=0)
    first = prepare_cache(data, cache, image_size=32, progress=False)
    assert not first["reused"]
    assert prepare_cache(data, cache, image_size=32, progress=False)["reused"]
    shutil.rmtree(data)
    make_slice(data, n=24, seed=1)  # regenerated at the same path
    again = prepare_cache(data, cache, image_size=32, progress=False)
    assert not again["reused"] and sum(again["counts"].values()) == 24
    out = capsys.readouterr().out
    assert (
        f"{data.resolve()} has changed since the cache" in out and "rebuilding" in out
    )
    assert "20 images were listed, now 24" in out
    images, _, _ = load_split(cache, "train")
    fresh, _, _ = load_split(
        prepare_cache(data, tmp_path / "c2", 32)["cache_dir"], "train"
    )
    assert np.array_equal(images, fresh)
    assert not (tmp_path / "cache.old").exists()


def test_source_fingerprint_sees_a_changed_attribute_file_and_zip(tmp_path):
    from helpers.cache import describe_change, source_fingerprint

    data = make_slice(tmp_path / "slice", n=10)
    before = source_fingerprint(data)
    attr = data / "list_attr_celeba.txt"
    attr.write_text(attr.read_text().replace(" 1", "-1", 1))
    after = source_fingerprint(data)
    assert after["digest"] != before["digest"]
    assert describe_change(before, after) == "list_attr_celeba.txt changed"
    archive = shutil.make_archive(str(tmp_path / "z"), "zip", data)
    assert source_fingerprint(archive)["kind"] == "zip"


# 3. Damaged files ---------------------------------------------------------------------
@pytest.fixture
def cache_copy(small, tmp_path) -> Path:
    return Path(shutil.copytree(small[0][0], tmp_path / "cache"))


@pytest.mark.parametrize(
    "name, damage, problem",
    [
        ("train_images.npy", "truncate", "mmap length is greater than file size"),
        ("train_images.npy", "garble", "damaged"),
        ("train_attributes.npy", "truncate", "damaged"),
        ("validation_images.npy", "delete", "missing from the cache"),
        ("meta.json", "truncate", "not valid JSON"),
        ("meta.json", "garble", "not UTF-8"),
        ("train_ids.txt", "truncate", "ids"),
    ],
)
def test_a_damaged_cache_file_is_named_with_the_fix(cache_copy, name, damage, problem):
    path = cache_copy / name
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garble":
        path.write_bytes(bytes(255 - b for b in data[:200]) + data[200:])
    else:
        path.unlink()
    with pytest.raises(DataError) as caught:
        for split in ("train", "validation"):
            load_split(cache_copy, split)
    message = str(caught.value)
    assert problem in message
    assert f"delete {cache_copy} and run `python -m vaelab prepare" in message
    assert name in message or "meta says" in message


@pytest.mark.parametrize("name", ["run.json", "config.json"])
def test_damaged_run_json_and_config_json_are_named_with_the_fix(small, tmp_path, name):
    run = copy_run(small, tmp_path)
    (run / name).write_text('{"epochs": 2, "sta')
    with pytest.raises(DamagedFileError) as caught:
        load_run(run)
    assert str(caught.value).startswith(f"{run / name} is damaged (not valid JSON")
    fix = (
        "re-run the same `python -m vaelab train`"
        if name == "run.json"
        else ("restore config.json from a copy, or train again in a new --run-dir")
    )
    assert fix in str(caught.value)


def test_a_damaged_best_keras_is_named_and_a_resume_sets_it_aside(small, tmp_path):
    from helpers.training import train

    run = copy_run(small, tmp_path)
    best = run / "best.keras"
    best.write_bytes(best.read_bytes()[:-500])
    with pytest.raises(DamagedFileError) as caught:
        load_run(run)
    assert str(caught.value).startswith(f"{best} is damaged (not a readable zip")
    assert "resume from the backup" in str(caught.value)
    history = train(tiny(epochs=3), small[0][0], run, verbose=0)
    assert history.initial_epoch == 2
    assert (run / "best.keras.damaged").exists()
    load_run(run)  # a new, whole best.keras


def test_a_damaged_backup_falls_back_to_the_previous_good_one(small, tmp_path, capsys):
    from helpers.callbacks import AtomicBackupAndRestore

    backup = copy_run(small, tmp_path) / "backup"
    assert sorted(p.name for p in backup.glob("weights-*")) == [
        "weights-00001.weights.h5",
        "weights-00002.weights.h5",
    ]
    (backup / "training_metadata.json").write_text('{"epoch": 2, "wei')
    assert AtomicBackupAndRestore(backup).completed_epochs() == 2
    assert "training_metadata.json is damaged" in capsys.readouterr().out
    newest = backup / "weights-00002.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])
    assert AtomicBackupAndRestore(backup).completed_epochs() == 1
    out = capsys.readouterr().out
    assert "previous good copy, weights-00001.weights.h5 (after epoch 1)" in out
    (backup / "weights-00001.weights.h5").write_bytes(b"")
    with pytest.raises(TrainingError, match="holds no earlier good copy: delete"):
        AtomicBackupAndRestore(backup).completed_epochs()


def test_resume_from_a_damaged_backup_trains_the_lost_epoch_again(small, tmp_path):
    from helpers.training import train

    run = copy_run(small, tmp_path)
    newest = run / "backup" / "weights-00002.weights.h5"
    newest.write_bytes(newest.read_bytes()[:1000])
    history = train(tiny(epochs=2), small[0][0], run, verbose=0)
    assert history.initial_epoch == 1 and history.epoch == [0, 1]
    assert read_info(run)["epochs_done"] == 2


def test_checkpoints_are_verified_before_they_replace_the_last_good_one(tmp_path):
    from helpers.files import keras_file_problem, weights_file_problem

    assert "not a readable zip" in keras_file_problem(_write(tmp_path / "a", b"PK\3"))
    assert weights_file_problem(_write(tmp_path / "b", b"")) == "the file is empty"
    assert "HDF5" in weights_file_problem(_write(tmp_path / "c", b"\x89HDF\r\n"))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_an_unreadable_new_backup_stops_training_and_keeps_the_old(small, tmp_path):
    from helpers import callbacks
    from helpers.training import train

    run = copy_run(small, tmp_path)
    original = callbacks.weights_file_problem
    try:
        callbacks.weights_file_problem = lambda path: (
            "simulated" if Path(path).name.startswith("tmp-") else original(path)
        )
        with pytest.raises(TrainingError, match="cannot be read back .simulated."):
            train(tiny(epochs=3), small[0][0], run, verbose=0)
    finally:
        callbacks.weights_file_problem = original
    metadata = json.loads((run / "backup" / "training_metadata.json").read_text())
    assert metadata["epoch"] == 2
    assert not list((run / "backup").glob("tmp-*"))


# 4. Real-world data files -------------------------------------------------------------
def test_a_kaggle_file_name_with_a_space_prepares_and_trains(tmp_path):
    from helpers.training import train

    data = make_slice(tmp_path / "kaggle", n=24, layout="kaggle")
    files = celeba.find_celeba(data)
    (files.image_dir / "000003.jpg").rename(files.image_dir / "000003 copy.jpg")
    for path in (files.attr_file, files.partition_file):
        path.write_text(path.read_text().replace("000003.jpg", "000003 copy.jpg"))
    cache = tmp_path / "cache"
    prepare_cache(data, cache, image_size=32, progress=False)
    _, _, ids = load_split(cache, "train")
    assert "000003 copy.jpg" in ids and len(ids) == len(set(ids))
    history = train(tiny(), cache, tmp_path / "run", verbose=0)
    assert history.epoch == [0]


def _official(tmp_path, n=6) -> celeba.CelebAFiles:
    return celeba.find_celeba(make_slice(tmp_path / "s", n=n))


def test_list_files_with_a_byte_order_mark_or_in_latin_1(tmp_path):
    files = _official(tmp_path)
    ids, attrs = celeba.read_attributes(files)
    attr = files.attr_file.read_bytes()
    files.attr_file.write_bytes(b"\xef\xbb\xbf" + attr)
    assert celeba.read_attributes(files)[0] == ids
    files.attr_file.write_bytes(
        attr.replace(b"000002.jpg", "00000é.jpg".encode("latin-1"))
    )
    got, got_attrs = celeba.read_attributes(files)
    assert got[1] == "00000é.jpg" and np.array_equal(got_attrs, attrs)
    files.partition_file.write_bytes(
        b"\xef\xbb\xbf" + files.partition_file.read_bytes()
    )
    assert list(celeba.read_partitions(files)) == ids


def test_duplicate_rows_keep_the_first_and_warn_with_the_count(tmp_path):
    files = _official(tmp_path)
    lines = files.attr_file.read_text().splitlines(keepends=True)
    changed = lines[2].replace(" 1", "-1").replace("-1", " 1", 1)
    files.attr_file.write_text("".join(lines + [changed, lines[3]]))
    with pytest.warns(
        UserWarning, match=r"2 duplicate row\(s\).*000001.jpg \(line 9\)"
    ):
        ids, attrs = celeba.read_attributes(files)
    assert len(ids) == 6 and list(attrs[0]) == [int(v) for v in lines[2].split()[1:]]
    part = files.partition_file
    part.write_text(part.read_text() + "000001.jpg 2\n")
    with pytest.warns(UserWarning, match="1 duplicate row"):
        assert celeba.read_partitions(files)["000001.jpg"] == 0


def test_odd_frames_are_cut_by_the_stated_policy_and_reported(tmp_path):
    from helpers.preprocess import frame_box, load_image

    assert frame_box((19, 39, 140, 140), (178, 218)) == (19, 39, 159, 179)
    assert frame_box((19, 39, 140, 140), (356, 436)) == (38, 78, 318, 358)
    left, top, right, bottom = frame_box((19, 39, 140, 140), (300, 200))
    assert right - left == bottom - top  # square stays square: no stretched faces
    assert 0 <= top and bottom <= 200 and 0 <= left and right <= 300
    files = _official(tmp_path, n=20)
    frame = Image.open(files.image_path("000002.jpg"))
    frame.resize((356, 436)).save(files.image_path("000002.jpg"))
    notes = []
    big = load_image(files.image_path("000002.jpg"), notes=notes)
    assert notes == ["frame 356x436, not 178x218: face box scaled to it"]
    small = load_image(_jpeg_bytes(frame))
    assert np.abs(big.astype(int) - small.astype(int)).mean() < 6
    summary = prepare_cache(files.root, tmp_path / "cache", 32, progress=False)
    assert summary["reframed"] == 1
    lines = "\n".join(report_lines(summary))
    assert "not a 178x218 frame (face box scaled): 1" in lines
    assert "000002.jpg: frame 356x436" in lines


def _jpeg_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def test_truncated_jpegs_are_skipped_and_reported(tmp_path):
    files = _official(tmp_path, n=20)
    for name in ("000004.jpg", "000005.jpg"):
        path = files.image_path(name)
        path.write_bytes(path.read_bytes()[:-2])  # only the end marker is lost
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = prepare_cache(files.root, tmp_path / "cache", 32, progress=False)
    assert summary["skipped"] == 2
    reasons = {s["file"]: s["reason"] for s in summary["skipped_files"]}
    assert "truncated" in reasons["000004.jpg"]
    lines = "\n".join(report_lines(summary, first=1))
    assert "skipped (unreadable or truncated): 2" in lines
    assert (
        f"(1 more; full list: {tmp_path / 'cache' / 'meta.json'}, under 'skipped')"
        in lines
    )


# 5. Arguments -------------------------------------------------------------------------
def test_argument_types_refuse_bad_numbers_and_paths(tmp_path):
    from vaelab.validate import SEED, output_dir, output_file, real, whole

    assert SEED("7") == 7
    for bad, text in [
        ("-1", "out of range"),
        ("4294967296", "out of range"),
        ("x", "not a whole"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=text):
            SEED(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="from 1 to 1,024"):
        whole(1, 1024)("1000000")
    for bad in ("nan", "inf", "-0.5", "11"):
        with pytest.raises(argparse.ArgumentTypeError):
            real(0.0, 10.0)(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="is a folder: give a file"):
        output_file(str(tmp_path))
    (tmp_path / "f").write_text("")
    with pytest.raises(argparse.ArgumentTypeError, match="is a file: give a folder"):
        output_dir(str(tmp_path / "f"))
    with pytest.raises(argparse.ArgumentTypeError, match="is a file, so nothing"):
        output_file(str(tmp_path / "f" / "x.png"))
    assert output_dir(str(tmp_path / "new" / "deeper")) == tmp_path / "new" / "deeper"


def test_a_bad_seed_is_refused_before_config_json_is_written(small, tmp_path, capsys):
    from vaelab.cli import main

    with pytest.raises(ValueError, match="seed"):
        preset("smoke", seed=-1)
    run_dir = tmp_path / "run"
    args = ["train", "--data", str(small[0][0]), "--run-dir", str(run_dir)]
    with pytest.raises(SystemExit) as caught:  # argparse: exit 2, one line
        main(args + ["--seed", "-1"])
    assert caught.value.code == 2
    assert "argument --seed: -1 is out of range" in capsys.readouterr().err
    assert not run_dir.exists()
    assert main(args + ["--seed", "1", "--reconstruction-loss", "l1"]) == 2  # VAEConfig
    assert "reconstruction_loss" in capsys.readouterr().err and not run_dir.exists()


# 6. No tracebacks ---------------------------------------------------------------------
def test_errors_become_one_line_and_bugs_leave_a_log(tmp_path, capsys):
    from vaelab.cli import report_error

    assert report_error(LabError("fix it")) == 2
    assert capsys.readouterr().err == "error: fix it\n"
    full = OSError(errno.ENOSPC, "No space left on device", "/runs/x/best.keras")
    assert report_error(full) == 1
    assert "no space left on the disk while writing /runs/x/best.keras" in (
        capsys.readouterr().err
    )
    assert report_error(PermissionError(errno.EACCES, "denied", "/ro/run.json")) == 1
    assert "cannot write /ro/run.json: permission denied" in capsys.readouterr().err
    try:
        raise KeyError("surprise")
    except KeyError as error:
        assert report_error(error, [tmp_path]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    (log,) = tmp_path.glob("helpers-error-*.log")
    assert f"the full traceback is in {log}" in err
    assert "Traceback" in log.read_text() and "surprise" in log.read_text()


def test_metrics_survive_a_full_disk(tmp_path, monkeypatch, capsys):
    from helpers import files
    from helpers.metrics import write_report

    real_write = files.atomic_write_text

    def full_disk(path, text):
        if Path(path).parent == tmp_path:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_write(path, text)

    monkeypatch.setattr(files, "atomic_write_text", full_disk)
    report = {
        "rows": [{"section": "s", "metric": "m", "value": 1.5, "n": 2, "note": ""}]
    }
    json_path, csv_path = write_report(report, tmp_path)
    assert json.loads(json_path.read_text()) == report and "1.5" in csv_path.read_text()
    assert json_path.parent != tmp_path
    err = capsys.readouterr().err
    assert f"could not save {tmp_path / 'evaluation.json'} (no space left" in err
    assert f"saved it to {json_path}" in err


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--n", "1000000"],
            "argument --n: 1,000,000 is out of range: use from 1 to 1,024",
        ),
        (["--temperature", "nan"], "argument --temperature: nan is out of range"),
        (["--gmm", "--fit-n", "3"], "argument --fit-n: 3 is out of range"),
        (["--seed", "-5"], "argument --seed: -5 is out of range"),
    ],
)
def test_sample_refuses_bad_numbers_while_parsing(tmp_path, capsys, extra, message):
    from vaelab.cli import main

    out = tmp_path / "faces.png"
    with pytest.raises(SystemExit) as caught:
        main(["sample", "--run-dir", str(tmp_path), "--out", str(out), *extra])
    assert caught.value.code == 2 and message in capsys.readouterr().err
    assert sorted(tmp_path.iterdir()) == []


def test_output_paths_of_the_wrong_kind_are_refused(tmp_path, capsys):
    from vaelab.cli import main

    (tmp_path / "file").write_text("")
    for args, message in [
        (
            ["sample", "--run-dir", "r", "--out", str(tmp_path)],
            "is a folder: give a file",
        ),
        (["explore", "--run-dir", "r", "--out", str(tmp_path / "file")], "is a file:"),
        (
            ["make-slice", "--out", str(tmp_path / "file" / "x")],
            "is a file, so nothing",
        ),
    ]:
        with pytest.raises(SystemExit):
            main(args)
        assert message in capsys.readouterr().err


def test_a_bug_in_a_command_is_one_line_and_a_log(small, tmp_path, capsys, monkeypatch):
    from vaelab.cli import generate, main

    def broken(run_dir):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(generate, "load_run", broken)
    run = copy_run(small, tmp_path)
    assert (
        main(["sample", "--run-dir", str(run), "--out", str(tmp_path / "x.png")]) == 1
    )
    err = capsys.readouterr().err
    (log,) = run.glob("helpers-error-*.log")
    assert err == (
        f"error: unexpected RuntimeError: simulated bug (the full traceback is in "
        f"{log}; please include it when you report this problem)\n"
    )


def test_a_full_disk_while_sampling_is_one_clear_line(
    small, tmp_path, capsys, monkeypatch
):
    from vaelab.cli import generate, main

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x.png"))

    monkeypatch.setattr(generate, "save_grid", full)
    args = ["sample", "--run-dir", str(small[1]), "--out", str(tmp_path / "x.png")]
    assert main(args + ["--n", "4"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: no space left on the disk while writing {tmp_path}")
    assert err.count("\n") == 1


def test_evaluate_prints_its_metrics_even_when_the_run_is_read_only(
    small, tmp_path, capsys, monkeypatch
):
    from helpers import files
    from vaelab.cli import main

    run = copy_run(small, tmp_path)
    real_write = files.atomic_write_text

    def read_only(path, text):
        if Path(path).parent == run:
            raise PermissionError(errno.EROFS, "Read-only file system", str(path))
        return real_write(path, text)

    monkeypatch.setattr(files, "atomic_write_text", read_only)
    assert main(["evaluate", "--run-dir", str(run), "--n", "8"]) == 0
    captured = capsys.readouterr()
    assert "kl_total" in captured.out  # the table
    assert f"could not save {run / 'evaluation.json'} (cannot write" in captured.err
    saved = captured.err.split("saved it to ")[1].split("\n")[0]
    assert json.loads(Path(saved).read_text())["rows"]
    assert f"wrote {saved}" in captured.out


def test_damaged_files_reach_the_command_line_as_one_line(small, tmp_path, capsys):
    from vaelab.cli import main

    cache = Path(shutil.copytree(small[0][0], tmp_path / "cache"))
    (cache / "meta.json").write_text("{")
    args = ["train", "--data", str(cache), "--run-dir", str(tmp_path / "run")]
    assert main(args + ["--preset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {cache / 'meta.json'} is damaged (not valid JSON")
    assert f"delete {cache} and run `python -m vaelab prepare" in err
    run = copy_run(small, tmp_path)
    (run / "best.keras").write_bytes(b"PK")
    out = tmp_path / "x.png"
    assert main(["sample", "--run-dir", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run / 'best.keras'} is damaged (")
    assert "resume from the backup" in err and err.count("\n") == 1


def test_a_damaged_fixed_z_is_made_again_from_the_seed(small, tmp_path, capsys):
    from helpers.training import _fixed_z

    run = copy_run(small, tmp_path)
    path = run / "fixed_z.npy"
    good = path.read_bytes()
    path.write_bytes(good[:100])
    z = _fixed_z(tiny(), RunPaths(run))
    assert f"{path} is damaged" in capsys.readouterr().out
    assert path.read_bytes() == good and z.shape == (64, 8)


def test_a_lock_held_on_another_machine_says_which_file_to_delete(tmp_path):
    from helpers.locks import owner_path

    with cache_lock(tmp_path / "c") as lock_path:
        owner = {"pid": 7, "host": "old-colab-vm", "started": "2026-11-27 09:00:00 UTC"}
        owner_path(lock_path).write_text(json.dumps(owner))
        with pytest.raises(BusyError) as caught:
            with cache_lock(tmp_path / "c"):
                pass
    message = str(caught.value)
    assert (
        "in use by pid 7 on host old-colab-vm (since 2026-11-27 09:00:00 UTC)"
        in message
    )
    assert f"(e.g. a Colab session that ended), delete {lock_path} and run" in message


def test_load_run_warns_when_its_cache_holds_other_data_now(small, tmp_path):
    run = copy_run(small, tmp_path)
    info = json.loads((run / "run.json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_run(run)  # unchanged: no warning
    assert not [w for w in caught if "has changed" in str(w.message)]
    info["data"]["digest"] = "0" * 64
    (run / "run.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="has changed since .* was trained on it"):
        load_run(run)
