"""Recognise an archive by its bytes (zip, tar, tar.gz, ...), list it and name its
unsafe entries (``tarfile.data_filter``'s checks, alike on Python 3.10 to 3.13)."""

from __future__ import annotations

import contextlib
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from helpers.files import unsafe_member_name

KIND_NAMES = {
    "zip": "a zip archive",
    "tar": "a tar archive",
    "tar.gz": "a gzip-compressed tar archive",
    "tar.bz2": "a bzip2-compressed tar archive",
    "tar.xz": "an xz-compressed tar archive",
}
_COMPRESSED = {b"\x1f\x8b": "tar.gz", b"BZh": "tar.bz2", b"\xfd7zXZ\x00": "tar.xz"}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_UNSAFE_KINDS = {
    "symlink": "is a symbolic link",
    "hardlink": "is a hard link",
    "device": "is a device file or FIFO",
}
_ZIP_TYPES = dict.fromkeys((stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO), "device")
_ZIP_TYPES[stat.S_IFLNK] = "symlink"
_TAR_TYPES = {tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
_TAR_TYPES[tarfile.DIRTYPE] = "folder"
_BROKEN = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, lzma.LZMAError)


class ArchiveError(Exception):
    """The archive's bytes cannot be read: truncated, corrupt, or not an archive."""


@contextlib.contextmanager
def _reading(*more: type[BaseException]):
    """Raise the errors of reading a broken zip or tar (or its data) as ArchiveError."""
    try:
        yield
    except (*_BROKEN, *more) as error:
        raise ArchiveError(f"{type(error).__name__}: {error}") from None


def archive_kind(path: str | os.PathLike) -> str | None:
    """The kind (a key of KIND_NAMES) by the file's first bytes, or None."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    if kind := next((k for m, k in _COMPRESSED.items() if head.startswith(m)), None):
        return kind
    if head[257:262] == b"ustar":
        return "tar"
    return "zip" if zipfile.is_zipfile(path) else None  # a zip with a prefix


@dataclass(frozen=True)
class Member:
    """One entry of an archive: its name ("/"-separated), kind and size."""

    name: str
    kind: str  # "file", "folder", "symlink", "hardlink", "device"
    size: int
    handle: object  # the zipfile.ZipInfo or tarfile.TarInfo


def unsafe_entries(members: list[Member]) -> list[str]:
    """Name each member unsafe to extract (a link, a device, a bad path) as the
    archive spells it (before "\\" became "/"), and why."""
    return [
        f"{getattr(m.handle, 'filename', None) or m.handle.name!r} {why}"
        for m in members
        if (why := _UNSAFE_KINDS.get(m.kind) or unsafe_member_name(m.name))
    ]


@contextlib.contextmanager
def open_archive(path: str | os.PathLike, kind: str):
    """Open ``path`` as ``kind`` (:func:`archive_kind`); yield it and its members (a
    tar is read to its end: one truncated raises ArchiveError before any extraction)."""
    mode = "r:" + kind[4:]  # for a tar: "tar.gz" -> "r:gz"
    with _reading(OSError):
        archive = zipfile.ZipFile(path) if kind == "zip" else tarfile.open(path, mode)
    with archive:
        with _reading(OSError, ValueError):
            if kind == "zip":
                infos = [(i, i.filename, i.file_size) for i in archive.infolist()]
            else:
                infos = [(i, i.name, max(i.size, 0)) for i in archive.getmembers()]
        yield archive, [
            Member(name.replace("\\", "/").removeprefix("./"), _kind(i), size, i)
            for i, name, size in infos
        ]


def _kind(info) -> str:
    if isinstance(info, zipfile.ZipInfo):
        other = "folder" if info.is_dir() else "file"
        return _ZIP_TYPES.get(stat.S_IFMT(info.external_attr >> 16), other)
    return _TAR_TYPES.get(info.type, "file" if info.isfile() else "device")


def extract_member(archive, member: Member, target: Path) -> None:
    """Write one checked file or folder member to ``target``, never more bytes than
    it declares, with ordinary permissions (no owner or set-uid bit is kept)."""
    if member.kind == "folder":
        target.mkdir(parents=True, exist_ok=True)
        return
    if member.kind != "file":
        raise ValueError(f"refusing to extract {member.name!r} ({member.kind})")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with _reading():
        if isinstance(archive, zipfile.ZipFile):
            source = archive.open(member.handle)
        else:
            source = archive.extractfile(member.handle)
        with source, open(target, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                written += len(block)
                if written > member.size:  # never more than the header declared
                    raise ArchiveError(f"{member.name} is larger than it declares")
                out.write(block)
    os.chmod(target, 0o644)
