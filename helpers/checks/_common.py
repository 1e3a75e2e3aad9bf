"""What every self-check shares: the failure type and how to call student code.

A failing check raises :class:`CheckFailed`. In a notebook it shows as a few lines,
not as a traceback through ``helpers``: IPython asks the exception for its own
traceback (``_render_traceback_``), and ``CheckFailed`` answers with the check's
name, the student's function and the hint, plus, when the student's own code
raised, only the lines of that code.
"""

from __future__ import annotations

import functools
import inspect
import os
import traceback
import types

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
            borrowed = lab_calls(obj)
            if borrowed:
                raise CheckFailed(
                    f"it calls the lab's own {', '.join(borrowed)}: write this part "
                    "yourself (the lab's code around it is scaffolding and the "
                    "checks' reference, not an answer to call)",
                    check=check.__name__,
                    target=_target_name(obj, default_target),
                )
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


# ------------------------------------------------- the lab's code is not an answer
# What a part may use from the lab: the config it is given, the plotting helper
# the callbacks part draws with, and the reference parts the instructor gave out.
ALLOWED_LAB_MODULES = ("helpers.config", "helpers.plots", "helpers.solution")


def _lab_object(value) -> str | None:
    """The dotted name of ``value`` when it is the lab's own code, else None."""
    if isinstance(value, types.ModuleType):
        module, name = value.__name__, value.__name__
    else:
        module = getattr(value, "__module__", None)
        if not isinstance(module, str) or not callable(value):
            return None
        name = f"{module}.{getattr(value, '__qualname__', type(value).__name__)}"
    return name if _is_lab_module(module) else None


def _is_lab_module(module: str) -> bool:
    if module != "helpers" and not module.startswith("helpers."):
        return False
    return not any(
        module == allowed or module.startswith(allowed + ".")
        for allowed in ALLOWED_LAB_MODULES
    )


def _functions_of(obj):
    """The Python functions that make up a student's function, class or object."""
    if isinstance(obj, functools.partial):
        yield from _functions_of(obj.func)
    elif inspect.isfunction(obj) or inspect.ismethod(obj):
        yield getattr(obj, "__func__", obj)
    elif inspect.isclass(obj):
        for value in vars(obj).values():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            elif isinstance(value, property):
                yield from (f for f in (value.fget, value.fset) if f is not None)
                continue
            if inspect.isfunction(value):
                yield value
    elif not isinstance(obj, (str, bytes, os.PathLike, list, tuple, dict)):
        kind = type(obj)
        if not _library_module(getattr(kind, "__module__", "")):
            yield from _functions_of(kind)


def _library_module(module: str) -> bool:
    top = module.partition(".")[0]
    return top in {"keras", "tensorflow", "numpy", "jax", "builtins", "torch"}


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def lab_calls(obj) -> list[str]:
    """What of the lab's own code (outside ``ALLOWED_LAB_MODULES``) ``obj`` uses.

    ``obj`` is what a student hands a check: a function, a class, an object of
    their class, or a ``functools.partial``. It is the lab's code itself when it
    was imported from ``helpers`` (an alias), and it uses the lab's code when its
    functions name a ``helpers`` module, function or class (a global, a closure
    variable, an import inside the function) or the class derives from one. The
    lab's reference parts (``helpers.solution``) are allowed: those are given.
    """
    itself = _lab_object(obj)
    if itself:
        return [itself]
    found = set()
    if inspect.isclass(obj):
        found.update(n for base in obj.__mro__[1:] if (n := _lab_object(base)))
    for function in _functions_of(obj):
        names = function.__globals__
        cells = [c.cell_contents for c in (function.__closure__ or ()) if _filled(c)]
        found.update(n for value in cells if (n := _lab_object(value)))
        for code in _code_objects(function.__code__):
            for name in code.co_names:
                if _is_lab_module(name.partition(" ")[0]):  # import helpers.x
                    found.add(name)
                elif name in names and (lab := _lab_object(names[name])):
                    found.add(lab)
    return sorted(found)


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty closure cell
        return False
    return True


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
