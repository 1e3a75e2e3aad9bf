"""What the notebooks tell students to expect, printed beside their own numbers.

A notebook never types a number about its own results into its text: its cell calls
``expect(key, value)``, which prints the student's value beside the range below and
whether it is on track. The ranges for the generated slice (``SMOKE=1``, the
``smoke`` preset) are measured from the solutions on that slice; CI runs the
solutions with ``VAE_LAB_CHECK_EXPECTED=1`` (``conftest.py``), where a value outside
its range fails the cell, so an expectation cannot drift from what the lab does.
CelebA figures are approximate where nothing here measured them, and say so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from helpers.config import smoke_mode

CHECK_ENV = "VAE_LAB_CHECK_EXPECTED"


@dataclass(frozen=True)
class Expectation:
    """One expected number or trend.

    Attributes:
        what: what is measured, as the notebook prints it.
        smoke: (low, high) on the generated slice with the smoke preset, or the
            trend "falls" / "rises" (last value against the first).
        celeba: the same on CelebA, in words, with where it comes from.
    """

    what: str
    smoke: tuple | str
    celeba: str


EXPECTED: dict[str, Expectation] = {
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
        "not measured here (no CelebA on the lab's machines): one CelebA epoch is "
        "over a thousand steps, so the fall may be over within epoch 1; read your "
        "own curve",
    ),
    "smoke_total": Expectation(
        "validation total per image after the short run",
        (300.0, 600.0),
        "an estimate, not a measurement: a reconstruction of about 100-200 per image "
        "plus a KL of 20-60 nats after 40 epochs of the colab preset",
    ),
}


def _check_mode() -> bool:
    return smoke_mode() and os.environ.get(CHECK_ENV, "").strip() == "1"


def _on_track(expectation: Expectation, value) -> tuple[bool, str]:
    """(on track, the measured value in words) for a number or a series."""
    if isinstance(expectation.smoke, str):
        series = [float(v) for v in value]
        went = "falls" if series[-1] < series[0] else "rises"
        shown = " -> ".join(f"{v:.2f}" for v in series)
        return went == expectation.smoke, f"{shown} ({went})"
    low, high = expectation.smoke
    return low <= float(value) <= high, f"{float(value):.4g}"


def expect(key: str, value) -> bool:
    """Print ``value`` beside what the lab expects for ``key``; return on track.

    Args:
        key: an entry of ``EXPECTED``.
        value: a number, or for a trend the series (first value first).

    Raises:
        AssertionError: only in CI (``SMOKE=1`` and ``VAE_LAB_CHECK_EXPECTED=1``)
            when the value is off: the notebook's expectation has drifted.
    """
    expectation = EXPECTED[key]
    ok, shown = _on_track(expectation, value)
    if smoke_mode():
        smoke = expectation.smoke
        wanted = smoke if isinstance(smoke, str) else f"{smoke[0]:g} to {smoke[1]:g}"
        mark = "✅ on track" if ok else "⚠️ outside it: look for a mistake above"
        print(f"{expectation.what}: {shown}   (generated slice, smoke preset: "
              f"{wanted}; {mark})")
        print(f"  on CelebA: {expectation.celeba}")
        if not ok and _check_mode():
            raise AssertionError(
                f"expectation {key!r} drifted: {shown}, expected {wanted} on the "
                "generated slice. Update helpers/expected.py (and the notebook's "
                "words) to what the lab now does, or fix the change that moved it."
            )
    else:
        print(f"{expectation.what}: {shown}   (on CelebA: {expectation.celeba})")
    return ok
