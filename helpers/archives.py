"""Recognise an archive by its bytes (zip, tar, tar.gz, ...) and list it safely.

:func:`list_members` says what each member is (file, folder, link, device), so that
the caller refuses an unsafe archive before writing anything (``tarfile.data_filter``'s
checks, done here so that Python 3.10 to 3.13 behave alike).
"""

from __future__ import annotations

import os
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from helpers.files import unsafe_member_name

# kind -> how people call it, for messages
KIND_NAMES = {
    "zip": "a zip archive",
    "tar": "a tar archive",
    "tar.gz": "a gzip-compressed tar archive",
    "tar.bz2": "a bzip2-compressed tar archive",
    "tar.xz": "an xz-compressed tar archive",
}
_COMPRESSED = {b"\x1f\x8b": "tar.gz", b"BZh": "tar.bz2", b"\xfd7zXZ\x00": "tar.xz"}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_READ_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError)


class ArchiveError(Exception):
    """The archive's bytes cannot be read: truncated, corrupt, or not an archive."""


def archive_kind(path: str | os.PathLike) -> str | None:
    """"zip", "tar", "tar.gz", "tar.bz2" or "tar.xz" from the file's bytes, or None.

    A compressed file that holds no tar is found out when it is listed.
    """
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
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

    @property
    def original(self) -> str:
        """The name as the archive spells it (before "\\" became "/")."""
        return getattr(self.handle, "filename", None) or self.handle.name


def unsafe_reason(member: Member) -> str | None:
    """Why extracting ``member`` is unsafe, or None for a plain entry."""
    reasons = {
        "symlink": "is a symbolic link",
        "hardlink": "is a hard link",
        "device": "is a device file or FIFO",
    }
    return reasons.get(member.kind) or unsafe_member_name(member.name)


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        return "device"
    return "folder" if info.is_dir() else "file"


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.isdir():
        return "folder"
    return "file" if info.isfile() else "device"  # devices, FIFOs, unknown types


def open_archive(path: str | os.PathLike, kind: str):
    """Open ``path`` as ``kind`` (from :func:`archive_kind`); raise ArchiveError."""
    try:
        if kind == "zip":
            return zipfile.ZipFile(path)
        return tarfile.open(path, "r:" + kind[4:])  # "tar.gz" -> "r:gz"
    except _READ_ERRORS as error:
        raise ArchiveError(f"{type(error).__name__}: {error}") from None


def list_members(archive) -> list[Member]:
    """Every member of an open zip or tar (a tar is read to its end, so a truncated
    one raises ArchiveError here, before anything is extracted)."""
    if isinstance(archive, zipfile.ZipFile):
        return [
            Member(i.filename.replace("\\", "/"), _zip_kind(i), i.file_size, i)
            for i in archive.infolist()
        ]
    try:
        infos = archive.getmembers()
    except (*_READ_ERRORS, ValueError) as error:
        raise ArchiveError(f"{type(error).__name__}: {error}") from None
    members = []
    for info in infos:
        name = info.name.replace("\\", "/").removeprefix("./")
        members.append(Member(name, _tar_kind(info), max(info.size, 0), info))
    return members


def extract_member(archive, member: Member, target: Path) -> None:
    """Write one checked file or folder member to ``target``, never more bytes than
    it declares, with ordinary permissions (no owner or set-uid bit is kept)."""
    if member.kind == "folder":
        target.mkdir(parents=True, exist_ok=True)
        return
    if member.kind != "file":
        raise ValueError(f"refusing to extract {member.name!r} ({member.kind})")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(archive, zipfile.ZipFile):
        source = archive.open(member.handle)
    else:
        source = archive.extractfile(member.handle)
    written = 0
    try:
        with source, open(target, "wb") as out:
            for block in iter(lambda: source.read(1 << 20), b""):
                written += len(block)
                if written > member.size:  # never more than the header declared
                    raise ArchiveError(f"{member.name} is larger than it declares")
                out.write(block)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise ArchiveError(f"{type(error).__name__}: {error}") from None
    os.chmod(target, 0o644)
