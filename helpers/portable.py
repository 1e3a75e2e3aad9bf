"""The portable model file (``python -m instructor export-model`` writes it): one
``.keras`` archive of Keras' own layers wrapping the trained encoder and decoder, plus
``vae_lab.json`` (the run's config), loading without any of the lab's code."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from helpers.config import VAEConfig
from helpers.errors import LabError
from helpers.files import check_keras_file

INSTRUCTOR_FILE = "instructor.keras"  # its name in a run directory
METADATA_MEMBER = "vae_lab.json"  # inside the .keras archive, beside Keras' members
FORMAT, FORMAT_VERSION = "vae-lab-portable", 1


class PretrainedVAE:
    """A trained VAE for inference only (what generate and metrics need of a model);
    ``info`` is what the file says of its training."""

    def __init__(self, model, config: VAEConfig, info=None):
        self.model, self.config, self.info = model, config, dict(info or {})
        self.encoder, self.decoder = map(model.get_layer, ("encoder", "decoder"))
        self.value_range = tuple(float(v) for v in config.value_range)

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

    def __repr__(self) -> str:
        return (
            f"PretrainedVAE(latent_dim={self.latent_dim}, "
            f"value_range={self.value_range}, config={self.config.name!r})"
        )


def _not_portable(path, problem: str) -> LabError:
    return LabError(
        f"{path} is not a portable model of this lab ({problem}): make one from a "
        "trained run with `python -m instructor export-model RUN_DIR OUT.keras`"
    )


def load_portable_model(path) -> PretrainedVAE:
    """Load a file written by ``export_portable_model`` (no custom classes needed);
    DamagedFileError for a broken download or copy, LabError for a whole ``.keras``
    file that is not a portable model of this lab."""
    import keras

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
    if not isinstance(metadata, dict):
        raise _not_portable(path, f"{METADATA_MEMBER} holds no JSON object")
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
