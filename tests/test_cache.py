"""The uint8 cache: prepare from folders and zips, skips, atomicity, reading back."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import helpers.cache as cache_module
from helpers.cache import cache_info, load_split, prepare_cache
from helpers.celeba import (
    ATTRIBUTE_NAMES,
    find_celeba,
    read_attributes,
    read_partitions,
)
from helpers.errors import DataError
from helpers.preprocess import load_image

COUNTS = {"train": 160, "validation": 20, "test": 20}  # the 200-image fixture slice
SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def copy_slice(slice_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(slice_dir, tmp_path / "data"))


def all_images(cache_dir) -> np.ndarray:
    return np.concatenate([np.asarray(load_split(cache_dir, s)[0]) for s in COUNTS])


# What prepare writes --------------------------------------------------------------
def test_cache_matches_the_partition_and_attribute_files(slice_dir, cache_dir):
    files = find_celeba(slice_dir)
    partitions = read_partitions(files)
    ids, attrs = read_attributes(files)
    row = {image_id: i for i, image_id in enumerate(ids)}
    for split, count in COUNTS.items():
        images, attributes, split_ids = load_split(cache_dir, split)
        assert images.shape == (count, 64, 64, 3) and images.dtype == np.uint8
        assert isinstance(images, np.memmap)
        assert attributes.shape == (count, 40) and attributes.dtype == np.int8
        assert {partitions[i] for i in split_ids} == {SPLIT_CODES[split]}
        np.testing.assert_array_equal(attributes, attrs[[row[i] for i in split_ids]])
    assert load_split(cache_dir, "validation")[2][0] == "000161.jpg"


def test_cached_pixels_are_the_decoded_files(slice_dir, cache_dir):
    images, _, ids = load_split(cache_dir, "test")
    for k in (0, 7, 19):
        expected = load_image(slice_dir / "img_align_celeba" / ids[k])
        np.testing.assert_array_equal(images[k], expected)


def test_meta_records_settings_and_counts(slice_dir, cache_dir):
    meta = cache_info(cache_dir)
    assert meta["image_size"] == 64 and meta["crop"] == [19, 39, 140, 140]
    assert meta["layout"] == "official" and meta["counts"] == COUNTS
    assert meta["skipped"] == [] and meta["attribute_names"] == list(ATTRIBUTE_NAMES)
    assert meta["source"] == str(Path(slice_dir).resolve())
    assert 64 * 64 * 3 <= meta["bytes_per_image"] < 64 * 64 * 3 + 100
    assert not Path(str(cache_dir) + ".partial").exists()


@pytest.mark.parametrize(
    "kind, workers",
    [("kaggle", 1), ("official zip", 1), ("kaggle zip", 1), ("kaggle zip", 2)],
)
def test_other_layouts_and_zips_give_the_same_cache(
    kind, workers, slice_dir, kaggle_slice_dir, cache_dir, tmp_path
):
    folder = kaggle_slice_dir if kind.startswith("kaggle") else slice_dir
    data = folder
    if kind.endswith("zip"):
        data = zip_folder(folder, tmp_path / "celeba.zip", prefix="celeba/")
    summary = prepare_cache(data, tmp_path / "cache", progress=False, workers=workers)
    assert summary["counts"] == COUNTS and summary["reused"] is False
    assert cache_info(tmp_path / "cache")["layout"] == kind.split()[0]
    np.testing.assert_array_equal(all_images(tmp_path / "cache"), all_images(cache_dir))
    for split in COUNTS:
        ours, theirs = load_split(tmp_path / "cache", split), load_split(
            cache_dir, split
        )
        assert ours[2] == theirs[2]
        np.testing.assert_array_equal(ours[1], theirs[1])


def test_worker_processes_give_the_same_cache(slice_dir, cache_dir, tmp_path):
    summary = prepare_cache(slice_dir, tmp_path / "cache", progress=False, workers=2)
    assert summary["counts"] == COUNTS
    np.testing.assert_array_equal(all_images(tmp_path / "cache"), all_images(cache_dir))


def test_other_size_and_crop(slice_dir, tmp_path):
    prepare_cache(
        slice_dir, tmp_path / "c", image_size=32, crop=(0, 0, 178, 218), progress=False
    )
    images, _, ids = load_split(tmp_path / "c", "validation")
    assert images.shape == (20, 32, 32, 3)
    frame = load_image(slice_dir / "img_align_celeba" / ids[0], (0, 0, 178, 218), 32)
    np.testing.assert_array_equal(images[0], frame)


# Bad input ------------------------------------------------------------------------
def test_corrupt_images_are_skipped_warned_and_listed(slice_dir, tmp_path):
    data = copy_slice(slice_dir, tmp_path)
    folder = data / "img_align_celeba"
    truncated = folder / "000005.jpg"
    truncated.write_bytes(truncated.read_bytes()[:100])
    (folder / "000170.jpg").write_bytes(b"garbage, not a JPEG" * 10)
    with pytest.warns(UserWarning) as record:
        summary = prepare_cache(data, tmp_path / "cache", progress=False)
    messages = [str(w.message) for w in record]
    assert messages[0].startswith("skipped 000005.jpg: OSError")
    assert messages[1].startswith("skipped 000170.jpg: UnidentifiedImageError")
    assert summary["counts"] == {"train": 159, "validation": 19, "test": 20}
    assert summary["skipped"] == 2
    skipped = cache_info(tmp_path / "cache")["skipped"]
    assert [(s["file"], s["split"]) for s in skipped] == [
        ("000005.jpg", "train"),
        ("000170.jpg", "validation"),
    ]
    images, attributes, ids = load_split(tmp_path / "cache", "train")
    assert "000005.jpg" not in ids and ids[4] == "000006.jpg"
    np.testing.assert_array_equal(images[4], load_image(folder / "000006.jpg"))
    all_ids, all_attrs = read_attributes(find_celeba(data))
    np.testing.assert_array_equal(attributes[4], all_attrs[all_ids.index("000006.jpg")])


def test_no_decodable_image_is_an_error_and_leaves_no_cache(tmp_path):
    from vaelab.synthetic import make_slice

    data = make_slice(tmp_path / "data", n=3)
    for path in (data / "img_align_celeba").iterdir():
        path.write_bytes(b"nope")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no image of"):
        prepare_cache(data, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()
    assert not (tmp_path / "cache.partial").exists()


def test_missing_data_and_bad_zips_are_clear_errors(slice_dir, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        prepare_cache(tmp_path / "nowhere", tmp_path / "cache", progress=False)
    (tmp_path / "html.zip").write_text("<html>quota exceeded</html>")
    with pytest.raises(DataError, match="not a readable zip"):
        prepare_cache(tmp_path / "html.zip", tmp_path / "cache", progress=False)
    archive = zip_folder(slice_dir, tmp_path / "evil.zip")
    with zipfile.ZipFile(archive, "a") as out:
        out.writestr("../../etc/evil.txt", "x")
    with pytest.raises(DataError, match="unsafe member names such as '../../etc"):
        prepare_cache(archive, tmp_path / "cache", progress=False)
    assert not (tmp_path / "cache").exists()


# Atomic and idempotent ------------------------------------------------------------
def test_interrupted_prepare_leaves_no_cache_and_a_rerun_completes(
    slice_dir, tmp_path, monkeypatch
):
    real_decode, calls = cache_module._decode, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) > 50:
            raise KeyboardInterrupt
        return real_decode(*args)

    monkeypatch.setattr(cache_module, "_decode", interrupted)
    with pytest.raises(KeyboardInterrupt):
        prepare_cache(slice_dir, tmp_path / "cache", progress=False, workers=1)
    assert not (tmp_path / "cache").exists()
    with pytest.raises(
        DataError, match="No finished cache .*does not exist.*python -m vaelab prepare"
    ):
        load_split(tmp_path / "cache", "train")
    monkeypatch.setattr(cache_module, "_decode", real_decode)
    assert (
        prepare_cache(slice_dir, tmp_path / "cache", progress=False)["counts"] == COUNTS
    )


def test_a_stale_partial_folder_is_removed_and_redone(slice_dir, tmp_path):
    stale = tmp_path / "cache.partial"
    stale.mkdir()
    (stale / "train_images.npy").write_bytes(b"half written")
    (stale / "meta.json").write_text("{}")
    with pytest.raises(DataError, match="interrupted prepare left .*cache.partial"):
        cache_info(tmp_path / "cache")
    summary = prepare_cache(slice_dir, tmp_path / "cache", progress=False)
    assert summary["counts"] == COUNTS and not stale.exists()
    assert len(load_split(tmp_path / "cache", "train")[0]) == 160


def test_second_run_does_no_work(slice_dir, cache_dir, monkeypatch, capsys):
    meta = Path(cache_dir) / "meta.json"
    before = meta.stat().st_mtime_ns

    def must_not_decode(*args):
        raise AssertionError("decoded an image on a finished cache")

    monkeypatch.setattr(cache_module, "_decode", must_not_decode)
    summary = prepare_cache(slice_dir, cache_dir, progress=True)
    assert summary["reused"] is True and summary["counts"] == COUNTS
    assert "already holds this cache; nothing to do" in capsys.readouterr().out
    assert meta.stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "change, message",
    [
        ({"image_size": 32}, "image_size=64 \\(you asked for 32\\)"),
        ({"crop": (0, 0, 178, 218)}, "crop=\\[19, 39, 140, 140\\]"),
    ],
)
def test_different_settings_need_another_folder(slice_dir, cache_dir, change, message):
    with pytest.raises(DataError, match=message) as info:
        prepare_cache(slice_dir, cache_dir, progress=False, **change)
    assert "Use another --cache folder" in str(info.value)


def test_other_data_or_a_foreign_folder_is_refused(
    kaggle_slice_dir, cache_dir, tmp_path
):
    with pytest.raises(DataError, match="source="):
        prepare_cache(kaggle_slice_dir, cache_dir, progress=False)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not empty and is not a cache"):
        prepare_cache(kaggle_slice_dir, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


# Command line ---------------------------------------------------------------------
def test_prepare_command(slice_dir, tmp_path, capsys):
    from vaelab.cli import main

    cache = tmp_path / "cache"
    args = ["prepare", "--data", str(slice_dir), "--cache", str(cache)]
    assert main(args + ["--image-size", "32", "--crop", "19,39,140,140"]) == 0
    out = capsys.readouterr().out
    assert (
        f"cache written: {cache}" in out and "train 160, validation 20, test 20" in out
    )
    assert json.loads((cache / "meta.json").read_text())["image_size"] == 32
    assert main(args + ["--image-size", "32"]) == 0
    assert "cache reused" in capsys.readouterr().out
    assert main(args) == 2
    assert "different settings" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(args + ["--crop", "1,2,3"])
    assert exit_info.value.code == 2
    assert "LEFT,TOP,WIDTH,HEIGHT" in capsys.readouterr().err
