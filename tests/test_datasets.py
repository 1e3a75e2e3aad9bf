"""Streaming the cache with tf.data: shapes, ranges, shuffles, resume, JPEG path."""

from __future__ import annotations

import numpy as np
import pytest

import helpers.datasets as datasets_module
from helpers.cache import load_split
from helpers.celeba import find_celeba, read_attributes
from helpers.datasets import make_dataset, make_jpeg_dataset
from helpers.errors import DataError
from helpers.preprocess import denormalize, normalize


def test_missing_cache_and_unknown_split_messages(cache_dir, tmp_path):
    with pytest.raises(
        DataError, match="No finished cache .*python -m helpers prepare"
    ):
        make_dataset(tmp_path / "nothing", "train")
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_split(cache_dir, "val")


# make_dataset ---------------------------------------------------------------------
def image_index(cache_dir, split) -> dict[bytes, int]:
    images = load_split(cache_dir, split)[0]
    return {images[i].tobytes(): i for i in range(len(images))}


def epoch_order(dataset, index, value_range=(0.0, 1.0)) -> list[int]:
    order = []
    for batch in dataset:
        pixels = denormalize(batch.numpy(), value_range)
        order += [index[image.tobytes()] for image in pixels]
    return order


def test_batches_shape_dtype_and_range(cache_dir):
    sizes = [tuple(b.shape) for b in make_dataset(cache_dir, "train", batch_size=64)]
    assert sizes == [(64, 64, 64, 3), (64, 64, 64, 3), (32, 64, 64, 3)]
    for value_range in [(0.0, 1.0), (-1.0, 1.0)]:
        batch = next(iter(make_dataset(cache_dir, "test", value_range=value_range)))
        x = batch.numpy()
        assert x.dtype == np.float32 and x.shape == (20, 64, 64, 3)
        assert value_range[0] <= x.min() < x.max() <= value_range[1]
        expected = normalize(np.asarray(load_split(cache_dir, "test")[0]), value_range)
        np.testing.assert_allclose(x, expected, atol=1e-6)  # unshuffled, in order


def test_shuffle_is_new_each_epoch_and_repeatable_for_a_seed(cache_dir):
    index = image_index(cache_dir, "train")
    ds = make_dataset(cache_dir, "train", batch_size=32, seed=3)
    first, second = epoch_order(ds, index), epoch_order(ds, index)
    assert sorted(first) == sorted(second) == list(range(160))
    assert first != second and first != list(range(160))
    again = make_dataset(cache_dir, "train", batch_size=32, seed=3)
    assert epoch_order(again, index) == first and epoch_order(again, index) == second
    other = make_dataset(cache_dir, "train", batch_size=32, seed=4)
    assert epoch_order(other, index) != first


def test_validation_is_not_shuffled_and_limit_is_respected(cache_dir):
    index = image_index(cache_dir, "validation")
    ds = make_dataset(cache_dir, "validation", batch_size=8)
    assert epoch_order(ds, index) == list(range(20))
    limited = make_dataset(cache_dir, "train", batch_size=16, limit=50)
    order = epoch_order(limited, image_index(cache_dir, "train"))
    assert sorted(order) == list(range(50))
    with pytest.raises(DataError, match="has no images"):
        make_dataset(cache_dir, "train", limit=0)


def test_attributes_pair_with_their_images(slice_dir, cache_dir):
    ids, attrs = read_attributes(find_celeba(slice_dir))
    file_attrs = dict(zip(ids, attrs))
    split_ids = load_split(cache_dir, "train")[2]
    index = image_index(cache_dir, "train")
    ds = make_dataset(cache_dir, "train", batch_size=32, with_attributes=True)
    seen = 0
    for images, attributes in ds:
        assert attributes.dtype.name == "int8" and attributes.shape[1:] == (40,)
        for image, row in zip(denormalize(images.numpy()), attributes.numpy()):
            image_id = split_ids[index[image.tobytes()]]
            np.testing.assert_array_equal(row, file_attrs[image_id])
            seen += 1
    assert seen == 160


def test_memory_map_path_gives_the_same_batches(cache_dir, monkeypatch):
    in_memory = [b.numpy() for b in make_dataset(cache_dir, "train", seed=1)]
    monkeypatch.setattr(datasets_module, "IN_MEMORY_BYTES", 0)
    mapped = make_dataset(
        cache_dir, "train", seed=1, drop_remainder=True, batch_size=64
    )
    assert [tuple(b.shape) for b in mapped] == [(64, 64, 64, 3)] * 2
    assert mapped.element_spec.shape.as_list() == [64, 64, 64, 3]
    again = [b.numpy() for b in make_dataset(cache_dir, "train", seed=1)]
    assert len(again) == len(in_memory)
    for a, b in zip(again, in_memory):
        np.testing.assert_array_equal(a, b)


def test_repeat_crosses_epochs(cache_dir):
    ds = make_dataset(cache_dir, "validation", batch_size=16, repeat=True)
    assert [int(b.shape[0]) for b in ds.take(4)] == [16, 16, 16, 16]


def test_jpeg_pipeline_matches_the_cache(slice_dir, cache_dir):
    jpeg = make_jpeg_dataset(slice_dir, "validation", batch_size=8, value_range=(-1, 1))
    cached = make_dataset(cache_dir, "validation", batch_size=8, value_range=(-1, 1))
    a = np.concatenate([b.numpy() for b in jpeg])
    b = np.concatenate([b.numpy() for b in cached])
    assert a.shape == b.shape == (20, 64, 64, 3) and a.dtype == np.float32
    assert np.abs(a - b).mean() * 127.5 < 2.0  # within two grey levels on average
    limited = make_jpeg_dataset(slice_dir, "train", batch_size=8, limit=12)
    assert sum(int(x.shape[0]) for x in limited) == 12


def test_repeated_shuffle_resumes_the_exact_order_of_later_epochs(cache_dir):
    """Check epoch e's order depends on (seed, e) only, so a resume sees the same."""
    n, batch = 160, 32  # the train split of the 200-image fixture, 5 batches/epoch

    def epochs(start, count, seed=7):
        ds = make_dataset(
            cache_dir,
            "train",
            batch_size=batch,
            shuffle=True,
            seed=seed,
            repeat=True,
            start_epoch=start,
        )
        flat = np.concatenate([b.numpy() for b in ds.take(count * n // batch)])
        return flat.reshape(count, n, -1).mean(axis=-1)  # one number per image

    full = epochs(0, 4)
    np.testing.assert_array_equal(epochs(2, 2), full[2:])
    assert not np.array_equal(full[0], full[1])  # a new order every epoch
    for epoch in full:  # every image exactly once per epoch
        np.testing.assert_allclose(np.sort(epoch), np.sort(full[0]))
    assert not np.array_equal(epochs(0, 1, seed=8), full[:1])
