"""Crop geometry, the cache's resizing (load_image), and normalisation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from helpers.preprocess import DEFAULT_CROP, denormalize, load_image, normalize
from pil_crop import crop_resize

WIDTH, HEIGHT = 178, 218


def coordinate_image() -> np.ndarray:
    """A 218x178 RGB frame whose red channel is x and green channel is y."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([x, y, np.full_like(x, 7)], axis=-1).astype(np.uint8)


def encoded(array: np.ndarray, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **options)
    return buffer.getvalue()


def slice_images(slice_dir, count: int = 12) -> list[bytes]:
    folder = slice_dir / "img_align_celeba"
    return [(folder / f"{k:06d}.jpg").read_bytes() for k in range(1, count + 1)]


# Crop geometry ------------------------------------------------------------------
@pytest.mark.parametrize("crop", [DEFAULT_CROP, (0, 0, 40, 40), (138, 178, 40, 40)])
def test_crop_without_resize_picks_the_exact_box(crop):
    left, top, width, height = crop
    out = load_image(encoded(coordinate_image()), crop=crop, image_size=width)
    assert out.shape == (height, width, 3) and out.dtype == np.uint8
    assert tuple(out[0, 0]) == (left, top, 7)
    assert tuple(out[-1, -1]) == (left + width - 1, top + height - 1, 7)
    np.testing.assert_array_equal(out[5, :, 0], np.arange(left, left + width))
    np.testing.assert_array_equal(out[:, 3, 1], np.arange(top, top + height))


def test_crop_resize_on_a_pil_image_matches_load_image():
    image = Image.fromarray(coordinate_image())
    out = crop_resize(image, (19, 39, 140, 140), 140)
    assert tuple(out[0, 0]) == (19, 39, 7) and tuple(out[-1, -1]) == (158, 178, 7)
    np.testing.assert_array_equal(
        crop_resize(image), load_image(encoded(coordinate_image()))
    )


def test_downscaled_pixels_sit_at_the_box_centres():
    # Each output pixel of a linear ramp equals the ramp at its centre, so an
    # off-by-one crop or a stretched box would show up as a shift.
    left, top, size = 19, 39, 140
    out = load_image(encoded(coordinate_image()), image_size=70).astype(float)
    centres = np.arange(70) * 2 + 0.5
    np.testing.assert_allclose(out[10, 2:-2, 0], left + centres[2:-2], atol=0.5)
    np.testing.assert_allclose(out[2:-2, 10, 1], top + centres[2:-2], atol=0.5)
    box = crop_resize(Image.fromarray(coordinate_image()), (left, top, size, size), 70)
    np.testing.assert_allclose(box[10, 2:-2, 0], left + centres[2:-2], atol=0.5)


def test_draft_decoding_keeps_the_geometry_of_a_jpeg_ramp():
    jpeg = encoded(coordinate_image(), "JPEG", quality=98, subsampling=0)
    out = load_image(jpeg, draft=True).astype(float)  # decoded at half size
    centres = 19 + (np.arange(64) + 0.5) * 140 / 64 - 0.5
    assert np.abs(out[32, 3:-3, 0] - centres[3:-3]).mean() < 1.0
    assert np.abs(out[3:-3, 32, 1] - (centres[3:-3] + 20)).mean() < 1.0


# Shapes, draft mode ----------------------------------------------------
@pytest.mark.parametrize("size", [32, 64, 128])
def test_output_shape_and_dtype(slice_dir, size):
    out = load_image(slice_images(slice_dir, 1)[0], image_size=size)
    assert out.shape == (size, size, 3) and out.dtype == np.uint8


def test_draft_decode_is_close_to_the_full_decode(slice_dir):
    for jpeg in slice_images(slice_dir):
        fast = load_image(jpeg, draft=True).astype(int)
        full = load_image(jpeg, draft=False).astype(int)
        assert np.abs(fast - full).mean() < 2.0  # grey levels out of 255


def test_grayscale_jpeg_comes_out_rgb():
    gray = coordinate_image()[..., 0]
    out = load_image(encoded(gray, "JPEG"))
    assert out.shape == (64, 64, 3)
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


# Bad input ------------------------------------------------------------------------
def test_truncated_and_garbage_files_raise(slice_dir):
    with pytest.raises(OSError):
        load_image(slice_images(slice_dir, 1)[0][:100])
    with pytest.raises(OSError):
        load_image(b"this is not an image" * 20)


def test_crop_outside_the_frame_raises():
    with pytest.raises(ValueError, match="does not fit inside a 178x218 image"):
        load_image(encoded(coordinate_image()), crop=(100, 100, 100, 100))
    with pytest.raises(ValueError, match=r"\(left, top, width, height\)"):
        load_image(encoded(coordinate_image()), crop=(1, 2, 3))


# Normalisation --------------------------------------------------------------------
@pytest.mark.parametrize("value_range", [(0.0, 1.0), (-1.0, 1.0)])
def test_normalize_range_and_round_trip(value_range):
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1).repeat(3, axis=-1)
    x = normalize(pixels, value_range)
    assert x.dtype == np.float32 and x.shape == pixels.shape
    assert x.min() == value_range[0] and x.max() == value_range[1]
    np.testing.assert_array_equal(denormalize(x, value_range), pixels)


def test_normalize_tensor_matches_numpy():
    import tensorflow as tf

    pixels = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    out = normalize(tf.constant(pixels), (-1.0, 1.0))
    assert isinstance(out, tf.Tensor) and out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), normalize(pixels, (-1.0, 1.0)), atol=1e-6)
    assert float(out.numpy()[8, 0, 0]) == pytest.approx(128 / 127.5 - 1, abs=1e-6)


def test_denormalize_clips_and_rejects_a_bad_range():
    out = denormalize(np.array([-0.5, 0.0, 0.25, 1.0, 2.0]), (0.0, 1.0))
    np.testing.assert_array_equal(out, [0, 0, 64, 255, 255])
    assert out.dtype == np.uint8
    with pytest.raises(ValueError, match="high > low"):
        normalize(np.zeros(3, np.uint8), (1.0, 1.0))
