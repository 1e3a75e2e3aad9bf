"""Publish a trained run for students: ``python -m instructor export-model``.

``python -m instructor export-model RUN_DIR OUT.keras`` writes the run's best
model as a portable file (Keras' own layers only, ``helpers.portable``, so it
loads in the student release) and prints its SHA-256 and the two lines to paste
into ``helpers/pretrained.py``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from helpers.errors import LabError
from helpers.portable import (
    FORMAT,
    FORMAT_VERSION,
    METADATA_MEMBER,
    load_portable_model,
)
from vaelab.validate import output_file_of


def _keras_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _keras_layers(layer)


def portable_model(encoder, decoder):
    """Return one functional model holding ``encoder`` and ``decoder`` as layers.

    Inputs [images, z], outputs [z_mean, z_log_var, decoded z]: only a container,
    so that one ``.keras`` file carries both.

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
            "of a `python -m vaelab train` run that finished at least one epoch"
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


def export_model_command(parser):
    """``python -m instructor export-model``: write a run's model as a portable file."""
    from helpers.pretrained import INSTRUCTOR_MODEL_URL

    parser.add_argument(
        "run_dir", help="a trained run directory (it holds best.keras and config.json)"
    )
    parser.add_argument(
        "out",
        type=output_file_of(".keras"),
        help="the portable model file to write, e.g. model.keras",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace OUT if it already exists"
    )
    parser.add_argument(
        "--url",
        default=INSTRUCTOR_MODEL_URL,
        help="where you will upload OUT, for the printed lines (default: the current "
        "INSTRUCTOR_MODEL_URL)",
    )

    def run(args) -> int:
        path, digest = export_portable_model(args.run_dir, args.out, force=args.force)
        size = path.stat().st_size / 2**20
        print(f"wrote {path} ({size:.1f} MiB)\nSHA-256 {digest}")
        print(
            f"Upload it to {args.url} (e.g. as a GitHub release asset), then set in "
            "helpers/pretrained.py:\n"
            f'INSTRUCTOR_MODEL_URL = "{args.url}"\n'
            f'INSTRUCTOR_MODEL_SHA256 = "{digest}"'
        )
        return 0

    return run
