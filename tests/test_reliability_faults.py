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
from helpers.cli import main
from helpers.download import download_celeba
from helpers.errors import DataError, DownloadError


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
