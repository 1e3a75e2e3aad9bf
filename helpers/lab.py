"""The notebooks' set-up: pick the data, the preset and the folders in one call.

Every notebook starts with::

    lab = setup_lab()            # real CelebA in Colab, the generated slice on CI
    lab = setup_lab(quick=True)  # 02 and 03: a small part of the data is enough
    lab.config, lab.cache_dir, lab.run_dir

One copy of the data per course: in Colab the cache, the runs and the student's
exported code live on Google Drive (``MyDrive/vae-lab``) unless the student
declines. ``setup_lab()`` asks once per Colab machine (a yes/no prompt, default
yes); ``setup_lab(use_drive=False)`` or the environment variable
``VAE_LAB_USE_DRIVE=0`` decline without asking. Every later notebook finds the
cache there and neither downloads nor decodes CelebA again. Outside Colab nothing
is asked and everything stays in ``~/vae-lab`` (or ``$VAE_LAB_WORKDIR``).

The one environment switch ``SMOKE=1`` (set by CI) selects the tiny profile: the
generated CelebA-format slice and the ``smoke`` preset, so CI runs exactly what
students run, only smaller. Nothing here runs at import time.
"""

from __future__ import annotations

import os
import platform
import shutil
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
from helpers.student import STUDENT_DIRNAME, register_magic, set_workdir
from helpers.synthetic import make_slice

WORKDIR_ENV = "VAE_LAB_WORKDIR"
# Under `nbgrader autograde` (with SMOKE=1): the self-checks use fixed inputs, so
# the training cells only have to show that the student's model trains.
GRADING_OVERRIDES = {"train_limit": 128, "val_limit": 64, "epochs": 1}
WRONG_MODE_EXIT = 70
USE_DRIVE_ENV = "VAE_LAB_USE_DRIVE"
SMOKE_SLICE_IMAGES = 600
# setup_lab(quick=True) without a full cache: the first this many validation images.
QUICK_IMAGES = 2000
DRIVE_MOUNT = Path("/content/drive")
DRIVE_WORKDIR = DRIVE_MOUNT / "MyDrive" / "vae-lab"
# The Colab machine's own disk: raw downloads and a fast copy of the cache.
COLAB_LOCAL_WORKDIR = Path("/content/vae-lab")
# The Drive answer, remembered for the life of this machine (kernel restarts too).
DRIVE_CHOICE_FILE = Path(tempfile.gettempdir()) / "vae-lab-use-drive"
_YES, _NO = {"", "y", "yes", "1", "true", "on"}, {"n", "no", "0", "false", "off"}


@dataclass(frozen=True)
class Lab:
    """Where this session's data, cache and runs live, and the config to use.

    ``data_dir`` (the raw CelebA JPEGs) is fetched on first use when the cache was
    found ready: notebooks that only read the cache never download anything.
    ``quick`` is True when ``cache_dir`` holds only ``QUICK_IMAGES`` validation
    images (``setup_lab(quick=True)`` before any full cache existed).
    """

    workdir: Path
    cache_dir: Path
    runs_dir: Path
    config: VAEConfig
    generated_data: bool
    quick: bool = False
    on_drive: bool = False
    _data_dir: Path | None = field(default=None, repr=False, compare=False)
    _fetch_data: object = field(default=None, repr=False, compare=False)

    @property
    def run_dir(self) -> Path:
        """The default run directory for ``config`` (one per preset)."""
        return self.runs_dir / self.config.name

    @property
    def data_dir(self) -> Path:
        """The raw CelebA folder (downloaded now if the cache was all we needed)."""
        if self._data_dir is None and self._fetch_data is not None:
            object.__setattr__(self, "_data_dir", self._fetch_data())
        return self._data_dir

    def flush_drive(self, unmount: bool = False) -> list[Path]:
        """Make sure this session's runs are on Google Drive (a no-op elsewhere).

        Flushes (``os.fsync``) every changed file of every run (and of your exported
        code) and records its size and SHA-256 in the folder's manifest, which the
        next machine checks before it trusts the run. In Colab this already happens
        after every cell. With ``unmount=True`` it then calls Colab's
        ``drive.flush_and_unmount()``, which waits until Drive has uploaded
        everything but unmounts it: only at the very end of a session (run
        ``setup_lab()`` again to remount).

        Returns:
            The folders whose manifest was written.
        """
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


def describe_environment() -> str:
    """One line per version that matters, and the device, for the first cell."""
    if grading_mode() and not smoke_mode():
        _refuse_to_grade()
    import keras  # loads TensorFlow: only when a notebook sets up

    lines = [
        f"Python {platform.python_version()}",
        f"Keras {keras.__version__} " f"(backend: {keras.backend.backend()})",
        f"NumPy {np.__version__}",
    ]
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # optional: only under the TensorFlow backend

        lines.append(f"TensorFlow {tf.__version__}")
    lines.append(f"Device: {accelerator()}")
    return "\n".join(lines)


def default_workdir(use_drive: bool = False) -> Path:
    """The folder for data and runs: $VAE_LAB_WORKDIR, Google Drive, or ~/vae-lab.

    Under ``nbgrader autograde`` (which runs each notebook in
    ``autograded/<student>/<assignment>/``) it is ``autograded/<student>/.vae-lab``:
    one per student, shared by that student's notebooks, so 03 loads the parts the
    same student exported in 02, and students can be graded in parallel.
    """
    if os.environ.get(WORKDIR_ENV):
        return Path(os.environ[WORKDIR_ENV])
    if grading_mode():
        return Path.cwd().parent / ".vae-lab"
    if use_drive:
        return DRIVE_WORKDIR
    return COLAB_LOCAL_WORKDIR if in_colab() else Path.home() / "vae-lab"


def _parse_yes_no(text: str | None) -> bool | None:
    """Return True/False for yes/no words, None for anything else."""
    answer = (text or "").strip().lower()
    if answer in _NO:
        return False
    return True if answer in _YES else None


def ask_use_drive() -> bool:
    """Ask in the notebook whether to keep the lab on Google Drive (default yes)."""
    question = (
        "Keep the CelebA cache, your runs and your code on Google Drive (about "
        "2.6 GB in MyDrive/vae-lab), so the next notebooks reuse them and training "
        "survives a disconnect? [Y/n] "
    )
    for _ in range(3):
        try:
            answer = _parse_yes_no(input(question))
        except Exception:  # no stdin (EOFError, IPython's StdinNotImplementedError)
            print("(no answer possible here: using Drive)")
            return True
        if answer is not None:
            return answer
        print("Please answer y (yes) or n (no).")
    return True


def drive_choice(use_drive: bool | None = None) -> bool:
    """Decide whether this session keeps its work on Google Drive.

    Outside Colab: False, and nothing is asked. In Colab, the first answer wins:
    ``use_drive`` if given, else ``$VAE_LAB_USE_DRIVE`` (1/0, yes/no), else the
    answer remembered on this machine, else a yes/no prompt (default yes). The
    answer is remembered for the life of this Colab machine.
    """
    if not in_colab():
        return False
    from_env = os.environ.get(USE_DRIVE_ENV, "").strip()
    if use_drive is None and from_env:
        use_drive = _parse_yes_no(from_env)
    if use_drive is None and DRIVE_CHOICE_FILE.exists():
        use_drive = _parse_yes_no(DRIVE_CHOICE_FILE.read_text())
    if use_drive is None:
        use_drive = ask_use_drive()
    try:
        DRIVE_CHOICE_FILE.write_text("yes\n" if use_drive else "no\n")
    except OSError:
        pass
    return bool(use_drive)


def mount_drive() -> bool:
    """Mount Google Drive in Colab; return False (with a note) if that fails."""
    if (DRIVE_MOUNT / "MyDrive").is_dir():
        return True
    try:
        from google.colab import drive  # type: ignore[import-not-found]

        drive.mount(str(DRIVE_MOUNT))
    except Exception as error:  # declined authorisation, timeout, no Colab
        print(
            f"Google Drive could not be mounted ({type(error).__name__}: {error}). "
            "Keeping everything on this machine instead: it is lost when Colab "
            "recycles the machine. Run setup_lab() again to retry."
        )
        return False
    return True


def choose_preset(smoke: bool | None = None) -> str:
    """Return "smoke" under SMOKE=1, "colab" with an accelerator, else "cpu"."""
    if smoke_mode() if smoke is None else smoke:
        return "smoke"
    return "colab" if detect_hardware().accelerated else "cpu"


def ready_cache(cache_dir: Path, config: VAEConfig) -> dict | None:
    """Return the meta of a finished cache at ``cache_dir`` made for ``config``.

    None when there is none, or it has another image size or crop (then
    ``prepare_cache`` explains the difference when asked to write there).
    """
    if not (cache_dir / "meta.json").is_file():
        return None
    try:
        meta = cache_info(cache_dir)
    except (DataError, ValueError, OSError):
        return None
    if meta.get("image_size") != config.image_size:
        return None
    if list(meta.get("crop") or ()) != list(config.crop):
        return None
    return meta


def _copy_cache(
    source: Path, target: Path, verbose: bool, why: str, expected: dict | None = None
) -> Path:
    """Copy a finished cache folder to ``target``, verified (see ``drive_copy``).

    Each file is fsync-ed, read back and recorded in ``target``'s manifest; with
    ``expected`` (the manifest of ``source``) it must also match what was written.

    Raises:
        drive_copy.IncompleteCopy: the copy differs; ``target`` is left as it was.
    """
    from helpers.progress import progress

    files = [
        f for f in source.rglob("*") if f.is_file() and f.name != drive_copy.MANIFEST
    ]
    size = sum(f.stat().st_size for f in files)
    if verbose:
        print(f"Copying the cache {why} ({size / 1e9:.1f} GB): {source} -> {target}")
    with progress(
        total=size, desc="copy", unit="B", unit_scale=True, disable=not verbose
    ) as bar:
        drive_copy.copy_folder(source, target, expected=expected, progress_bar=bar)
    if verbose:
        print(f"  verified: {len(files)} files, sizes and SHA-256 match")
    return target


def make_quick_subset(data_dir: Path, out: Path, n: int | None = None) -> Path:
    """Write a CelebA-format folder holding the first ``n`` validation images.

    The images are linked (copied where links are not allowed) and the two list
    files rewritten in the official layout, so ``prepare_cache`` reads it like
    any copy of CelebA.

    Args:
        data_dir: a CelebA folder (official or Kaggle layout).
        out: the folder to write (replaced if it exists).
        n: images to take (default ``QUICK_IMAGES``).

    Returns:
        ``out``, ready for ``prepare_cache``.
    """
    n = QUICK_IMAGES if n is None else n
    files = celeba.find_celeba(data_dir)
    names, attributes = celeba.read_attributes(files)
    partitions = celeba.read_partitions(files)
    picked = [i for i, name in enumerate(names) if partitions.get(name) == 1][:n]
    if not picked:  # no validation split: take the first images of any split
        picked = list(range(min(n, len(names))))
    images = out / "img_align_celeba"
    shutil.rmtree(out, ignore_errors=True)
    images.mkdir(parents=True)
    for i in picked:
        source, target = Path(files.image_dir) / names[i], images / names[i]
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)
    header = " ".join(celeba.ATTRIBUTE_NAMES)
    rows = [
        f"{names[i]} " + " ".join(str(int(v)) for v in attributes[i]) for i in picked
    ]
    (out / "list_attr_celeba.txt").write_text(
        f"{len(picked)}\n{header}\n" + "\n".join(rows) + "\n"
    )
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

    Args:
        source: "auto" (the generated slice under SMOKE=1, else Kaggle), "generated",
            or a ``download_celeba`` source: "kaggle", "opendatasets", "url", "local".
            Pass ``url=`` / ``path=`` / ``sha256=`` in ``overrides`` for the last two.
        preset_name: "smoke", "cpu" or "colab" (default: ``choose_preset()``).
        workdir: folder for the cache, runs and exported code (default:
            ``default_workdir``: Google Drive in Colab unless declined).
        use_drive: in Colab, keep the work on Google Drive (True), on this machine
            only (False), or ask once per machine (None, the default; see
            ``drive_choice``). Ignored outside Colab.
        quick: a small part of the data is enough (02, 03): use the full cache if
            it exists, else cache only the first ``QUICK_IMAGES`` validation
            images (seconds instead of minutes).
        seed: seed for Keras, NumPy and Python (default: the preset's).
        verbose: print versions, device and choices.
        **overrides: VAEConfig fields to change, plus ``url``, ``path``, ``sha256``.

    Returns:
        A ``Lab`` with the folders and the config.
    """
    if grading_mode() and not smoke_mode():
        _refuse_to_grade()
    import keras  # loads TensorFlow: only when a notebook sets up

    enable_colab_widgets()  # progress bars and sliders are ipywidgets
    download_options = {
        k: overrides.pop(k) for k in ("url", "path", "sha256") if k in overrides
    }
    on_drive = False
    if workdir is None and not os.environ.get(WORKDIR_ENV) and in_colab():
        on_drive = drive_choice(use_drive) and mount_drive()
    root = Path(workdir) if workdir else default_workdir(on_drive)
    # Raw downloads stay on the machine's disk: only the cache is worth keeping.
    local_root = COLAB_LOCAL_WORKDIR if on_drive else root
    set_workdir(root)  # where `%%export` cells save the student's parts
    register_magic()
    register_short_errors()  # a TODO not done: one line, not a traceback
    smoke = smoke_mode()
    generated = source == "generated" or (source == "auto" and smoke)
    name = preset_name or choose_preset(smoke)
    if grading_mode():
        overrides = {**GRADING_OVERRIDES, **overrides}
    config = preset(name, seed=seed, **overrides)
    keras.utils.set_random_seed(config.seed)
    if verbose:
        chosen = workdir is None and not os.environ.get(WORKDIR_ENV)
        _print_choices(name, root, on_drive, machine_only=in_colab() and chosen)
    if on_drive:
        code = [root / STUDENT_DIRNAME]  # the exported parts
        _check_runs_on_drive(root / "runs", code, verbose)
        drive_copy.keep_flushed(root / "runs", code)
    if generated:
        lab = _generated_lab(root, config, verbose)
    else:
        lab = _celeba_lab(
            root, local_root, config, source, download_options, quick, verbose
        )
    lab = Lab(
        root,
        lab["cache_dir"],
        root / "runs",
        config,
        generated,
        quick=lab["quick"],
        on_drive=on_drive,
        _data_dir=lab.get("data_dir"),
        _fetch_data=lab.get("fetch"),
    )
    if verbose:
        part = f" (quick: {QUICK_IMAGES} validation images)" if lab.quick else ""
        print(
            f"Preset: {config.name}   cache: {lab.cache_dir}{part}   "
            f"runs: {lab.runs_dir}"
        )
    return lab


def _print_choices(preset_name: str, root: Path, on_drive: bool, machine_only: bool):
    """Print the versions and device, and what the preset and work folder mean."""
    print(describe_environment())
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
            f"Work folder on this machine only: {root} (not Google Drive). The "
            "cache, your runs and your exported code are LOST when this runtime "
            "ends or is recycled: the next notebook downloads and decodes CelebA "
            "again and cannot resume or reuse a run. setup_lab(use_drive=True) "
            "keeps them on Drive."
        )


def _refuse_to_grade() -> None:
    """Stop ``nbgrader autograde`` outside SMOKE=1: loudly, never with wrong points.

    Without SMOKE=1 the notebook would look for CelebA (and Kaggle credentials) on
    the grading machine, fail in its first cell and score every check as failed,
    while nbgrader reports success. Ending the kernel makes nbgrader fail the
    notebook instead ("There was an error processing assignment"), with no grade.
    """
    import sys

    message = (
        "GRADING STOPPED: nbgrader autograde runs this notebook without SMOKE=1. "
        "The self-checks are written for the generated slice: run nbgrader from the "
        "course folder made by `python -m instructor make-student --course` (its "
        "nbgrader_config.py sets SMOKE=1), or `SMOKE=1 nbgrader autograde ...`."
    )
    print(message, file=sys.stderr, flush=True)
    print(message, flush=True)
    os._exit(WRONG_MODE_EXIT)


def _check_runs_on_drive(runs_dir: Path, extra: list, verbose: bool) -> None:
    """Wait (bounded) until every run on Drive has the sizes its manifest records.

    A file written after its run's last manifest (the session ended in the middle
    of a cell) is newer, not short, and passes.

    Raises:
        DataError: a run is still incomplete after the wait: training or loading
            it now would read a short file.
    """
    for run in drive_copy.watched_folders(runs_dir, extra):
        left = drive_copy.wait_until_complete(
            run,
            f"The folder {run.name} on Google Drive",
            verbose=verbose,
            allow_newer=True,
        )
        if left:
            waited = drive_copy.describe_wait(drive_copy.wait_seconds())
            raise DataError(
                f"{run} on Google Drive is still incomplete after waiting "
                f"{waited} ({'; '.join(left[:3])}): "
                "Drive has not finished syncing it from the machine that wrote it. "
                "Nothing was trained or loaded from it. Run this cell again in a few "
                "minutes; on the old machine, if it is still open, run "
                "lab.flush_drive(unmount=True)."
            )


def _generated_lab(root: Path, config: VAEConfig, verbose: bool) -> dict:
    data_dir = root / "data" / "generated-slice"
    make_slice(data_dir, n=SMOKE_SLICE_IMAGES, layout="official", seed=0)
    if verbose:
        print(
            f"Data: a GENERATED CelebA-format slice of {SMOKE_SLICE_IMAGES} "
            f"cartoon faces (a stand-in, not CelebA) in {data_dir}"
        )
    cache_dir = root / "cache" / f"generated-slice-{config.image_size}px"
    prepare_cache(
        data_dir,
        cache_dir,
        image_size=config.image_size,
        crop=config.crop,
        progress=verbose,
    )
    return {"cache_dir": cache_dir, "data_dir": data_dir, "quick": False}


def _celeba_lab(
    root: Path,
    local_root: Path,
    config: VAEConfig,
    source: str,
    download_options: dict,
    quick: bool,
    verbose: bool,
) -> dict:
    """Reuse the course's cache, or download CelebA and cache it (all or a part)."""
    # Kaggle's copy lives in kagglehub's cache (e.g. .../versions/2): name by source.
    full_cache = root / "cache" / f"celeba-{config.image_size}px"
    quick_cache = full_cache.with_name(f"{full_cache.name}-quick{QUICK_IMAGES}")
    fast_copy = local_root / "cache" / full_cache.name  # the machine's own disk

    def fetch() -> Path:
        kind = "kaggle" if source == "auto" else source
        data_dir = download_celeba(
            local_root / "data" / "celeba", source=kind, **download_options
        ).root
        if verbose:
            print(f"Data: CelebA in {data_dir}")
        return Path(data_dir)

    on_drive = fast_copy != full_cache
    usable = True
    if on_drive and full_cache.is_dir():
        left = drive_copy.wait_until_complete(
            full_cache, "The CelebA cache on Google Drive", verbose=verbose
        )
        if left:
            usable = False
            waited = drive_copy.describe_wait(drive_copy.wait_seconds())
            instead = (
                f"caching the first {QUICK_IMAGES} validation images instead"
                if quick
                else "making the cache again on this machine (download and decode, "
                "about 10 min), then copying it to Drive again"
            )
            print(
                f"The CelebA cache on Google Drive is still incomplete after waiting "
                f"{waited} ({'; '.join(left[:3])}): not using it; {instead}."
            )
    if usable and ready_cache(full_cache, config):
        if verbose:
            print(f"Data: the CelebA cache is ready in {full_cache} (no download)")
        if on_drive and not quick:
            if not ready_cache(fast_copy, config) or drive_copy.problems(fast_copy):
                copied = _copy_from_drive(full_cache, fast_copy, verbose)
                if not copied:
                    return _rebuild(fetch, fast_copy, full_cache, config, verbose)
            return {"cache_dir": fast_copy, "fetch": fetch, "quick": False}
        return {"cache_dir": full_cache, "fetch": fetch, "quick": False}
    if quick and ready_cache(quick_cache, config):
        if verbose:
            print(f"Data: the quick CelebA cache is ready in {quick_cache}")
        return {"cache_dir": quick_cache, "fetch": fetch, "quick": True}
    data_dir = fetch()
    options = dict(image_size=config.image_size, crop=config.crop, progress=verbose)
    if quick:
        subset = make_quick_subset(
            data_dir, local_root / "data" / f"celeba-quick{QUICK_IMAGES}"
        )
        if verbose:
            print(
                f"Quick start: caching only the first {QUICK_IMAGES} validation "
                "images (the full cache is made by 01_setup)."
            )
        prepare_cache(subset, quick_cache, **options)
        return {"cache_dir": quick_cache, "data_dir": data_dir, "quick": True}
    if fast_copy == full_cache:
        prepare_cache(data_dir, full_cache, **options)
        return {"cache_dir": full_cache, "data_dir": data_dir, "quick": False}
    return _rebuild(lambda: data_dir, fast_copy, full_cache, config, verbose)


def _copy_from_drive(drive_cache: Path, local: Path, verbose: bool) -> bool:
    """Copy the Drive cache to this machine, checked against its manifest.

    A mismatch (Drive still syncing) is waited for once and copied again.
    Returns False when the copy still does not match: the caller rebuilds.
    """
    for attempt in (1, 2):
        expected = drive_copy.read_manifest(drive_cache)
        if expected is None and verbose:
            print(
                f"note: {drive_cache} has no manifest (copied by an older version of "
                "the lab, or the manifest has not synced yet): its sizes and SHA-256 "
                "cannot be checked."
            )
        try:
            _copy_cache(drive_cache, local, verbose, "to this machine's disk", expected)
            return True
        except drive_copy.IncompleteCopy as error:
            print(f"{error}")
            if attempt == 1:
                wait = min(drive_copy.wait_seconds(), 120.0)
                print(f"Waiting {wait:.0f} s for Google Drive, then copying again ...")
                time.sleep(wait)
    print("The Drive copy still does not match: making the cache again instead.")
    return False


def _rebuild(fetch, local: Path, drive_cache: Path, config, verbose: bool) -> dict:
    """Decode onto this machine's disk (fast), then keep one verified copy on Drive."""
    data_dir = fetch()
    prepare_cache(
        data_dir,
        local,
        image_size=config.image_size,
        crop=config.crop,
        progress=verbose,
    )
    _copy_cache(local, drive_cache, verbose, "to Google Drive for later notebooks")
    return {"cache_dir": local, "data_dir": data_dir, "quick": False}
