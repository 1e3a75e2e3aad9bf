"""Root pytest set-up, shared by the unit tests and nbval over solutions/.

Notebook kernels inherit this process's environment, so setting the switches here
makes CI run exactly what students run, only on the tiny profile.
"""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["SMOKE"] = "1"
# The numbers the notebooks tell students to expect are asserted on the smoke run
# (helpers/expected.py): a change that falsifies one fails its cell.
os.environ["VAE_LAB_CHECK_EXPECTED"] = "1"
# One scratch folder for the whole session, so 04_train's run feeds 05_generate.
os.environ.setdefault("VAE_LAB_WORKDIR", tempfile.mkdtemp(prefix="vae-lab-ci-"))


def pytest_configure(config):
    """Make SMOKE=1's generated slice once per machine (setup_lab finds it by env)."""
    from filelock import FileLock

    from helpers.lab import GENERATED_SLICE_ENV, SMOKE_SLICE_IMAGES
    from vaelab.synthetic import make_slice

    folder = Path(tempfile.gettempdir()) / f"vae-lab-smoke-slice-{SMOKE_SLICE_IMAGES}"
    with FileLock(f"{folder}.lock"):
        make_slice(folder, n=SMOKE_SLICE_IMAGES, layout="official", seed=0)
    os.environ[GENERATED_SLICE_ENV] = str(folder)
