"""An independent crop-and-resize in PIL, for tests to compare the lab's with.

The lab keeps no reference of 01's part (the solutions' %%export cell is the only
one); these tests need a known-good crop to build expected values from.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from helpers.preprocess import DEFAULT_CROP, DEFAULT_IMAGE_SIZE, PIL_RESAMPLE, check_crop


def crop_resize(image: Image.Image, crop=DEFAULT_CROP, image_size=DEFAULT_IMAGE_SIZE):
    """Cut ``crop`` (left, top, width, height) out of ``image``; resize; uint8 RGB."""
    left, top, width, height = check_crop(crop, image.size)
    box = (left, top, left + width, top + height)
    out = image.convert("RGB").resize((image_size, image_size), PIL_RESAMPLE, box=box)
    return np.asarray(out, dtype=np.uint8)
