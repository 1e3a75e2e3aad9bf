"""A trained model when 04 has not made one: train it now, or fetch the instructor's.

The instructor's model is a *portable* file (``export_portable_model``, the command
``python -m helpers export-model``): one ``.keras`` archive holding a functional
model of Keras' own layers that wraps the trained encoder and decoder, plus
``vae_lab.json`` (the run's config). It loads with ``keras.saving.load_model`` alone,
so it works in the student release, which ships no ``helpers.solution`` (the lab's
``VAE``); it comes back as a ``PretrainedVAE`` (encoder, decoder, value_range: what 05
and 06 use).

The time it would take comes from ``helpers.timing`` (measured where the lab has a
measurement for this device, else an estimate from FLOPs, labelled as such).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

from helpers.config import VAEConfig
from helpers.errors import LabError

# The instructor's trained `colab` model, as written by `python -m helpers
# export-model` (a portable file: it loads without the lab's VAE class, which the
# student release does not have): one place to change. The SHA-256 is filled in
# when the file is published; until then fetching refuses instead of downloading an
# unchecked file.
INSTRUCTOR_MODEL_URL = (
    "https://github.com/vae-celeba-lab/vae-celeba-lab/releases/download/"
    "models-v1/colab-portable.keras"
)
INSTRUCTOR_MODEL_SHA256 = ""

INSTRUCTOR_FILE = "instructor.keras"  # its name in a run directory
METADATA_MEMBER = "vae_lab.json"  # inside the .keras archive, beside Keras' members
FORMAT, FORMAT_VERSION = "vae-lab-portable", 1


def train_count(config: VAEConfig, cache_dir, split: str = "train") -> int:
    """Images of ``split`` ("train" or "validation") a run of ``config`` uses."""
    from helpers.cache import cache_info

    count = int(cache_info(cache_dir)["counts"][split])
    limit = config.train_limit if split == "train" else config.val_limit
    return min(count, limit or count)


def describe_run_time(config: VAEConfig, cache_dir, epochs=None) -> str:
    """Return ``helpers.timing.describe_training_time`` for ``config`` on the cache."""
    from helpers.timing import describe_training_time

    return describe_training_time(
        config,
        n_images=train_count(config, cache_dir),
        n_validation=train_count(config, cache_dir, "validation"),
        epochs=epochs,
    )


def fetch_instructor_model(run_dir, config: VAEConfig, url=None, sha256=None) -> Path:
    """Download the instructor's portable model (hash-checked) into ``run_dir``.

    The file is saved as ``run_dir/instructor.keras`` (never ``best.keras``: that
    name is your own checkpoint's) and loads without the lab's model classes
    (``load_portable_model``). config.json is written from ``config`` when the
    folder has none, so you can still train your own model there later.

    Returns:
        The path of ``instructor.keras``.

    Raises:
        LabError: no SHA-256 published yet, or the download failed (a wrong
            SHA-256 included).
    """
    import keras

    url = url or INSTRUCTOR_MODEL_URL
    sha256 = sha256 or INSTRUCTOR_MODEL_SHA256
    if not sha256:
        raise LabError(
            "the instructor has not published the trained model's SHA-256 yet "
            f"(helpers.pretrained.INSTRUCTOR_MODEL_SHA256; URL {url}): ask for the "
            "URL and SHA-256 and pass them, fetch_instructor_model(run_dir, config, "
            "url=..., sha256=...), or train the model now"
        )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = keras.utils.get_file(
            fname=f"instructor-{sha256[:12]}.keras",
            origin=url,
            file_hash=sha256,
            hash_algorithm="sha256",
            cache_dir=str(run_dir),
            cache_subdir="download",
        )
    except Exception as error:
        raise LabError(
            f"could not fetch the instructor's model from {url} ({error}); check "
            "the URL and your connection, or train the model now"
        ) from error
    target = run_dir / INSTRUCTOR_FILE
    os.replace(path, target)  # the same folder tree: one rename, never half a file
    try:
        (run_dir / "download").rmdir()
    except OSError:
        pass  # other files in it: not ours to delete
    if not (run_dir / "config.json").exists():
        config.save(run_dir / "config.json")
    print(f"the instructor's model is in {target} (SHA-256 checked)")
    return target


def ensure_model(lab, choice: str = "train", url=None, sha256=None, verbose=True):
    """Return the run of ``lab.run_dir``, training or fetching its model if missing.

    Your own best.keras always wins. Without it, "download" uses the instructor's
    model already in the folder (``instructor.keras``) or downloads it once.

    Args:
        lab: the ``Lab`` of ``setup_lab()``.
        choice: what to do when best.keras is missing: "train" (your parts, as
            04_train assembled them, with the lab's where 04's switch said so) or
            "download" (the instructor's model; see ``fetch_instructor_model``).
        url, sha256: override the instructor's published file.

    Returns:
        ``helpers.runs.Run`` with the loaded model: your ``VAE``, or for the
        instructor's model a ``PretrainedVAE`` (encoder, decoder, value_range).

    Raises:
        LabError: an unknown ``choice``; or the instructor's model was made for
            other images (size or pixel range) than ``lab.config``'s.
    """
    import json

    from helpers import student
    from helpers.runs import RunPaths, load_run

    if choice not in ("train", "download"):
        raise LabError(f'IF_NO_MODEL = {choice!r}: choose "train" or "download"')
    paths = RunPaths(Path(lab.run_dir))
    run_dir = paths.root
    student.import_student_module(lab.workdir, verbose=verbose)
    if paths.best_model.exists():
        return load_run(run_dir)
    config = lab.config
    if choice == "download" and paths.instructor_model.exists():
        print(f"using the instructor's model already in {paths.instructor_model}")
    else:
        print(
            f"No trained model in {run_dir} (04_train has not finished here). Two "
            'ways on: IF_NO_MODEL = "train" trains it now; IF_NO_MODEL = "download" '
            "loads the instructor's trained model.\n"
            + describe_run_time(config, lab.cache_dir)
        )
        if choice == "train":
            record = run_dir / "student_parts.json"
            origins = json.loads(record.read_text()) if record.exists() else {}
            use_lab = [part for part, who in origins.items() if who == "lab"]
            parts = student.load_student_parts(
                lab.workdir,
                use_lab,
                config=config,
                check=False,
                parts=student.TRAINING_PARTS,  # what trains (05's are not needed)
                verbose=verbose,
            )
            from helpers.training import train_student

            train_student(parts, config, lab.cache_dir, run_dir, verbose=2)
            return load_run(run_dir)
        fetch_instructor_model(run_dir, config, url, sha256)
    run = load_instructor_run(run_dir, cache_dir=lab.cache_dir)
    _check_fits(run.config, config, paths.instructor_model)
    return run


# The portable file: no custom classes ------------------------------------------------
class PretrainedVAE:
    """A trained VAE for inference only: encoder, decoder and pixel range.

    What ``helpers.generate`` and ``helpers.metrics.evaluate`` need of a model, and
    nothing to train with (no losses, no sampling layer): made from a portable file
    by ``load_portable_model``.

    Attributes:
        encoder: functional ``keras.Model`` (B, H, W, 3) -> [z_mean, z_log_var].
        decoder: functional ``keras.Model`` (B, D) -> (B, H, W, 3) in value_range.
        value_range: (low, high) of the decoder's pixels.
        config: the ``VAEConfig`` the model was trained with.
        beta, reconstruction: its KL weight and reconstruction loss (for reports).
        info: what the file says about its training run (epochs_done, ...).
    """

    def __init__(self, model, config: VAEConfig, info=None):
        self.model = model
        self.encoder = model.get_layer("encoder")
        self.decoder = model.get_layer("decoder")
        self.config = config
        self.value_range = tuple(float(v) for v in config.value_range)
        self.beta = float(config.beta)
        self.reconstruction = config.reconstruction_loss
        self.info = dict(info or {})

    @property
    def latent_dim(self) -> int:
        """Size D of the latent vectors."""
        return int(self.decoder.inputs[0].shape[-1])

    def encode(self, images):
        """Return (z_mean, z_log_var), each (B, D), for (B, H, W, 3) images."""
        return self.encoder(images, training=False)

    def decode(self, z):
        """Return (B, H, W, 3) images in ``value_range`` for (B, D) latents."""
        return self.decoder(z, training=False)

    def reconstruct(self, images):
        """Return the decoded posterior means: the deterministic reconstructions."""
        z_mean, _ = self.encode(images)
        return self.decode(z_mean)

    def __repr__(self) -> str:
        return (
            f"PretrainedVAE(latent_dim={self.latent_dim}, "
            f"value_range={self.value_range}, config={self.config.name!r})"
        )


def _not_portable(path, problem: str) -> LabError:
    return LabError(
        f"{path} is not a portable model of this lab ({problem}): make one from a "
        "trained run with `python -m helpers export-model RUN_DIR OUT.keras`"
    )


def load_portable_model(path) -> PretrainedVAE:
    """Load a file written by ``export_portable_model``; no custom classes needed.

    Raises:
        DamagedFileError: the file is damaged (a broken download or copy).
        LabError: a whole ``.keras`` file, but not a portable model of this lab.
    """
    import keras

    from helpers.integrity import check_keras_file

    path = Path(path)
    fix = 'delete it and fetch it again (ensure_model(lab, "download"))'
    check_keras_file(path, fix)
    with zipfile.ZipFile(path) as archive:
        if METADATA_MEMBER not in archive.namelist():
            raise _not_portable(path, f"it has no {METADATA_MEMBER}")
        try:
            metadata = json.loads(archive.read(METADATA_MEMBER).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise _not_portable(path, f"{METADATA_MEMBER}: {error}") from None
    if metadata.get("format") != FORMAT or metadata.get("version") != FORMAT_VERSION:
        raise _not_portable(
            path,
            f"format {metadata.get('format')!r} version {metadata.get('version')!r}, "
            f"this lab reads {FORMAT!r} version {FORMAT_VERSION}",
        )
    try:
        config = VAEConfig.from_dict(metadata["config"])
        model = keras.saving.load_model(path, compile=False)
        return PretrainedVAE(model, config, metadata.get("run"))
    except Exception as error:  # noqa: BLE001  Keras raises many kinds here
        raise _not_portable(path, f"{type(error).__name__}: {error}"[:300]) from None


def load_instructor_run(run_dir, cache_dir=None):
    """Return a ``helpers.runs.Run`` of the ``instructor.keras`` in ``run_dir``.

    Its ``config`` is the one the model was trained with (from the file), its
    ``info`` what the file says of that training (``epochs_done``); ``cache_dir``
    is ``cache_dir``, else the one run.json names, else None.
    """
    from helpers.runs import Run, RunPaths, read_info

    paths = RunPaths(Path(run_dir))
    vae = load_portable_model(paths.instructor_model)
    if cache_dir is None:
        cache_dir = read_info(paths.root).get("cache_dir")
    info = {**vae.info, "model": INSTRUCTOR_FILE}
    return Run(paths, vae.config, vae, Path(cache_dir) if cache_dir else None, info)


def _check_fits(model_config: VAEConfig, config: VAEConfig, path) -> None:
    """Refuse a model made for other images than ``config``'s (size, pixel range)."""
    mine = (config.image_shape, config.value_range)
    theirs = (model_config.image_shape, model_config.value_range)
    if mine != theirs:
        raise LabError(
            f"the instructor's model {path} was trained on {theirs[0]} images in "
            f"{theirs[1]}, but your config uses {mine[0]} images in {mine[1]}: use "
            f"the {model_config.name!r} preset's image_size and output_activation, "
            'or set IF_NO_MODEL = "train"'
        )


def _keras_layers(model):
    """Yield every layer of ``model``, inside nested models too."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _keras_layers(layer)


def portable_model(encoder, decoder):
    """Return one functional model holding ``encoder`` and ``decoder`` as layers.

    Inputs [images, z], outputs [z_mean, z_log_var, decoded z]: only a container,
    so that one ``.keras`` file carries both. The two nested models are its
    layers "encoder" and "decoder".

    Raises:
        LabError: a model is not functional, is misnamed, or holds a layer that is
            not Keras' own (the file could not be loaded without its class).
    """
    import keras

    for want, model in (("encoder", encoder), ("decoder", decoder)):
        if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
            raise LabError(
                f"the run's {want} is not a functional keras.Model: only those can "
                "be exported without their code"
            )
        if model.name != want:
            raise LabError(f"the run's {want} is named {model.name!r}, not {want!r}")
        for layer in _keras_layers(model):
            if not type(layer).__module__.startswith("keras."):
                raise LabError(
                    f"the {want}'s layer {layer.name!r} is a "
                    f"{type(layer).__module__}.{type(layer).__name__}, not a Keras "
                    "layer: the exported file could not be loaded without that "
                    "code. Export a run whose encoder and decoder use Keras' layers "
                    "only (the lab's build_encoder and build_decoder do)"
                )
    images = keras.Input(tuple(encoder.inputs[0].shape[1:]), name="images")
    z = keras.Input(tuple(decoder.inputs[0].shape[1:]), name="z")
    z_mean, z_log_var = encoder(images)
    return keras.Model(
        [images, z], [z_mean, z_log_var, decoder(z)], name="vae_lab_portable"
    )


def export_portable_model(run_dir, out, force: bool = False) -> tuple[Path, str]:
    """Write a run's best model as a portable ``.keras`` file; return (path, SHA-256).

    The file is a functional model of Keras' own layers (``portable_model``) plus
    ``vae_lab.json`` (the run's config and epochs done) inside the same archive:
    it loads where the lab's ``VAE`` and ``Sampling`` are not available, as in the
    student release. It is checked (loaded back, same decoder output) before it
    is written, atomically.

    Raises:
        LabError: ``run_dir`` is not a run or has no best.keras, ``out`` exists and
            ``force`` is false, or the model cannot be made portable.
    """
    import hashlib
    import tempfile

    import keras
    import numpy as np

    from helpers.files import atomic_write_bytes
    from helpers.runs import RunPaths, load_run, read_info

    out, paths = Path(out), RunPaths(Path(run_dir))
    if out.suffix != ".keras":
        raise LabError(f"{out}: the portable model's file name must end in .keras")
    if out.exists() and not force:
        raise LabError(
            f"{out} already exists: choose another file name, or pass --force to "
            "replace it (its SHA-256 changes: publish the new one)"
        )
    if not paths.config.exists() or not paths.best_model.exists():
        missing = "config.json" if not paths.config.exists() else "best.keras"
        raise LabError(
            f"{paths.root} is not a trained run (no {missing}): pass the --run-dir "
            "of a `python -m helpers train` run that finished at least one epoch"
        )
    run = load_run(paths.root)
    model = portable_model(run.vae.encoder, run.vae.decoder)
    info = read_info(paths.root)
    metadata = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": run.config.to_dict(),
        "run": {key: info[key] for key in ("epochs_done", "status") if key in info},
        "keras": keras.__version__,
    }
    z = np.random.default_rng(0).normal(size=(2, run.config.latent_dim))
    z = z.astype("float32")
    expected = np.asarray(run.vae.decoder(z, training=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / out.name
        model.save(path)
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=2) + "\n")
        check = load_portable_model(path)
        if not np.allclose(np.asarray(check.decode(z)), expected, atol=1e-5):
            raise LabError(  # a Keras bug; never publish such a file
                f"the exported model decodes differently from {paths.best_model}: "
                "not written"
            )
        data = path.read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, data)
    return out, hashlib.sha256(data).hexdigest()
