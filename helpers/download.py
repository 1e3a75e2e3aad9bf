"""Get the real CelebA from Kaggle, opendatasets, a mirror URL or a local copy.

A verified copy is recorded in ``DEST/.celeba-verified.json``; ``DEST/celeba`` is the
extracted archive or a link to kagglehub's cache or a local folder. No message, log
or file ever holds a key or token.
"""

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
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

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

_KAGGLE_HINT = f"python -m vaelab download --source kaggle --dest DIR ({KAGGLE_URL})"


# Verification and the completion marker -------------------------------------------
def verify(files: CelebAFiles, expected_images: int | None = None) -> CelebAFiles:
    """Check that a located copy of CelebA is complete and consistent; return it.

    ``expected_images`` None accepts any positive count but warns when it is not
    CelebA's 202,599. Raises DataError: no images, another count, a list file that
    does not parse, or lists that disagree with the images.
    """
    with os.scandir(files.image_dir) as entries:
        on_disk = {e.name for e in entries if e.name.lower().endswith(".jpg")}
    n = len(on_disk)
    if n == 0 or expected_images not in (None, n):
        wanted = f"{expected_images:,}" if expected_images else "some"
        raise DataError(
            f"{files.image_dir} holds {n:,} images, expected {wanted}: the download "
            "or extraction is incomplete."
        )
    if expected_images is None and n != CELEBA_TOTAL:
        warnings.warn(
            f"{files.image_dir} holds {n:,} images, not CelebA's {CELEBA_TOTAL:,}: "
            "fine for a generated slice, but a partial copy of the real data.",
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
    """The copy a marker in ``dest`` records, or None if it is gone or changed.

    Cheap: the recorded folder must still hold the recorded number of images.
    """
    try:
        record = json.loads((Path(dest).expanduser() / MARKER).read_text())
        files = find_celeba(record["root"])
        images = count_images(files)
    except (OSError, ValueError, KeyError, TypeError, DataError):
        return None
    if images != record.get("images") or expected_images not in (None, images):
        return None
    return files


# Archives: what was saved, and extracting it safely --------------------------------
def _web_page(path: Path) -> str | None:
    """Explain a web page saved in place of an archive, or None if it is not one."""
    with open(path, "rb") as f:
        text = f.read(64 * 1024).lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not text.startswith((b"<!doctype html", b"<html")):
        return None
    start = f"{path} is not a zip but a {path.stat().st_size:,}-byte"
    drive_words = (b"google drive", b"quota", b"virus scan", b"drive.google")
    if any(word in text for word in drive_words):
        return (
            f"{start} Google Drive web page, shown instead of a shared file that was "
            "downloaded too often (the quota resets within 24 hours) or that needs a "
            f"virus-scan confirmation. Do not wait: use Kaggle: {_KAGGLE_HINT}"
        )
    return (
        f"{start} HTML web page (a login, error or preview page). Check that the "
        f"link downloads the file itself, or use Kaggle: {_KAGGLE_HINT}"
    )


def _check_archive(path: Path) -> str:
    """The kind of archive ``path`` is by its bytes; DownloadError if none is."""
    page = _web_page(path)
    if page:
        raise DownloadError(page)
    kind, size = archive_kind(path), path.stat().st_size
    if kind is None:
        what = "an empty file" if size == 0 else f"{size:,} bytes"
        raise DownloadError(
            f"{path} is neither a zip nor a tar archive ({what}; its first bytes "
            "match no archive format): it is truncated, corrupt or another kind of "
            "file. Download it again, or use Kaggle: " + _KAGGLE_HINT
        )
    if kind == "zip" and not zipfile.is_zipfile(path):
        raise DownloadError(
            f"{path}: the zip is truncated or corrupt ({size:,} bytes); download it "
            "again (the full CelebA zip is over 1 GB)."
        )
    return kind


def safe_extract_zip(
    zip_path: str | os.PathLike,
    dest: str | os.PathLike,
    *,
    name: str | None = None,
    replace: bool = False,
    celeba_layout: bool = False,
) -> Path:
    """Extract a zip or tar archive (known by its bytes) into ``dest/name`` safely.

    An unsafe entry (absolute, ``..``, link, device) or a size above the free disk
    refuses the whole archive before anything is written; the rest is renamed to
    ``dest/name`` (default: the archive's stem) in one step. With ``celeba_layout``
    only the folder holding a CelebA layout is extracted (none: DataError).
    Anything else wrong raises DownloadError.
    """
    zip_path, dest = Path(zip_path), Path(dest).expanduser()
    suffix = r"\.(tar\.gz|tar\.bz2|tar\.xz|tgz|tar|zip)$"
    target = dest / (name or re.sub(suffix, "", zip_path.name, flags=re.IGNORECASE))
    kind = _check_archive(zip_path)
    try:
        with open_archive(zip_path, kind) as archive:
            members = list_members(archive)
            _refuse_unsafe(zip_path, members)
            if celeba_layout:
                members = _layout_members(zip_path, kind, members)
            if (target.exists() or target.is_symlink()) and not replace:
                raise DownloadError(
                    f"{target} already exists: remove it or pass replace=True."
                )
            dest.mkdir(parents=True, exist_ok=True)
            needed = sum(m.size for m in members if m.kind == "file")
            free = shutil.disk_usage(dest).free
            if needed > free:
                raise DownloadError(
                    f"extracting {zip_path} needs {needed / 1e9:.1f} GB but only "
                    f"{free / 1e9:.1f} GB is free under {dest}: free some space, or "
                    "pass a --dest on another disk."
                )
            _extract_all(zip_path, archive, members, target)
    except (ArchiveError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise DownloadError(
            f"{zip_path}: {KIND_NAMES[kind]}, but truncated or corrupt "
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


def _extract_all(path: Path, archive, members: list[Member], target: Path) -> None:
    """Extract into a fresh ``.partial-`` folder, then rename it to ``target``."""
    for stale in target.parent.glob(".partial-*"):
        print(f"removing an unfinished extraction: {stale}")
        shutil.rmtree(stale, ignore_errors=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        payload = partial / "payload"  # deep enough that find_celeba never sees it
        print(f"extracting {len(members):,} entries of {path} ...")
        for k, member in enumerate(members, 1):
            extract_member(archive, member, payload / member.name)
            if k % 50_000 == 0:
                print(f"  {k:,} / {len(members):,}")
        payload.mkdir(exist_ok=True)  # an empty archive
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        os.replace(payload, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


# Network errors ----------------------------------------------------------------------
def _causes(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        if isinstance(getattr(error, "reason", None), BaseException):  # URLError
            yield error.reason
        error = error.__cause__ or error.__context__


def _network_reason(error: BaseException) -> str | None:
    """Name the connection failure behind ``error``, or None if it is not one."""
    import requests  # comes with kagglehub

    unreachable = {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN}
    failed = (ConnectionError, requests.ConnectionError, requests.Timeout)
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return "the server's name could not be looked up"
        if isinstance(cause, ConnectionRefusedError):
            return "the connection was refused"
        if isinstance(cause, (TimeoutError, socket.timeout)):
            return f"no answer within {NETWORK_TIMEOUT:g} s"
        if isinstance(cause, failed) or getattr(cause, "errno", None) in unreachable:
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


# Kaggle credentials ------------------------------------------------------------------
# kagglehub 1.0 sends a token before a username/key pair, but in Colab it reads only
# the KAGGLE_API_TOKEN secret and swallows every error. So the lab looks itself, in
# that order, and gives what it found to kagglehub through its documented
# environment variables for the download only; with nothing, it tries anonymously.
KAGGLE_SETTINGS = "https://www.kaggle.com/settings"
TOKEN_VARIABLE = "KAGGLE_API_TOKEN"
PAIR_VARIABLES = ("KAGGLE_USERNAME", "KAGGLE_KEY")
_NEW_TOKEN = f"{KAGGLE_SETTINGS} (API, Create New Token)"


@dataclass(frozen=True)
class KaggleCredentials:
    """Which Kaggle credentials a download sends ("token", "pair" or "none").

    ``source`` says where they were found; ``env`` (secret: not in ``repr``) holds
    the variables kagglehub gets during the download."""

    kind: str
    source: str
    env: dict = field(default_factory=dict, repr=False, compare=False)
    notes: tuple = ()

    def describe(self) -> str:
        """One line for the student: what will be sent to Kaggle."""
        if self.kind == "none":
            return (
                "Kaggle: no credentials found, so none are sent: trying the anonymous "
                "download Kaggle allows for public datasets. (To sign in, add your "
                f"API token from {KAGGLE_SETTINGS} as the Colab secret "
                f"{TOKEN_VARIABLE}, or the environment variable of that name.)"
            )
        what = "API token" if self.kind == "token" else "username and key"
        return f"Kaggle: signing in with the {what} from {self.source}."


_NOBODY = KaggleCredentials("none", "nothing")


def _kaggle_json_path() -> Path:
    folder = os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle"
    return Path(folder) / "kaggle.json"


def _ways_to_sign_in() -> str:
    json_path = _kaggle_json_path()
    return (
        f"Create an API token at {_NEW_TOKEN}, then give it in one of these ways "
        f"and run again:\n  1. on Colab: the notebook secret {TOKEN_VARIABLE} (the "
        "key icon on the left; switch on its notebook access);\n"
        f"  2. elsewhere: the environment variable {TOKEN_VARIABLE};\n"
        "  3. an older username/key pair: the Colab secrets or environment variables "
        f"KAGGLE_USERNAME and KAGGLE_KEY, or the kaggle.json file saved as "
        f"{json_path} (or in the folder named by KAGGLE_CONFIG_DIR), then "
        f"`chmod 600 {json_path}`.\n"
        "Or use a copy you already have: --source local --from ZIP_OR_FOLDER."
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
    """Read a kaggle.json file; return (username, key).

    Raises CredentialsError (one line, never the file's content).
    """
    path = Path(path)

    def bad(problem: str) -> CredentialsError:
        return CredentialsError(
            f"{path} is not a usable Kaggle credentials file: {problem}. Replace it "
            f"with a fresh kaggle.json from {_NEW_TOKEN}, which reads "
            '{"username": "...", "key": "..."}, or delete it and give an API token '
            f"as {TOKEN_VARIABLE} (a Colab secret or environment variable)."
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
    missing = [f'"{name}"' for name in ("username", "key") if name not in record]
    if missing:
        raise bad(f"it has no {' and '.join(missing)} field")
    for name in ("username", "key"):
        if not isinstance(record[name], str):
            raise bad(f'its "{name}" is {_json_type(record[name])}, not a string')
        if not record[name].strip():
            raise bad(f'its "{name}" is empty')
    return record["username"].strip(), record["key"].strip()


def _token_problem(text: str) -> str | None:
    text = text.strip()
    if not text:
        return "it is empty"
    if not (text.isascii() and text.isprintable()) or any(c.isspace() for c in text):
        return "it holds spaces, control or non-ASCII characters, not one token"
    return None


def _read_token_file(path: Path) -> str:
    """The token in ``path`` (kagglehub reads it too); a bad file is one clear line."""

    def bad(problem: str) -> CredentialsError:
        return CredentialsError(
            f"{path} is not a usable Kaggle API token: {problem}; put your API token "
            f"from {_NEW_TOKEN} in it, or delete it (`rm {path}`), and run again."
        )

    text = _file_text(path, "utf-8", bad)
    problem = _token_problem(text)
    if problem:
        raise bad(problem)
    return text.strip()


def _colab_userdata():
    """google.colab.userdata in Colab, else None."""
    if in_colab():
        with contextlib.suppress(ImportError):
            from google.colab import userdata  # type: ignore[import-not-found]

            return userdata
    return None


def _colab_secret(userdata, name: str, notes: list) -> str | None:
    """The Colab secret ``name`` without whitespace, or None if it is not set."""
    try:
        value = userdata.get(name)
    except Exception as error:
        if isinstance(error, getattr(userdata, "SecretNotFoundError", ())):
            return None
        if isinstance(error, getattr(userdata, "NotebookAccessError", ())):
            raise CredentialsError(
                f"the Colab secret {name} exists, but this notebook may not read "
                "it: open the key icon on the left, switch on its notebook access "
                "(or allow access when Colab asks) and run this cell again."
            ) from None
        # TimeoutException (not run from the Colab page), or a Colab change.
        why = type(error).__name__
        notes.append(f"the Colab secret {name} could not be read ({why})")
        return None
    return "".join(str(value or "").split()) or None


def _environment_variable(name: str) -> str | None:
    value = os.environ.get(name)
    if value is not None and not value.strip():
        raise CredentialsError(
            f"the environment variable {name} is set but empty: unset it (`unset "
            f"{name}`) or set it to its value (a token: from {_NEW_TOKEN}), and run "
            "again."
        )
    return value


def find_kaggle_credentials() -> KaggleCredentials:
    """Find the Kaggle credentials a download will send (in README's order).

    Nothing found is kind "none" (an anonymous download). Raises CredentialsError
    for an empty or garbled variable or token, half a pair, a Colab secret this
    notebook may not read, or an unusable file, naming them, never their values.
    """
    notes: list[str] = []
    places = [("environment variable", _environment_variable)]
    userdata = _colab_userdata()
    if userdata is not None:
        places.append(("Colab secret", lambda n: _colab_secret(userdata, n, notes)))
    found = _find_token(places) or _find_pair(places)
    json_path = _kaggle_json_path()
    if found is None and json_path.exists():
        pair = dict(zip(PAIR_VARIABLES, read_kaggle_json(json_path)))
        found = ("pair", str(json_path), pair)
        with contextlib.suppress(OSError):
            if json_path.stat().st_mode & 0o077:
                notes.append(f"other users can read {json_path}: chmod 600 {json_path}")
    return KaggleCredentials(*(found or ("none", "nothing", {})), tuple(notes))


def _find_token(places) -> tuple | None:
    for label, get in places:
        token = get(TOKEN_VARIABLE)
        if token:
            where = f"the {label} {TOKEN_VARIABLE}"
            problem = _token_problem(token)
            if problem:
                raise CredentialsError(
                    f"{where} is not a usable Kaggle API token: {problem}. Set it to "
                    f"the token from {_NEW_TOKEN}, and run again."
                )
            return "token", where, {TOKEN_VARIABLE: token.strip()}
    for name in ("access_token", "access_token.txt"):
        path = Path.home() / ".kaggle" / name
        if path.exists() and _read_token_file(path):
            return "token", str(path), {}
    return None


def _find_pair(places) -> tuple | None:
    for label, get in places:
        found = {name: get(name) for name in PAIR_VARIABLES}
        have = [name for name, value in found.items() if value]
        if len(have) == 2:
            where = f"the {label}s KAGGLE_USERNAME and KAGGLE_KEY"
            return "pair", where, {n: v.strip() for n, v in found.items()}
        if have:
            lack = next(name for name in PAIR_VARIABLES if name not in have)
            raise CredentialsError(
                f"incomplete Kaggle credentials: the {label} {have[0]} is set but "
                f"{lack} is not (both are needed). Set {lack} too, or remove "
                f"{have[0]} and give the one API token as {TOKEN_VARIABLE} instead. "
                + _ways_to_sign_in()
            )
    return None


def _refused(what: str, status: int, credentials: KaggleCredentials) -> LabError:
    """The message for an HTTP refusal, true to what was sent."""
    source = credentials.source
    if credentials.kind == "none":
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
        fix = f"put it in {source}"
        if credentials.kind != "token":
            fix = (
                f"add it as the Colab secret or environment variable {TOKEN_VARIABLE} "
                f"(used before {source}), or put a valid username and key in {source}"
            )
        return CredentialsError(
            f"{what} rejected the credentials from {source} (HTTP 401): they are "
            "wrong, expired or revoked (an old key stops working when a new one is "
            f"made). Create a new API token at {KAGGLE_SETTINGS}, {fix}, and run "
            "again."
        )
    if status == 403:
        return CredentialsError(
            f"{what} accepted the credentials from {source} but refused this "
            "dataset (HTTP 403): that account has not given the consent the dataset "
            f"asks for. Open {KAGGLE_URL} while logged in as that account, accept "
            "its terms (the Download button asks), and run again."
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
        status, reason = _http_status(error), _network_reason(error)
        if credentials is not None and status in (401, 403, 404):
            raise _refused(what, status, credentials) from None
        if reason:
            raise DownloadError(
                f"could not reach {what}: the network is unreachable ({reason}). "
                "Check the internet connection (on Colab: is the runtime connected?) "
                "and run the same command again. Without internet, copy CelebA here "
                "yourself and use --source local --from PATH."
            ) from None
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            raise DownloadError(
                f"the disk is full ({error.filename or 'download folder'}): CelebA "
                "needs about 3 GB while downloading; free some space and run again."
            ) from None
        if status is not None:
            raise DownloadError(
                f"{what} answered HTTP {status}: check the link, try again later, or "
                "use another --source."
            ) from None
        if credentials is not None:
            raise
        raise DownloadError(f"could not download {what}: {error}") from None


# Sources: each returns the folder that holds (or is above) the CelebA layout -----
def _from_kaggle(dest: Path, force: bool) -> Path:
    credentials = find_kaggle_credentials()
    for note in credentials.notes:
        print(f"note: {note}")
    print(credentials.describe())
    import kagglehub

    exported = mock.patch.dict(os.environ, credentials.env)  # for the download only
    with _download_errors("Kaggle", credentials), exported:
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

    if Path("kaggle.json").exists():
        read_kaggle_json(Path("kaggle.json").resolve())  # one line if it is unusable
    elif not (sys.stdin.isatty() or in_notebook()):
        raise CredentialsError(
            "opendatasets asks for your Kaggle username and key interactively, and "
            "this session has no terminal to ask in. Put kaggle.json (from "
            f"{_NEW_TOKEN}) in the current folder, or use --source kaggle, which "
            "also reads tokens, KAGGLE_USERNAME / KAGGLE_KEY and Colab secrets."
        )
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with _download_errors("Kaggle (through opendatasets)", _NOBODY):
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
    """Download ``url`` into ``dest/downloads``; return it, or delete it and raise."""
    import keras

    name = Path(urllib.parse.urlsplit(url).path).name or "celeba.zip"
    target = dest / "downloads" / name
    dest.mkdir(parents=True, exist_ok=True)  # get_file falls back to /tmp otherwise
    with _download_errors(url):
        before = socket.getdefaulttimeout()
        socket.setdefaulttimeout(NETWORK_TIMEOUT)  # urllib's sockets have none
        try:
            matched = keras.utils.get_file(
                fname=name,
                origin=url,
                file_hash=sha256,
                hash_algorithm="sha256",
                cache_dir=str(dest),
                cache_subdir="downloads",
                # With a hash, keras re-checks a kept file and fetches it again only
                # if it is damaged; without one, only force fetches it again.
                force_download=force and sha256 is None,
            )
        except Exception:
            if not target.is_file():
                raise
            matched = None  # downloaded, but its hash did not match
        finally:
            socket.setdefaulttimeout(before)
    try:
        if matched is None and not _web_page(target):
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got "
                f"{sha256_file(target)}. The file is incomplete, damaged or a "
                "different file. Run again to download it afresh, or check the "
                "--sha256 value."
            )
        _check_archive(target)  # a web page, or no archive at all
    except DownloadError as error:
        target.unlink()
        raise DownloadError(f"{error} (The downloaded file was deleted.)") from None
    return target


def _from_archive(dest: Path, path: Path | None, url, sha256, force: bool) -> Path:
    """Extract a local archive (``path``) or a downloaded one (``url``)."""
    target = dest / LINK_NAME
    if target.is_dir() and not target.is_symlink() and not force:
        print(f"found an earlier extraction in {target}: checking it instead")
        return target
    if path is None:
        if sha256 is None:
            print("no --sha256 given: the download cannot be checked for damage")
        path = _fetch_url(url, dest, sha256, force)
    root = safe_extract_zip(
        path, dest, name=LINK_NAME, replace=True, celeba_layout=True
    )
    if url is not None:  # extracted, checked by its hash or CRCs: no longer needed
        path.unlink()
        with contextlib.suppress(OSError):
            path.parent.rmdir()
    return root


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
    return _from_archive(dest, path, None, None, force)


def _stamp(path: Path):
    """(inode, mtime) of a real folder, None for a link or nothing."""
    if path.is_symlink() or not path.is_dir():
        return None
    status = path.stat()
    return status.st_ino, status.st_mtime_ns


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

    ``source`` is "kaggle", "opendatasets", "url" (``url``, an archive; ``sha256``,
    its 64 hex digits) or "local" (``path``, an archive or a folder). A second call
    finds the marker and does nothing (offline too) unless ``force``.

    Raises:
        CredentialsError: Kaggle credentials missing or rejected.
        DownloadError: network, checksum, a web page instead of the archive, an
            unsafe or broken archive.
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
    files = None if force else verified_copy(dest, expected_images)
    if files is not None:
        print(
            f"CelebA is already verified in {files.root}: nothing to do "
            "(force=True / --force downloads it again)."
        )
        return files
    before = _stamp(dest / LINK_NAME)
    if source == "kaggle":
        root = _from_kaggle(dest, force)
    elif source == "opendatasets":
        root = _from_opendatasets(dest, force)
    elif source == "url":
        if not url:
            raise DownloadError("the url source needs a URL: --from URL (or url=...).")
        root = _from_archive(dest, None, url, sha256, force)
    else:
        root = _from_local(dest, path, force)
    extracted = root == dest / LINK_NAME and _stamp(root) not in (None, before)
    try:
        files = verify(find_celeba(root), expected_images)
    except DataError as error:
        again = "" if source == "local" else " Run again with --force (force=True)."
        if extracted:  # this call's extraction is not CelebA: leave nothing behind
            shutil.rmtree(root, ignore_errors=True)
            again += f" (The extracted copy in {root} was removed.)"
        raise DataError(f"{error}{again}") from None
    images = count_images(files)
    record = {
        "source": source,
        "root": str(Path(files.root).resolve()),
        "layout": files.layout,
        "images": images,
        "verified_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_text(dest / MARKER, json.dumps(record, indent=2) + "\n")
    print(f"CelebA verified: {images:,} images in {files.root}")
    return files
