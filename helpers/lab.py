"""The notebooks' set-up in one call, ``setup_lab()``: data, preset and folders (in
Colab on Google Drive, ``MyDrive/vae-lab``, unless declined; elsewhere ``~/vae-lab``
or ``$VAE_LAB_WORKDIR``). ``SMOKE=1`` (CI): the generated slice, ``smoke`` preset."""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import celeba, drive_copy
from helpers.cache import cache_info, prepare_cache
from helpers.config import VAEConfig, grading_mode, preset, smoke_mode
from helpers.download import download_celeba
from helpers.environment import detect_hardware, enable_colab_widgets, in_colab
from helpers.errors import DataError, register_short_errors
from helpers.student import STUDENT_DIRNAME, register_magic

WORKDIR_ENV = "VAE_LAB_WORKDIR"
# Under `nbgrader autograde` (SMOKE=1) the training cells only show the model trains.
GRADING_OVERRIDES = {"train_limit": 128, "val_limit": 64, "epochs": 1}
WRONG_MODE_EXIT = 70
USE_DRIVE_ENV = "VAE_LAB_USE_DRIVE"
SMOKE_SLICE_IMAGES = 600
GENERATED_SLICE_ENV = "VAE_LAB_GENERATED_SLICE"  # SMOKE=1's data (else the workdir's)
QUICK_IMAGES = 2000  # quick=True without a full cache: this many validation images
DRIVE_MOUNT = Path("/content/drive")
DRIVE_WORKDIR = DRIVE_MOUNT / "MyDrive" / "vae-lab"
COLAB_LOCAL_WORKDIR = Path("/content/vae-lab")  # raw downloads, a fast cache copy
# The Drive answer, remembered for the life of this machine (past kernel restarts).
DRIVE_CHOICE_FILE = Path(tempfile.gettempdir()) / "vae-lab-use-drive"
_YES, _NO = {"", "y", "yes", "1", "true", "on"}, {"n", "no", "0", "false", "off"}
DRIVE_QUESTION = (
    "Keep the CelebA cache, your runs and your code on Google Drive (about 2.6 GB in "
    "MyDrive/vae-lab), so the next notebooks reuse them and training survives a "
    "disconnect? [Y/n] "
)


@dataclass(frozen=True)
class Lab:
    """Where this session's data, cache and runs live, and the config to use."""

    workdir: Path
    cache_dir: Path
    runs_dir: Path
    config: VAEConfig
    generated_data: bool
    quick: bool = False  # cache_dir holds only QUICK_IMAGES validation images
    on_drive: bool = False
    _data_dir: Path | None = field(default=None, repr=False, compare=False)
    _fetch_data: object = field(default=None, repr=False, compare=False)

    @property
    def run_dir(self) -> Path:
        """The default run directory for ``config`` (one per preset)."""
        return self.runs_dir / self.config.name

    @functools.cached_property
    def data_dir(self) -> Path:
        """The raw CelebA folder (downloaded now if only the cache was needed)."""
        return self._data_dir or self._fetch_data()

    def flush_drive(self, unmount: bool = False) -> list[Path]:
        """Fsync the changed runs and code, noted in their manifests (after each cell;
        off Drive a no-op); return them. ``unmount``: then wait for Drive, unmount."""
        if not self.on_drive:
            return []
        code = self.workdir / STUDENT_DIRNAME
        written = drive_copy.flush(self.runs_dir, [code])
        print(
            f"Flushed to Google Drive: {len(written)} changed folder(s) of "
            f"{self.runs_dir} and {code}."
        )
        if unmount:
            from google.colab import drive  # type: ignore[import-not-found]

            print("Waiting for Google Drive to upload everything, then unmounting ...")
            drive.flush_and_unmount()
            print("Google Drive is up to date and unmounted.")
        return written


def accelerator() -> str:
    """Describe the device Keras will use: 'GPU x1', 'TPU' or 'CPU only'."""
    return str(detect_hardware())


def default_workdir(use_drive: bool = False) -> Path:
    """The folder for data and runs: $VAE_LAB_WORKDIR, Google Drive, or ~/vae-lab;
    under ``nbgrader autograde`` ``autograded/<student>/.vae-lab`` (one per student)."""
    if os.environ.get(WORKDIR_ENV):
        return Path(os.environ[WORKDIR_ENV])
    if grading_mode():
        return Path.cwd().parent / ".vae-lab"
    if use_drive:
        return DRIVE_WORKDIR
    return COLAB_LOCAL_WORKDIR if in_colab() else Path.home() / "vae-lab"


def _parse_yes_no(text: str | None) -> bool | None:
    answer = (text or "").strip().lower()
    return False if answer in _NO else True if answer in _YES else None


def drive_choice(use_drive: bool | None = None) -> bool:
    """Whether to keep the work on Google Drive: outside Colab False; in Colab the first
    of ``use_drive``, ``$VAE_LAB_USE_DRIVE``, this machine's answer, a prompt (yes)."""
    if not in_colab():
        return False
    if use_drive is None:
        use_drive = _parse_yes_no(os.environ.get(USE_DRIVE_ENV, "").strip() or "?")
    if use_drive is None and DRIVE_CHOICE_FILE.exists():
        use_drive = _parse_yes_no(DRIVE_CHOICE_FILE.read_text())
    for _ in range(3 if use_drive is None else 0):
        try:
            use_drive = _parse_yes_no(input(DRIVE_QUESTION))
        except Exception:  # no stdin (EOFError, IPython's StdinNotImplementedError)
            print("(no answer possible here: using Drive)")
            break
        if use_drive is not None:
            break
        print("Please answer y (yes) or n (no).")
    use_drive = use_drive is not False
    with contextlib.suppress(OSError):
        DRIVE_CHOICE_FILE.write_text("yes\n" if use_drive else "no\n")
    return use_drive


def mount_drive() -> bool:
    """Mount Google Drive in Colab; return False (with a note) if that fails."""
    if (DRIVE_MOUNT / "MyDrive").is_dir():
        return True
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_MOUNT))
    except Exception as error:  # declined authorisation, timeout, no Colab
        print(
            f"Google Drive could not be mounted ({type(error).__name__}: {error}): "
            "everything stays on this machine, lost when Colab recycles it. Run "
            "setup_lab() again to retry."
        )
        return False
    return True


def choose_preset(smoke: bool | None = None) -> str:
    """Return "smoke" under SMOKE=1, "colab" with an accelerator, else "cpu"."""
    if smoke_mode() if smoke is None else smoke:
        return "smoke"
    return "colab" if detect_hardware().accelerated else "cpu"


def ready_cache(cache_dir: Path, config: VAEConfig) -> dict | None:
    """The meta of the finished cache at ``cache_dir`` made for ``config``, or None."""
    try:
        meta = cache_info(cache_dir) if (cache_dir / "meta.json").is_file() else {}
    except (DataError, ValueError, OSError):
        return None
    size, crop = meta.get("image_size"), list(meta.get("crop") or ())
    return meta if (size, crop) == (config.image_size, list(config.crop)) else None


def _copy_cache(source: Path, target: Path, verbose: bool, why: str, expected=None):
    """Copy a cache to ``target``, verified; raises ``drive_copy.IncompleteCopy``."""
    from helpers.progress import progress

    files = [f for f in source.rglob("*") if f.name != drive_copy.MANIFEST]
    files = [f for f in files if f.is_file()]
    size = sum(f.stat().st_size for f in files)
    if verbose:
        print(f"Copying the cache {why} ({size / 1e9:.1f} GB): {source} -> {target}")
    with progress(
        total=size, desc="copy", unit="B", unit_scale=True, disable=not verbose
    ) as bar:
        drive_copy.copy_folder(source, target, expected=expected, progress_bar=bar)
    if verbose:
        print(f"  verified: {len(files)} files, sizes and SHA-256 match")


def make_quick_subset(data_dir: Path, out: Path) -> Path:
    """Replace ``out`` by a CelebA folder (official layout) of the first
    ``QUICK_IMAGES`` validation images (any split's without one), linked or copied."""
    files = celeba.find_celeba(data_dir)
    names, attributes = celeba.read_attributes(files)
    partitions = celeba.read_partitions(files)
    picked = [i for i, name in enumerate(names) if partitions.get(name) == 1]
    picked = (picked or range(len(names)))[:QUICK_IMAGES]
    shutil.rmtree(out, ignore_errors=True)
    (out / "img_align_celeba").mkdir(parents=True)
    for i in picked:
        target = out / "img_align_celeba" / names[i]
        try:
            target.symlink_to((Path(files.image_dir) / names[i]).resolve())
        except OSError:
            shutil.copyfile(Path(files.image_dir) / names[i], target)
    rows = [" ".join([names[i], *(str(int(v)) for v in attributes[i])]) for i in picked]
    rows = [str(len(picked)), " ".join(celeba.ATTRIBUTE_NAMES), *rows, ""]
    (out / "list_attr_celeba.txt").write_text("\n".join(rows))
    (out / "list_eval_partition.txt").write_text(
        "".join(f"{names[i]} {partitions.get(names[i], 1)}\n" for i in picked)
    )
    return out


def setup_lab(
    source: str = "auto",
    preset_name: str | None = None,
    workdir: str | os.PathLike | None = None,
    use_drive: bool | None = None,
    quick: bool = False,
    seed: int | None = None,
    verbose: bool = True,
    **overrides,
) -> Lab:
    """Find (or get and cache) the data and choose the config, printing what it chose.

    ``source``: "auto" (the generated slice under SMOKE=1, else "kaggle"), "generated",
    or a ``download_celeba`` source; ``preset_name``: default ``choose_preset()``;
    ``use_drive``: see ``drive_choice``; ``quick``: part of the data will do (02, 03):
    the full cache if made, else ``QUICK_IMAGES`` validation images; ``overrides``:
    VAEConfig fields and ``download_celeba``'s url, path, sha256."""
    if grading_mode() and not smoke_mode():
        _refuse_to_grade()
    import keras  # loads TensorFlow: only when a notebook sets up

    enable_colab_widgets()
    download_options = {
        k: overrides.pop(k) for k in ("url", "path", "sha256") if k in overrides
    }
    chosen = workdir is None and not os.environ.get(WORKDIR_ENV)
    on_drive = chosen and in_colab() and drive_choice(use_drive) and mount_drive()
    root = Path(workdir) if workdir else default_workdir(on_drive)
    local_root = COLAB_LOCAL_WORKDIR if on_drive else root  # raw downloads stay here
    register_magic(root)  # `%%export` cells save the student's parts there
    register_short_errors()
    generated = source == "generated" or (source == "auto" and smoke_mode())
    name = preset_name or choose_preset()
    if grading_mode():
        overrides = {**GRADING_OVERRIDES, **overrides}
    config = preset(name, seed=seed, **overrides)
    keras.utils.set_random_seed(config.seed)
    if verbose:
        _print_choices(name, root, on_drive, machine_only=in_colab() and chosen)
    if on_drive:
        _check_runs_on_drive(root / "runs", [root / STUDENT_DIRNAME], verbose)
        drive_copy.keep_flushed(root / "runs", [root / STUDENT_DIRNAME])

    def fetch() -> Path:
        kind = "kaggle" if source == "auto" else source
        data = download_celeba(local_root / "data" / "celeba", kind, **download_options)
        if verbose:
            print(f"Data: CelebA in {data.root}")
        return Path(data.root)

    if generated:
        found = _generated_lab(root, config, verbose)
    else:
        found = _celeba_lab(root, local_root, config, fetch, quick, verbose)
    found.update(runs_dir=root / "runs", generated_data=generated, on_drive=on_drive)
    lab = Lab(root, config=config, **found)
    if verbose:
        part = f" (quick: {QUICK_IMAGES} validation images)" if lab.quick else ""
        print(
            f"Preset: {config.name}   cache: {lab.cache_dir}{part}   "
            f"runs: {lab.runs_dir}"
        )
    return lab


def _print_choices(preset_name: str, root: Path, on_drive: bool, machine_only: bool):
    """Print the versions and device, and what the preset and work folder mean."""
    import keras

    print(f"Python {platform.python_version()}")
    print(f"Keras {keras.__version__} (backend: {keras.backend.backend()})")
    print(f"NumPy {np.__version__}")
    if keras.backend.backend() == "tensorflow":  # imported by Keras then
        print(f"TensorFlow {sys.modules['tensorflow'].__version__}")
    print(f"Device: {accelerator()}")
    if preset_name == "cpu":
        print(
            "No GPU found: using the `cpu` preset (a few thousand images, minutes "
            "per run). In Colab: Runtime > Change runtime type > GPU."
        )
    if on_drive:
        print(
            f"Work folder on Google Drive: {root} (copies there are flushed and "
            "checked against a manifest; runs after every cell)"
        )
    elif machine_only:
        print(
            f"Work folder on this machine only: {root} (not Google Drive): the cache, "
            "your runs and code are LOST when this runtime ends, and the next notebook "
            "cannot reuse them: setup_lab(use_drive=True) keeps them."
        )


def _refuse_to_grade() -> None:
    """End the kernel: nbgrader then fails the notebook, not every check in it."""
    message = (
        "GRADING STOPPED: nbgrader autograde runs this notebook without SMOKE=1. "
        "The self-checks are written for the generated slice: run nbgrader from the "
        "course folder made by `python -m instructor make-student --course` (its "
        "nbgrader_config.py sets SMOKE=1), or `SMOKE=1 nbgrader autograde ...`."
    )
    print(message, file=sys.stderr, flush=True)
    print(message, flush=True)
    os._exit(WRONG_MODE_EXIT)


def _drive_incomplete(folder: Path, what: str, verbose: bool, allow_newer=False):
    """Wait (bounded) until ``folder`` matches its manifest: None, or what is short."""
    wait = drive_copy.describe_wait(drive_copy.wait_seconds())
    if left := drive_copy.wait_until_complete(
        folder, what, verbose=verbose, allow_newer=allow_newer
    ):
        left = "; ".join(left[:3])
        return f"{what} is still incomplete after waiting {wait} ({left})"


def _check_runs_on_drive(runs_dir: Path, extra: list, verbose: bool) -> None:
    """Wait (bounded) until every run on Drive has its manifest's sizes, or raise."""
    for run in drive_copy.watched_folders(runs_dir, extra):
        # allow_newer: a file written after the last manifest is newer, not short
        if left := _drive_incomplete(run, f"{run} on Google Drive", verbose, True):
            raise DataError(
                f"{left}: Drive has not finished syncing it from the machine that "
                "wrote it. Nothing was trained or loaded from it. Run this cell again "
                "in a few minutes; on the old machine, if it is still open, run "
                "lab.flush_drive(unmount=True)."
            )


def _generated_lab(root: Path, config: VAEConfig, verbose: bool) -> dict:
    data_dir = Path(
        os.environ.get(GENERATED_SLICE_ENV) or root / "data/generated-slice"
    )
    if not celeba.is_generated_slice(data_dir):
        raise DataError(
            f"SMOKE=1 trains on a generated slice, and {data_dir} holds none: make one "
            f"in a checkout of the lab with `python -m vaelab make-slice --out "
            f"{data_dir} --n {SMOKE_SLICE_IMAGES}` (or set {GENERATED_SLICE_ENV} to "
            "one), or unset SMOKE to use CelebA"
        )
    if verbose:
        what = "GENERATED CelebA-format slice of cartoon faces (a stand-in, not CelebA)"
        print(f"Data: a {what} in {data_dir}")
    cache_dir = root / "cache" / f"generated-slice-{config.image_size}px"
    prepare_cache(data_dir, cache_dir, config.image_size, config.crop, progress=verbose)
    return {"cache_dir": cache_dir, "_data_dir": data_dir}


def _celeba_lab(root: Path, local_root: Path, config, fetch, quick, verbose) -> dict:
    """Reuse the course's cache, or ``fetch()`` CelebA and cache it (all or a part)."""
    full_cache = root / "cache" / f"celeba-{config.image_size}px"
    quick_cache = full_cache.with_name(f"{full_cache.name}-quick{QUICK_IMAGES}")
    fast_copy = local_root / "cache" / full_cache.name  # the machine's own disk
    on_drive = fast_copy != full_cache
    what = "The CelebA cache on Google Drive"  # no manifest there: no wait
    if left := on_drive and _drive_incomplete(full_cache, what, verbose):
        instead = (
            f"caching the first {QUICK_IMAGES} validation images instead"
            if quick
            else "making the cache again on this machine (download and decode, "
            "about 10 min), then copying it to Drive again"
        )
        print(f"{left}: not using it; {instead}.")
    elif ready_cache(full_cache, config):
        if verbose:
            print(f"Data: the CelebA cache is ready in {full_cache} (no download)")
        if not on_drive or quick:
            return {"cache_dir": full_cache, "_fetch_data": fetch}
        local_ok = ready_cache(fast_copy, config) and not drive_copy.problems(fast_copy)
        if local_ok or _copy_from_drive(full_cache, fast_copy, verbose):
            return {"cache_dir": fast_copy, "_fetch_data": fetch}
    if quick and ready_cache(quick_cache, config):
        if verbose:
            print(f"Data: the quick CelebA cache is ready in {quick_cache}")
        return {"cache_dir": quick_cache, "_fetch_data": fetch, "quick": True}
    data_dir = fetch()
    if quick:
        subset = local_root / "data" / f"celeba-quick{QUICK_IMAGES}"
        make_quick_subset(data_dir, subset)
        if verbose:
            print(
                f"Quick start: {QUICK_IMAGES} validation images (01_setup caches all)."
            )
        prepare_cache(subset, quick_cache, config.image_size, config.crop, verbose)
        return {"cache_dir": quick_cache, "_data_dir": data_dir, "quick": True}
    # Decode onto this machine's disk (fast), then keep one verified copy on Drive.
    prepare_cache(data_dir, fast_copy, config.image_size, config.crop, progress=verbose)
    if on_drive:
        _copy_cache(fast_copy, full_cache, verbose, "to Drive for later notebooks")
    return {"cache_dir": fast_copy, "_data_dir": data_dir}


def _copy_from_drive(drive_cache: Path, local: Path, verbose: bool) -> bool:
    """Copy the Drive cache here, checked; a mismatch is retried once, then False."""
    for attempt in (1, 2):
        expected = drive_copy.read_manifest(drive_cache)
        if expected is None and verbose:
            print(
                f"note: {drive_cache} has no manifest (an older lab copied it, or it "
                "has not synced yet): its sizes and SHA-256 cannot be checked."
            )
        try:
            _copy_cache(drive_cache, local, verbose, "to this machine's disk", expected)
            return True
        except drive_copy.IncompleteCopy as error:
            print(error)
            if attempt == 1:
                wait = min(drive_copy.wait_seconds(), 120.0)
                print(f"Waiting {wait:.0f} s for Google Drive, then copying again ...")
                time.sleep(wait)
    print("The Drive copy still does not match: making the cache again instead.")
    return False
