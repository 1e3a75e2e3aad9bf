"""Get the real CelebA from Kaggle, opendatasets, a mirror URL or a local copy.

Typical use::

    from helpers.download import download_celeba
    files = download_celeba("data")                     # Kaggle, via kagglehub
    files = download_celeba("data", "local", path="/content/drive/MyDrive/celeba.zip")

    python -m helpers download --source kaggle --dest data

Every source ends the same way: the copy is checked with :func:`verify` (image count,
attribute and partition files) and a small marker file, ``DEST/.celeba-verified.json``,
records where the verified copy lives. A second call finds the marker, re-checks the
copy cheaply and does nothing else, so it works offline.

Where the data lands:

- ``kaggle``: kagglehub downloads into its own cache (``~/.cache/kagglehub``, or
  ``$KAGGLEHUB_CACHE``); on Colab and in Kaggle notebooks it mounts the dataset
  read-only instead, ignoring any output folder. Nothing is copied: ``DEST/celeba``
  becomes a symlink to that folder and the marker records its real path. Where a
  symlink cannot be made (Windows without developer mode) the marker alone is used.
- ``opendatasets``: ``DEST/celeba-dataset`` (the Kaggle layout), as opendatasets does.
- ``url`` / ``local`` archive (a zip or a tar, .tar.gz, .tgz, ... recognised by
  its bytes, not its name): the member list is checked (safe names, no links or
  devices, enough disk, a CelebA layout at any depth) before anything is written,
  then the layout's folder is extracted into ``DEST/.partial-XXXX/payload`` and
  renamed to ``DEST/celeba`` in one step, so a half-extracted copy never looks
  complete; an extraction that fails verification is removed. A downloaded
  archive is deleted after the copy is extracted; a local one is never touched.
- ``local`` folder: used where it is; ``DEST/celeba`` links to it, as for Kaggle.

Kaggle credentials (see :func:`find_kaggle_credentials`): an API token before an
older username/key pair, each from the environment, Colab secrets or ``~/.kaggle``;
with none the public dataset is downloaded anonymously, where Kaggle allows it.

Errors are :class:`helpers.errors.LabError` subclasses whose message says what went
wrong and what to do, true to what was sent: no credentials, credentials rejected
(401), consent missing (403), not found (404), or no network. No message, log or
file ever contains a Kaggle key or token.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import errno
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from helpers.archives import (
    KIND_NAMES,
    ArchiveError,
    Member,
    archive_kind,
    extract_member,
    list_members,
    open_archive,
    unsafe_reason,
)
from helpers.celeba import (
    CELEBA_TOTAL,
    CelebAFiles,
    count_images,
    describe_missing,
    detect_layout,
    expected_paths_text,
    find_celeba,
    read_attributes,
    read_partitions,
)
from helpers.environment import in_colab, in_notebook
from helpers.errors import CredentialsError, DataError, DownloadError, LabError
from helpers.files import atomic_write_text, sha256_file

SOURCES = ("kaggle", "opendatasets", "url", "local")
KAGGLE_HANDLE = "jessicali9530/celeba-dataset"
KAGGLE_URL = f"https://www.kaggle.com/datasets/{KAGGLE_HANDLE}"
MARKER = ".celeba-verified.json"
LINK_NAME = "celeba"  # DEST/celeba: the extracted copy, or a link to kagglehub's
NETWORK_TIMEOUT = 30.0  # seconds to connect or between bytes; a dead link fails fast

_KAGGLE_HINT = f"python -m helpers download --source kaggle --dest DIR ({KAGGLE_URL})"


# Verification and the completion marker -------------------------------------------
def verify(files: CelebAFiles, expected_images: int | None = None) -> CelebAFiles:
    """Check that a located copy of CelebA is complete and consistent.

    Args:
        files: located files, from :func:`helpers.celeba.find_celeba`.
        expected_images: the exact image count required; None accepts any positive
            count (a generated slice) but warns when it is not CelebA's 202,599.

    Returns:
        ``files`` unchanged.

    Raises:
        DataError: no images, a count other than ``expected_images``, an attribute
            or partition file that does not parse, or lists that disagree with the
            image folder.
    """
    n = count_images(files)
    if n == 0:
        raise DataError(f"{files.image_dir} holds no .jpg images.")
    if expected_images is not None and n != expected_images:
        raise DataError(
            f"{files.image_dir} holds {n:,} images, expected {expected_images:,}: "
            "the download or extraction is incomplete."
        )
    if expected_images is None and n != CELEBA_TOTAL:
        warnings.warn(
            f"{files.image_dir} holds {n:,} images, not CelebA's {CELEBA_TOTAL:,}: "
            "fine for a generated slice, but a partial copy if you meant the real "
            "data.",
            UserWarning,
            stacklevel=2,
        )
    ids, _ = read_attributes(files)
    partitions = read_partitions(files)
    counts = {files.attr_file: len(ids), files.partition_file: len(partitions)}
    for path, count in counts.items():
        if count != n:
            raise DataError(
                f"{path} lists {count:,} images but {files.image_dir} holds {n:,}: "
                "the lists and the images do not belong together."
            )
    with os.scandir(files.image_dir) as entries:
        on_disk = {e.name for e in entries if e.name.lower().endswith(".jpg")}
    missing = sorted(set(ids) - on_disk)
    if missing:
        raise DataError(
            f"{len(missing):,} images listed in {files.attr_file} are not in "
            f"{files.image_dir}, e.g. {', '.join(missing[:3])}."
        )
    return files


def verified_copy(
    dest: str | os.PathLike, expected_images: int | None = None
) -> CelebAFiles | None:
    """Return the copy a marker in ``dest`` records, if it is still there and whole.

    The check is cheap (folder listings only): the recorded folder must still hold
    a CelebA layout with the recorded image count (and ``expected_images``, if set).

    Returns:
        CelebAFiles, or None when there is no marker or the copy changed.
    """
    marker = Path(dest).expanduser() / MARKER
    try:
        record = json.loads(marker.read_text())
        files = find_celeba(record["root"])
        images = count_images(files)
    except (OSError, ValueError, KeyError, TypeError, DataError):
        return None
    if images != record.get("images") or expected_images not in (None, images):
        return None
    return files


def _write_marker(dest: Path, files: CelebAFiles, source: str, images: int) -> None:
    record = {
        "source": source,
        "root": str(Path(files.root).resolve()),
        "layout": files.layout,
        "images": images,
        "verified_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    atomic_write_text(dest / MARKER, json.dumps(record, indent=2) + "\n")


# Recognising what was saved where a zip was expected ------------------------------
def _html_explanation(path: Path) -> str | None:
    """Explain a web page saved under a .zip name, or return None if it is not one."""
    with open(path, "rb") as f:
        head = f.read(64 * 1024)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not (text.startswith(b"<!doctype html") or text.startswith(b"<html")):
        return None
    size = path.stat().st_size
    drive_words = (b"google drive", b"quota", b"virus scan", b"drive.google")
    if any(word in text for word in drive_words):
        return (
            f"{path} is not a zip but a {size:,}-byte Google Drive web page. Google "
            "Drive shows it instead of the file when a shared file was downloaded too "
            'often ("download quota exceeded"; the quota resets within 24 hours) or '
            "when a large file needs a virus-scan confirmation. Do not wait for it: "
            f"download from Kaggle instead: {_KAGGLE_HINT}"
        )
    return (
        f"{path} is not a zip but a {size:,}-byte HTML web page (a login, error or "
        "preview page was saved instead of the file). Check that the link downloads "
        f"the file itself, or use Kaggle: {_KAGGLE_HINT}"
    )


def _check_zip(path: Path) -> None:
    """Raise DownloadError unless ``path`` is a readable zip archive."""
    explanation = _html_explanation(path)
    if explanation:
        raise DownloadError(explanation)
    if not zipfile.is_zipfile(path):
        size = path.stat().st_size
        raise DownloadError(
            f"{path}: the zip is truncated or corrupt ({size:,} bytes); download it "
            "again (the full CelebA zip is over 1 GB)."
        )


def _check_archive(path: Path) -> str:
    """Return the kind of archive ``path`` is by its bytes ("zip", "tar.gz", ...).

    Raises:
        DownloadError: a web page, or neither a zip nor a tar (named as such).
    """
    explanation = _html_explanation(path)
    if explanation:
        raise DownloadError(explanation)
    kind = archive_kind(path)
    if kind is None:
        size = path.stat().st_size
        what = "an empty file" if size == 0 else f"{size:,} bytes"
        raise DownloadError(
            f"{path} is neither a zip nor a tar archive ({what}; its first bytes "
            "match no archive format): it is truncated, corrupt or another kind of "
            "file. Download it again, or use Kaggle: " + _KAGGLE_HINT
        )
    if kind == "zip":
        _check_zip(path)
    return kind


def _corrupt(path: Path, kind: str, error) -> DownloadError:
    return DownloadError(
        f"{path}: {KIND_NAMES[kind]}, but truncated or corrupt "
        f"({path.stat().st_size:,} bytes; {error}); download it again."
    )


# Safe extraction -------------------------------------------------------------------
def safe_extract_zip(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    name: str | None = None,
    replace: bool = False,
    celeba_layout: bool = False,
) -> Path:
    """Extract a zip or tar archive into ``dest/name`` safely and all at once.

    The archive's kind comes from its bytes (zip, tar, tar.gz, tar.bz2, tar.xz),
    not its name. Every entry is checked before anything is written: an absolute
    path, a drive letter, a ``..`` component, a symbolic or hard link, or a device
    file refuses the whole archive, and so does a total size larger than the free
    disk. The entries go to ``dest/.partial-XXXX/payload`` (deep enough that
    :func:`helpers.celeba.find_celeba` on ``dest`` never mistakes it for data) and
    are renamed to ``dest/name`` in one step when every byte is out; an interrupted
    run leaves only a ``.partial-`` folder, removed by the next call.

    Args:
        zip_path: the archive.
        dest: the folder to extract under (created if needed).
        name: the folder the entries end up in; defaults to the archive's stem.
        replace: remove an existing ``dest/name`` first instead of refusing.
        celeba_layout: find the CelebA layout in the member list first (at any
            depth), refuse an archive without one before writing anything, and
            extract only the layout's folder, so that ``dest/name`` holds the
            layout at its root.

    Returns:
        ``dest/name``, holding the archive's entries.

    Raises:
        DownloadError: an HTML page or broken archive, an unsafe entry, too little
            free disk, or ``dest/name`` already exists (and ``replace`` is False).
        DataError: ``celeba_layout`` and the archive holds no CelebA layout.
    """
    zip_path, dest = Path(zip_path), Path(dest).expanduser()
    stem = zip_path.name
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    target = dest / (name or stem)
    kind = _check_archive(zip_path)
    try:
        with open_archive(zip_path, kind) as archive:
            members = list_members(archive)
            _refuse_unsafe(zip_path, members)
            if celeba_layout:
                members = _layout_members(zip_path, kind, members)
            if target.exists() or target.is_symlink():
                if not replace:
                    raise DownloadError(
                        f"{target} already exists: remove it or pass replace=True."
                    )
            dest.mkdir(parents=True, exist_ok=True)
            _check_free_space(zip_path, dest, members)
            for stale in dest.glob(".partial-*"):
                print(f"removing an unfinished extraction: {stale}")
                shutil.rmtree(stale, ignore_errors=True)
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest))
            try:
                payload = partial / "payload"
                _extract_all(zip_path, archive, members, payload)
                payload.mkdir(exist_ok=True)  # an empty archive
                if target.is_symlink() or target.is_file():
                    target.unlink()
                elif target.exists():
                    shutil.rmtree(target)
                os.replace(payload, target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except ArchiveError as error:
        raise _corrupt(zip_path, kind, error) from None
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as error:
        raise DownloadError(
            f"{zip_path}: the zip is truncated or corrupt "
            f"({zip_path.stat().st_size:,} bytes; {error}); download it again."
        ) from None
    return target


def _refuse_unsafe(path: Path, members: list[Member]) -> None:
    unsafe = [(m.original, why) for m in members if (why := unsafe_reason(m))]
    if unsafe:
        shown = "; ".join(f"{n!r} {why}" for n, why in unsafe[:3])
        raise DownloadError(
            f"refused to extract {path}: {len(unsafe)} unsafe entr"
            f"{'y' if len(unsafe) == 1 else 'ies'} ({shown}). Nothing was "
            "written. A genuine CelebA archive has none: get it from Kaggle."
        )


def _layout_members(path: Path, kind: str, members: list[Member]) -> list[Member]:
    """The members under the archive's CelebA layout, renamed relative to it."""
    names = [m.name for m in members if m.kind == "file"]
    found = detect_layout(names)
    if found is None:
        raise DataError(
            f"No CelebA layout found in {path} ({KIND_NAMES[kind]}); nothing was "
            f"extracted. Expected, at any depth:\n{expected_paths_text()}\n"
            f"Closest matches:\n{describe_missing(names)}\n"
            "Use the CelebA archive from Kaggle, or unpack it yourself and pass the "
            "folder: --source local --from FOLDER."
        )
    prefix = found[0]
    if prefix:
        print(f"CelebA found under {prefix} in {path}: extracting that folder")
    kept = []
    for member in members:
        name = member.name.removeprefix("./")
        if name.startswith(prefix) and name.rstrip("/") != prefix.rstrip("/"):
            kept.append(dataclasses.replace(member, name=name[len(prefix) :]))
    return kept


def _check_free_space(path: Path, dest: Path, members: list[Member]) -> None:
    needed = sum(m.size for m in members if m.kind == "file")
    free = shutil.disk_usage(dest).free
    if needed > free:
        raise DownloadError(
            f"extracting {path} needs {needed / 1e9:.1f} GB but only "
            f"{free / 1e9:.1f} GB is free under {dest}: free some space, or pass "
            "a --dest on another disk."
        )


def _extract_all(path: Path, archive, members: list[Member], payload: Path) -> None:
    print(f"extracting {len(members):,} entries of {path} ...")
    for k, member in enumerate(members, 1):
        if isinstance(archive, zipfile.ZipFile):
            info = copy.copy(member.handle)
            info.filename = member.name  # the layout's folder becomes the root
            archive.extract(info, payload)
        else:
            extract_member(archive, member, payload / member.name)
        if k % 50_000 == 0:
            print(f"  {k:,} / {len(members):,}")


# Network errors ----------------------------------------------------------------------
def _causes(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        reason = getattr(error, "reason", None)
        if isinstance(reason, BaseException):  # urllib's URLError.reason
            yield reason
        error = error.__cause__ or error.__context__


def _network_reason(error: BaseException) -> str | None:
    """Name the connection failure behind ``error``, or None if it is not one."""
    try:
        import requests

        requests_errors = (requests.ConnectionError, requests.Timeout)
    except ImportError:  # pragma: no cover - requests comes with kagglehub
        requests_errors = ()
    unreachable = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return "the server's name could not be looked up"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return f"no answer within {NETWORK_TIMEOUT:g} s"
        if isinstance(cause, ConnectionError) or (
            isinstance(cause, OSError) and cause.errno in unreachable
        ):
            return "the connection failed"
        if requests_errors and isinstance(cause, requests_errors):
            return "the connection failed"
    return None


def _http_status(error: BaseException) -> int | None:
    for cause in _causes(error):
        if isinstance(cause, urllib.error.HTTPError):
            return cause.code
        response = getattr(cause, "response", None)
        if getattr(response, "status_code", None) is not None:
            return int(response.status_code)
    return None


def _network_error(what: str, reason: str) -> DownloadError:
    return DownloadError(
        f"could not reach {what}: the network is unreachable ({reason}). Check "
        "the internet connection (on Colab: is the runtime connected?) and run the "
        "same command again. Without internet, copy CelebA here yourself and use "
        "--source local --from PATH."
    )


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    """Give sockets without their own timeout (urllib's) a finite one, for a while."""
    before = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(before)


# Kaggle credentials ------------------------------------------------------------------
# What kagglehub 1.0 sends, in its order: a token (KAGGLE_API_TOKEN, ~/.kaggle/
# access_token) before a legacy username/key pair (KAGGLE_USERNAME + KAGGLE_KEY,
# then kaggle.json). In Colab it reads one secret, KAGGLE_API_TOKEN, and swallows
# every error, so secrets named KAGGLE_USERNAME / KAGGLE_KEY were never read. The
# lab reads the secrets itself (the token first, then the pair) and hands what it
# found to kagglehub through its documented environment variables, only for the
# length of the download. With nothing found it tries the anonymous download Kaggle
# allows for public datasets, and a refusal then says that nothing was sent.
KAGGLE_SETTINGS = "https://www.kaggle.com/settings"
TOKEN_VARIABLE = "KAGGLE_API_TOKEN"
PAIR_VARIABLES = ("KAGGLE_USERNAME", "KAGGLE_KEY")
_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


@dataclass(frozen=True)
class KaggleCredentials:
    """Which Kaggle credentials a download sends, and where they came from.

    ``kind`` is "token", "pair" or "none"; ``source`` names where they were found
    (a variable, a Colab secret or a file: never a value). ``env`` holds the
    variables to give kagglehub for the download (secret values: it is neither
    printed nor part of ``repr``).
    """

    kind: str
    source: str
    env: dict = field(default_factory=dict, repr=False, compare=False)
    notes: tuple = ()

    @property
    def sent(self) -> bool:
        return self.kind != "none"

    def describe(self) -> str:
        """One line for the student: what will be sent to Kaggle."""
        if not self.sent:
            return (
                "Kaggle: no credentials found, so none are sent: trying the anonymous "
                "download Kaggle allows for public datasets. (To sign in, add your "
                f"API token from {KAGGLE_SETTINGS} as the Colab secret "
                f"{TOKEN_VARIABLE}, or the environment variable of that name.)"
            )
        what = "API token" if self.kind == "token" else "username and key"
        return f"Kaggle: signing in with the {what} from {self.source}."

    @contextlib.contextmanager
    def exported(self):
        """Set ``env`` in os.environ during the block only, then restore it."""
        saved = {name: os.environ.get(name) for name in self.env}
        os.environ.update(self.env)
        try:
            yield self
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _kaggle_json_path() -> Path:
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle"
    return Path(folder) / "kaggle.json"


def _ways_to_sign_in() -> str:
    json_path = _kaggle_json_path()
    return (
        f"Create an API token at {KAGGLE_SETTINGS} (API, Create New Token), then "
        "give it in one of these ways and run again:\n"
        f"  1. on Colab: the notebook secret {TOKEN_VARIABLE} (the key icon on the "
        "left; switch on its notebook access);\n"
        f"  2. elsewhere: the environment variable {TOKEN_VARIABLE};\n"
        "  3. an older username/key pair: the Colab secrets or environment variables "
        f"KAGGLE_USERNAME and KAGGLE_KEY, or the kaggle.json file saved as "
        f"{json_path} (or in the folder named by KAGGLE_CONFIG_DIR), then "
        f"`chmod 600 {json_path}`.\n"
        "Or use a copy you already have: --source local --from ZIP_OR_FOLDER."
    )


def _bad_kaggle_json(path: Path, problem: str) -> CredentialsError:
    return CredentialsError(
        f"{path} is not a usable Kaggle credentials file: {problem}. Replace it "
        f"with a fresh kaggle.json from {KAGGLE_SETTINGS} (API, Create New Token; "
        'it reads {"username": "...", "key": "..."}), or delete it and give an API '
        f"token as {TOKEN_VARIABLE} (a Colab secret or environment variable)."
    )


def read_kaggle_json(path: str | os.PathLike) -> tuple[str, str]:
    """Read a kaggle.json file; return (username, key).

    Raises:
        CredentialsError: one line naming the file, what is wrong with it (a
            folder, unreadable, empty, not JSON, not an object, a missing, empty or
            non-string field) and the fix. It never shows the file's content.
    """
    path = Path(path)
    if path.is_dir():
        raise _bad_kaggle_json(path, "it is a folder, not a file")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _bad_kaggle_json(path, "it is not text") from None
    except OSError as error:
        raise _bad_kaggle_json(
            path, f"it cannot be read ({error.strerror or type(error).__name__})"
        ) from None
    if not text.strip():
        raise _bad_kaggle_json(path, "it is empty")
    try:
        record = json.loads(text)
    except ValueError as error:
        where = getattr(error, "lineno", None)
        at = f" (line {where}, column {error.colno})" if where else ""
        raise _bad_kaggle_json(path, f"it is not valid JSON{at}") from None
    if not isinstance(record, dict):
        kind = _JSON_TYPES.get(type(record), type(record).__name__)
        raise _bad_kaggle_json(path, f"it holds {kind}, not a JSON object")
    missing = [name for name in ("username", "key") if name not in record]
    if missing:
        names = " and ".join(f'"{name}"' for name in missing)
        raise _bad_kaggle_json(path, f"it has no {names} field")
    values = []
    for name in ("username", "key"):
        value = record[name]
        if not isinstance(value, str):
            kind = _JSON_TYPES.get(type(value), "an object")
            raise _bad_kaggle_json(path, f'its "{name}" is {kind}, not a string')
        if not value.strip():
            raise _bad_kaggle_json(path, f'its "{name}" is empty')
        values.append(value.strip())
    return values[0], values[1]


def _token_problem(text: str) -> str | None:
    if not text.strip():
        return "it is empty"
    if any(ch.isspace() for ch in text.strip()) or not text.strip().isprintable():
        return "it holds spaces or control characters, not one token"
    if not text.strip().isascii():
        return "it holds non-ASCII characters, not a token"
    return None


def _check_token_text(text: str, where: str) -> None:
    problem = _token_problem(text)
    if problem:
        raise CredentialsError(
            f"{where} is not a usable Kaggle API token: {problem}. Set it to the "
            f"token from {KAGGLE_SETTINGS} (API, Create New Token), and run again."
        )


def _read_token_file(path: Path) -> str:
    """The token in ``path`` (kagglehub reads it too); a bad file is one clear line.

    An empty, whitespace-only, binary or unreadable token file would make
    kagglehub fail (or send garbage), so it is refused with the fix.
    """
    fix = (
        f"put your API token from {KAGGLE_SETTINGS} (API, Create New Token) in "
        f"it, or delete it (`rm {path}`), and run again"
    )
    if path.is_dir():
        raise CredentialsError(f"{path} is a folder, not a token file: {fix}.")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsError(f"{path} is not text (binary data): {fix}.") from None
    except OSError as error:
        raise CredentialsError(
            f"{path} cannot be read ({error.strerror or type(error).__name__}): {fix}."
        ) from None
    problem = _token_problem(text)
    if problem:
        raise CredentialsError(
            f"{path} is not a usable Kaggle API token: {problem}; {fix}."
        )
    return text.strip()


def _colab_userdata():
    """google.colab.userdata in Colab, else None."""
    if not in_colab():
        return None
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return None
    return userdata


def _colab_secret(userdata, name: str, notes: list) -> str | None:
    """The Colab secret ``name`` (whitespace removed), or None if it is not set.

    Raises:
        CredentialsError: the secret exists but this notebook may not read it.
    """
    not_found = getattr(userdata, "SecretNotFoundError", ())
    no_access = getattr(userdata, "NotebookAccessError", ())
    try:
        value = userdata.get(name)
    except Exception as error:
        if not_found and isinstance(error, not_found):
            return None
        if no_access and isinstance(error, no_access):
            raise CredentialsError(
                f"the Colab secret {name} exists, but this notebook may not read "
                "it: open the key icon on the left, switch on its notebook access "
                "(or allow access when Colab asks) and run this cell again."
            ) from None
        # TimeoutException (not run from the Colab page), or a Colab change.
        notes.append(
            f"the Colab secret {name} could not be read ({type(error).__name__})"
        )
        return None
    value = "".join(str(value or "").split())
    return value or None


def find_kaggle_credentials() -> KaggleCredentials:
    """Find the Kaggle credentials a download will send, without network access.

    In this order (a token before a username/key pair, as kagglehub 1.0 does):

    1. the environment variable ``KAGGLE_API_TOKEN``;
    2. in Colab, the notebook secret ``KAGGLE_API_TOKEN``;
    3. the token file ``~/.kaggle/access_token`` (kagglehub reads it);
    4. the environment variables ``KAGGLE_USERNAME`` and ``KAGGLE_KEY``;
    5. in Colab, the secrets ``KAGGLE_USERNAME`` and ``KAGGLE_KEY``;
    6. ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR`` or ``~/.kaggle``.

    Nothing found is no error: the result's kind is "none" and the download is
    tried anonymously.

    Raises:
        CredentialsError: half a username/key pair, a Colab secret this notebook
            may not read, or a kaggle.json that cannot be used. Messages name
            variables, secrets and files, never their values.
    """
    notes: list[str] = []
    userdata = _colab_userdata()
    return (
        _find_token(userdata, notes)
        or _find_pair(userdata, notes)
        or _find_kaggle_json(notes)
        or KaggleCredentials("none", "nothing", notes=tuple(notes))
    )


def _find_token(userdata, notes: list[str]) -> KaggleCredentials | None:
    """Steps 1-3: an API token in the environment, a Colab secret or a file."""
    token = os.environ.get(TOKEN_VARIABLE)
    if token is not None and not token.strip():
        raise CredentialsError(
            f"the environment variable {TOKEN_VARIABLE} is set but empty: unset it "
            f"(`unset {TOKEN_VARIABLE}`) or set it to your API token from "
            f"{KAGGLE_SETTINGS}, and run again."
        )
    if token is not None:
        _check_token_text(token, f"the environment variable {TOKEN_VARIABLE}")
        return KaggleCredentials("token", f"the environment variable {TOKEN_VARIABLE}")
    if userdata is not None:
        token = _colab_secret(userdata, TOKEN_VARIABLE, notes)
        if token:
            return KaggleCredentials(
                "token",
                f"the Colab secret {TOKEN_VARIABLE}",
                {TOKEN_VARIABLE: token},
                tuple(notes),
            )
    for name in ("access_token", "access_token.txt"):
        token_file = Path.home() / ".kaggle" / name
        if token_file.exists() and _read_token_file(token_file):
            return KaggleCredentials("token", str(token_file), notes=tuple(notes))
    return None


def _find_pair(userdata, notes: list[str]) -> KaggleCredentials | None:
    """Steps 4-5: KAGGLE_USERNAME and KAGGLE_KEY, as variables or Colab secrets."""
    blank = [n for n in PAIR_VARIABLES if n in os.environ and not os.environ[n].strip()]
    if blank:
        raise CredentialsError(
            f"the environment variable {blank[0]} is set but empty: unset it "
            f"(`unset {blank[0]}`) or give it its value, and run again."
        )
    pair = [name for name in PAIR_VARIABLES if os.environ.get(name, "").strip()]
    if len(pair) == 2:
        return KaggleCredentials(
            "pair", "the environment variables KAGGLE_USERNAME and KAGGLE_KEY"
        )
    if len(pair) == 1:
        other = next(name for name in PAIR_VARIABLES if name not in pair)
        raise CredentialsError(
            f"incomplete Kaggle credentials: the environment variable {pair[0]} is "
            f"set but {other} is not (both are needed). Set {other} too, or unset "
            f"{pair[0]} and give a token instead. {_ways_to_sign_in()}"
        )
    if userdata is None:
        return None
    found = {name: _colab_secret(userdata, name, notes) for name in PAIR_VARIABLES}
    if all(found.values()):
        return KaggleCredentials(
            "pair",
            "the Colab secrets KAGGLE_USERNAME and KAGGLE_KEY",
            dict(found),
            tuple(notes),
        )
    if any(found.values()):
        have = next(name for name, value in found.items() if value)
        lack = next(name for name, value in found.items() if not value)
        raise CredentialsError(
            f"incomplete Kaggle credentials: the Colab secret {have} is set but "
            f"{lack} is not (both are needed). Add {lack}, or add the one API "
            f"token as the secret {TOKEN_VARIABLE} instead. {_ways_to_sign_in()}"
        )
    return None


def _find_kaggle_json(notes: list[str]) -> KaggleCredentials | None:
    """Step 6: kaggle.json (a note when other users can read it)."""
    json_path = _kaggle_json_path()
    if not json_path.exists():
        return None
    username, key = read_kaggle_json(json_path)
    with contextlib.suppress(OSError):
        if json_path.stat().st_mode & 0o077:
            notes.append(f"other users can read {json_path}: chmod 600 {json_path}")
    return KaggleCredentials(
        "pair",
        str(json_path),
        {"KAGGLE_USERNAME": username, "KAGGLE_KEY": key},
        tuple(notes),
    )


def check_kaggle_credentials() -> KaggleCredentials:
    """Find the credentials (``find_kaggle_credentials``) and print what is sent."""
    credentials = find_kaggle_credentials()
    for note in credentials.notes:
        print(f"note: {note}")
    print(credentials.describe())
    return credentials


def _refused(what: str, status: int, credentials: KaggleCredentials) -> LabError:
    """The message for an HTTP refusal, true to what was sent."""
    if not credentials.sent:
        if status == 404:
            return DownloadError(
                f"{what} found no dataset {KAGGLE_HANDLE} visible without signing in "
                f"(HTTP 404; no credentials were sent). Check {KAGGLE_URL}; if it "
                f"opens while you are logged in, sign in here. {_ways_to_sign_in()}"
            )
        return CredentialsError(
            f"{what} refused the anonymous download (HTTP {status}): no credentials "
            "were sent, because none were found, and Kaggle wants a signed-in "
            f"account for this download. {_ways_to_sign_in()}"
        )
    if status == 401:
        if credentials.kind == "token":
            fix = f"put it in {credentials.source}"
        else:
            fix = (
                f"add it as the Colab secret or environment variable {TOKEN_VARIABLE} "
                f"(used before {credentials.source}), or put a valid username and key "
                f"in {credentials.source}"
            )
        return CredentialsError(
            f"{what} rejected the credentials from {credentials.source} (HTTP 401): "
            "they are wrong, expired or revoked (an old key stops working when a new "
            f"one is made). Create a new API token at {KAGGLE_SETTINGS}, {fix}, and "
            "run again."
        )
    if status == 403:
        return CredentialsError(
            f"{what} accepted the credentials from {credentials.source} but refused "
            f"this dataset (HTTP 403): that account has not given the consent the "
            f"dataset asks for. Open {KAGGLE_URL} while logged in as that account, "
            "accept its terms (the Download button asks), and run again."
        )
    return DownloadError(
        f"{what} found no dataset {KAGGLE_HANDLE} for the account from "
        f"{credentials.source} (HTTP 404): check {KAGGLE_URL}."
    )


_NOBODY = KaggleCredentials("none", "nothing")


@contextlib.contextmanager
def _kaggle_errors(what: str, credentials: KaggleCredentials = _NOBODY):
    """Turn network and HTTP failures of a Kaggle client into clear LabErrors."""
    try:
        yield
    except (CredentialsError, DownloadError, DataError):
        raise
    except Exception as error:
        status = _http_status(error)
        if status in (401, 403, 404):
            raise _refused(what, status, credentials) from None
        reason = _network_reason(error)
        if reason:
            raise _network_error(what, reason) from None
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DownloadError(
                f"the disk is full ({error.filename or 'download folder'}): CelebA "
                "needs about 3 GB while downloading; free some space and run again."
            ) from None
        if status is not None:
            raise DownloadError(
                f"{what} failed with HTTP {status}; try again later or use another "
                "--source."
            ) from None
        raise


# Sources: each returns the folder that holds (or is above) the CelebA layout -----
def _from_kaggle(dest: Path, force: bool) -> Path:
    credentials = check_kaggle_credentials()
    import kagglehub

    with _kaggle_errors("Kaggle", credentials), credentials.exported():
        cached = Path(kagglehub.dataset_download(KAGGLE_HANDLE, force_download=force))
    _link(dest, cached)
    return cached

def _link(dest: Path, target: Path) -> None:
    """Make ``dest/celeba`` a symlink to ``target``, where the system allows it."""
    link = dest / LINK_NAME
    if link.exists() and link.resolve() == target.resolve():
        return
    if link.exists() and not link.is_symlink():
        print(f"{link} is a real folder: left alone; {MARKER} records {target}")
        return
    tmp = dest / f".{LINK_NAME}-link.tmp"
    try:
        dest.mkdir(parents=True, exist_ok=True)
        if tmp.is_symlink():
            tmp.unlink()
        tmp.symlink_to(target.resolve(), target_is_directory=True)
        os.replace(tmp, link)
    except OSError as error:
        print(f"could not link {link} -> {target} ({error}); {MARKER} records it")


def _from_opendatasets(dest: Path, force: bool) -> Path:
    import click
    import opendatasets

    local_json = Path("kaggle.json")
    if local_json.exists():
        read_kaggle_json(local_json.resolve())  # one clear line if it is unusable
    elif not (sys.stdin.isatty() or in_notebook()):
        raise CredentialsError(
            "opendatasets asks for your Kaggle username and key interactively, and "
            "this session has no terminal to ask in. Put kaggle.json (from "
            "https://www.kaggle.com/settings, API, Create New Token) in the current "
            "folder, or use --source kaggle, which also reads the KAGGLE_API_TOKEN "
            "token, KAGGLE_USERNAME / KAGGLE_KEY, ~/.kaggle/kaggle.json and Colab "
            "secrets."
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with _kaggle_errors("Kaggle (through opendatasets)"):
            opendatasets.download(KAGGLE_URL, data_dir=str(dest), force=force)
    except click.exceptions.Abort:
        raise CredentialsError(
            "the Kaggle username/key prompt was cancelled: run again and enter them, "
            "or put kaggle.json in the current folder."
        ) from None
    except SystemExit:  # the kaggle package exits when it has no usable credentials
        raise CredentialsError(
            "the kaggle package found no usable credentials: check the username and "
            "key you entered (or kaggle.json in the current folder)."
        ) from None
    return dest / KAGGLE_HANDLE.split("/")[1]


def _fetch_url(url: str, dest: Path, sha256: str | None, force: bool) -> Path:
    """Download ``url`` into ``dest/downloads`` with keras' get_file; return it."""
    import keras

    name = Path(urllib.parse.urlsplit(url).path).name or "celeba.zip"
    target = dest / "downloads" / name
    dest.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp otherwise
    try:
        with _socket_timeout(NETWORK_TIMEOUT):
            got = keras.utils.get_file(
                fname=name,
                origin=url,
                file_hash=sha256,
                hash_algorithm="sha256",
                cache_dir=str(dest),
                cache_subdir="downloads",
                # With a hash, keras re-checks a kept zip and fetches it again only
                # if it is damaged; without one, force is the only way to refetch.
                force_download=force and sha256 is None,
            )
    except Exception as error:
        if target.is_file():  # downloaded, but its hash did not match
            explanation = _html_explanation(target)
            actual = sha256_file(target)
            target.unlink()
            if explanation:
                raise DownloadError(explanation + " (The page was deleted.)") from None
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. "
                "The file is incomplete, damaged or a different file; it was deleted. "
                "Run again to download it afresh, or check the --sha256 value."
            ) from None
        reason = _network_reason(error)
        if reason:
            raise _network_error(url, reason) from None
        status = _http_status(error)
        if status is not None:
            raise DownloadError(
                f"{url} answered HTTP {status}: check the link, or use Kaggle: "
                f"{_KAGGLE_HINT}"
            ) from None
        raise DownloadError(f"could not download {url}: {error}") from None
    return Path(got)


def _from_url(dest: Path, url: str | None, sha256: str | None, force: bool) -> Path:
    if not url:
        raise DownloadError("the url source needs a URL: --from URL (or url=...).")
    if _earlier_extraction(dest, force):
        return dest / LINK_NAME
    if sha256 is None:
        print("no --sha256 given: the download cannot be checked for damage")
    zip_path = _fetch_url(url, dest, sha256, force)
    try:
        _check_archive(zip_path)
    except DownloadError as error:
        zip_path.unlink()
        raise DownloadError(f"{error} (The downloaded file was deleted.)") from None
    root = safe_extract_zip(
        zip_path, dest, name=LINK_NAME, replace=True, celeba_layout=True
    )
    zip_path.unlink()  # extracted, and checked by its hash or CRCs: no longer needed
    with contextlib.suppress(OSError):
        zip_path.parent.rmdir()
    return root


def _earlier_extraction(dest: Path, force: bool) -> bool:
    """True when DEST/celeba holds an earlier complete extraction to check instead."""
    target = dest / LINK_NAME
    if target.is_dir() and not target.is_symlink() and not force:
        print(f"found an earlier extraction in {target}: checking it instead")
        return True
    return False


def _from_local(dest: Path, path: str | os.PathLike | None, force: bool) -> Path:
    if not path:
        raise DataError("the local source needs a zip or folder: --from PATH.")
    path = Path(path).expanduser()
    if path.is_dir():
        if dest.resolve() != path.resolve():
            _link(dest, path)
        return path
    if not path.is_file():
        raise DataError(
            f"{path} does not exist. On Colab, mount Google Drive first "
            "(from google.colab import drive; drive.mount('/content/drive'))."
        )
    if _earlier_extraction(dest, force):
        return dest / LINK_NAME
    return safe_extract_zip(
        path, dest, name=LINK_NAME, replace=True, celeba_layout=True
    )


def _stamp_of(path: Path):
    """(inode, mtime) of a real folder, None for a link or nothing."""
    if path.is_symlink() or not path.is_dir():
        return None
    status = path.stat()
    return (status.st_ino, status.st_mtime_ns)


def _extracted_now(dest: Path, root: Path, before) -> bool:
    """True when ``root`` is the DEST/celeba folder this call just extracted."""
    target = dest / LINK_NAME
    return root == target and _stamp_of(target) not in (None, before)


# The one entry point -------------------------------------------------------------
def download_celeba(
    dest: str | os.PathLike,
    source: str = "kaggle",
    *,
    url: str | None = None,
    path: str | os.PathLike | None = None,
    sha256: str | None = None,
    expected_images: int | None = None,
    force: bool = False,
) -> CelebAFiles:
    """Get CelebA into ``dest`` from one source, verify it and mark it verified.

    A second call with the same ``dest`` finds the marker and does nothing (offline
    too) unless ``force`` is True.

    Args:
        dest: folder that receives the data, or the link and marker (see module doc).
        source: "kaggle" (kagglehub), "opendatasets", "url" or "local".
        url: the zip to download, for source="url".
        path: a zip or an unzipped folder already on disk, for source="local".
        sha256: expected SHA-256 of the url source's zip (64 hex digits).
        expected_images: exact image count required; None accepts any positive
            count and warns if it is not 202,599.
        force: download/extract again even if a verified copy is present.

    Returns:
        The verified files; ``files.root`` is the folder holding the layout.

    Raises:
        CredentialsError: Kaggle credentials missing or rejected.
        DownloadError: network, checksum, HTML-instead-of-zip, unsafe or broken zip.
        DataError: the copy is incomplete or not CelebA.
    """
    if source not in SOURCES:
        choices = ", ".join(SOURCES)
        raise DownloadError(f"unknown source {source!r}: choose one of {choices}")
    if url is not None and source != "url":
        raise DownloadError(f"a URL is only used by the url source, not {source!r}.")
    if path is not None and source != "local":
        raise DownloadError(f"a path is only used by the local source, not {source!r}.")
    if sha256 is not None:
        sha256 = sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise DownloadError("--sha256 must be 64 hexadecimal digits.")
    dest = Path(dest).expanduser()
    if not force:
        files = verified_copy(dest, expected_images)
        if files is not None:
            print(
                f"CelebA is already verified in {files.root}: nothing to do "
                "(force=True / --force downloads it again)."
            )
            return files
    before = _stamp_of(dest / LINK_NAME)
    if source == "kaggle":
        root = _from_kaggle(dest, force)
    elif source == "opendatasets":
        root = _from_opendatasets(dest, force)
    elif source == "url":
        root = _from_url(dest, url, sha256, force)
    else:
        root = _from_local(dest, path, force)
    extracted = _extracted_now(dest, root, before)
    try:
        files = verify(find_celeba(root), expected_images)
    except DataError as error:
        again = "" if source == "local" else " Run again with --force (force=True)."
        if extracted:  # this call's extraction is not CelebA: leave nothing behind
            shutil.rmtree(root, ignore_errors=True)
            again += f" (The extracted copy in {root} was removed.)"
        raise DataError(f"{error}{again}") from None
    dest.mkdir(parents=True, exist_ok=True)
    _write_marker(dest, files, source, count_images(files))
    print(f"CelebA verified: {count_images(files):,} images in {files.root}")
    return files
