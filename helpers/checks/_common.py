"""What the self-checks share: the failure type (in a notebook one red line, plus
the student's own lines if they raised) and how to call student code."""

import contextlib
import functools
import inspect
import os
import traceback
import types

import numpy as np

PIXELS_64 = 64 * 64 * 3  # 12,288 values in one 64x64 RGB image
_HELPERS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAB_PACKAGES = ("helpers", "vaelab")  # the students' package, a checkout's reference
# What a part may use of them: its config, the plotting helper the callbacks draw
# with, and the reference parts (a release's given ones, a checkout's all).
ALLOWED_LAB_MODULES = ("helpers.config", "helpers.plots")
ALLOWED_LAB_MODULES += ("helpers.solution", "vaelab.solution")
_LIBRARIES = {"keras", "tensorflow", "numpy", "jax", "builtins", "torch", "pathlib"}


class CheckFailed(AssertionError):
    """A self-check found a mistake: ``message`` is the hint, ``check`` and
    ``target`` name the check and the student's code, ``student_error`` is what
    the student's code raised (if that is why)."""

    def __init__(self, message, *, check=None, target=None, student_error=None):
        super().__init__(message)
        self.message, self.check, self.target = str(message), check, target
        self.student_error = student_error

    def __str__(self) -> str:
        if self.check is None:
            return self.message
        target = f" for `{self.target}`" if self.target else ""
        return f"{self.check} failed{target}: {self.message}"

    def _render_traceback_(self) -> list[str]:
        error = self.student_error
        frames = traceback.extract_tb(getattr(error, "__traceback__", None))
        frames = [f for f in frames if _HELPERS_DIR not in os.path.abspath(f.filename)]
        mine = [f for f in frames if "-packages" not in f.filename] or frames[-3:]
        lines = [f"\x1b[31m❌ {self}\x1b[0m"]
        if frames:  # the student's own lines, else the library's last ones
            lines += ["Where your code raised it:", *traceback.format_list(mine[-6:])]
        return [line.rstrip("\n") for line in lines]


def self_check(default_target: str):
    """Decorate a public check: its failures name the check and the student's code
    (``default_target`` when it has no useful name of its own, e.g. a lambda)."""

    def decorate(check):
        @functools.wraps(check)
        def wrapper(obj, *args, **kwargs):
            try:
                if borrowed := lab_calls(obj):
                    raise CheckFailed(
                        f"it calls the lab's own {', '.join(borrowed)}: write this "
                        "part yourself (the lab's code around it is scaffolding and "
                        "the checks' reference, not an answer to call)"
                    )
                return check(obj, *args, **kwargs)
            except CheckFailed as error:
                if error.check is not None:  # already named by an inner check
                    raise
                target = _target_name(obj, default_target)
                raise CheckFailed(
                    error.message,
                    check=check.__name__,
                    target=target,
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
    allowed = f"{module}.".startswith(tuple(f"{m}." for m in ALLOWED_LAB_MODULES))
    return module.split(".")[0] in LAB_PACKAGES and not allowed


def _functions_of(obj):
    """The Python functions that make up a student's function, class or object."""
    if isinstance(obj, functools.partial):
        yield from _functions_of(obj.func)
    elif inspect.isfunction(obj) or inspect.ismethod(obj):
        yield getattr(obj, "__func__", obj)
    elif inspect.isclass(obj):
        for value in vars(obj).values():
            value = getattr(value, "__func__", value)  # a staticmethod, classmethod
            parts = (value.fget, value.fset) if isinstance(value, property) else [value]
            yield from filter(inspect.isfunction, parts)
    elif type(obj).__module__.partition(".")[0] not in _LIBRARIES:  # an object
        yield from _functions_of(type(obj))


def lab_calls(obj) -> list[str]:
    """What of the lab's own code (outside ``ALLOWED_LAB_MODULES``) ``obj`` (a
    function, class, object or partial) is, derives from, or names in its functions
    (a global, a closure variable, an import inside them)."""
    if itself := _lab_object(obj):
        return [itself]
    found = set(map(_lab_object, obj.__mro__[1:])) if inspect.isclass(obj) else set()
    for function in _functions_of(obj):
        names = function.__globals__
        for cell in function.__closure__ or ():
            with contextlib.suppress(ValueError):  # an empty closure cell
                found.add(_lab_object(cell.cell_contents))
        codes = [function.__code__]
        for code in codes:  # the function's, then those nested in it (grows)
            codes += [c for c in code.co_consts if isinstance(c, types.CodeType)]
            for name in code.co_names:
                if _is_lab_module(name.partition(" ")[0]):  # import helpers.x
                    found.add(name)
                elif name in names:
                    found.add(_lab_object(names[name]))
    return sorted(found - {None})


# ------------------------------------------------------------------------- helpers
def _name(obj) -> str:
    obj = obj.func if isinstance(obj, functools.partial) else obj
    name = getattr(obj, "__name__", None) or getattr(obj, "name", None)
    return name or type(obj).__name__


def _target_name(obj, default: str) -> str:
    """The student's object's own name, or ``default`` for a lambda."""
    name = _name(obj)
    return default if not name or name[0] == "<" or name == "function" else name


def _describe(error: BaseException, limit: int = 200) -> str:
    """``"TypeError: <the first line of its message>"``, cut at ``limit``."""
    first = (str(error).strip().splitlines() or [""])[0]
    first = first[:limit] + " ..." * (len(first) > limit)
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


@contextlib.contextmanager
def _reworded(before: str, after: str = ""):
    """Put a CheckFailed's hint between ``before`` and ``after``."""
    try:
        yield
    except CheckFailed as error:
        message = before + error.message + after
        raise CheckFailed(message, student_error=error.student_error) from None


def _numpy(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    from keras import ops

    return np.asarray(ops.convert_to_numpy(value))


def _matching(value, candidates: dict, **tolerance):
    """The first key of ``candidates`` whose value (not None) ``value`` is close to."""
    for key, expected in candidates.items():
        if expected is not None and np.allclose(value, expected, **tolerance):
            return key
    return None


def _passed(message: str) -> None:
    print(f"✅ {message}")


def _stand_in(fn, in_shape=None, out_shape=None):
    """A stand-in network: calling it (or its ``predict``) calls ``fn``."""

    def network(x, training=False, **kwargs):
        return fn(x)

    network.predict, network.inputs = network, [types.SimpleNamespace(shape=in_shape)]
    network.outputs = [types.SimpleNamespace(shape=out_shape)]
    return network
