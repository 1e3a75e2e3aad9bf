"""The lab's reference version of every part students write, under the parts' names.

``helpers.student`` substitutes one of these for a student's part only when the
notebook's one visible switch (``USE_LAB_PART``) says so, and prints that it did.
Most parts are the lab's own model and losses (``helpers.model``,
``helpers.losses``); the others exist here in the students' form. The student
release strips the code between the REFERENCE markers, so there the switch says the
lab's part is not published (yet) instead of substituting it.

=================  ====================================================
part               names
=================  ====================================================
preprocess         ``crop_resize_normalize(frame, config)``
pipeline           ``make_pipeline(images, config, training)``
encoder            ``build_encoder(config)`` (``helpers.model``)
sampling           ``Sampling`` (``helpers.model``)
decoder            ``build_decoder(config)`` (``helpers.model``)
losses             ``reconstruction_loss``, ``kl_divergence``, ``vae_loss``
                   (``helpers.losses``)
vae_model          ``VAE`` (``helpers.model``)
callbacks          ``make_callbacks(config, run_dir, fixed_z)``
sample_faces       ``sample_faces(vae, n, seed)`` -> (images, z)
interpolate_faces  ``interpolate_faces(vae, image_a, image_b, steps)``
latent_grid        ``latent_grid(vae, n, dims, span)``
=================  ====================================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# part -> (module, names it defines), in the order of helpers.student.PARTS
REFERENCE_PARTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "preprocess": ("helpers.reference", ("crop_resize_normalize",)),
    "pipeline": ("helpers.reference", ("make_pipeline",)),
    "encoder": ("helpers.model", ("build_encoder",)),
    "sampling": ("helpers.model", ("Sampling",)),
    "decoder": ("helpers.model", ("build_decoder",)),
    "losses": (
        "helpers.losses",
        ("reconstruction_loss", "kl_divergence", "vae_loss"),
    ),
    "vae_model": ("helpers.model", ("VAE",)),
    "callbacks": ("helpers.reference", ("make_callbacks",)),
    "sample_faces": ("helpers.reference", ("sample_faces",)),
    "interpolate_faces": ("helpers.reference", ("interpolate_faces",)),
    "latent_grid": ("helpers.reference", ("latent_grid",)),
}


# BEGIN REFERENCE (preprocess)
def crop_resize_normalize(frame, config):
    """Cut ``config.crop`` out of one CelebA frame, resize it, scale to the range.

    Args:
        frame: (218, 178, 3) uint8.
        config: a VAEConfig (crop, image_size, value_range).

    Returns:
        (image_size, image_size, 3) float32 in ``config.value_range``.
    """
    from PIL import Image

    from helpers.preprocess import crop_resize, normalize

    image = Image.fromarray(np.asarray(frame, dtype=np.uint8))
    return normalize(
        crop_resize(image, config.crop, config.image_size),
        config.value_range,
    )


# END REFERENCE


# BEGIN REFERENCE (pipeline)
def make_pipeline(images, config, training):
    """Stream float32 batches in ``config.value_range`` from a uint8 array.

    Args:
        images: (N, H, W, 3) uint8 (e.g. ``helpers.cache.load_split``'s memory map).
        config: a VAEConfig (batch_size, value_range, seed).
        training: shuffle (a new order every epoch) when True.

    Returns:
        tf.data.Dataset of (B, H, W, 3) float32.
    """
    import tensorflow as tf

    low, high = config.value_range
    images = np.asarray(images)
    ds = tf.data.Dataset.from_tensor_slices(images)
    if training:
        ds = ds.shuffle(len(images), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(config.batch_size).map(
        lambda x: tf.cast(x, tf.float32) * ((high - low) / 255.0) + low,
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return ds.prefetch(tf.data.AUTOTUNE)


# END REFERENCE


# BEGIN REFERENCE (callbacks)
def make_callbacks(config, run_dir, fixed_z):
    """Best-model checkpoint, TensorBoard and a grid of the fixed z's faces.

    Args:
        config: a VAEConfig (sample_interval, value_range).
        run_dir: the run directory.
        fixed_z: (N, latent_dim) float32, decoded every ``config.sample_interval``
            epochs into ``run_dir/samples/epoch_NNN.png``.

    Returns:
        A list of Keras callbacks.
    """
    import keras

    from helpers.callbacks import SampleGrid
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    return [
        keras.callbacks.ModelCheckpoint(
            str(paths.best_model),
            monitor="val_loss_at_target_beta",  # train() logs it; see TargetBetaLoss
            mode="min",
            save_best_only=True,
        ),
        keras.callbacks.TensorBoard(str(paths.tensorboard), write_graph=False),
        SampleGrid(
            fixed_z, paths.sample_grid, config.sample_interval, config.value_range
        ),
    ]


# END REFERENCE


# BEGIN REFERENCE (sample_faces)
def sample_faces(vae, n, seed=0):
    """Decode ``n`` faces from latents drawn from the prior N(0, I).

    Args:
        vae: a trained VAE (only ``decoder`` is used).
        n: number of faces.
        seed: seed of the draw (same seed, same faces).

    Returns:
        (images, z): (n, H, W, 3) float32 images in the model's value range and
        the (n, D) latents they were decoded from.
    """
    import keras

    from helpers.generate import decode, latent_dim

    z = keras.ops.convert_to_numpy(keras.random.normal((n, latent_dim(vae)), seed=seed))
    return decode(vae, z), z


# END REFERENCE


# BEGIN REFERENCE (interpolate_faces)
def interpolate_faces(vae, image_a, image_b, steps=8):
    """Decode ``steps`` faces on the straight line between two faces' z_means.

    Returns:
        (steps, H, W, 3) float32, from face a's reconstruction to face b's.
    """
    from helpers.generate import interpolate

    return interpolate(vae, image_a, image_b, steps, mode="linear")


# END REFERENCE


# BEGIN REFERENCE (latent_grid)
def latent_grid(vae, n=9, dims=(0, 1), span=2.0):
    """Decode an n x n grid over latent coordinates dims[0] (rows), dims[1] (cols).

    Every other coordinate is 0, the prior's mean.

    Returns:
        (n, n, H, W, 3) float32.
    """
    from helpers.generate import decode, latent_dim

    values = np.linspace(-span, span, n)
    rows, cols = np.meshgrid(values, values, indexing="ij")
    z = np.zeros((n * n, latent_dim(vae)), dtype="float32")
    z[:, dims[0]] = rows.ravel()
    z[:, dims[1]] = cols.ravel()
    images = decode(vae, z)
    return images.reshape(n, n, *images.shape[1:])


# END REFERENCE
