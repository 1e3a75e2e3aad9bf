"""What the notebooks tell students to expect, printed beside their own numbers.

A cell calls ``expect(key, value)``; under ``SMOKE=1 VAE_LAB_CHECK_EXPECTED=1`` (CI)
a value outside its generated-slice range fails it, so no expectation can drift.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from helpers.config import smoke_mode

CHECK_ENV = "VAE_LAB_CHECK_EXPECTED"


@dataclass(frozen=True)
class Expectation:
    """One expected number or trend."""

    what: str  # what is measured, as the notebook prints it
    smoke: tuple | str  # (low, high) on the generated slice, or "falls" / "rises"
    celeba: str  # the same on CelebA, in words, with where it comes from


EXPECTED: dict[str, Expectation] = {
    # 01_setup: one batch of the student's pipeline (fractions of value_range, so a
    # sigmoid and a tanh config read the same)
    "batch_mean": Expectation(
        "mean pixel of one training batch, as a fraction of value_range "
        "(0 = its low end, 1 = its high end)",
        (0.42, 0.54),
        "about 0.44 (approximate: CelebA's face crops' channel means are usually "
        "quoted as 0.51, 0.43 and 0.38)",
    ),
    "batch_spread": Expectation(
        "standard deviation of that batch's pixels, as a fraction of value_range",
        (0.16, 0.23),
        "about 0.29 (approximate: their channel spreads are quoted as 0.28 to 0.30)",
    ),
    # 02_model: the student's parts before training (the data plays no part)
    "encoder_parameters": Expectation(
        "encoder parameters",
        (304_048, 304_048),
        "1,738,976 with the cpu preset, 6,951,360 with colab (encoder_parameter_count)",
    ),
    "decoder_parameters": Expectation(
        "decoder parameters (the range: a 1x1 to a 5x5 output convolution)",
        (180_339, 181_491),
        "1,234,019 with the cpu preset, 4,925,635 with colab, for a 3x3 output "
        "convolution (helpers.checks.model.decoder_parameter_count)",
    ),
    "untrained_decoder_mean": Expectation(
        "mean pixel of the untrained decoder on z ~ N(0, I), as a fraction of "
        "value_range",
        (0.42, 0.58),
        "about 0.5: 0.47 to 0.54 with the cpu and colab presets (measured: no data)",
    ),
    "untrained_mse": Expectation(
        "summed MSE per image, untrained model",
        (300.0, 800.0),
        "several hundred (faces are mostly mid-tones; approximate, not measured)",
    ),
    "untrained_kl_per_dim": Expectation(
        "KL per latent dimension, untrained encoder (nats)",
        (0.01, 1.0),
        "a fraction of a nat (it depends on the initialiser, not on the data)",
    ),
    "untrained_bce_over_floor": Expectation(
        "untrained BCE / BCE of a perfect reconstruction",
        (1.02, 1.5),
        "a little above 1 (approximate, not measured)",
    ),
    "first_epochs_loss": Expectation(
        "total loss over the first epochs", "falls", "falls (every healthy run)"
    ),
    "first_epochs_kl": Expectation(
        "KL over the first epochs, from the untrained encoder's value",
        "falls",
        "not measured: one CelebA epoch is over a thousand steps, so the fall may "
        "end within epoch 1; read your own curve",
    ),
    # 05_generate: the trained model of 04 (on the slice: the short smoke run)
    "prior_samples_mean": Expectation(
        "mean pixel of 32 faces decoded from N(0, I), as a fraction of value_range",
        (0.40, 0.56),
        "close to the data's own mean pixel, about 0.44 (approximate, not measured)",
    ),
    "prior_samples_spread": Expectation(
        "how much those 32 faces differ: each pixel's standard deviation over the "
        "faces, averaged, as a fraction of value_range",
        (0.015, 0.1),
        "not measured: above 0 (0 is one face 32 times), below the real faces' own "
        "spread (printed above it)",
    ),
    "latent_grid_change": Expectation(
        "how much the 2-D map changes from its first row to its last: mean absolute "
        "pixel difference, as a fraction of value_range",
        (0.005, 0.08),
        "not measured: well above 0 along two active coordinates, close to 0 along "
        "two inactive ones",
    ),
    "smoke_total": Expectation(
        "validation total per image after the short run",
        (300.0, 600.0),
        "an estimate, not a measurement: a reconstruction of about 100-200 per image "
        "plus a KL of 20-60 nats after 40 epochs of the colab preset",
    ),
}


def _number(value) -> str:
    """A count with thousands separators (a parameter count), else 4 digits."""
    value = float(value)
    big = value.is_integer() and abs(value) >= 10_000
    return f"{int(value):,}" if big else f"{value:.4g}"


def smoke_text(smoke: tuple | str) -> str:
    """The smoke range in words: a trend, one exact number, or low to high."""
    if isinstance(smoke, str):
        return smoke
    low, high = map(_number, smoke)
    return f"exactly {low}" if low == high else f"{low} to {high}"


def expect(key: str, value) -> bool:
    """Print ``value`` (a number, or a trend's series) beside ``EXPECTED[key]``;
    return whether it is on track (in CI, off track raises AssertionError)."""
    expectation = EXPECTED[key]
    if isinstance(expectation.smoke, str):  # a trend: the last value against the first
        series = [float(v) for v in value]
        went = "falls" if series[-1] < series[0] else "rises"
        ok = went == expectation.smoke
        shown = " -> ".join(f"{v:.2f}" for v in series) + f" ({went})"
    else:
        low, high = expectation.smoke
        ok, shown = low <= float(value) <= high, _number(value)
    if smoke_mode():
        wanted = smoke_text(expectation.smoke)
        mark = "✅ on track" if ok else "⚠️ outside it: look for a mistake above"
        print(f"{expectation.what}: {shown}   (generated slice, smoke preset: ", end="")
        print(f"{wanted}; {mark})\n  on CelebA: {expectation.celeba}")
        if not ok and os.environ.get(CHECK_ENV, "").strip() == "1":
            raise AssertionError(
                f"expectation {key!r} drifted: {shown}, expected {wanted} on the "
                "generated slice. Update helpers/expected.py (and the notebook's "
                "words) to what the lab now does, or fix the change that moved it."
            )
    else:
        print(f"{expectation.what}: {shown}   (on CelebA: {expectation.celeba})")
    return ok
