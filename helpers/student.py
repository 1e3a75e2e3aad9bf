"""The student's parts: ``%%export`` cells saved as a module, assembled and checked.

A cell starting ``%%export sampling`` runs as usual and, if it ran without error,
saves its source as ``<workdir>/student/sampling.py`` (d2l's ``#@save``); 04_train
assembles what 01-03 exported. ``setup_lab()`` registers the magic.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import io
import linecache
import os
import re
import sys
import tempfile
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import checks
from helpers.config import VAEConfig, preset
from helpers.errors import LabError
from helpers.files import atomic_write_text
from helpers.runs import SOLUTION_FILE as GIVEN_SOLUTION_FILE
from helpers.runs import solution_spec


# ---------------------------------------------------------------------- the parts
@dataclass(frozen=True)
class Part:
    """One thing students write: its notebook, the names it defines, its self-check.

    ``check(namespace, config)`` raises ``CheckFailed``; ``trains``: 04 assembles the
    part before it trains (04's build_my_vae and 05's parts join once exported).
    """

    notebook: str
    names: tuple[str, ...]
    check: object
    trains: bool = True


def _one(notebook: str, name: str, check, trains=True, config=False, **kwargs):
    """A Part that defines ``name`` alone; ``check(it, [config=config,] **kwargs)``."""

    def run(m, c):
        check(m[name], **({"config": c} if config else {}), **kwargs)

    return Part(notebook, (name,), run, trains)


def _check_losses(m, config):
    checks.check_reconstruction_loss(m["reconstruction_loss"])
    checks.check_kl(m["kl_divergence"])
    # partial, not a lambda: the check then sees the student's own function
    checks.check_total_loss(
        functools.partial(m["vae_loss"], kind="mse", value_range=(0.0, 1.0))
    )


def _check_vae_model(m, config):
    checks.check_vae_model(m["VAE"])
    checks.check_train_step(m["VAE"])
    checks.check_precision_step(m["VAE"], "mixed_float16")


def _check_callbacks(m, config):
    fixed_z = np.random.default_rng(0).standard_normal((8, config.latent_dim))
    fixed_z = fixed_z.astype("float32")
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        make = functools.partial(m["make_callbacks"], config, run, fixed_z)
        checks.check_callbacks(make, run, config=config, fixed_z=fixed_z)


def _check_build_my_vae(m, config):
    checks.check_built_vae(m["build_my_vae"], types.SimpleNamespace(**m), config)


def _check_sample_faces(m, config):
    checks.check_prior_samples(m["sample_faces"], _tiny_vae())


def _tiny_vae(latent_dim: int = 4, size: int = 8):
    """A stand-in trained model for check_prior_samples: a small random decoder."""
    import keras

    decoder = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(size * size * 3, activation="sigmoid"),
            keras.layers.Reshape((size, size, 3)),
        ],
        name="decoder",
    )
    return types.SimpleNamespace(decoder=decoder, value_range=(0.0, 1.0))


# Every part, once, in the order the assembled module needs them. Adding a part:
# an entry here, its `%%export <part>` cell and self-check cell in the solutions
# (README, "How to change an exercise").
PART_REGISTRY: dict[str, Part] = {
    "preprocess": _one(
        "01_setup", "crop_resize_normalize", checks.check_preprocess, config=True
    ),
    "pipeline": _one("01_setup", "make_pipeline", checks.check_pipeline, config=True),
    "encoder": _one("02_model", "build_encoder", checks.check_encoder, config=True),
    "sampling": _one("02_model", "Sampling", checks.check_sampling, draws=2000),
    "decoder": _one("02_model", "build_decoder", checks.check_decoder, config=True),
    "losses": Part(
        "03_loss", ("reconstruction_loss", "kl_divergence", "vae_loss"), _check_losses
    ),
    "vae_model": Part("03_loss", ("VAE",), _check_vae_model),
    "callbacks": Part("04_train", ("make_callbacks",), _check_callbacks),
    "build_my_vae": Part("04_train", ("build_my_vae",), _check_build_my_vae, False),
    "sample_faces": Part("05_generate", ("sample_faces",), _check_sample_faces, False),
    "interpolate_faces": _one(
        "05_generate", "interpolate_faces", checks.check_interpolation, trains=False
    ),
    "latent_grid": _one(
        "05_generate", "latent_grid", checks.check_latent_grid, trains=False
    ),
}
# The parts whose code a part's self-check runs: when one of those fails, the
# part's own failure is that one's, and the table names the first broken part only.
USES: dict[str, tuple[str, ...]] = {
    "vae_model": ("sampling", "losses"),
    "build_my_vae": ("encoder", "sampling", "decoder", "losses", "vae_model"),
}
# part -> its notebook (module order = this order)
PARTS: dict[str, str] = {name: part.notebook for name, part in PART_REGISTRY.items()}
# The parts a model is trained from; 05's generation parts join the assembled
# module once they are exported (06 draws its figures with them).
TRAINING_PARTS: tuple[str, ...] = tuple(
    name for name, part in PART_REGISTRY.items() if part.trains
)
PART_NAMES: dict[str, tuple[str, ...]] = {
    name: part.names for name, part in PART_REGISTRY.items()
}
STUDENT_DIRNAME = "student"
_active_workdir: Path | None = None


def student_dir(workdir: str | os.PathLike) -> Path:
    """Return the folder that holds the exported parts: ``<workdir>/student``."""
    return Path(workdir) / STUDENT_DIRNAME


def export_source(part: str, source: str, workdir: str | os.PathLike) -> Path:
    """Save one part's source as ``<workdir>/student/<part>.py`` (atomically)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}: choose one of {', '.join(PARTS)}")
    folder = student_dir(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    header = f"# Exported from {PARTS[part]}.ipynb by %%export {part}; do not edit.\n"
    return atomic_write_text(folder / f"{part}.py", header + source.rstrip() + "\n")


def set_workdir(workdir: str | os.PathLike) -> None:
    """Remember where ``%%export`` writes (``setup_lab`` calls this)."""
    global _active_workdir
    _active_workdir = Path(workdir)


def _export_magic(line: str, cell: str):
    from IPython import get_ipython

    part = line.strip()
    if part not in PARTS:
        raise ValueError(
            f"%%export needs one part name: one of {', '.join(PARTS)} (got {line!r})"
        )
    shell = get_ipython()
    # Run the cell in the notebook's namespace; an error propagates (the cell fails
    # and nothing is exported). Caching the source keeps tracebacks readable.
    code = shell.transform_cell(cell)
    filename = shell.compile.cache(code)
    exec(shell.compile(code, filename, "exec"), shell.user_ns)
    if _active_workdir is None:
        print("(not exported: run the set-up cell, setup_lab(), first)")
    else:
        print(f"exported {part!r} to {export_source(part, cell, _active_workdir)}")


def register_magic() -> bool:
    """Register ``%%export`` in the running IPython; False outside IPython."""
    from helpers.environment import ipython_shell

    shell = ipython_shell()
    if shell is None:
        return False
    shell.register_magic_function(_export_magic, magic_kind="cell", magic_name="export")
    return True


# -------------------------------------------------------------- the assembled module
# Every assembled module starts with these imports, so a part may use them unimported.
HEADER = '''"""Your VAE, assembled by helpers.student from the parts you exported.

Generated from <workdir>/student/*.py: do not edit. Edit the notebook cell that
exports a part, run it again, then run the notebook's load_student_parts cell.
"""

import os, math
import numpy as np
import keras
from keras import layers, ops
import tensorflow as tf
from helpers.config import VAEConfig
'''
MODULE_NAME = "student_vae"
MODULE_FILE = "student_vae.py"

YOURS, LABS, MISSING = "yours", "LAB'S", "missing"


@dataclass
class PartStatus:
    """Where one part came from and what its self-check said."""

    part: str
    origin: str  # YOURS, LABS or MISSING
    passed: bool | None = None  # None: not checked (the lab's, missing, or check=False)
    message: str = ""


@dataclass
class StudentParts:
    """The assembled module and, per part, its origin and self-check result.

    Attribute access reads the module: ``parts.build_encoder(config)``.
    """

    module: types.ModuleType
    path: Path
    status: dict[str, PartStatus] = field(default_factory=dict)

    def __getattr__(self, name):
        if name in ("module", "path", "status"):
            raise AttributeError(name)
        try:
            return getattr(self.module, name)
        except AttributeError:
            part = next((p for p, names in PART_NAMES.items() if name in names), None)
            where = (
                f" (part {part!r}: its `%%export {part}` cell in {PARTS[part]}, or "
                f"USE_LAB_PART[{part!r}] = True)"
                if part
                else ""
            )
            raise AttributeError(
                f"your assembled module has no {name!r}: export the part that "
                f"defines it{where} and run load_student_parts again"
            ) from None

    @property
    def failed(self) -> list[str]:
        """Parts whose self-check failed (they are still yours, and still used)."""
        return [s.part for s in self.status.values() if s.passed is False]

    @property
    def lab_parts(self) -> list[str]:
        """Parts replaced by the lab's reference through the switch."""
        return [s.part for s in self.status.values() if s.origin == LABS]

    def origins(self) -> dict[str, str]:
        """Part -> "student" or "lab" (what run directories record)."""
        return {
            s.part: "lab" if s.origin == LABS else "student"
            for s in self.status.values()
            if s.origin != MISSING
        }

    def table(self) -> str:
        """One line per part: notebook, whose code, self-check."""
        lines = [f"{'part':<17} {'notebook':<12} {'code':<8} self-check"]
        for s in self.status.values():
            if s.origin == LABS:
                check = f"(the lab's reference part: USE_LAB_PART[{s.part!r}] is on)"
            elif s.origin == MISSING:
                check = f"❌ {s.message}"
            elif s.passed is None:
                check = f"({s.message})" if s.message else "(not checked)"
            else:
                check = "✅ passed" if s.passed else f"❌ failed: {s.message}"
            lines.append(f"{s.part:<17} {PARTS[s.part]:<12} {s.origin:<8} {check}")
        if "preprocess" in self.status:
            lines.append(
                "(preprocess is checked, not trained through: the faces that train "
                "were cut and resized once by the lab's cache (helpers.cache.prepare); "
                "your pipeline streams them)"
            )
        return "\n".join(lines)


def _switch(use_lab_part) -> set[str]:
    """Return the parts the switch replaces: a dict {part: bool} or part names."""
    if isinstance(use_lab_part, str):
        use_lab_part = (use_lab_part,)
    if not isinstance(use_lab_part, dict):
        use_lab_part = dict.fromkeys(use_lab_part or (), True)
    unknown = set(use_lab_part) - set(PARTS)
    if unknown:
        raise LabError(
            f"USE_LAB_PART names unknown part(s) {', '.join(sorted(unknown))}: the "
            f"parts are {', '.join(PARTS)}"
        )
    return {part for part, on in use_lab_part.items() if on}


# ------------------------------------------------------------ the lab's reference parts
# The solutions' %%export cells, generated into one module (d2l's ``#@save``): the
# only reference implementation of every part. Its classes are registered under
# SOLUTION_PACKAGE, so a student's own classes (package "student") keep their names.
_REFERENCE = solution_spec()  # a release's given parts, else a checkout's vaelab
SOLUTION_MODULE = _REFERENCE.name if _REFERENCE else "helpers.solution"
SOLUTION_FILE = Path(_REFERENCE.origin) if _REFERENCE else GIVEN_SOLUTION_FILE
STUDENT_PACKAGE, SOLUTION_PACKAGE = 'package="student"', 'package="lab"'
_SECTION = re.compile(r"^# =+ (?P<part>[a-z_]+): from (?P<notebook>\S+)$", re.M)


def solution_sources(path: Path | None = None) -> dict[str, str]:
    """Return {part: source} of the generated reference module, as students write it."""
    path = path or SOLUTION_FILE
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8")
    marks = list(_SECTION.finditer(text))
    found = {}
    for mark, after in zip(marks, marks[1:] + [None]):
        body = text[mark.end() : after.start() if after else len(text)]
        body = body.strip("\n").replace(SOLUTION_PACKAGE, STUDENT_PACKAGE)
        found[mark["part"]] = body + "\n"
    return found


def solution_module(*parts: str):
    """Import and return the lab's reference module (``SOLUTION_MODULE``); LabError
    when this copy of the lab lacks it or one of ``parts`` (the student release)."""
    if not SOLUTION_FILE.is_file():
        raise LabError(
            "the lab's reference parts are not shipped with this copy of the lab "
            "(the student release leaves the answers out): train from your own parts "
            "(04_train), or ask your instructor for the published ones"
        )
    module = importlib.import_module(SOLUTION_MODULE)
    missing = [p for p in parts if any(not hasattr(module, n) for n in PART_NAMES[p])]
    if missing:
        given = ", ".join(solution_sources()) or "none"
        raise LabError(
            f"the lab's {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            f"not shipped with this copy of the lab (the instructor gave out {given}): "
            "pass your own (e.g. sample_faces=parts.sample_faces)"
        )
    return module


def reference_source(part: str) -> str:
    """Return the solution's source of ``part``; LabError if this copy lacks it."""
    source = solution_sources().get(part)
    if source is None:
        raise LabError(
            f"USE_LAB_PART[{part!r}]: the lab's {part!r} is not shipped with this "
            "copy of the lab (the student release leaves the answers out unless the "
            "instructor gives them). Fix your own part instead: notebook "
            f"{PARTS[part]}, re-run its `%%export {part}` cell once its self-check "
            f"passes, then set USE_LAB_PART[{part!r}] = False."
        )
    return source


def assemble_source(workdir, use_lab_part=None, parts=None) -> tuple[str, dict]:
    """Return the module's text (HEADER, then each part) and what went into it.

    ``parts`` defaults to the training parts, plus each of 05's generation parts
    that is exported or switched to the lab's. The dict maps each part, in PARTS
    order, to (YOURS | LABS | MISSING, its source, the file name it runs under).
    """
    chosen = _switch(use_lab_part)
    folder = student_dir(workdir)
    if parts is None:
        parts = [
            p
            for p in PARTS
            if p in TRAINING_PARTS or p in chosen or (folder / f"{p}.py").exists()
        ]
    chunks, found = [HEADER], {}
    for part in (p for p in PARTS if p in parts):
        path = folder / f"{part}.py"
        if part in chosen:
            found[part] = (LABS, reference_source(part), f"<lab reference: {part}>")
            banner = f"the LAB'S reference part (USE_LAB_PART[{part!r}] = True)"
        elif path.exists():
            found[part] = (YOURS, path.read_text(), str(path))
            banner = f"your part, from {PARTS[part]}.ipynb"
        else:
            found[part] = (MISSING, "", "")
            continue
        chunks.append(f"\n# {'=' * 20} {part}: {banner}\n{found[part][1]}")
    return "".join(chunks), found


def _exec_part(module, part: str, source: str, filename: str) -> str | None:
    """Run one part's code in the module; return an error line, or None."""
    lines = source.splitlines(keepends=True)
    linecache.cache[filename] = (len(source), None, lines, filename)
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except NotImplementedError:
        return "its code still raises NotImplementedError (the TODO is not done)"
    except Exception as error:  # the student's code: report it, by part
        line = ""
        tb = error.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == filename:
                line = f" (line {tb.tb_lineno} of {filename})"
            tb = tb.tb_next
        return f"running it raised {type(error).__name__}: {error}{line}"
    absent = [n for n in PART_NAMES[part] if n not in module.__dict__]
    return f"it does not define {', '.join(absent)}" if absent else None


def load_student_parts(
    workdir,
    use_lab_part=None,
    config: VAEConfig | None = None,
    check: bool = True,
    parts=None,
    verbose: bool = True,
) -> StudentParts:
    """Assemble the exported parts into the module ``student_vae`` and check each.

    Writes ``<workdir>/student/student_vae.py``, runs it part by part (an error is
    reported by part), registers it as ``sys.modules["student_vae"]`` (so its Keras
    classes reload from ``.keras`` files), runs your parts' self-checks quietly
    (``check``) and prints who wrote what (``verbose``).

    Args:
        use_lab_part: the switch, ``{"sampling": True, ...}`` or part names: those
            parts use the lab's reference, and the table says so.
        config: the VAEConfig the checks build models for (default: smoke preset).
        parts: only these parts (default: see ``assemble_source``).

    Raises LabError when a part is missing or does not run, or the switch asks for
    a reference part this copy of the lab does not include.
    """
    config = config or preset("smoke")
    source, found = assemble_source(workdir, use_lab_part, parts)
    folder = student_dir(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    path = atomic_write_text(folder / MODULE_FILE, source)
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(path)
    exec(compile(HEADER, str(path), "exec"), module.__dict__)
    status, broken = {}, []
    for part, (origin, body, filename) in found.items():
        if origin == MISSING:
            error = (
                f"not exported: run the `%%export {part}` cell in {PARTS[part]}"
                f" (or switch on USE_LAB_PART[{part!r}])"
            )
        else:
            error = _exec_part(module, part, body, filename)
        status[part] = PartStatus(part, origin, False if error else None, error or "")
        if error:
            broken.append(part)
    sys.modules[MODULE_NAME] = module
    result = StudentParts(module, path, status)
    if check:
        _check_parts(status, module, config)
    if verbose:
        print(result.table())
        _advise(result)
    if broken:
        raise LabError(
            f"cannot assemble your model: {', '.join(broken)} "
            f"{'is' if len(broken) == 1 else 'are'} missing or does not run (see the "
            "table above). Fix and re-export it, or set USE_LAB_PART[part] = True to "
            "use the lab's reference part for now."
        )
    return result


def _check_parts(status: dict, module, config: VAEConfig) -> None:
    """Run the self-check of each of the student's parts; a cascade names its start."""
    for part, item in status.items():
        if item.origin == YOURS and item.passed is None:
            check = PART_REGISTRY[part].check
            item.passed, item.message = _quiet(lambda: check(module.__dict__, config))
            uses = [d for d in USES.get(part, ()) if d in status]
            broken = [d for d in uses if status[d].passed is False]
            if item.passed is False and broken:
                item.passed = None
                item.message = (
                    f"not judged: it uses your {', '.join(broken)}, whose check "
                    "fails; fix that first"
                )


def _advise(result: StudentParts) -> None:
    mine = [s.part for s in result.status.values() if s.origin == YOURS]
    print(f"\nYour code: {', '.join(mine) or 'none'}")
    if result.lab_parts:
        print(f"The lab's reference code: {', '.join(result.lab_parts)}")
        print(
            "  (each is the solution's code, run in your module: the lab's VAE uses "
            "your Sampling and losses where those are yours)"
        )
    if result.failed:
        print(
            f"Failing self-check: {', '.join(result.failed)}. Training uses YOUR code "
            "as it is; to train with the lab's reference part instead, set "
            + " and ".join(f"USE_LAB_PART[{p!r}] = True" for p in result.failed)
            + " and run this cell again."
        )


def _quiet(fn) -> tuple[bool, str]:
    """Run one self-check with its printing hidden: (passed, short message)."""
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            fn()
        except checks.CheckFailed as error:
            message = str(error)
        except NotImplementedError:
            return False, "still raises NotImplementedError (the TODO is not done)"
        except Exception as error:  # the student's code crashed inside a check
            message = f"{type(error).__name__}: {error}"
        else:
            return True, ""
    message = " ".join(message.split())
    return False, message if len(message) <= 240 else message[:237] + "..."


# ------------------------------------------------------------- building and training
def build_student_vae(parts, config: VAEConfig):
    """Build the compiled VAE with the parts' own ``build_my_vae`` (04).

    ``parts``: a ``StudentParts`` or the lab's reference module; LabError when it
    holds no ``build_my_vae`` yet.
    """
    build = getattr(getattr(parts, "module", parts), "build_my_vae", None)
    if build is None:
        raise LabError(
            "the parts hold no build_my_vae: run its `%%export build_my_vae` cell in "
            "04_train, then load the parts again (or pass build=...)"
        )
    return build(parts, config)


def import_student_module(workdir, verbose: bool = True):
    """Import ``<workdir>/student/student_vae.py`` as 04 assembled it (or None).

    05 and 06 call this before loading ``best.keras``, so the Keras classes your
    parts registered (your VAE, your Sampling) exist when the file is read.
    """
    path = student_dir(workdir) / MODULE_FILE
    if not path.exists():
        if verbose:
            print(f"(no assembled module at {path}: 04_train has not run here)")
        return None
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    spec.loader.exec_module(module)
    if verbose:
        print(f"imported your assembled model code from {path}")
    return module
