"""What every self-check shares: the failure type and how to call student code.

A failing check raises :class:`CheckFailed`. In a notebook it shows as a few lines,
not as a traceback through ``helpers``: IPython asks the exception for its own
traceback (``_render_traceback_``), and ``CheckFailed`` answers with the check's
name, the student's function and the hint, plus, when the student's own code
raised, only the lines of that code.
"""

from __future__ import annotations

import functools
import os
import traceback

import numpy as np

PIXELS_64 = 64 * 64 * 3  # 12,288 values in one 64x64 RGB image
_HELPERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class CheckFailed(AssertionError):
    """A self-check found a mistake; the message says which and how to fix it.

    Attributes:
        message: the hint alone.
        check: the check that failed (``"check_kl"``), once known.
        target: the student's function, class or model it checked.
        student_error: the exception the student's code raised, if that is why.
    """

    def __init__(self, message, *, check=None, target=None, student_error=None):
        super().__init__(message)
        self.message = str(message)
        self.check = check
        self.target = target
        self.student_error = student_error

    def __str__(self) -> str:
        if self.check is None:
            return self.message
        target = f" for `{self.target}`" if self.target else ""
        return f"{self.check} failed{target}: {self.message}"

    def _render_traceback_(self) -> list[str]:
        """IPython's hook: a short red message instead of a traceback."""
        red, reset = "\x1b[31m", "\x1b[0m"
        lines = [f"{red}❌ {self}{reset}"]
        if self.student_error is not None:
            frames = _student_frames(self.student_error)
            if frames:
                lines.append("Where your code raised it:")
                lines += [line.rstrip("\n") for line in traceback.format_list(frames)]
        return lines


def _student_frames(error: BaseException) -> list:
    """The frames of ``error``'s traceback in the student's code (last 6).

    Frames inside ``helpers`` and inside installed libraries (``site-packages``)
    are left out; if nothing is left, the last three library frames are shown.
    """
    frames = traceback.extract_tb(error.__traceback__)
    outside = [
        f for f in frames if not os.path.abspath(f.filename).startswith(_HELPERS_DIR)
    ]
    mine = [
        f
        for f in outside
        if "site-packages" not in f.filename and "dist-packages" not in f.filename
    ]
    return mine[-6:] if mine else outside[-3:]


def self_check(default_target: str):
    """Decorate a public check: its failures name the check and the student's code.

    Args:
        default_target: what to call the student's object when it has no useful
            name of its own (a lambda), e.g. ``"kl_divergence"``.
    """

    def decorate(check):
        @functools.wraps(check)
        def wrapper(obj, *args, **kwargs):
            try:
                return check(obj, *args, **kwargs)
            except CheckFailed as error:
                if error.check is not None:  # already named by an inner check
                    raise
                name = _target_name(obj, default_target)
                raise CheckFailed(
                    error.message,
                    check=check.__name__,
                    target=name,
                    student_error=error.student_error,
                ) from None

        return wrapper

    return decorate


# ------------------------------------------------------------------------- helpers
def _target_name(obj, default: str) -> str:
    """The student's object's own name, or ``default`` for a lambda."""
    name = _name(obj)
    if not name or name.startswith("<") or name == "function":
        return default
    return name


def _name(obj) -> str:
    if isinstance(obj, functools.partial):
        obj = obj.func
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
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        if len(first) > 300:
            first = first[:300] + " ..."
        raise CheckFailed(
            f"`{what}` raised {type(error).__name__}: {first} (the lines below "
            f"show where, in your code)",
            student_error=error,
        ) from None


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
