"""Write the self-checks' fixtures from the lab's reference implementation.

The student release ships ``helpers/checks`` without the reference code, so the
checks compare with these stored values instead. Run after changing the reference
or a check's test inputs, then commit the ``.npz``::

    PYTHONPATH=$PWD python tests/make_check_fixtures.py

``tests/test_checks.py`` fails when a fixture no longer matches the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FIXTURES = Path(__file__).resolve().parent.parent / "helpers" / "checks" / "fixtures"


def preprocess_fixture() -> dict[str, np.ndarray]:
    """The reference crop-resize of the checks' synthetic frame (and its inverse)."""
    from PIL import Image

    from helpers.checks.data import _test_frame
    from helpers.preprocess import DEFAULT_CROP
    from pil_crop import crop_resize

    return {
        "face": crop_resize(Image.fromarray(_test_frame()), DEFAULT_CROP, 64),
        "inverted": crop_resize(
            Image.fromarray(_test_frame(invert=True)), DEFAULT_CROP, 64
        ),
    }


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURES / "preprocess.npz", **preprocess_fixture())
    print(f"wrote {FIXTURES / 'preprocess.npz'}")


if __name__ == "__main__":
    main()
