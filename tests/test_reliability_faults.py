"""Fault cases of issue 22 ("Reliability 3"), one section per category.

Each case is built in tmp_path and must end in a correct result or one clear line
naming the file and the fix (a non-zero exit from the command line), losing
nothing and leaving no partial or temporary file behind.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import download
from helpers.celeba import ATTRIBUTE_NAMES, LAYOUTS
from helpers.download import download_celeba
from helpers.errors import DataError, DownloadError
from instructor.commands import main as instructor_main
from vaelab.cli import main


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("tests must not touch the network")

    monkeypatch.setattr("socket.create_connection", refuse)


def listing(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def tiny_celeba(root: Path, n: int = 5, layout: str = "official") -> Path:
    """A CelebA-format folder of ``n`` small real JPEGs (178x218)."""
    rel = LAYOUTS[layout]
    (root / rel.image_dir).mkdir(parents=True)
    ids = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for k, image_id in enumerate(ids):
        colour = (40 * k % 256, 100, 200)
        Image.new("RGB", (178, 218), colour).save(root / rel.image_dir / image_id)
    minus = ["-1"] * len(ATTRIBUTE_NAMES)
    if layout == "official":
        attrs = [f"{n}", " ".join(ATTRIBUTE_NAMES)]
        attrs += [" ".join([i] + minus) for i in ids]
        parts = [f"{i} {k % 3}" for k, i in enumerate(ids)]
    else:
        attrs = [",".join(["image_id", *ATTRIBUTE_NAMES])]
        attrs += [",".join([i] + minus) for i in ids]
        parts = ["image_id,partition"] + [f"{i},{k % 3}" for k, i in enumerate(ids)]
    (root / rel.attr_file).write_text("\n".join(attrs) + "\n")
    (root / rel.partition_file).write_text("\n".join(parts) + "\n")
    return root


def pack(folder: Path, path: Path, kind: str, under: str = "") -> Path:
    """Archive ``folder``'s files as ``kind`` ("zip", "tar", "tar.gz", ...)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            for file in files:
                archive.write(file, under + file.relative_to(folder).as_posix())
        return path
    mode = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
    with tarfile.open(path, mode[kind]) as archive:
        for file in files:
            archive.add(file, under + file.relative_to(folder).as_posix())
    return path


# Archives that are not zips ----------------------------------------------------------
ARCHIVES = [
    ("tar.gz", "celeba.tar.gz", "", "official"),
    ("tar.gz", "celeba.tgz", "celeba/", "kaggle"),
    ("tar", "celeba.tar", "", "kaggle"),
    ("tar.bz2", "celeba.tar.bz2", "data/", "official"),
    ("tar.xz", "celeba.tar.xz", "", "official"),
    ("tar.gz", "celeba.zip", "", "official"),  # a tar.gz under a .zip name
    ("zip", "celeba.tar.gz", "", "kaggle"),  # a zip under a .tar.gz name
    ("zip", "nested.zip", "a/b/", "kaggle"),  # two folders deep
    ("tar.gz", "nested.tar.gz", "one/two/three/", "official"),
]


@pytest.mark.parametrize("kind, name, under, layout", ARCHIVES)
def test_archives_are_recognised_by_their_bytes_and_extracted(
    tmp_path, kind, name, under, layout
):
    source = tiny_celeba(tmp_path / "src", 6, layout)
    archive = pack(source, tmp_path / name, kind, under)
    dest = tmp_path / "dest"
    files = download_celeba(dest, "local", path=archive, expected_images=6)
    assert files.root == dest / "celeba" and files.layout == layout
    assert sorted(p.name for p in files.image_dir.iterdir())[0] == "000001.jpg"
    assert not any(p.name.startswith(".partial-") for p in dest.iterdir())
    assert archive.exists()  # a local archive is never touched


def _tar_with(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    source = tiny_celeba(path.parent / "src", 3)
    with tarfile.open(path, "w:gz") as archive:
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            archive.add(file, file.relative_to(source).as_posix())
        archive.addfile(member, io.BytesIO(data) if data else None)
    return path


def _member(name, kind, target=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _sized(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


@pytest.mark.parametrize(
    "member, data, reason",
    [
        (_sized("../evil.txt", b"x"), b"x", "contains '..'"),
        (_sized("/tmp/evil-abs.txt", b"x"), b"x", "is an absolute path"),
        (_member("img_align_celeba/x.jpg", tarfile.SYMTYPE, "/etc/passwd"), b"",
         "is a symbolic link"),
        (_member("img_align_celeba/h.jpg", tarfile.LNKTYPE, "../../etc/passwd"), b"",
         "is a hard link"),
        (_member("dev/null", tarfile.CHRTYPE), b"", "is a device file"),
        (_member("fifo", tarfile.FIFOTYPE), b"", "is a device file"),
    ],
)
def test_hostile_tars_are_refused_before_anything_is_written(
    tmp_path, member, data, reason
):
    archive = _tar_with(tmp_path / "hostile.tar.gz", member, data)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as caught:
        download_celeba(dest, "local", path=archive)
    assert reason in str(caught.value) and "Nothing was written" in str(caught.value)
    assert listing(dest) == []
    assert not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/evil-abs.txt").exists()


def test_a_tar_larger_than_the_free_disk_is_refused(tmp_path, monkeypatch):
    archive = pack(tiny_celeba(tmp_path / "src", 3), tmp_path / "c.tar", "tar")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(
        download.shutil, "disk_usage", lambda p: usage._replace(free=100)
    )
    with pytest.raises(DownloadError, match="free some space"):
        download_celeba(tmp_path / "dest", "local", path=archive)
    assert listing(tmp_path / "dest") == []


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "tar.bz2", "tar.xz"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_tar_is_named_as_one(tmp_path, kind, keep):
    source = tiny_celeba(tmp_path / "src", 5)
    archive = pack(source, tmp_path / f"c.{kind}", kind)
    data = archive.read_bytes()
    end = len(data)
    if kind == "tar":  # cut into the members, not into the end-of-archive padding
        with tarfile.open(archive) as whole:
            last = whole.getmembers()[-1]
            end = last.offset_data + last.size
    archive.write_bytes(data[: int(end * keep)])
    dest = tmp_path / "dest"
    with pytest.raises((DownloadError, DataError)) as caught:
        download_celeba(dest, "local", path=archive)
    text = str(caught.value)
    assert str(archive) in text
    assert "truncated or corrupt" in text or "No CelebA layout" in text
    if kind != "tar":  # a cut plain tar can still list whole members
        assert "tar archive" in text
    assert listing(dest) == []


@pytest.mark.parametrize(
    "content", [b"", b"\x00" * 600, b"GIF89a not an archive", os.urandom(2000)]
)
def test_a_file_that_is_no_archive_is_named(tmp_path, content):
    path = tmp_path / "celeba.tar.gz"
    path.write_bytes(content)
    with pytest.raises(DownloadError, match="neither a zip nor a tar"):
        download_celeba(tmp_path / "dest", "local", path=path)
    assert listing(tmp_path / "dest") == []


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
@pytest.mark.parametrize("under", ["", "x/", "x/y/"])
def test_an_archive_without_celeba_is_refused_before_extracting(
    tmp_path, kind, under
):
    source = tiny_celeba(tmp_path / "src", 4)
    (source / "list_eval_partition.txt").unlink()
    archive = pack(source, tmp_path / f"c.{kind}", kind, under)
    dest = tmp_path / "dest"
    with pytest.raises(DataError) as caught:
        download_celeba(dest, "local", path=archive)
    assert "nothing was extracted" in str(caught.value)
    assert "list_eval_partition.txt" in str(caught.value)
    assert listing(dest) == []


def test_an_extraction_that_fails_verification_is_removed(tmp_path):
    source = tiny_celeba(tmp_path / "src", 4)
    (source / "img_align_celeba" / "000004.jpg").unlink()  # listed, missing
    archive = pack(source, tmp_path / "c.tar.gz", "tar.gz", "a/b/")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="was removed"):
        download_celeba(dest, "local", path=archive)
    assert listing(dest) == []


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_cli_local_archive_exits_0_then_2_when_corrupt(tmp_path, capsys, kind):
    archive = pack(tiny_celeba(tmp_path / "src", 3), tmp_path / f"c.{kind}", kind)
    assert main(["download", "--source", "local", "--from", str(archive),
                 "--dest", str(tmp_path / "ok")]) == 0
    archive.write_bytes(archive.read_bytes()[:300])
    code = main(["download", "--source", "local", "--from", str(archive),
                 "--dest", str(tmp_path / "bad")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(archive) in err[0]
    assert listing(tmp_path / "bad") == []


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "tar.xz"])
def test_prepare_on_a_tar_says_how_to_extract_it(tmp_path, capsys, kind):
    archive = pack(tiny_celeba(tmp_path / "src", 3), tmp_path / f"c.{kind}", kind)
    cache = tmp_path / "cache"
    assert main(["prepare", "--data", str(archive), "--cache", str(cache)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(archive) in err and "--source local" in err
    assert not cache.exists() and not cache.with_name("cache.partial").exists()
    # the advice, followed as written, works
    dest = tmp_path / "extracted"
    assert main(["download", "--source", "local", "--from", str(archive),
                 "--dest", str(dest)]) == 0
    assert main(["prepare", "--data", str(dest / "celeba"), "--cache",
                 str(cache)]) == 0


def test_prepare_reads_a_zip_by_its_bytes(tmp_path):
    from helpers.cache import prepare_cache

    archive = pack(tiny_celeba(tmp_path / "src", 6), tmp_path / "c.data", "zip")
    summary = prepare_cache(archive, tmp_path / "cache", 16, progress=False)
    assert sum(summary["counts"].values()) == 6


# Image modes -----------------------------------------------------------------------
def _face_gray(size=(178, 218)) -> np.ndarray:
    """A grayscale ramp: every level 0..1 across the frame (float)."""
    ramp = np.linspace(0.0, 1.0, size[0])[None, :]
    return np.repeat(ramp, size[1], axis=0)


def _image_in_mode(mode: str) -> tuple[Image.Image, np.ndarray]:
    """An image of ``mode`` and the 8-bit gray levels it must become."""
    gray = _face_gray()
    expected = np.rint(gray * 255).astype(np.uint8)
    if mode in ("I;16", "I;16B", "I;16L"):
        values = np.rint(gray * 65535).astype("<u2" if mode != "I;16B" else ">u2")
        image = Image.frombytes(mode, (178, 218), values.tobytes())
        return image, np.rint(values.astype(float) / 65535 * 255).astype(np.uint8)
    if mode == "I":
        values = np.rint(gray * 65535).astype(np.int32)
        image = Image.fromarray(values, "I")
        return image, np.rint(values / 65535 * 255).astype(np.uint8)
    if mode == "F":
        return Image.fromarray(gray.astype(np.float32), "F"), expected
    if mode == "1":
        bits = gray > 0.5
        return Image.fromarray(bits).convert("1"), np.where(bits, 255, 0).astype(
            np.uint8
        )
    base = Image.fromarray(expected, "L")
    if mode == "L":
        return base, expected
    if mode == "LA":
        return base.convert("LA"), expected  # opaque alpha
    if mode == "RGBA":
        return base.convert("RGBA"), expected
    if mode == "P":
        return base.convert("P"), expected
    if mode == "CMYK":
        return base.convert("RGB").convert("CMYK"), expected
    raise AssertionError(mode)


MODES = ["I;16", "I;16B", "I;16L", "I", "F", "1", "L", "LA", "RGBA", "P", "CMYK"]


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_becomes_faithful_8_bit_rgb(mode):
    from helpers.preprocess import to_rgb

    image, expected = _image_in_mode(mode)
    rgb, converted = to_rgb(image)
    assert converted == mode and rgb.mode == "RGB"
    pixels = np.asarray(rgb)
    for channel in range(3):
        assert np.abs(pixels[..., channel].astype(int) - expected).max() <= 1


def test_transparent_pixels_are_composited_over_black():
    from helpers.preprocess import to_rgb

    image = Image.new("RGBA", (4, 4), (255, 255, 255, 0))
    image.putpixel((0, 0), (200, 100, 50, 255))
    palette = Image.new("P", (4, 4), 1)
    palette.putpalette([0, 0, 0, 250, 250, 250] + [0] * 762)
    palette.info["transparency"] = 1
    for source in (image, palette, Image.new("LA", (4, 4), (255, 0))):
        rgb, converted = to_rgb(source)
        assert converted is not None
        assert np.asarray(rgb)[3, 3].tolist() == [0, 0, 0]
    assert np.asarray(to_rgb(image)[0])[0, 0].tolist() == [200, 100, 50]


@pytest.mark.parametrize(
    "image, named",
    [
        (Image.fromarray(np.full((8, 8), -5, np.int32), "I"), "mode I"),
        (Image.fromarray(np.full((8, 8), 70000, np.int32), "I"), "mode I"),
        (Image.fromarray(np.full((8, 8), 300.0, np.float32), "F"), "mode F"),
        (Image.fromarray(np.full((8, 8), np.nan, np.float32), "F"), "mode F"),
    ],
)
def test_modes_without_a_faithful_conversion_are_refused_by_name(image, named):
    from helpers.preprocess import UnsupportedModeError, to_rgb

    with pytest.raises(UnsupportedModeError, match=named):
        to_rgb(image)


def _save_as_jpg_name(image: Image.Image, path: Path) -> None:
    """Save a PNG (or TIFF for F and I) under a .jpg name, as a careless copy does."""
    fmt = "TIFF" if image.mode in ("F", "I", "CMYK") else "PNG"
    image.save(path, format=fmt)


@pytest.mark.parametrize("modes", [["I;16", "L"], ["I;16B", "F", "P"], ["1", "RGBA"]])
def test_prepare_converts_and_notes_each_mode_once(tmp_path, modes, recwarn):
    from helpers.cache import load_split, prepare_cache

    folder = tiny_celeba(tmp_path / "src", 6)
    images = folder / "img_align_celeba"
    expected = {}
    for k, mode in enumerate(modes, 1):
        image, levels = _image_in_mode(mode)
        _save_as_jpg_name(image, images / f"{k:06d}.jpg")
        expected[f"{k:06d}.jpg"] = levels
    summary = prepare_cache(folder, tmp_path / "cache", 32, (0, 0, 178, 218),
                            progress=False)
    meta = json.loads((tmp_path / "cache" / "meta.json").read_text())
    reopened = Image.open(images / "000001.jpg").mode  # what PIL reads back
    assert sum(meta["converted"].values()) == len(modes)
    assert reopened in meta["converted"]
    assert summary["skipped"] == 0
    said = [w for w in recwarn if "not in 8-bit RGB" in str(w.message)]
    assert len(said) == 1 and "meta.json" in str(said[0].message)
    # a 16-bit or float image is a gray ramp, not pure white
    for split in ("train", "validation", "test"):
        cached, _, ids = load_split(tmp_path / "cache", split)
        for image_id, pixels in zip(ids, cached):
            if image_id in expected:
                assert pixels.min() < 60 and pixels.max() > 190, image_id


def test_prepare_skips_and_lists_an_unconvertible_mode(tmp_path):
    from helpers.cache import prepare_cache

    folder = tiny_celeba(tmp_path / "src", 4)
    bad = Image.fromarray(np.full((218, 178), 1000.0, np.float32), "F")
    bad.save(folder / "img_align_celeba" / "000002.jpg", format="TIFF")
    summary = prepare_cache(folder, tmp_path / "cache", 16, progress=False)
    assert [s["file"] for s in summary["skipped_files"]] == ["000002.jpg"]
    assert "mode F" in summary["skipped_files"][0]["reason"]


# A damaged cache at the same path ---------------------------------------------------
def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGES = {
    "truncated images": lambda c: _truncate(c / "train_images.npy"),
    "images cut by one byte": lambda c: _truncate(
        c / "train_images.npy", 1 - 1 / (c / "train_images.npy").stat().st_size
    ),
    "images grown": lambda c: (c / "validation_images.npy").open("ab").write(b"x"),
    "truncated attributes": lambda c: _truncate(c / "test_attributes.npy"),
    "missing ids": lambda c: (c / "train_ids.txt").unlink(),
    "garbled header": lambda c: (c / "train_images.npy").write_bytes(
        b"garbage" * 100
    ),
    "empty images": lambda c: (c / "test_images.npy").write_bytes(b""),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_prepare_verifies_an_existing_cache_and_rebuilds_a_damaged_one(
    tmp_path, capsys, damage
):
    from helpers.cache import load_split

    folder = tiny_celeba(tmp_path / "src", 9)
    cache = tmp_path / "cache"
    args = ["prepare", "--data", str(folder), "--cache", str(cache),
            "--image-size", "16"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 0
    assert "nothing to do" in capsys.readouterr().out  # a whole cache is reused
    DAMAGES[damage](cache)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "is damaged" in out and "nothing to do" not in out
    for split in ("train", "validation", "test"):
        load_split(cache, split)  # whole again
    assert not cache.with_name("cache.partial").exists()
    assert not cache.with_name("cache.old").exists()


def test_prepare_refuses_a_damaged_meta_json_with_a_followable_fix(tmp_path, capsys):
    folder = tiny_celeba(tmp_path / "src", 6)
    cache = tmp_path / "cache"
    args = ["prepare", "--data", str(folder), "--cache", str(cache)]
    assert main(args) == 0
    _truncate(cache / "meta.json")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"delete {cache}" in err and "meta.json" in err
    shutil.rmtree(cache)  # the fix, as written
    assert main(args) == 0


# Full disks -----------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A real tmpfs of a given size under tmp_path (root only; skipped otherwise)."""
    import subprocess

    mounted = []

    def make(size: str) -> Path:
        point = tmp_path / f"disk-{len(mounted)}"
        point.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip("cannot mount a small tmpfs here (needs root)")
        mounted.append(point)
        return point

    yield make
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def _one_error_line(capsys) -> str:
    err = [
        line
        for line in capsys.readouterr().err.splitlines()
        if line.startswith("error:") or "Traceback" in line
    ]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("size", ["300k", "1m"])
def test_prepare_on_a_full_disk_says_so_and_leaves_nothing(
    tmp_path, small_disk, capsys, size
):
    folder = tiny_celeba(tmp_path / "src", 30)
    cache = small_disk(size) / "cache"
    code = main(["prepare", "--data", str(folder), "--cache", str(cache),
                 "--image-size", "128"])
    line = _one_error_line(capsys)
    assert code == 1 and "no space left" in line and str(cache) in line
    assert [n for n in listing(cache.parent) if not n.endswith(".lock")] == []


@pytest.mark.parametrize("failing", ["disk_usage", "fallocate"])
def test_prepare_never_maps_unallocated_blocks(tmp_path, monkeypatch, capsys, failing):
    """Without the up-front check, allocating the array still fails cleanly."""
    import errno

    from helpers import cache as cache_module

    folder = tiny_celeba(tmp_path / "src", 12)
    if failing == "disk_usage":
        usage = shutil.disk_usage(tmp_path)
        monkeypatch.setattr(
            cache_module.shutil, "disk_usage", lambda p: usage._replace(free=1000)
        )
    else:
        def full(fd, offset, length):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(cache_module.os, "posix_fallocate", full, raising=False)
    cache = tmp_path / "cache"
    code = main(["prepare", "--data", str(folder), "--cache", str(cache)])
    line = _one_error_line(capsys)
    assert code == 1 and "no space left" in line
    assert not cache.exists() and not cache.with_name("cache.partial").exists()


def _train_args(cache_dir, run_dir, epochs=2):
    return ["train", "--preset", "smoke", "--data", str(cache_dir), "--run-dir",
            str(run_dir), "--epochs", str(epochs), "--batch-size", "16",
            "--train-limit", "32", "--val-limit", "16", "--verbose", "0"]


def _temporary_files(run_dir: Path) -> list[str]:
    return [
        p.relative_to(run_dir).as_posix()
        for p in run_dir.rglob("*")
        if p.name.startswith((".tmp-", "tmp-")) or p.name.endswith(".tmp")
    ]


def test_train_on_a_full_disk_records_failed_and_cleans_up(
    cache_dir, small_disk, capsys
):
    run_dir = small_disk("1m") / "run"
    code = main(_train_args(cache_dir, run_dir))
    line = _one_error_line(capsys)
    assert code == 1 and "no space left" in line
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"
    assert _temporary_files(run_dir) == []


@pytest.mark.parametrize(
    "error",
    [
        OSError("Unable to synchronously write data (file write failed: errno = 28, "
                "error message = 'No space left on device')"),
        OSError(28, "No space left on device"),
        RuntimeError("Can't decrement id ref count (errno = 28)"),
    ],
)
def test_a_backup_that_does_not_fit_leaves_no_temporary_file(
    cache_dir, tmp_path, monkeypatch, capsys, error
):
    import keras

    real_save = keras.Model.save_weights

    def full(self, path, *args, **kwargs):
        if Path(path).name.startswith("tmp-"):
            Path(path).write_bytes(b"\x89HDF partial")
            raise error
        return real_save(self, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save_weights", full)
    run_dir = tmp_path / "run"
    code = main(_train_args(cache_dir, run_dir))
    line = _one_error_line(capsys)
    assert code == 1 and "no space left" in line and str(run_dir) in line
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "failed" and info["epochs_done"] == 0
    assert _temporary_files(run_dir) == []
    # resuming after the space is freed works: the same command
    monkeypatch.setattr(keras.Model, "save_weights", real_save)
    assert main(_train_args(cache_dir, run_dir)) == 0
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_run_status_is_written_in_place_when_the_disk_is_full(tmp_path, monkeypatch):
    import errno

    from helpers import training
    from helpers.runs import RunPaths, write_info

    paths = RunPaths(tmp_path)
    write_info(tmp_path, status="running", epochs_done=1)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(training, "write_info", full)
    training.write_status(paths, status="failed", error="OSError: full")
    info = json.loads(paths.info.read_text())
    assert info == {"status": "failed", "epochs_done": 1, "error": "OSError: full"}


# Status after a signal -------------------------------------------------------------
class _StopAt:
    """A callback that stops training the way a user or a system does."""

    def __init__(self, how: str, batch: int):
        import keras

        self.how, self.batch = how, batch
        outer = self

        class Stop(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == outer.batch:
                    if outer.how == "sigterm":
                        os.kill(os.getpid(), __import__("signal").SIGTERM)
                    elif outer.how == "ctrl-c":
                        raise KeyboardInterrupt
                    else:
                        raise RuntimeError("a crash in the middle of an epoch")

        self.callback = Stop()


@pytest.mark.parametrize(
    "how, status", [("sigterm", "interrupted"), ("ctrl-c", "interrupted"),
                    ("crash", "failed")]
)
def test_run_json_tells_the_truth_after_a_stop(cache_dir, tmp_path, how, status):
    from helpers.config import preset
    from helpers.training import train

    config = preset("smoke", epochs=2, batch_size=16, train_limit=32, val_limit=16)
    run_dir = tmp_path / "run"
    stop = _StopAt(how, 0)
    expected = RuntimeError if how == "crash" else KeyboardInterrupt
    with pytest.raises(expected):
        train(config, cache_dir, run_dir, verbose=0, callbacks=[stop.callback])
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == status
    assert _temporary_files(run_dir) == []
    import signal

    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler removed
    history = train(config, cache_dir, run_dir, verbose=0)  # resumes and finishes
    assert len(history.epoch) == 2
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"


def test_sigterm_from_outside_stops_train_in_order(cache_dir, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    args = _train_args(cache_dir, run_dir, epochs=200)
    child = subprocess.Popen([sys.executable, "-m", "vaelab", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and not (run_dir / "backup").exists():
        time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err.decode()[-2000:]
    assert "SIGTERM" in err.decode()
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted"
    assert _temporary_files(run_dir) == []


# Typos that destroy work: no output over a run's own files --------------------------
@pytest.fixture
def fake_run(tmp_path):
    run = tmp_path / "run"
    (run / "backup").mkdir(parents=True)
    (run / "samples").mkdir()
    for name in ("config.json", "run.json", "history.csv"):
        (run / name).write_text("{}\n")
    (run / "best.keras").write_bytes(b"model")
    (run / "backup" / "training_metadata.json").write_text("{}")
    (run / "samples" / "epoch_001.png").write_bytes(b"png")
    return run


def _snapshot(folder: Path) -> dict:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    "out, why",
    [
        ("best.keras", "must end in .png"),
        ("run.json", "must end in .png"),
        ("history.csv", "must end in .png"),
        ("backup/training_metadata.json", "must end in .png"),
        ("loss_curves.png", "own loss_curves.png"),
        ("samples/epoch_001.png", "own samples"),
        ("backup/grid.png", "own backup"),
    ],
)
def test_sample_refuses_an_output_over_the_runs_files(fake_run, capsys, out, why):
    before = _snapshot(fake_run)
    with pytest.raises(SystemExit) as caught:
        main(["sample", "--run-dir", str(fake_run), "--out", str(fake_run / out)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert why in err and str(fake_run / out) in err
    assert _snapshot(fake_run) == before


@pytest.mark.parametrize("out", ["best.keras", "instructor.keras", "model.h5"])
def test_export_model_refuses_the_runs_own_model(fake_run, capsys, out):
    before = _snapshot(fake_run)
    with pytest.raises(SystemExit) as caught:
        instructor_main(["export-model", str(fake_run), str(fake_run / out), "--force"])
    assert caught.value.code == 2
    assert str(fake_run / out) in capsys.readouterr().err
    assert _snapshot(fake_run) == before


@pytest.mark.parametrize(
    "name", ["meta.json", "train_images.npy", "test_attributes.npy", "train_ids.txt"]
)
def test_no_output_lands_on_a_cache_file(tmp_path, name):
    import argparse

    from vaelab.validate import output_file_of

    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "meta.json").write_text("{}")
    with pytest.raises(argparse.ArgumentTypeError, match="cache"):
        output_file_of(Path(name).suffix)(str(cache / name))
    assert output_file_of(".png")(str(tmp_path / "grid.png")) == tmp_path / "grid.png"


# Advice that can be followed as written ---------------------------------------------
def _parse(command: str, **placeholders: str):
    """Parse a suggested `python -m vaelab ...` command with the CLI's own parser."""
    import argparse
    import importlib
    import shlex

    from vaelab.cli import COMMANDS

    assert "..." not in command, f"not runnable as written: {command}"
    words = shlex.split(command)
    assert words[:3] == ["python", "-m", "vaelab"], command
    words = [placeholders.get(w, w) for w in words[3:]]
    module, function = COMMANDS[words[0]][0].split(":")
    parser = argparse.ArgumentParser(prog=words[0])
    getattr(importlib.import_module(module), function)(parser)
    return parser.parse_args(words[1:])  # SystemExit(2) if the advice is wrong


def _commands(message: str) -> list[str]:
    import re

    return re.findall(r"`(python -m vaelab [^`]+)`", message)


def test_the_image_size_advice_works_as_written(tmp_path, slice_dir):
    from helpers.cache import prepare_cache
    from helpers.config import preset
    from helpers.training import train

    small = tmp_path / "cache16"
    prepare_cache(slice_dir, small, 16, progress=False)
    with pytest.raises(DataError) as caught:
        train(preset("smoke"), small, tmp_path / "run", verbose=0)
    message = str(caught.value)
    assert "--image-size" not in message.split("`")[0].replace(
        "train has no --image-size", ""
    )
    (command,) = _commands(message)
    new_cache = tmp_path / "cache64"
    args = _parse(command, CELEBA=str(slice_dir), NEW_CACHE=str(new_cache))
    assert main(["prepare", "--data", str(args.data), "--cache", str(args.cache),
                 "--image-size", str(args.image_size)]) == 0
    # "train with --data NEW_CACHE": the data is accepted (no size error)
    from helpers.student import TRAINING_PARTS, solution_module
    from helpers.training import _datasets

    module = solution_module(*TRAINING_PARTS, "build_my_vae")
    _datasets(preset("smoke", train_limit=8, val_limit=8), new_cache, module)


def test_the_not_a_run_and_damaged_model_advice_parse(tmp_path, fake_run):
    from helpers.config import preset
    from helpers.errors import LabError
    from helpers.runs import load_run

    with pytest.raises(LabError) as caught:
        load_run(tmp_path / "nothing")
    for command in _commands(str(caught.value)):
        _parse(command, DATA=str(tmp_path), DIR=str(tmp_path / "r"))
    preset("smoke").save(fake_run / "config.json")
    with pytest.raises(LabError) as caught:
        load_run(fake_run)
    commands = _commands(str(caught.value))
    assert commands
    for command in commands:
        args = _parse(command, DATA=str(tmp_path))
        assert args.preset == "smoke"


def test_every_flag_a_message_names_exists(tmp_path):
    """Flags named in advice (train's, prepare's) are ones their parser accepts."""
    import argparse
    import re

    from helpers.callbacks import nan_error
    from vaelab.cli.data import prepare_command
    from vaelab.cli.train import train_command
    import keras

    history = keras.callbacks.History()
    history.history = {"loss": [float("nan")], "kl_loss": [float("inf")]}
    messages = {"train": [str(nan_error(history, 3))]}
    parser = argparse.ArgumentParser()
    train_command(parser)
    known = {a for action in parser._actions for a in action.option_strings}
    for message in messages["train"]:
        for flag in re.findall(r"(--[a-z][a-z-]+)", message):
            assert flag in known, (flag, message)
    parser = argparse.ArgumentParser()
    prepare_command(parser)
    assert "--image-size" in {
        a for action in parser._actions for a in action.option_strings
    }


# Malformed credential files and variables -------------------------------------------
SECRET = "KGAT_0123456789abcdef"


@pytest.fixture
def kaggle_home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / ".kaggle"))
    for name in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(download, "_colab_userdata", lambda: None)
    return home / ".kaggle"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty"),
        (b"   \n\t", "empty"),
        (b"\xff\xfe\x00\x01", "not text"),
        (b"two tokens", "spaces"),
        (b"tok\x00en", "control"),
    ],
)
def test_a_bad_access_token_file_is_one_line(kaggle_home, capsys, content, problem):
    (kaggle_home / "access_token").write_bytes(content)
    (kaggle_home / "kaggle.json").write_text(
        json.dumps({"username": "student", "key": SECRET})
    )
    code = main(["download", "--source", "kaggle", "--dest", str(kaggle_home.parent)])
    line = _one_error_line(capsys)
    assert code == 2 and problem in line
    assert str(kaggle_home / "access_token") in line and "rm " in line
    assert SECRET not in line


@pytest.mark.parametrize(
    "content",
    ['[]', '42', '"text"', 'null', '{"username": ["a"], "key": "k"}',
     '{"username": "a", "key": {"k": 1}}', '{"username": "a"}', '{"key": 5}'],
)
def test_kaggle_json_of_the_wrong_shape_is_one_line(kaggle_home, capsys, content):
    (kaggle_home / "kaggle.json").write_text(content)
    code = main(["download", "--source", "kaggle", "--dest", str(kaggle_home.parent)])
    line = _one_error_line(capsys)
    assert code == 2 and str(kaggle_home / "kaggle.json") in line
    assert "unexpected" not in line and "TypeError" not in line


@pytest.mark.parametrize(
    "variable, value",
    [("KAGGLE_API_TOKEN", ""), ("KAGGLE_API_TOKEN", "   "),
     ("KAGGLE_API_TOKEN", "a b"), ("KAGGLE_USERNAME", " "), ("KAGGLE_KEY", "")],
)
def test_empty_or_garbled_variables_are_named(
    kaggle_home, monkeypatch, capsys, variable, value
):
    monkeypatch.setenv(variable, value)
    code = main(["download", "--source", "kaggle", "--dest", str(kaggle_home.parent)])
    line = _one_error_line(capsys)
    assert code == 2 and variable in line
