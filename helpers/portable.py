"""The portable model file: a trained VAE that loads without any of the lab's code.

One ``.keras`` archive holding a functional model of Keras' own layers that wraps
the trained encoder and decoder, plus ``vae_lab.json`` (the run's config): it loads
with ``keras.saving.load_model`` alone, so it works in the student release, which
ships no ``helpers.solution``. It comes back as a ``PretrainedVAE`` (encoder,
decoder, value_range: what 05 and 06 use). The instructor writes it with
``python -m instructor export-model``; ``helpers.pretrained`` fetches it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from helpers.config import VAEConfig
from helpers.errors import LabError

INSTRUCTOR_FILE = "instructor.keras"  # its name in a run directory
METADATA_MEMBER = "vae_lab.json"  # inside the .keras archive, beside Keras' members
FORMAT, FORMAT_VERSION = "vae-lab-portable", 1


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
        "trained run with `python -m instructor export-model RUN_DIR OUT.keras`"
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
