"""Tests for helpers.download: every source's failure explained, nothing unsafe written.

No test touches the internet: an autouse fixture makes any non-loopback connection
fail, and Kaggle calls are replaced by spies.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import pytest

from helpers import download
from helpers.celeba import ATTRIBUTE_NAMES, LAYOUTS, find_celeba
from helpers.download import download_celeba, safe_extract_zip, verify
from helpers.errors import CredentialsError, DataError, DownloadError

SECRET = "SECRETKEY123"
REPO = Path(__file__).resolve().parents[1]


# Fixtures -------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Refuse every connection that leaves this machine."""
    real_connect = socket.socket.connect

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
            return real_connect(self, address)
        raise AssertionError(f"test tried to reach the network: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.fixture
def no_kaggle_credentials(monkeypatch, tmp_path):
    """An environment where neither the lab nor kagglehub finds any credentials."""
    for name in (
        "KAGGLE_USERNAME",
        "KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "TBE_RUNTIME_ADDR",
        "KAGGLE_KERNEL_RUN_TYPE",
        "COLAB_RELEASE_TAG",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(home / "kaggle-config"))
    try:  # a kagglehub.login() of another test (the lab never reads this module)
        from kagglehub import config

        monkeypatch.setattr(config, "_kaggle_credentials", None)
    except (ImportError, AttributeError):
        pass
    return home


KAGGLE_VARIABLES = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")


@pytest.fixture
def fake_kaggle(monkeypatch, no_kaggle_credentials):
    """Fake credentials, and a spy in place of kagglehub.dataset_download.

    The spy records the Kaggle variables set while it runs: what kagglehub sends.
    """
    import kagglehub

    monkeypatch.setenv("KAGGLE_USERNAME", "student")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    calls = []

    def spy(handle, path=None, *, force_download=False, output_dir=None):
        calls.append(handle)
        spy.seen.append({n: os.environ[n] for n in KAGGLE_VARIABLES if n in os.environ})
        result = spy.result
        if isinstance(result, BaseException):
            raise result
        return str(result)

    monkeypatch.setattr(kagglehub, "dataset_download", spy)
    spy.calls, spy.seen = calls, []
    return spy


class SecretNotFoundError(Exception):
    """As google.colab.userdata raises for a secret that is not defined."""

    def __init__(self, key):
        super().__init__(f"Secret {key} does not exist.")


class NotebookAccessError(Exception):
    """As google.colab.userdata raises when the notebook's access is off."""

    def __init__(self, key):
        super().__init__(f"Notebook does not have access to secret {key}")


class TimeoutException(Exception):
    """As google.colab.userdata raises outside the Colab page."""

    def __init__(self, key):
        super().__init__(f"Requesting secret {key} timed out.")


@pytest.fixture
def colab_secrets(monkeypatch):
    """A stand-in google.colab with userdata.get over a dict of secrets.

    A value that is an exception class is raised (e.g. NotebookAccessError).
    """
    secrets = {}

    def get(key):
        value = secrets.get(key, SecretNotFoundError)
        if isinstance(value, type) and issubclass(value, Exception):
            raise value(key)
        return value

    userdata = types.ModuleType("google.colab.userdata")
    userdata.get = get
    userdata.SecretNotFoundError = SecretNotFoundError
    userdata.NotebookAccessError = NotebookAccessError
    userdata.TimeoutException = TimeoutException
    colab = types.ModuleType("google.colab")
    colab.userdata = userdata
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.userdata", userdata)
    return secrets


def http_error(status, kind="KaggleApiHTTPError"):
    import requests
    from kagglehub import exceptions

    response = requests.Response()
    response.status_code = status
    return getattr(exceptions, kind)(f"{status} Client Error", response=response)


def tiny_celeba(root: Path, n: int = 5, layout: str = "official") -> Path:
    """Write a minimal CelebA-format folder (placeholder JPEG bytes)."""
    rel = LAYOUTS[layout]
    (root / rel.image_dir).mkdir(parents=True)
    ids = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    for image_id in ids:
        (root / rel.image_dir / image_id).write_bytes(b"\xff\xd8\xff\xd9")
    minus = ["-1"] * len(ATTRIBUTE_NAMES)
    if layout == "official":
        attrs = [f"{n}", " ".join(ATTRIBUTE_NAMES)]
        attrs += [" ".join([i] + minus) for i in ids]
        parts = [f"{i} 0" for i in ids]
    else:
        attrs = [",".join(["image_id", *ATTRIBUTE_NAMES])]
        attrs += [",".join([i] + minus) for i in ids]
        parts = ["image_id,partition"] + [f"{i},0" for i in ids]
    (root / rel.attr_file).write_text("\n".join(attrs) + "\n")
    (root / rel.partition_file).write_text("\n".join(parts) + "\n")
    return root


def zip_folder(folder: Path, zip_path: Path) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, path.relative_to(folder).as_posix())
    return zip_path


@pytest.fixture
def tiny_zip(tmp_path):
    folder = tiny_celeba(tmp_path / "src", 5, "kaggle")
    return zip_folder(folder, tmp_path / "celeba.zip")


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


DRIVE_PAGE = (
    "<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>"
    "</head><body>Sorry, you can't view or download this file at this time. Too "
    "many users have viewed or downloaded this file recently (quota exceeded)."
    "</body></html>\n"
)


# Kaggle credentials ---------------------------------------------------------------
def everything_shown(caught, capsys) -> str:
    out = capsys.readouterr()
    return str(caught.value if caught else "") + out.out + out.err


def test_half_a_pair_names_every_way_and_hides_the_key(
    fake_kaggle, monkeypatch, tmp_path, capsys
):
    monkeypatch.delenv("KAGGLE_USERNAME")  # only KAGGLE_KEY=SECRETKEY123 is left
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data")
    message = str(caught.value)
    for way in (
        "KAGGLE_USERNAME and KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "kaggle.json",
        "KAGGLE_CONFIG_DIR",
        "chmod 600",
        "Colab",
        "--source local",
    ):
        assert way in message
    assert "KAGGLE_KEY is set but KAGGLE_USERNAME is not" in message
    assert SECRET not in everything_shown(caught, capsys)
    assert fake_kaggle.calls == []  # refused before any network call


@pytest.mark.parametrize(
    "content, problem",
    [
        ('{"username": "student", "key": "' + SECRET, "it is not valid JSON"),
        ('["student", "' + SECRET + '"]', "it holds an array, not a JSON object"),
        ('"' + SECRET + '"', "it holds a string, not a JSON object"),
        ("null", "it holds null, not a JSON object"),
        ('{"username": "student"}', 'it has no "key" field'),
        ("{}", 'it has no "username" and "key" field'),
        ('{"username": "student", "key": 123}', 'its "key" is a number, not a string'),
        ('{"username": ["s"], "key": "' + SECRET + '"}', 'its "username" is an array'),
        ('{"username": "student", "key": "  "}', 'its "key" is empty'),
        ("", "it is empty"),
        ("\n  \n", "it is empty"),
        (b"\xff\xfe" + SECRET.encode("utf-16-le"), "it is not text"),
        (None, "it is a folder, not a file"),
    ],
)
def test_a_malformed_kaggle_json_is_one_clear_line(
    fake_kaggle, monkeypatch, tmp_path, capsys, content, problem
):
    for name in KAGGLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    path = fake_kaggle_json(content)
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data")
    message = str(caught.value)
    assert message.startswith(f"{path} is not a usable Kaggle credentials file: ")
    assert problem in message and "https://www.kaggle.com/settings" in message
    assert "\n" not in message  # one line
    assert SECRET not in everything_shown(caught, capsys)
    assert fake_kaggle.calls == []


def fake_kaggle_json(content) -> Path:
    """Write ``content`` as $KAGGLE_CONFIG_DIR/kaggle.json (None: a folder there)."""
    path = Path(os.environ["KAGGLE_CONFIG_DIR"]) / "kaggle.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    if content is None:
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def test_kaggle_source_links_the_cache_and_is_idempotent(fake_kaggle, tmp_path):
    cache = tiny_celeba(tmp_path / "kagglehub" / "versions" / "2", 5, "kaggle")
    fake_kaggle.result = cache
    dest = tmp_path / "data"
    files = download_celeba(dest, expected_images=5)
    assert files.root == cache and files.layout == "kaggle"
    assert (dest / "celeba").is_symlink()
    assert (dest / "celeba").resolve() == cache.resolve()
    assert find_celeba(dest).layout == "kaggle"  # usable through the link
    record = json.loads((dest / ".celeba-verified.json").read_text())
    assert record == {
        **record,
        "source": "kaggle",
        "images": 5,
        "root": str(cache.resolve()),
    }
    assert SECRET not in (dest / ".celeba-verified.json").read_text()
    again = download_celeba(dest, expected_images=5)
    assert again.root == cache and fake_kaggle.calls == [download.KAGGLE_HANDLE]


def _unset_pair(monkeypatch):
    monkeypatch.delenv("KAGGLE_USERNAME")
    monkeypatch.delenv("KAGGLE_KEY")


@pytest.mark.parametrize(
    "secrets, sent, said",
    [
        (  # kagglehub 1.0's one secret
            {"KAGGLE_API_TOKEN": f" {SECRET}\n"},
            {"KAGGLE_API_TOKEN": SECRET},
            "API token from the Colab secret KAGGLE_API_TOKEN",
        ),
        (  # the older pair, which kagglehub 1.0 no longer reads from secrets
            {"KAGGLE_USERNAME": "student", "KAGGLE_KEY": SECRET},
            {"KAGGLE_USERNAME": "student", "KAGGLE_KEY": SECRET},
            "username and key from the Colab secrets KAGGLE_USERNAME and KAGGLE_KEY",
        ),
        (  # the token wins over the pair
            {"KAGGLE_API_TOKEN": SECRET, "KAGGLE_USERNAME": "s", "KAGGLE_KEY": "k"},
            {"KAGGLE_API_TOKEN": SECRET},
            "the Colab secret KAGGLE_API_TOKEN",
        ),
    ],
)
def test_colab_secrets_are_sent_for_the_download_only(
    fake_kaggle, colab_secrets, monkeypatch, tmp_path, capsys, secrets, sent, said
):
    _unset_pair(monkeypatch)
    colab_secrets.update(secrets)
    fake_kaggle.result = tiny_celeba(tmp_path / "kh", 5, "kaggle")
    download_celeba(tmp_path / "data", expected_images=5)
    assert fake_kaggle.seen == [sent]
    assert not any(name in os.environ for name in KAGGLE_VARIABLES)  # restored
    out = capsys.readouterr()
    assert said in out.out
    assert SECRET not in out.out + out.err


@pytest.mark.parametrize(
    "where, said",
    [
        ("token env", "API token from the environment variable KAGGLE_API_TOKEN"),
        ("access_token", "API token from"),
        ("pair env", "the environment variables KAGGLE_USERNAME and KAGGLE_KEY"),
        ("kaggle.json", "username and key from"),
    ],
)
def test_tokens_and_the_older_pair_outside_colab(
    fake_kaggle, monkeypatch, tmp_path, capsys, where, said
):
    _unset_pair(monkeypatch)
    if where == "token env":
        monkeypatch.setenv("KAGGLE_API_TOKEN", SECRET)
    elif where == "access_token":
        (Path.home() / ".kaggle").mkdir()
        (Path.home() / ".kaggle" / "access_token").write_text(SECRET + "\n")
    elif where == "pair env":
        monkeypatch.setenv("KAGGLE_USERNAME", "student")
        monkeypatch.setenv("KAGGLE_KEY", SECRET)
    else:
        path = fake_kaggle_json(json.dumps({"username": "student", "key": SECRET}))
        path.chmod(0o600)
    fake_kaggle.result = tiny_celeba(tmp_path / "kh", 5, "kaggle")
    download_celeba(tmp_path / "data", expected_images=5)
    out = capsys.readouterr()
    assert said in out.out and "note:" not in out.out
    assert SECRET not in out.out + out.err
    if where == "kaggle.json":
        pair = {"KAGGLE_USERNAME": "student", "KAGGLE_KEY": SECRET}
        assert fake_kaggle.seen == [pair]


def test_no_credentials_tries_the_anonymous_download(
    fake_kaggle, colab_secrets, monkeypatch, tmp_path, capsys
):
    _unset_pair(monkeypatch)
    fake_kaggle.result = tiny_celeba(tmp_path / "kh", 5, "kaggle")
    files = download_celeba(tmp_path / "data", expected_images=5)
    assert files.layout == "kaggle" and fake_kaggle.seen == [{}]  # nothing sent
    assert "no credentials found, so none are sent" in capsys.readouterr().out


@pytest.mark.parametrize("status", [401, 403])
def test_an_anonymous_refusal_says_nothing_was_sent(
    fake_kaggle, monkeypatch, tmp_path, status
):
    _unset_pair(monkeypatch)
    fake_kaggle.result = http_error(status)
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data")
    message = str(caught.value)
    assert f"refused the anonymous download (HTTP {status})" in message
    assert "no credentials were sent" in message and "KAGGLE_API_TOKEN" in message
    assert "rejected" not in message


@pytest.mark.parametrize("kind", ["KaggleApiHTTPError", "ColabHTTPError"])
def test_rejected_credentials_name_their_source(
    fake_kaggle, colab_secrets, monkeypatch, tmp_path, capsys, kind
):
    _unset_pair(monkeypatch)
    colab_secrets["KAGGLE_API_TOKEN"] = SECRET
    fake_kaggle.result = http_error(401, kind)
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data")
    assert str(caught.value).startswith(
        "Kaggle rejected the credentials from the Colab secret KAGGLE_API_TOKEN "
        "(HTTP 401)"
    )
    assert "https://www.kaggle.com/settings" in str(caught.value)
    assert SECRET not in everything_shown(caught, capsys)


def test_consent_needed_is_not_called_rejected(fake_kaggle, tmp_path, capsys):
    fake_kaggle.result = http_error(403)
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data")
    message = str(caught.value)
    assert "accepted the credentials from the environment variables" in message
    assert "(HTTP 403)" in message and "consent" in message
    assert download.KAGGLE_URL in message
    assert SECRET not in everything_shown(caught, capsys)


def test_not_found_anonymously_suggests_signing_in(fake_kaggle, monkeypatch, tmp_path):
    _unset_pair(monkeypatch)
    fake_kaggle.result = http_error(404)
    with pytest.raises(DownloadError, match="visible without signing in") as caught:
        download_celeba(tmp_path / "data")
    assert "no credentials were sent" in str(caught.value)


def test_a_secret_without_notebook_access_is_explained(
    fake_kaggle, colab_secrets, monkeypatch, tmp_path
):
    _unset_pair(monkeypatch)
    colab_secrets["KAGGLE_API_TOKEN"] = NotebookAccessError
    with pytest.raises(CredentialsError, match="notebook access") as caught:
        download_celeba(tmp_path / "data")
    assert "Colab secret KAGGLE_API_TOKEN exists" in str(caught.value)
    assert fake_kaggle.calls == []


def test_half_a_pair_of_colab_secrets_is_explained(
    fake_kaggle, colab_secrets, monkeypatch, tmp_path
):
    _unset_pair(monkeypatch)
    colab_secrets["KAGGLE_USERNAME"] = "student"
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data")
    assert "the Colab secret KAGGLE_USERNAME is set but KAGGLE_KEY is not" in str(
        caught.value
    )


def test_unreadable_secrets_fall_back_with_a_note(
    fake_kaggle, colab_secrets, monkeypatch, tmp_path, capsys
):
    _unset_pair(monkeypatch)
    colab_secrets["KAGGLE_API_TOKEN"] = TimeoutException
    fake_kaggle_json(json.dumps({"username": "student", "key": SECRET})).chmod(0o600)
    fake_kaggle.result = tiny_celeba(tmp_path / "kh", 5, "kaggle")
    download_celeba(tmp_path / "data", expected_images=5)
    out = capsys.readouterr().out
    assert "KAGGLE_API_TOKEN could not be read (TimeoutException)" in out
    assert "username and key from" in out and SECRET not in out


def test_kaggle_without_network_says_so(fake_kaggle, tmp_path):
    import requests

    fake_kaggle.result = requests.ConnectionError("Max retries exceeded")
    with pytest.raises(DownloadError, match="the network is unreachable"):
        download_celeba(tmp_path / "data")


def test_the_lab_uses_kagglehubs_public_api_only():
    source = (REPO / "helpers" / "download.py").read_text()
    assert "kagglehub.config" not in source
    assert "from kagglehub import config" not in source


def test_opendatasets_without_terminal_or_kaggle_json_explains(monkeypatch, tmp_path):
    import opendatasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False, raising=False)
    monkeypatch.setattr(opendatasets, "download", lambda *a, **k: pytest.fail("called"))
    with pytest.raises(CredentialsError, match="no terminal to ask in") as caught:
        download_celeba(tmp_path / "data", "opendatasets")
    assert "kaggle.json" in str(caught.value) and "--source kaggle" in str(caught.value)


@pytest.fixture
def fake_opendatasets(monkeypatch, tmp_path):
    """kaggle.json in the working folder, and a spy in place of opendatasets."""
    import opendatasets

    monkeypatch.chdir(tmp_path)
    Path("kaggle.json").write_text(json.dumps({"username": "student", "key": SECRET}))

    def spy(url, data_dir=".", force=False, **_):
        spy.calls.append((url, force))
        if isinstance(spy.result, BaseException):
            raise spy.result
        tiny_celeba(Path(data_dir) / "celeba-dataset", 5, "kaggle")

    spy.calls, spy.result = [], None
    monkeypatch.setattr(opendatasets, "download", spy)
    return spy


def test_opendatasets_lands_in_dest_and_verifies(fake_opendatasets, tmp_path, capsys):
    files = download_celeba(tmp_path / "data", "opendatasets", expected_images=5)
    assert files.root == tmp_path / "data" / "celeba-dataset"
    assert fake_opendatasets.calls == [(download.KAGGLE_URL, False)]
    assert SECRET not in "".join(capsys.readouterr())


def test_opendatasets_rejected_credentials_exit_is_caught(fake_opendatasets, tmp_path):
    fake_opendatasets.result = SystemExit(1)  # what the kaggle package does
    with pytest.raises(CredentialsError, match="found no usable credentials") as caught:
        download_celeba(tmp_path / "data", "opendatasets")
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "status, said", [(401, "rejected the credentials from"), (403, "consent")]
)
def test_opendatasets_refusal_names_the_credentials_it_sent(
    fake_opendatasets, tmp_path, capsys, status, said
):
    """opendatasets sends ./kaggle.json (or what was typed): not an anonymous try."""
    fake_opendatasets.result = http_error(status)
    with pytest.raises(CredentialsError) as caught:
        download_celeba(tmp_path / "data", "opendatasets")
    message = str(caught.value)
    assert f"(HTTP {status})" in message and said in message
    assert str(tmp_path / "kaggle.json") in message
    assert "anonymous" not in message and "no credentials were sent" not in message
    assert SECRET not in everything_shown(caught, capsys)


# Zip archives ---------------------------------------------------------------------
def _zip_with(path: Path, name: str, *, symlink: bool = False) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("celeba/ok.txt", "fine")
        info = zipfile.ZipInfo(name)
        if symlink:
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(info, "/etc/passwd" if symlink else "evil")
    return path


@pytest.mark.parametrize(
    "name, symlink, reason",
    [
        ("../evil.txt", False, "contains '..'"),
        ("celeba/../../evil.txt", False, "contains '..'"),
        ("/abs.txt", False, "is an absolute path"),
        ("C:/evil.txt", False, "starts with a drive letter"),
        ("..\\evil.txt", False, "contains '..'"),
        ("celeba/link", True, "is a symbolic link"),
    ],
)
def test_hostile_zip_is_refused_before_anything_is_written(
    tmp_path, name, symlink, reason
):
    hostile = _zip_with(tmp_path / "hostile.zip", name, symlink=symlink)
    dest = tmp_path / "out" / "dest"
    before = listing(tmp_path)
    with pytest.raises(DownloadError) as caught:
        safe_extract_zip(hostile, dest)
    assert f"{name!r} {reason}" in str(caught.value)
    assert "Nothing was written" in str(caught.value)
    assert listing(tmp_path) == before  # nothing inside or outside dest
    assert not Path("/abs.txt").exists()


def test_hostile_zip_through_the_local_source(tmp_path):
    hostile = _zip_with(tmp_path / "hostile.zip", "../evil.txt")
    with pytest.raises(DownloadError, match="unsafe entr"):
        download_celeba(tmp_path / "dest", "local", path=hostile)
    assert not (tmp_path / "evil.txt").exists()
    assert not (tmp_path / "dest" / "celeba").exists()


def test_a_full_disk_while_extracting_says_so_and_keeps_nothing(
    tmp_path, tiny_zip, monkeypatch
):
    from helpers import archives

    real, written = archives.extract_member, []

    def fills_the_disk(archive, member, target):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        written.append(target)
        real(archive, member, target)

    monkeypatch.setattr(archives, "extract_member", fills_the_disk)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as caught:
        download_celeba(dest, "local", path=tiny_zip)
    message = str(caught.value)
    assert message.startswith(f"extracting {tiny_zip}: no space left on the disk")
    assert "free some space" in message
    assert written and listing(dest) == []  # the partial extraction is gone
    assert tiny_zip.exists()


def test_truncated_zip_is_explained(tmp_path, tiny_zip):
    data = tiny_zip.read_bytes()
    tiny_zip.write_bytes(data[: len(data) // 2])
    with pytest.raises(DownloadError) as caught:
        download_celeba(tmp_path / "dest", "local", path=tiny_zip)
    assert str(caught.value) == (
        f"{tiny_zip}: the zip is truncated or corrupt ({len(data) // 2:,} bytes); "
        "download it again (the full CelebA zip is over 1 GB)."
    )
    assert tiny_zip.exists()  # a local file is never deleted


def test_corrupt_data_inside_a_zip_entry_is_explained(tmp_path):
    """A damaged deflate stream raises zlib.error on reading: still "download again"."""
    import zlib

    folder = tiny_celeba(tmp_path / "src", 5, "kaggle")
    (folder / "notes.txt").write_text(
        "".join(f"line {i} of text\n" for i in range(9999))
    )
    archive = tmp_path / "celeba.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.rglob("*")):
            out.write(path, path.relative_to(folder).as_posix())
    with zipfile.ZipFile(archive) as read:
        info = read.getinfo("notes.txt")
    data = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 20, start + 80):  # inside the compressed data
        data[i] ^= 0xFF
    archive.write_bytes(bytes(data))
    with zipfile.ZipFile(archive) as read, pytest.raises(zlib.error):
        read.read("notes.txt")  # what safe_extract_zip meets
    with pytest.raises(DownloadError) as caught:
        download_celeba(tmp_path / "dest", "local", path=archive)
    message = str(caught.value)
    assert message.startswith(f"{archive}: a zip archive, but truncated or corrupt")
    assert message.endswith("download it again.")
    assert not (tmp_path / "dest" / "celeba").exists()
    assert not list((tmp_path / "dest").glob(".partial-*"))  # nothing half-written


@pytest.mark.parametrize(
    "page, expected",
    [
        (
            DRIVE_PAGE,
            ["Google Drive web page", "resets within 24 hours", "--source kaggle"],
        ),
        (
            "\n<html><body>Please log in</body></html>",
            ["HTML web page", "--source kaggle"],
        ),
    ],
)
def test_html_saved_as_zip_is_recognised(tmp_path, page, expected):
    fake = tmp_path / "img_align_celeba.zip"
    fake.write_text(page)
    with pytest.raises(DownloadError) as caught:
        download_celeba(tmp_path / "dest", "local", path=fake)
    assert str(caught.value).startswith(f"{fake} is not a zip but a {len(page):,}-byte")
    for text in expected:
        assert text in str(caught.value)


def test_interrupted_extraction_leaves_nothing_that_looks_complete(
    tmp_path, tiny_zip, monkeypatch
):
    dest = tmp_path / "dest"
    real_open = zipfile.ZipFile.open
    count = []

    def flaky_open(self, member, *args, **kwargs):
        count.append(member)
        if len(count) == 6:
            raise KeyboardInterrupt
        return real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", flaky_open)
    with pytest.raises(KeyboardInterrupt):
        download_celeba(dest, "local", path=tiny_zip)
    assert listing(dest) == []
    # A process killed outright leaves its .partial folder: still not data.
    tiny_celeba(dest / ".partial-killed" / "payload", 5, "kaggle")
    with pytest.raises(DataError):
        find_celeba(dest)
    monkeypatch.setattr(zipfile.ZipFile, "open", real_open)
    files = download_celeba(dest, "local", path=tiny_zip, expected_images=5)
    assert files.root == dest / "celeba"
    assert not any(p.name.startswith(".partial-") for p in dest.iterdir())


def test_local_zip_is_idempotent(tmp_path, tiny_zip, monkeypatch):
    dest = tmp_path / "dest"
    first = download_celeba(dest, "local", path=tiny_zip, expected_images=5)
    assert first.root == dest / "celeba" and first.layout == "kaggle"
    stamp = (first.attr_file.stat().st_mtime_ns, first.image_dir.stat().st_mtime_ns)

    monkeypatch.setattr(
        download, "safe_extract_zip", lambda *a, **k: pytest.fail("extracted again")
    )
    second = download_celeba(dest, "local", path=tiny_zip, expected_images=5)
    assert second == first
    assert (
        first.attr_file.stat().st_mtime_ns,
        first.image_dir.stat().st_mtime_ns,
    ) == stamp


def test_force_extracts_again(tmp_path, tiny_zip):
    dest = tmp_path / "dest"
    first = download_celeba(dest, "local", path=tiny_zip, expected_images=5)
    (first.image_dir / "000005.jpg").unlink()  # damage the copy
    assert download.verified_copy(dest) is None
    again = download_celeba(dest, "local", path=tiny_zip, expected_images=5, force=True)
    assert (again.image_dir / "000005.jpg").exists()


# Local folders and verification ---------------------------------------------------
@pytest.mark.parametrize(
    "fixture, layout", [("slice_dir", "official"), ("kaggle_slice_dir", "kaggle")]
)
def test_local_folder_of_either_layout_verifies(request, tmp_path, fixture, layout):
    folder = request.getfixturevalue(fixture)
    dest = tmp_path / "dest"
    files = download_celeba(dest, "local", path=folder, expected_images=200)
    assert files.layout == layout and files.root == find_celeba(folder).root
    assert find_celeba(dest).layout == layout  # through the dest/celeba link
    assert download.verified_copy(dest, 200) == files


def test_verify_warns_when_not_full_celeba_and_rejects_a_wrong_count(tmp_path):
    files = find_celeba(tiny_celeba(tmp_path / "c", 5))
    with pytest.warns(UserWarning, match="holds 5 images, not CelebA's 202,599"):
        assert verify(files) == files
    with pytest.raises(DataError, match="holds 5 images, expected 202,599"):
        verify(files, expected_images=202_599)


def test_verify_catches_lists_that_disagree_with_the_images(tmp_path):
    files = find_celeba(tiny_celeba(tmp_path / "c", 5))
    (files.image_dir / "000003.jpg").rename(files.image_dir / "999999.jpg")
    with pytest.raises(DataError, match=r"1 images listed in .* e\.g\. 000003\.jpg"):
        verify(files, expected_images=5)
    (files.image_dir / "999999.jpg").unlink()
    with pytest.raises(DataError, match="lists 5 images but .* holds 4"):
        verify(files, expected_images=4)


def test_missing_local_path_and_misused_arguments(tmp_path):
    with pytest.raises(DataError, match="does not exist. On Colab, mount"):
        download_celeba(tmp_path / "d", "local", path=tmp_path / "nope.zip")
    with pytest.raises(DownloadError, match="only used by the url source"):
        download_celeba(tmp_path / "d", "kaggle", url="https://example.org/c.zip")
    with pytest.raises(DownloadError, match="64 hexadecimal digits"):
        download_celeba(tmp_path / "d", "url", url="file:///x.zip", sha256="abc")
    with pytest.raises(DownloadError, match="unknown source 'ftp'"):
        download_celeba(tmp_path / "d", "ftp")


# The url source -------------------------------------------------------------------
def test_url_source_downloads_checks_and_cleans_up(tmp_path, tiny_zip):
    digest = hashlib.sha256(tiny_zip.read_bytes()).hexdigest()
    dest = tmp_path / "dest"
    files = download_celeba(
        dest, "url", url=tiny_zip.as_uri(), sha256=digest.upper(), expected_images=5
    )
    assert files.root == dest / "celeba"
    assert not (dest / "downloads").exists()  # the zip is gone once verified


def test_checksum_mismatch_names_both_hashes_and_deletes_the_file(tmp_path, tiny_zip):
    actual = hashlib.sha256(tiny_zip.read_bytes()).hexdigest()
    wrong = "0" * 64
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as caught:
        download_celeba(dest, "url", url=tiny_zip.as_uri(), sha256=wrong)
    assert f"expected sha256 {wrong}, got {actual}" in str(caught.value)
    assert not (dest / "downloads" / "celeba.zip").exists()
    assert tiny_zip.exists()


@pytest.mark.parametrize("with_hash", [True, False])
def test_drive_quota_page_from_a_url_is_explained_and_deleted(tmp_path, with_hash):
    page = tmp_path / "celeba.zip"
    page.write_text(DRIVE_PAGE)
    dest = tmp_path / "dest"
    with pytest.raises(DownloadError) as caught:
        download_celeba(
            dest, "url", url=page.as_uri(), sha256="1" * 64 if with_hash else None
        )
    assert "Google Drive web page" in str(caught.value)
    assert "resets within 24 hours" in str(caught.value)
    assert not (dest / "downloads" / "celeba.zip").exists()


def test_unreachable_network_fails_fast_with_a_clear_message(tmp_path):
    start = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download_celeba(tmp_path / "dest", "url", url="http://127.0.0.1:9/celeba.zip")
    elapsed = time.monotonic() - start
    message = str(caught.value)
    assert "the network is unreachable (the connection was refused)" in message
    assert elapsed < 60  # the specified limit, not a benchmark
    assert not (tmp_path / "dest" / "downloads" / "celeba.zip").exists()


def test_a_server_that_never_answers_times_out(tmp_path, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)  # accepts the connection, never sends a byte
    monkeypatch.setattr(download, "NETWORK_TIMEOUT", 0.5)
    url = f"http://127.0.0.1:{server.getsockname()[1]}/celeba.zip"
    try:
        expected = r"unreachable \(no answer within 0.5 s\)"
        with pytest.raises(DownloadError, match=expected):
            download_celeba(tmp_path / "dest", "url", url=url)
    finally:
        server.close()
    assert socket.getdefaulttimeout() is None  # restored


# The command line ------------------------------------------------------------------
def test_cli_exits_2_with_the_message_and_no_secret(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAGGLE", "TBE_RUNTIME"))
    }
    env.update(
        HOME=str(tmp_path), KAGGLE_KEY=SECRET, KAGGLE_CONFIG_DIR=str(tmp_path / "cfg")
    )  # half a pair: refused before any network call
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab",
            "download",
            "--source",
            "kaggle",
            "--dest",
            str(tmp_path / "data"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: incomplete Kaggle credentials")
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_cli_local_zip_then_nothing_to_do(tmp_path, tiny_zip):
    command = [
        sys.executable,
        "-m",
        "vaelab",
        "download",
        "--source",
        "local",
        "--from",
        str(tiny_zip),
        "--dest",
        str(tmp_path / "data"),
        "--expected-images",
        "5",
    ]
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert first.returncode == 0, first.stderr
    assert "CelebA verified: 5 images" in first.stdout
    second = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert "already verified" in second.stdout and "extracting" not in second.stdout


def test_opendatasets_imports_on_this_python():
    """opendatasets imports cgi (gone in Python 3.13): legacy-cgi provides it there."""
    import opendatasets  # noqa: F401
    from opendatasets.utils import network  # the module that calls cgi.parse_header

    assert network.cgi.parse_header('attachment; filename="celeba.zip"') == (
        "attachment",
        {"filename": "celeba.zip"},
    )
