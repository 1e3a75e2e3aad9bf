"""What every self-check shares: the failure type and how to call student code."""

from __future__ import annotations

import numpy as np

PIXELS_64 = 64 * 64 * 3  # 12,288 values in one 64x64 RGB image


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says which and how to fix it."""


# ------------------------------------------------------------------------- helpers
def _name(obj) -> str:
    return (
        getattr(obj, "__name__", None)
        or getattr(obj, "name", None)
        or type(obj).__name__
    )


def _call(fn, *args, what: str | None = None, **kwargs):
    """Call the student's code; turn a left-over TODO into a one-line message."""
    what = what or _name(fn)
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise CheckFailed(
            f"You have not filled in the TODO yet: `{what}` still raises "
            f"NotImplementedError. Replace `raise NotImplementedError()` with your "
            f"code, run that cell, then run this check again."
        ) from None
    except CheckFailed:
        raise
    except Exception as error:
        raise CheckFailed(
            f"`{what}` raised {type(error).__name__}: {error} (the traceback above "
            f"shows the line in your code)"
        ) from error


def _numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        from keras import ops

        return np.asarray(ops.convert_to_numpy(value))
    except Exception:  # plain Python numbers, lists
        return np.asarray(value)


def _passed(message: str) -> None:
    print(f"✅ {message}")


def _build(model_or_fn, config, kind: str):
    import keras

    if isinstance(model_or_fn, keras.Model):
        return model_or_fn
    if callable(model_or_fn):
        model = _call(model_or_fn, config, what=_name(model_or_fn))
        if isinstance(model, keras.Model):
            return model
        raise CheckFailed(
            f"`{_name(model_or_fn)}(config)` returned {type(model).__name__}, "
            f"not a keras.Model: end with `return keras.Model(inputs, "
            f"outputs, name='{kind}')`"
        )
    raise CheckFailed(
        f"expected the {kind} (a keras.Model) or the function that builds "
        f"it, got {type(model_or_fn).__name__}"
    )


def _producer(tensor):
    """Return the layer that made a functional model's output tensor (or None)."""
    history = getattr(tensor, "_keras_history", None)
    return history[0] if history else None


def _activation_name(layer) -> str | None:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) if activation is not None else None
