"""Stream the uint8 cache as ``tf.data`` batches, the input pipeline of training.

``helpers.cache`` decodes CelebA once into one uint8 array per split; this module
turns a split into shuffled, batched, normalised float32 images::

    from helpers.datasets import make_dataset
    ds = make_dataset("data/cache64", "train", batch_size=128)  # (B, 64, 64, 3)

Each epoch's order is a pure function of (seed, epoch), so a resumed run sees the
same batches as an uninterrupted one. :func:`make_jpeg_dataset` decodes the JPEGs
on every pass instead: the slow path, kept to show what the cache saves.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from helpers import celeba
from helpers.cache import load_split
from helpers.errors import DataError
from helpers.preprocess import (
    DEFAULT_CROP,
    DEFAULT_IMAGE_SIZE,
    check_crop,
    normalize,
    tf_decode_crop_resize,
)

IN_MEMORY_BYTES = 1 << 30  # splits up to this size are read into RAM by make_dataset


# BEGIN REFERENCE (pipeline)
def _index_dataset(
    n: int, shuffle: bool, seed: int, repeat: bool, batch_size, drop, start_epoch=0
):
    """Return a dataset of sorted index batches: one shuffled order per epoch."""
    if shuffle and repeat:
        # One explicit order per epoch, a pure function of (seed, epoch): a run
        # resumed at epoch E (start_epoch=E) sees exactly the orders that an
        # uninterrupted run would have seen from epoch E on.
        def epoch_batches(epoch):
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=key
            )
            batches = tf.data.Dataset.from_tensor_slices(order)
            return batches.batch(batch_size, drop_remainder=drop)

        ds = tf.data.Dataset.range(start_epoch, 2**62).flat_map(epoch_batches)
        return ds.map(tf.sort)
    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    # Sorted indices within a batch read the memory map in file order.
    return ds.batch(batch_size, drop_remainder=drop).map(tf.sort)


def make_dataset(
    cache_dir: str | os.PathLike,
    split: str,
    batch_size: int = 128,
    shuffle: bool | None = None,
    limit: int | None = None,
    value_range: Sequence[float] = (0.0, 1.0),
    seed: int = 0,
    with_attributes: bool = False,
    drop_remainder: bool = False,
    repeat: bool = False,
    start_epoch: int = 0,
):
    """Stream normalised batches from the uint8 cache.

    Indices are shuffled (a full shuffle, new order every epoch, the same
    sequence of orders for the same seed), batched, and the batch's images are
    gathered as uint8 and normalised in one vectorised step. A split up to
    ``IN_MEMORY_BYTES`` is read into memory; a larger one is gathered from the
    memory map, so the 2.5 GB of full CelebA never has to fit in RAM.

    Args:
        cache_dir: folder written by :func:`prepare_cache`.
        split: "train", "validation" or "test".
        batch_size: images per batch.
        shuffle: reshuffle every epoch (None: only for "train").
        limit: use only the first ``limit`` images of the split.
        value_range: (0, 1) for a sigmoid decoder, (-1, 1) for tanh.
        seed: seed of the shuffle order.
        with_attributes: yield (images, attributes) pairs.
        drop_remainder: drop the last, smaller batch (static batch shape).
        repeat: repeat forever (Keras then needs steps_per_epoch). A shuffled,
            repeated dataset draws epoch e's order from (seed, e) alone, so
            ``start_epoch`` can resume the exact sequence of orders.
        start_epoch: the 0-based epoch a repeated, shuffled stream starts at.

    Returns:
        tf.data.Dataset of (B, H, W, 3) float32 in ``value_range``, or of
        ((B, H, W, 3) float32, (B, 40) int8 of +1 / -1) with_attributes.

    Raises:
        DataError: no finished cache, or the split (after ``limit``) is empty.
    """
    images, attributes, _ = load_split(cache_dir, split)
    n = len(images) if limit is None else min(int(limit), len(images))
    if n < 1:
        raise DataError(
            f"split {split!r} of {cache_dir} has no images (limit={limit}); "
            "choose another split or a larger slice."
        )
    images, attributes = images[:n], attributes[:n]
    shuffle = split == "train" if shuffle is None else bool(shuffle)
    ds = _index_dataset(
        n, shuffle, seed, repeat, batch_size, drop_remainder, start_epoch
    )
    shape = (batch_size if drop_remainder else None, *images.shape[1:])
    if images.nbytes <= IN_MEMORY_BYTES:
        table = tf.constant(np.asarray(images))
        gather = lambda idx: tf.gather(table, idx)  # noqa: E731
    else:
        gather = lambda idx: tf.ensure_shape(  # noqa: E731
            tf.numpy_function(lambda i: images[i], [idx], tf.uint8, stateful=False),
            shape,
        )
    attr_table = tf.constant(attributes)

    def to_batch(idx):
        batch = normalize(gather(idx), value_range)
        if with_attributes:
            return batch, tf.gather(attr_table, idx)
        return batch

    ds = ds.map(to_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def make_jpeg_dataset(
    data: str | os.PathLike,
    split: str,
    batch_size: int = 128,
    image_size: int = DEFAULT_IMAGE_SIZE,
    crop: Sequence[int] = DEFAULT_CROP,
    value_range: Sequence[float] = (0.0, 1.0),
    shuffle: bool | None = None,
    limit: int | None = None,
    seed: int = 0,
):
    """Decode the JPEGs every epoch (the slow path, for comparison with the cache).

    Same images, order and pixels (to about one grey level) as
    :func:`make_dataset`, but read, decoded, cropped and resized by tf.data on
    every pass. A missing or corrupt file stops the iteration with an error.

    Args:
        data: an extracted CelebA folder (official or Kaggle layout).
        split: "train", "validation" or "test".
        batch_size: images per batch.
        image_size: side of the square output.
        crop: face box (left, top, width, height) in the 178x218 frame.
        value_range: (0, 1) or (-1, 1).
        shuffle: reshuffle every epoch (None: only for "train").
        limit: use only the first ``limit`` images of the split.
        seed: seed of the shuffle order.

    Returns:
        tf.data.Dataset of (B, image_size, image_size, 3) float32 in value_range.
    """
    if split not in celeba.SPLITS:
        raise DataError(
            f"unknown split {split!r}: choose one of {', '.join(celeba.SPLITS)}"
        )
    if Path(data).is_file():
        raise DataError(f"{data} is a file: the JPEG path needs an extracted folder.")
    crop = check_crop(crop, celeba.IMAGE_SIZE)
    files = celeba.find_celeba(data)
    ids, _ = celeba.read_attributes(files)
    ids = celeba.split_ids(ids, celeba.read_partitions(files))[split][:limit]
    if not ids:
        raise DataError(f"split {split!r} of {data} has no images (limit={limit}).")
    paths = [str(files.image_path(i)) for i in ids]
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if split == "train" if shuffle is None else shuffle:
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.map(
        lambda p: tf_decode_crop_resize(tf.io.read_file(p), crop, image_size),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    ds = ds.batch(batch_size).map(lambda b: normalize(b, value_range))
    return ds.prefetch(tf.data.AUTOTUNE)


# END REFERENCE
