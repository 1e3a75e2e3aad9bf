"""Get the real CelebA from Kaggle, opendatasets, a mirror URL or a local copy into
DEST (``DEST/celeba``: the extracted archive or a link to the data), verified, with a
marker ``DEST/.celeba-verified.json``. No message, log or file holds a key or token."""

from __future__ import annotations

import contextlib
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
from pathlib import Path
from unittest import mock

from helpers import archives, celeba, errors
from helpers.celeba import CelebAFiles, count_images, find_celeba
from helpers.environment import in_colab, in_notebook
from helpers.errors import CredentialsError, DataError, DownloadError, LabError
from helpers.files import atomic_write_text, sha256_file

SOURCES = ("kaggle", "opendatasets", "url", "local")
KAGGLE_HANDLE = "jessicali9530/celeba-dataset"
KAGGLE_URL = f"https://www.kaggle.com/datasets/{KAGGLE_HANDLE}"
MARKER = ".celeba-verified.json"
LINK_NAME = "celeba"  # DEST/celeba: the extracted copy, or a link to the data
NETWORK_TIMEOUT = 30.0  # seconds to connect or between bytes; a dead link fails fast

_KAGGLE_HINT = f"python -m vaelab download --source kaggle --dest DIR ({KAGGLE_URL})"


def verify(files: CelebAFiles, expected_images: int | None = None) -> CelebAFiles:
    """Check that a copy of CelebA is complete and consistent (DataError); return it.
    ``expected_images`` None accepts any positive count, warning unless CelebA's."""
    with os.scandir(files.image_dir) as entries:
        on_disk = {e.name for e in entries if e.name.lower().endswith(".jpg")}
    n = len(on_disk)
    if n == 0 or expected_images not in (None, n):
        wanted = f"{expected_images:,}" if expected_images else "some"
        raise DataError(
            f"{files.image_dir} holds {n:,} images, expected {wanted}: the download "
            "or extraction is incomplete."
        )
    if expected_images is None and n != celeba.CELEBA_TOTAL:
        warnings.warn(
            f"{files.image_dir} holds {n:,} images, not CelebA's "
            f"{celeba.CELEBA_TOTAL:,}: a generated slice, or a partial copy.",
            stacklevel=2,
        )
    ids = celeba.read_attributes(files)[0]
    lists = {files.attr_file: ids, files.partition_file: celeba.read_partitions(files)}
    for path, listed in lists.items():
        if len(listed) != n:
            raise DataError(
                f"{path} lists {len(listed):,} images but {files.image_dir} holds "
                f"{n:,}: the lists and the images do not belong together."
            )
    if missing := sorted(set(ids) - on_disk):
        raise DataError(
            f"{len(missing):,} images listed in {files.attr_file} are not in "
            f"{files.image_dir}, e.g. {', '.join(missing[:3])}."
        )
    return files


def verified_copy(dest, expected_images: int | None = None) -> CelebAFiles | None:
    """The copy a marker in ``dest`` records (cheap: same image count), or None."""
    try:
        record = json.loads((Path(dest).expanduser() / MARKER).read_text())
        files = find_celeba(record["root"])
        images = count_images(files)
    except (OSError, ValueError, KeyError, TypeError, DataError):
        return None
    same = images == record.get("images") and expected_images in (None, images)
    return files if same else None


def _check_archive(path: Path, mismatch: str | bool = False) -> str:
    """The kind of archive ``path`` is by its bytes; DownloadError for a web page saved
    in its place, then for ``mismatch`` (a failed checksum's message), or no archive."""
    with open(path, "rb") as f:
        text = f.read(64 * 1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    size = path.stat().st_size
    if text.startswith((b"<!doctype html", b"<html")):
        start = f"{path} is not a zip but a {size:,}-byte"
        drive_words = (b"google drive", b"quota", b"virus scan", b"drive.google")
        if any(word in text for word in drive_words):
            raise DownloadError(
                f"{start} Google Drive web page, shown instead of a shared file "
                "downloaded too often (the quota resets within 24 hours) or needing a "
                f"virus-scan confirmation. Do not wait: use Kaggle: {_KAGGLE_HINT}"
            )
        raise DownloadError(
            f"{start} HTML web page (a login, error or preview page). Check that the "
            f"link downloads the file itself, or use Kaggle: {_KAGGLE_HINT}"
        )
    if mismatch:
        raise DownloadError(mismatch)
    if (kind := archives.archive_kind(path)) is None:
        raise DownloadError(
            f"{path} is neither a zip nor a tar archive ({size:,} bytes, no archive's "
            "first bytes): empty, truncated, corrupt or another kind of file. "
            f"Download it again, or use Kaggle: {_KAGGLE_HINT}"
        )
    if kind == "zip" and not zipfile.is_zipfile(path):
        raise DownloadError(
            f"{path}: the zip is truncated or corrupt ({size:,} bytes); download it "
            "again (the full CelebA zip is over 1 GB)."
        )
    return kind


def safe_extract_zip(zip_path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Extract the CelebA folder of a zip or tar to dest/celeba in one rename; refuse
    it all, writing nothing, for an unsafe entry (absolute, ``..``, link, device), no
    CelebA layout (DataError) or too little free disk."""
    zip_path, dest = Path(zip_path), Path(dest).expanduser()
    target, kind = dest / LINK_NAME, _check_archive(zip_path)
    try:
        with archives.open_archive(zip_path, kind) as (archive, members):
            if unsafe := archives.unsafe_entries(members):
                raise DownloadError(
                    f"refused to extract {zip_path}: {len(unsafe)} unsafe entr"
                    f"{'y' if len(unsafe) == 1 else 'ies'} ({'; '.join(unsafe[:3])}). "
                    "Nothing was written; CelebA from Kaggle has none."
                )
            names = [m.name for m in members if m.kind == "file"]
            if (found := celeba.detect_layout(names)) is None:
                raise DataError(
                    f"No CelebA layout found in {zip_path} ({archives.KIND_NAMES[kind]}"
                    "); nothing was extracted. Expected, at any depth:\n"
                    f"{celeba.expected_paths_text()}\nClosest matches:\n"
                    f"{celeba.describe_missing(names)}\nUse the CelebA archive from "
                    "Kaggle, or unpack it yourself and pass the folder: --source "
                    "local --from FOLDER."
                )
            if prefix := found[0]:
                print(
                    f"CelebA found under {prefix} in {zip_path}: extracting that folder"
                )
            members = [
                dataclasses.replace(m, name=m.name[len(prefix) :])
                for m in members
                if m.name.startswith(prefix)
                and m.name.rstrip("/") != prefix.rstrip("/")
            ]
            dest.mkdir(parents=True, exist_ok=True)
            needed = sum(m.size for m in members if m.kind == "file")
            if needed > (free := shutil.disk_usage(dest).free):
                raise DownloadError(
                    f"extracting {zip_path} needs {needed / 1e9:.1f} GB, {dest} has "
                    f"{free / 1e9:.1f} GB free: free some space, or use another --dest."
                )
            for stale in dest.glob(".partial-*"):
                print(f"removing an unfinished extraction: {stale}")
                shutil.rmtree(stale, ignore_errors=True)
            with tempfile.TemporaryDirectory(prefix=".partial-", dir=dest) as partial:
                payload = Path(partial) / "payload"  # too deep for find_celeba to see
                print(f"extracting {len(members):,} entries of {zip_path} ...")
                for k, member in enumerate(members, 1):
                    archives.extract_member(archive, member, payload / member.name)
                    if k % 50_000 == 0:
                        print(f"  {k:,} / {len(members):,}")
                payload.mkdir(exist_ok=True)  # an empty archive
                if target.is_symlink() or target.is_file():
                    target.unlink()
                elif target.exists():
                    shutil.rmtree(target)
                os.replace(payload, target)
    except archives.ArchiveError as error:
        raise DownloadError(
            f"{zip_path}: {archives.KIND_NAMES[kind]}, but truncated or corrupt "
            f"({zip_path.stat().st_size:,} bytes; {error}); download it again."
        ) from None
    except OSError as error:  # a full disk or a read-only folder: nothing was kept
        if (problem := errors.os_error_message(error)) is None:
            raise
        raise DownloadError(f"extracting {zip_path}: {problem}") from None
    return target


def _failure(error: BaseException) -> tuple[int | None, str | None]:
    """The HTTP status and the connection failure (in words) behind ``error``."""
    import requests  # comes with kagglehub

    failed = (ConnectionError, requests.ConnectionError, requests.Timeout)
    named = [
        (socket.gaierror, "the server's name could not be looked up"),
        (ConnectionRefusedError, "the connection was refused"),
        (TimeoutError, f"no answer within {NETWORK_TIMEOUT:g} s"),
        (failed, "the connection failed"),
    ]
    unreachable = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}
    status, reason, seen = None, None, set()
    while error is not None and id(error) not in seen:  # its causes, first to last
        seen.add(id(error))
        for cause in (error, getattr(error, "reason", None)):  # and URLError's reason
            code = getattr(getattr(cause, "response", None), "status_code", None)
            if isinstance(cause, urllib.error.HTTPError):
                code = cause.code
            status = status or (code and int(code))
            if reason is None and getattr(cause, "errno", None) in unreachable:
                reason = "the connection failed"
            reason = reason or next((w for k, w in named if isinstance(cause, k)), None)
        error = error.__cause__ or error.__context__
    return status, reason


# Kaggle credentials: kagglehub 1.0 prefers a token to a username/key pair, but in
# Colab reads only the KAGGLE_API_TOKEN secret and swallows every error: so the lab
# looks itself, in that order, and exports what it found for the download only.
KAGGLE_SETTINGS = "https://www.kaggle.com/settings"
TOKEN_VARIABLE = "KAGGLE_API_TOKEN"
PAIR_VARIABLES = ("KAGGLE_USERNAME", "KAGGLE_KEY")
_NEW_TOKEN = f"{KAGGLE_SETTINGS} (API, Create New Token)"


@dataclasses.dataclass(frozen=True)
class KaggleCredentials:
    """What a download sends (``kind`` "token", "pair" or "none"), from ``source``;
    ``env``, the variables kagglehub gets, is secret: not in repr."""

    kind: str
    source: str
    env: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def describe(self) -> str:
        if self.kind == "none":
            return (
                "Kaggle: no credentials found, so none are sent: trying the anonymous "
                f"download of a public dataset (to sign in, set the Colab secret or "
                f"environment variable {TOKEN_VARIABLE} to a token from {_NEW_TOKEN})."
            )
        what = "API token" if self.kind == "token" else "username and key"
        return f"Kaggle: signing in with the {what} from {self.source}."


def _kaggle_json_path() -> Path:
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle"
    return Path(folder) / "kaggle.json"


def _ways_to_sign_in() -> str:
    json_path = _kaggle_json_path()
    return (
        f"Create an API token at {_NEW_TOKEN}, give it in one of these ways and run "
        f"again:\n  1. on Colab: the notebook secret {TOKEN_VARIABLE} (key icon on the "
        f"left; switch on notebook access);\n  2. elsewhere: the environment variable "
        f"{TOKEN_VARIABLE};\n  3. an older username/key pair: the Colab secrets or "
        "environment variables KAGGLE_USERNAME and KAGGLE_KEY, or kaggle.json saved "
        f"as {json_path} (or in $KAGGLE_CONFIG_DIR), then `chmod 600 {json_path}`.\n"
        "Or use a copy you already have: --source local --from ZIP_OR_FOLDER."
    )


def _unusable(where, what: str, fix: str):
    return lambda problem: CredentialsError(
        f"{where} is not a usable Kaggle {what}: {problem}. {fix}"
    )


def _json_type(value) -> str:
    names = {bool: "true/false", list: "an array", dict: "an object", str: "a string"}
    return "null" if value is None else names.get(type(value), "a number")


def _file_text(path: Path, encoding: str, bad) -> str:
    """The text of a credentials file; ``bad(problem)`` is raised when it has none."""
    if path.is_dir():
        raise bad("it is a folder, not a file")
    try:
        return path.read_bytes().decode(encoding)
    except UnicodeDecodeError:
        raise bad("it is not text") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise bad(f"it cannot be read ({reason})") from None


def read_kaggle_json(path: str | os.PathLike) -> tuple[str, str]:
    """(username, key) from a kaggle.json; CredentialsError (one line, no content)."""
    path = Path(path)
    bad = _unusable(
        path,
        "credentials file",
        f"Replace it with a fresh kaggle.json from {_NEW_TOKEN}, which reads "
        '{"username": "...", "key": "..."}, or delete it and give an API token as '
        f"{TOKEN_VARIABLE} (a Colab secret or environment variable).",
    )
    text = _file_text(path, "utf-8-sig", bad)
    if not text.strip():
        raise bad("it is empty")
    try:
        record = json.loads(text)
    except ValueError as error:
        where = f"line {error.lineno}, column {error.colno}"
        raise bad(f"it is not valid JSON ({where})") from None
    if not isinstance(record, dict):
        raise bad(f"it holds {_json_type(record)}, not a JSON object")
    if missing := [f'"{n}"' for n in ("username", "key") if n not in record]:
        raise bad(f"it has no {' and '.join(missing)} field")
    for name in ("username", "key"):
        if not isinstance(record[name], str):
            raise bad(f'its "{name}" is {_json_type(record[name])}, not a string')
        if not record[name].strip():
            raise bad(f'its "{name}" is empty')
    return record["username"].strip(), record["key"].strip()


def _token_problem(text: str) -> str | None:
    if not (text := text.strip()):
        return "it is empty"
    if not (text.isascii() and text.isprintable()) or any(c.isspace() for c in text):
        return "it holds spaces, control or non-ASCII characters, not one token"


def _colab_userdata():
    if in_colab():
        with contextlib.suppress(ImportError):
            from google.colab import userdata  # type: ignore[import-not-found]

            return userdata


def _colab_secret(userdata, name: str) -> str | None:
    """The Colab secret ``name`` without whitespace, or None if it is not set."""
    try:
        value = userdata.get(name)
    except getattr(userdata, "SecretNotFoundError", ()):
        return None
    except getattr(userdata, "NotebookAccessError", ()):
        raise CredentialsError(
            f"the Colab secret {name} exists, but this notebook may not read it: "
            "open the key icon on the left, switch on its notebook access (or allow "
            "access when Colab asks) and run this cell again."
        ) from None
    except Exception as error:  # TimeoutException: not run from the Colab page
        why = type(error).__name__
        print(f"note: the Colab secret {name} could not be read ({why})")
        return None
    return "".join(str(value or "").split()) or None


def _environment_variable(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None and not value.strip():
        raise CredentialsError(
            f"the environment variable {name} is set but empty: `unset {name}`, or "
            f"set it (a token: from {_NEW_TOKEN}), and run again."
        )
    return value


def find_kaggle_credentials() -> KaggleCredentials:
    """The Kaggle credentials a download will send (README's order); CredentialsError
    names a garbled variable, secret, token or file or half a pair, never a value."""
    places = [("environment variable", _environment_variable)]
    if (userdata := _colab_userdata()) is not None:
        places.append(("Colab secret", lambda n: _colab_secret(userdata, n)))
    for label, get in places:
        if token := get(TOKEN_VARIABLE):
            where = f"the {label} {TOKEN_VARIABLE}"
            if problem := _token_problem(token):
                fix = f"Set it to the token from {_NEW_TOKEN}, and run again."
                raise _unusable(where, "API token", fix)(problem)
            return KaggleCredentials("token", where, {TOKEN_VARIABLE: token.strip()})
    for name in ("access_token", "access_token.txt"):  # kagglehub reads them itself
        if (path := Path.home() / ".kaggle" / name).exists():
            fix = f"Put your token from {_NEW_TOKEN} in it, or `rm {path}`; run again."
            bad = _unusable(path, "API token", fix)
            if problem := _token_problem(_file_text(path, "utf-8", bad)):
                raise bad(problem)
            return KaggleCredentials("token", str(path))
    for label, get in places:
        pair = {name: (get(name) or "").strip() for name in PAIR_VARIABLES}
        have = [name for name, value in pair.items() if value]
        if len(have) == 2:
            where = f"the {label}s KAGGLE_USERNAME and KAGGLE_KEY"
            return KaggleCredentials("pair", where, pair)
        if have:
            lack = next(name for name in PAIR_VARIABLES if name not in have)
            raise CredentialsError(
                f"incomplete Kaggle credentials: the {label} {have[0]} is set but "
                f"{lack} is not (both are needed). Set {lack} too, or remove {have[0]} "
                f"and give an API token instead. {_ways_to_sign_in()}"
            )
    if not (json_path := _kaggle_json_path()).exists():
        return KaggleCredentials("none", "nothing")
    env = dict(zip(PAIR_VARIABLES, read_kaggle_json(json_path)))
    with contextlib.suppress(OSError):
        if json_path.stat().st_mode & 0o077:
            print(f"note: other users can read {json_path}: chmod 600 {json_path}")
    return KaggleCredentials("pair", str(json_path), env)


def _refused(what: str, status: int, credentials: KaggleCredentials) -> LabError:
    """The message for an HTTP refusal, true to what was sent."""
    source = credentials.source
    if credentials.kind == "none" and status == 404:
        return DownloadError(
            f"{what} found no dataset {KAGGLE_HANDLE} visible without signing in "
            f"(HTTP 404; no credentials were sent). Check {KAGGLE_URL}; if it "
            f"opens while you are logged in, sign in here. {_ways_to_sign_in()}"
        )
    if credentials.kind == "none":
        return CredentialsError(
            f"{what} refused the anonymous download (HTTP {status}): no credentials "
            f"were sent (none were found). Sign in: {_ways_to_sign_in()}"
        )
    if status == 401:
        fix = f"put it in {source}"
        if credentials.kind == "pair":  # or a token, which --source kaggle reads first
            fix = f"fix the username and key in {source}, or set {TOKEN_VARIABLE}"
        return CredentialsError(
            f"{what} rejected the credentials from {source} (HTTP 401): wrong, "
            "expired or revoked (a new key revokes the old one). Create a new API "
            f"token at {KAGGLE_SETTINGS}, {fix}, and run again."
        )
    if status == 403:
        return CredentialsError(
            f"{what} accepted the credentials from {source} but refused the dataset "
            "(HTTP 403): that account has not given the consent it asks for. Open "
            f"{KAGGLE_URL} as that account, accept its terms, and run again."
        )
    return DownloadError(
        f"{what} found no dataset {KAGGLE_HANDLE} for the account from {source} "
        f"(HTTP 404): check {KAGGLE_URL}."
    )


@contextlib.contextmanager
def _download_errors(what: str, credentials: KaggleCredentials | None = None):
    """Turn network, HTTP and disk failures into LabErrors (Kaggle: ``credentials``)."""
    try:
        yield
    except LabError:
        raise
    except Exception as error:
        status, reason = _failure(error)
        if credentials is not None and status in (401, 403, 404):
            raise _refused(what, status, credentials) from None
        if reason:
            raise DownloadError(
                f"could not reach {what}: the network is unreachable ({reason}). "
                "Check the connection (on Colab: is the runtime connected?) and run "
                "again; without one, copy CelebA here: --source local --from PATH."
            ) from None
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            full = errors.os_error_message(error)
            raise DownloadError(f"{full}; CelebA needs about 3 GB") from None
        if status is not None:
            raise DownloadError(
                f"{what} answered HTTP {status}: check the link, retry later, or use "
                "another --source."
            ) from None
        if credentials is not None:
            raise
        raise DownloadError(f"could not download {what}: {error}") from None


# Sources: each returns (the folder at or above the CelebA layout, whether it is this
# call's extraction, to be removed if it is not CelebA) -----------------------------
def _from_kaggle(dest: Path, force: bool) -> tuple[Path, bool]:
    credentials = find_kaggle_credentials()
    print(credentials.describe())
    import kagglehub

    exported = mock.patch.dict(os.environ, credentials.env)  # for the download only
    with _download_errors("Kaggle", credentials), exported:
        cached = Path(kagglehub.dataset_download(KAGGLE_HANDLE, force_download=force))
    _link(dest, cached)
    return cached, False


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
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target.resolve(), target_is_directory=True)
        os.replace(tmp, link)
    except OSError as error:
        print(f"could not link {link} -> {target} ({error}); {MARKER} records it")


def _from_opendatasets(dest: Path, force: bool) -> tuple[Path, bool]:
    import click
    import opendatasets

    sent = KaggleCredentials("pair", "opendatasets' prompt")
    if (json_path := Path("kaggle.json").resolve()).exists():
        read_kaggle_json(json_path)  # one line if it is unusable
        sent = KaggleCredentials("pair", str(json_path))  # what opendatasets sends
    elif not (sys.stdin.isatty() or in_notebook()):
        raise CredentialsError(
            "opendatasets asks for your Kaggle username and key, and this session "
            f"has no terminal to ask in: put kaggle.json (from {_NEW_TOKEN}) in the "
            "current folder, or use --source kaggle (tokens, variables, secrets)."
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with _download_errors("Kaggle (through opendatasets)", sent):
            opendatasets.download(KAGGLE_URL, data_dir=str(dest), force=force)
    except click.exceptions.Abort:
        raise CredentialsError(
            "the Kaggle username/key prompt was cancelled: run again and enter "
            "them, or put kaggle.json in the current folder."
        ) from None
    except SystemExit:  # the kaggle package exits when it has no usable credentials
        raise CredentialsError(
            "the kaggle package found no usable credentials: check the username and "
            "key you entered (or kaggle.json in the current folder)."
        ) from None
    return dest / KAGGLE_HANDLE.split("/")[1], False


def _from_archive(dest: Path, path: Path | None, url, sha256, force: bool):
    """Extract ``path``, or the archive at ``url`` (deleted once extracted or bad)."""
    target = dest / LINK_NAME
    if target.is_dir() and not target.is_symlink() and not force:
        print(f"found an earlier extraction in {target}: checking it instead")
        return target, False
    if url is not None:
        import keras

        if sha256 is None:
            print("no --sha256 given: the download cannot be checked for damage")
        name = Path(urllib.parse.urlsplit(url).path).name or "celeba.zip"
        path = dest / "downloads" / name
        dest.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp otherwise
        with _download_errors(url):
            before = socket.getdefaulttimeout()
            socket.setdefaulttimeout(NETWORK_TIMEOUT)  # urllib's sockets have none
            try:
                matched = keras.utils.get_file(  # a 64-digit hash is taken as SHA-256
                    name,
                    url,
                    file_hash=sha256,
                    cache_dir=str(dest),
                    cache_subdir="downloads",
                    # with a hash, keras fetches a kept file again only if it is damaged
                    force_download=force and sha256 is None,
                )
            except Exception:
                if not path.is_file():
                    raise
                matched = None  # downloaded, but its hash did not match
            finally:
                socket.setdefaulttimeout(before)
        mismatch = matched is None and (
            f"checksum mismatch for {url}: expected sha256 {sha256}, got "
            f"{sha256_file(path)}: incomplete, damaged or another file. Run again to "
            "download it afresh, or check the --sha256 value."
        )
        try:
            _check_archive(path, mismatch)
        except DownloadError as error:
            path.unlink()
            raise DownloadError(f"{error} (The downloaded file was deleted.)") from None
    safe_extract_zip(path, dest)
    if url is not None:  # extracted, checked by its hash or CRCs: no longer needed
        path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()
    return target, True


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
    """Get CelebA into ``dest`` from ``source``: "kaggle", "opendatasets", "url"
    (``url``, an archive; ``sha256``, its 64 hex digits) or "local" (``path``, an
    archive or a folder); verify it and mark it verified. A second call finds the
    marker and does nothing (offline too) unless ``force``. Raises CredentialsError,
    DownloadError (network, checksum, a web page, a bad archive) or DataError."""
    if source not in SOURCES:
        choices = ", ".join(SOURCES)
        raise DownloadError(f"unknown source {source!r}: choose one of {choices}")
    if url is not None and source != "url":
        raise DownloadError(f"a URL is only used by the url source, not {source!r}.")
    if path is not None and source != "local":
        raise DownloadError(f"a path is only used by the local source, not {source!r}.")
    sha256 = sha256 and sha256.strip().lower()
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise DownloadError("--sha256 must be 64 hexadecimal digits.")
    dest = Path(dest).expanduser()
    if not force and (files := verified_copy(dest, expected_images)) is not None:
        print(
            f"CelebA is already verified in {files.root}: nothing to do "
            "(force=True / --force downloads it again)."
        )
        return files
    if source == "kaggle":
        root, extracted = _from_kaggle(dest, force)
    elif source == "opendatasets":
        root, extracted = _from_opendatasets(dest, force)
    elif source == "url":
        if not url:
            raise DownloadError("the url source needs a URL: --from URL (or url=...).")
        root, extracted = _from_archive(dest, None, url, sha256, force)
    elif not path:
        raise DataError("the local source needs a zip or folder: --from PATH.")
    elif (path := Path(path).expanduser()).is_dir():
        if dest.resolve() != path.resolve():
            _link(dest, path)
        root, extracted = path, False
    elif not path.is_file():
        raise DataError(
            f"{path} does not exist. On Colab, mount Google Drive first "
            "(from google.colab import drive; drive.mount('/content/drive'))."
        )
    else:
        root, extracted = _from_archive(dest, path, None, None, force)
    try:
        files = verify(find_celeba(root), expected_images)
    except DataError as error:
        again = "" if source == "local" else " Run again with --force (force=True)."
        if extracted:  # this call's extraction is not CelebA: leave nothing behind
            shutil.rmtree(root, ignore_errors=True)
            again += f" (The extracted copy in {root} was removed.)"
        raise DataError(f"{error}{again}") from None
    images, resolved = count_images(files), str(Path(files.root).resolve())
    record = dict(source=source, root=resolved, layout=files.layout, images=images)
    record["verified_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    atomic_write_text(dest / MARKER, json.dumps(record, indent=2) + "\n")
    print(f"CelebA verified: {images:,} images in {files.root}")
    return files
