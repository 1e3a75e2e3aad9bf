"""What every self-check shares: the failure type and how to call student code.

In a notebook a :class:`CheckFailed` renders itself (IPython's
``_render_traceback_``): one red line, plus the student's own lines if they raised.
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
# What a part may use from the lab: the config it is given, the plotting helper
# the callbacks part draws with, and the reference parts (a release's given ones,
# a checkout's all).
ALLOWED_LAB_MODULES = (
    "helpers.config", "helpers.plots", "helpers.solution", "vaelab.solution"
)
# The lab's code: the students' package, and a checkout's reference (vaelab.solution).
LAB_PACKAGES = ("helpers", "vaelab")
_LIBRARIES = {"keras", "tensorflow", "numpy", "jax", "builtins", "torch"}


class CheckFailed(AssertionError):
    """A self-check found a mistake: ``message`` is the hint, ``check`` and
    ``target`` name the check and the student's code, ``student_error`` is what
    the student's code raised (if that is why)."""

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
        lines = [f"\x1b[31m❌ {self}\x1b[0m"]
        if self.student_error is None:
            return lines
        frames = [
            f
            for f in traceback.extract_tb(self.student_error.__traceback__)
            if not os.path.abspath(f.filename).startswith(_HELPERS_DIR)
        ]
        libraries = ("site-packages", "dist-packages")
        mine = [f for f in frames if not any(p in f.filename for p in libraries)]
        if frames:
            lines.append("Where your code raised it:")
            lines += traceback.format_list(mine[-6:] if mine else frames[-3:])
        return [line.rstrip("\n") for line in lines]


def self_check(default_target: str):
    """Decorate a public check: its failures name the check and the student's code
    (``default_target`` when it has no useful name of its own, e.g. a lambda)."""

    def decorate(check):
        @functools.wraps(check)
        def wrapper(obj, *args, **kwargs):
            try:
                borrowed = lab_calls(obj)
                if borrowed:
                    raise CheckFailed(
                        f"it calls the lab's own {', '.join(borrowed)}: write this "
                        "part yourself (the lab's code around it is scaffolding and "
                        "the checks' reference, not an answer to call)"
                    )
                return check(obj, *args, **kwargs)
            except CheckFailed as error:
                if error.check is not None:  # already named by an inner check
                    raise
                raise CheckFailed(
                    error.message,
                    check=check.__name__,
                    target=_target_name(obj, default_target),
                    student_error=error.student_error,
                ) from None

        return wrapper

    return decorate


# ------------------------------------------------- the lab's code is not an answer
def _lab_object(value) -> str | None:
    """The dotted name of ``value`` when it is the lab's own code, else None."""
    if isinstance(value, types.ModuleType):
        module = name = value.__name__
    else:
        module = getattr(value, "__module__", None)
        if not isinstance(module, str) or not callable(value):
            return None
        name = f"{module}.{getattr(value, '__qualname__', type(value).__name__)}"
    return name if _is_lab_module(module) else None


def _is_lab_module(module: str) -> bool:
    if module.split(".")[0] not in LAB_PACKAGES:
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
            if inspect.isfunction(value):
                yield value
    elif not isinstance(obj, (str, bytes, os.PathLike, list, tuple, dict)):
        module = getattr(type(obj), "__module__", "")
        if module.partition(".")[0] not in _LIBRARIES:
            yield from _functions_of(type(obj))


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def lab_calls(obj) -> list[str]:
    """What of the lab's own code (outside ``ALLOWED_LAB_MODULES``) ``obj`` uses.

    ``obj`` (a function, class, object or ``functools.partial``) is the lab's code
    when imported from ``helpers``; it uses it when its functions name a
    ``helpers`` module, function or class (a global, a closure variable, an import
    inside the function) or the class derives from one.
    """
    itself = _lab_object(obj)
    if itself:
        return [itself]
    found = set()
    if inspect.isclass(obj):
        found.update(n for base in obj.__mro__[1:] if (n := _lab_object(base)))
    for function in _functions_of(obj):
        names = function.__globals__
        for cell in function.__closure__ or ():
            try:
                found.add(_lab_object(cell.cell_contents))
            except ValueError:  # an empty closure cell
                pass
        for code in _code_objects(function.__code__):
            for name in code.co_names:
                if _is_lab_module(name.partition(" ")[0]):  # import helpers.x
                    found.add(name)
                elif name in names:
                    found.add(_lab_object(names[name]))
    return sorted(found - {None})


# ------------------------------------------------------------------------- helpers
def _name(obj) -> str:
    if isinstance(obj, functools.partial):
        obj = obj.func
    return (
        getattr(obj, "__name__", None)
        or getattr(obj, "name", None)
        or type(obj).__name__
    )


def _target_name(obj, default: str) -> str:
    """The student's object's own name, or ``default`` for a lambda."""
    name = _name(obj)
    return default if not name or name[0] == "<" or name == "function" else name


def _describe(error: BaseException, limit: int = 200) -> str:
    """``"TypeError: <the first line of its message>"``, cut at ``limit``."""
    first = (str(error).strip().splitlines() or [""])[0]
    if len(first) > limit:
        first = first[:limit] + " ..."
    return f"{type(error).__name__}: {first}"


def _call(fn, *args, what: str | None = None, **kwargs):
    """Call the student's code; a left-over TODO or an error becomes one line."""
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
            f"`{what}` raised {_describe(error, 300)} (the lines below show where, "
            "in your code)",
            student_error=error,
        ) from None


def _reword(error: CheckFailed, before: str, after: str = "") -> CheckFailed:
    """``error``'s hint between ``before`` and ``after``, keeping its student error."""
    message = before + error.message + after
    return CheckFailed(message, student_error=error.student_error)


def _numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        from keras import ops

        return np.asarray(ops.convert_to_numpy(value))
    except Exception:  # plain Python numbers, lists
        return np.asarray(value)


def _matching(value, candidates: dict, **tolerance):
    """The first key of ``candidates`` whose value (if not None) ``value`` is close
    to, or None."""
    for key, expected in candidates.items():
        if expected is not None and np.allclose(value, expected, **tolerance):
            return key
    return None


def _passed(message: str) -> None:
    print(f"✅ {message}")


class _StandIn:
    """A stand-in network: calling it (or its ``predict``) calls ``fn``."""

    def __init__(self, fn, in_shape=None, out_shape=None):
        self.fn = fn
        self.inputs = [types.SimpleNamespace(shape=in_shape)]
        self.outputs = [types.SimpleNamespace(shape=out_shape)]

    def __call__(self, x, training=False, **kwargs):
        return self.fn(x)

    predict = __call__
