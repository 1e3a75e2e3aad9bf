"""Recognise an archive by its bytes (zip, tar, tar.gz, ...) and list it safely.

A CelebA copy may come as a ``.zip`` or as a tar archive (``.tar``, ``.tar.gz``,
``.tgz``, ``.tar.bz2``, ``.tar.xz``). What a file is comes from its first bytes,
never from its name: a ``.tar.gz`` renamed ``.zip`` is still read as a tar, and a
web page saved as ``.tar.gz`` is still called a web page by the caller.

:func:`list_members` returns every member with what it is (file, folder, link,
device) so the caller can refuse an unsafe archive before writing anything:
links of any kind, device files and FIFOs, absolute names, drive letters and
``..`` components are all refused (the checks of ``tarfile.data_filter``, done
here so that Python 3.10 to 3.13 behave alike).
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
_COMPRESSED = {
    b"\x1f\x8b": "tar.gz",
    b"BZh": "tar.bz2",
    b"\xfd7zXZ\x00": "tar.xz",
}
_TAR_MODES = {"tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz"}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")


class ArchiveError(Exception):
    """The archive's bytes cannot be read: truncated, corrupt, or not an archive."""


def archive_kind(path: str | os.PathLike) -> str | None:
    """Return "zip", "tar", "tar.gz", "tar.bz2" or "tar.xz" from the file's bytes.

    None when the bytes are none of these (a web page, an image, garbage). A
    compressed file is called a tar by its compression's magic bytes alone; a
    compressed file that holds no tar is found out when it is listed.
    """
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    for magic, kind in _COMPRESSED.items():
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    if zipfile.is_zipfile(path):  # a zip with a prefix (self-extracting)
        return "zip"
    return None


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
    """Return why extracting ``member`` is unsafe, or None for a plain entry."""
    name = member.name
    if member.kind == "symlink":
        return "is a symbolic link"
    if member.kind == "hardlink":
        return "is a hard link"
    if member.kind == "device":
        return "is a device file or FIFO"
    return unsafe_member_name(name)


def _zip_members(archive: zipfile.ZipFile) -> list[Member]:
    members = []
    for info in archive.infolist():
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            kind = "symlink"
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            kind = "device"
        elif info.is_dir():
            kind = "folder"
        else:
            kind = "file"
        name = info.filename.replace("\\", "/")
        members.append(Member(name, kind, info.file_size, info))
    return members


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hardlink"
    if info.isdir():
        return "folder"
    if info.isfile():
        return "file"
    return "device"  # character or block device, FIFO, or an unknown type


def open_archive(path: str | os.PathLike, kind: str):
    """Open ``path`` as ``kind`` (from :func:`archive_kind`); raise ArchiveError."""
    try:
        if kind == "zip":
            return zipfile.ZipFile(path)
        return tarfile.open(path, _TAR_MODES[kind])
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as error:
        raise ArchiveError(f"{type(error).__name__}: {error}") from None


def list_members(archive) -> list[Member]:
    """Every member of an open zip or tar, read to its end (raises ArchiveError).

    Listing a tar reads the whole (decompressed) stream, so a truncated or
    corrupt tar is found here, before anything is extracted.
    """
    if isinstance(archive, zipfile.ZipFile):
        return _zip_members(archive)
    try:
        infos = archive.getmembers()
    except (tarfile.TarError, EOFError, OSError, ValueError) as error:
        raise ArchiveError(f"{type(error).__name__}: {error}") from None
    members = []
    for info in infos:
        name = info.name.replace("\\", "/")
        if name.startswith("./"):
            name = name[2:]
        members.append(Member(name, _tar_kind(info), max(info.size, 0), info))
    return members


def extract_member(archive, member: Member, target: Path) -> None:
    """Write one checked file or folder member to ``target`` (a plain file/folder).

    Only folders and regular files are ever created, with ordinary permissions
    (0o755 / 0o644): no link, device, owner or set-uid bit comes from the archive.
    """
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
