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
- ``url`` / ``local`` zip: the zip is checked, then extracted into
  ``DEST/.partial-XXXX/payload`` and renamed to ``DEST/celeba`` in one step, so a
  half-extracted copy never looks complete. A downloaded zip is deleted after the
  copy is extracted; a local one is never touched.
- ``local`` folder: used where it is; ``DEST/celeba`` links to it, as for Kaggle.

Errors are :class:`helpers.errors.LabError` subclasses whose message says what went
wrong and what to do. No message ever contains a Kaggle key.
"""

from __future__ import annotations

import contextlib
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
from pathlib import Path

from helpers.celeba import (
    CELEBA_TOTAL,
    CelebAFiles,
    count_images,
    find_celeba,
    read_attributes,
    read_partitions,
)
from helpers.environment import in_notebook
from helpers.errors import CredentialsError, DataError, DownloadError
from helpers.files import atomic_write_text, sha256_file, unsafe_zip_member

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


# Safe extraction -------------------------------------------------------------------
def safe_extract_zip(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    name: str | None = None,
    replace: bool = False,
) -> Path:
    """Extract a zip into ``dest/name`` safely and all at once.

    Every entry name is checked before anything is written: an absolute path, a
    drive letter, a ``..`` component or a symlink entry refuses the whole archive.
    The entries go to ``dest/.partial-XXXX/payload`` (deep enough that
    :func:`helpers.celeba.find_celeba` on ``dest`` never mistakes it for data) and
    are renamed to ``dest/name`` in one step when every byte is out; an interrupted
    run leaves only a ``.partial-`` folder, removed by the next call.

    Args:
        zip_path: the archive.
        dest: the folder to extract under (created if needed).
        name: the folder the entries end up in; defaults to the zip's stem.
        replace: remove an existing ``dest/name`` first instead of refusing.

    Returns:
        ``dest/name``, holding the archive's entries.

    Raises:
        DownloadError: an HTML page or broken zip, an unsafe entry name, too little
            free disk, or ``dest/name`` already exists (and ``replace`` is False).
    """
    zip_path, dest = Path(zip_path), Path(dest).expanduser()
    target = dest / (name or zip_path.stem)
    _check_zip(zip_path)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            infos = archive.infolist()
            reasons = [(i.filename, unsafe_zip_member(i)) for i in infos]
            unsafe = [(n, why) for n, why in reasons if why]
            if unsafe:
                shown = "; ".join(f"{n!r} {why}" for n, why in unsafe[:3])
                raise DownloadError(
                    f"refused to extract {zip_path}: {len(unsafe)} unsafe entr"
                    f"{'y' if len(unsafe) == 1 else 'ies'} ({shown}). Nothing was "
                    "written. A genuine CelebA zip has none: get it from Kaggle."
                )
            if target.exists() or target.is_symlink():
                if not replace:
                    raise DownloadError(
                        f"{target} already exists: remove it or pass replace=True."
                    )
            dest.mkdir(parents=True, exist_ok=True)
            needed = sum(i.file_size for i in infos)
            free = shutil.disk_usage(dest).free
            if needed > free:
                raise DownloadError(
                    f"extracting {zip_path} needs {needed / 1e9:.1f} GB but only "
                    f"{free / 1e9:.1f} GB is free under {dest}: free some space."
                )
            for stale in dest.glob(".partial-*"):
                print(f"removing an unfinished extraction: {stale}")
                shutil.rmtree(stale, ignore_errors=True)
            partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest))
            try:
                payload = partial / "payload"
                print(f"extracting {len(infos):,} entries of {zip_path} ...")
                for k, info in enumerate(infos, 1):
                    archive.extract(info, payload)
                    if k % 50_000 == 0:
                        print(f"  {k:,} / {len(infos):,}")
                payload.mkdir(exist_ok=True)  # an empty archive
                if target.is_symlink() or target.is_file():
                    target.unlink()
                elif target.exists():
                    shutil.rmtree(target)
                os.replace(payload, target)
            finally:
                shutil.rmtree(partial, ignore_errors=True)
    except (zipfile.BadZipFile, EOFError, zipfile.LargeZipFile) as error:
        raise DownloadError(
            f"{zip_path}: the zip is truncated or corrupt "
            f"({zip_path.stat().st_size:,} bytes; {error}); download it again."
        ) from None
    return target


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
def _kaggle_managed_env() -> bool:
    """True on Colab's or Kaggle's own runtimes, where kagglehub needs no key."""
    return "TBE_RUNTIME_ADDR" in os.environ or "KAGGLE_KERNEL_RUN_TYPE" in os.environ


def _kaggle_json_path() -> Path:
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle"
    return Path(folder) / "kaggle.json"


def check_kaggle_credentials() -> None:
    """Raise CredentialsError unless kagglehub can find Kaggle credentials.

    Uses kagglehub's own lookup (``kagglehub.login()``, ``KAGGLE_API_TOKEN``,
    ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, ``kaggle.json`` in ``~/.kaggle`` or
    ``$KAGGLE_CONFIG_DIR``, Colab secrets), without any network access. The message
    names variables and files, never their values.
    """
    from kagglehub.config import get_kaggle_credentials

    json_path = _kaggle_json_path()
    try:
        found = get_kaggle_credentials()
    except ValueError as error:  # kaggle.json is not JSON or lacks a field
        raise CredentialsError(
            f'{error}. It must read {{"username": "...", "key": "..."}}: '
            "download a fresh one from https://www.kaggle.com/settings (API, Create "
            "New Token)."
        ) from None
    if found:
        if json_path.is_file() and json_path.stat().st_mode & 0o077:
            print(f"note: other users can read {json_path}: chmod 600 {json_path}")
        return
    partial = [v for v in ("KAGGLE_USERNAME", "KAGGLE_KEY") if os.environ.get(v)]
    note = ""
    if len(partial) == 1:
        other = "KAGGLE_KEY" if partial == ["KAGGLE_USERNAME"] else "KAGGLE_USERNAME"
        note = f" ({partial[0]} is set but {other} is not: both are needed)"
    raise CredentialsError(
        "no Kaggle credentials found, so CelebA cannot be downloaded from Kaggle. "
        "Create an API token at https://www.kaggle.com/settings (API section), then "
        "give it in one of these ways and run again:\n"
        f"  1. environment variables KAGGLE_USERNAME and KAGGLE_KEY{note}, or "
        "KAGGLE_API_TOKEN for a new-style token;\n"
        f"  2. the kaggle.json file saved as {json_path} (or in the folder named by "
        f"KAGGLE_CONFIG_DIR), then `chmod 600 {json_path}`;\n"
        "  3. on Colab: notebook secrets (the key icon) named KAGGLE_USERNAME and "
        "KAGGLE_KEY, with notebook access switched on;\n"
        "  4. in a notebook: `import kagglehub; kagglehub.login()`, then paste the "
        "token.\n"
        "Or use a copy you already have: --source local --from ZIP_OR_FOLDER."
    )


def _rejected(what: str, status: int) -> CredentialsError:
    return CredentialsError(
        f"{what} refused the request (HTTP {status}): the Kaggle credentials were "
        "rejected or the dataset's terms not accepted. Check the username and key "
        "(or create a new token at https://www.kaggle.com/settings; an old one stops "
        f"working when a new one is made) and open {KAGGLE_URL} once while logged in."
    )


@contextlib.contextmanager
def _kaggle_errors(what: str):
    """Turn network and HTTP failures of a Kaggle client into clear LabErrors."""
    try:
        yield
    except (CredentialsError, DownloadError, DataError):
        raise
    except Exception as error:
        status = _http_status(error)
        if status in (401, 403):
            raise _rejected(what, status) from None
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
    if not _kaggle_managed_env():
        check_kaggle_credentials()
    import kagglehub

    with _kaggle_errors("Kaggle"):
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
    if local_json.is_file():
        try:
            record = json.loads(local_json.read_text())
            ok = isinstance(record, dict) and {"username", "key"} <= set(record)
        except ValueError:
            ok = False
        if not ok:
            raise CredentialsError(
                f'{local_json.resolve()} must read {{"username": "...", "key": '
                '"..."}}: download a fresh one from https://www.kaggle.com/settings.'
            )
    elif not (sys.stdin.isatty() or in_notebook()):
        raise CredentialsError(
            "opendatasets asks for your Kaggle username and key interactively, and "
            "this session has no terminal to ask in. Put kaggle.json (from "
            "https://www.kaggle.com/settings, API, Create New Token) in the current "
            "folder, or use --source kaggle, which also reads KAGGLE_USERNAME / "
            "KAGGLE_KEY, ~/.kaggle/kaggle.json and Colab secrets."
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
        _check_zip(zip_path)
    except DownloadError as error:
        zip_path.unlink()
        raise DownloadError(f"{error} (The downloaded file was deleted.)") from None
    root = safe_extract_zip(zip_path, dest, name=LINK_NAME, replace=True)
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
    return safe_extract_zip(path, dest, name=LINK_NAME, replace=True)


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
    if source == "kaggle":
        root = _from_kaggle(dest, force)
    elif source == "opendatasets":
        root = _from_opendatasets(dest, force)
    elif source == "url":
        root = _from_url(dest, url, sha256, force)
    else:
        root = _from_local(dest, path, force)
    try:
        files = verify(find_celeba(root), expected_images)
    except DataError as error:
        again = "" if source == "local" else " Run again with --force (force=True)."
        raise DataError(f"{error}{again}") from None
    dest.mkdir(parents=True, exist_ok=True)
    _write_marker(dest, files, source, count_images(files))
    print(f"CelebA verified: {count_images(files):,} images in {files.root}")
    return files
