"""The student's parts: a cell starting ``%%export sampling`` runs as usual and, if it
ran, saves its source as ``<workdir>/student/sampling.py``; 04_train assembles them."""

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
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from helpers import checks
from helpers.config import VAEConfig, preset
from helpers.environment import ipython_shell
from helpers.errors import LabError
from helpers.files import atomic_write_text
from helpers.runs import SOLUTION_FILE as GIVEN_SOLUTION_FILE
from helpers.runs import solution_spec


@dataclass(frozen=True)
class Part:
    """One thing students write; ``check(namespace, config)`` raises CheckFailed."""

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
    fixed_z = np.random.default_rng(0).standard_normal((8, config.latent_dim), "f4")
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

    dense = keras.layers.Dense(size * size * 3, activation="sigmoid")
    reshape = keras.layers.Reshape((size, size, 3))
    decoder = keras.Sequential(
        [keras.Input((latent_dim,)), dense, reshape], name="decoder"
    )
    return types.SimpleNamespace(decoder=decoder, value_range=(0.0, 1.0))


# Every part, in module order. A new part: an entry here, its `%%export` and
# self-check cells in the solutions (README, "How to change an exercise").
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
    "latent_grid": _one("05_generate", "latent_grid", checks.check_latent_grid, False),
}
# The parts a part's self-check runs: if one fails, the table blames that one only.
USES = {
    "vae_model": ("sampling", "losses"),
    "build_my_vae": ("encoder", "sampling", "decoder", "losses", "vae_model"),
}
PARTS = {name: part.notebook for name, part in PART_REGISTRY.items()}
# What a model trains from; 05's parts join the module once exported (06 uses them).
TRAINING_PARTS = tuple(name for name, part in PART_REGISTRY.items() if part.trains)
PART_NAMES = {name: part.names for name, part in PART_REGISTRY.items()}
STUDENT_DIRNAME = "student"
_active_workdir: Path | None = None


def export_source(part: str, source: str, workdir: str | os.PathLike) -> Path:
    """Save one part's source as ``<workdir>/student/<part>.py`` (atomically)."""
    header = f"# Exported from {PARTS[part]}.ipynb by %%export {part}; do not edit.\n"
    path = Path(workdir) / STUDENT_DIRNAME / f"{part}.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, header + source.rstrip() + "\n")


def _export_magic(line: str, cell: str):
    part = line.strip()
    if part not in PARTS:
        raise ValueError(
            f"%%export needs one part name: one of {', '.join(PARTS)} (got {line!r})"
        )
    shell = ipython_shell()
    # Run in the notebook's namespace: an error fails the cell and exports nothing.
    code = shell.transform_cell(cell)
    filename = shell.compile.cache(code)  # cached: tracebacks show the source
    exec(shell.compile(code, filename, "exec"), shell.user_ns)
    if _active_workdir is None:
        print("(not exported: run the set-up cell, setup_lab(), first)")
    else:
        print(f"exported {part!r} to {export_source(part, cell, _active_workdir)}")


def register_magic(workdir: str | os.PathLike) -> bool:
    """Make ``%%export`` save under ``workdir``, registered in IPython (else False)."""
    global _active_workdir
    _active_workdir = Path(workdir)
    shell = ipython_shell()
    if shell is not None:
        shell.register_magic_function(_export_magic, "cell", "export")
    return shell is not None


# Every assembled module starts with these imports, so a part may use them unimported.
HEADER = '''"""Your VAE, assembled by helpers.student from <workdir>/student/*.py: do
not edit. Edit and run a part's `%%export` cell, then the load_student_parts cell."""

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
    passed: bool | None = None  # None: not checked (the lab's, missing, check=False)
    message: str = ""


@dataclass
class StudentParts:
    """The assembled module (``parts.build_encoder`` reads it), each part's status."""

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
            where = part and (
                f" (part {part!r}: its `%%export {part}` cell in {PARTS[part]}, or "
                f"USE_LAB_PART[{part!r}] = True)"
            )
            raise AttributeError(
                f"your assembled module has no {name!r}: export the part that "
                f"defines it{where or ''} and run load_student_parts again"
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
                check = f"({s.message or 'not checked'})"
            else:
                check = "✅ passed" if s.passed else f"❌ failed: {s.message}"
            lines.append(f"{s.part:<17} {PARTS[s.part]:<12} {s.origin:<8} {check}")
        if "preprocess" in self.status:
            lines.append(
                "(preprocess is checked, not trained through: the lab's cache cut and "
                "resized the faces once; your pipeline streams them)"
            )
        return "\n".join(lines)


def _switch(use_lab_part) -> set[str]:
    """Return the parts the switch replaces: a dict {part: bool} or part names."""
    if not isinstance(use_lab_part, dict):
        names = [use_lab_part] if isinstance(use_lab_part, str) else use_lab_part or ()
        use_lab_part = dict.fromkeys(names, True)
    if unknown := set(use_lab_part) - set(PARTS):
        raise LabError(
            f"USE_LAB_PART names unknown part(s) {', '.join(sorted(unknown))}: the "
            f"parts are {', '.join(PARTS)}"
        )
    return {part for part, on in use_lab_part.items() if on}


# The lab's reference parts: the solutions' %%export cells generated into one module,
# its classes registered under package "lab" (a student's keep "student").
_REFERENCE = solution_spec()  # a release's given parts, else a checkout's vaelab
SOLUTION_MODULE = _REFERENCE.name if _REFERENCE else "helpers.solution"
SOLUTION_FILE = Path(_REFERENCE.origin) if _REFERENCE else GIVEN_SOLUTION_FILE
STUDENT_PACKAGE, SOLUTION_PACKAGE = 'package="student"', 'package="lab"'
_SECTION = re.compile(r"^# =+ (?P<part>[a-z_]+): from (?P<notebook>\S+)$", re.M)


def solution_sources(path: Path | None = None) -> dict[str, str]:
    """Return {part: source} of the generated reference module, as students write it."""
    path = path or SOLUTION_FILE
    pieces = _SECTION.split(path.read_text(encoding="utf-8") if path.is_file() else "")
    return {
        part: body.strip("\n").replace(SOLUTION_PACKAGE, STUDENT_PACKAGE) + "\n"
        for part, body in zip(pieces[1::3], pieces[3::3])
    }


def solution_module(*parts: str):
    """Import the lab's reference module; LabError if this copy lacks it or a part."""
    if not SOLUTION_FILE.is_file():
        raise LabError(
            "the lab's reference parts are not shipped with this copy of the lab "
            "(the student release leaves the answers out): train from your own parts "
            "(04_train), or ask your instructor for the published ones"
        )
    module = importlib.import_module(SOLUTION_MODULE)
    missing = [p for p in parts if any(not hasattr(module, n) for n in PART_NAMES[p])]
    if missing:
        raise LabError(
            f"the lab's {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            "not shipped with this copy of the lab (the instructor gave out "
            f"{', '.join(solution_sources()) or 'none'}): pass your own (e.g. "
            "sample_faces=parts.sample_faces)"
        )
    return module


def reference_source(part: str) -> str:
    """Return the solution's source of ``part``; LabError if this copy lacks it."""
    source = solution_sources().get(part)
    if source is None:
        raise LabError(
            f"USE_LAB_PART[{part!r}]: the lab's {part!r} is not shipped with this "
            "copy of the lab (unless the instructor gives it). Fix your own in "
            f"notebook {PARTS[part]}, re-run `%%export {part}` once its self-check "
            f"passes, then set USE_LAB_PART[{part!r}] = False."
        )
    return source


def assemble_source(workdir, use_lab_part=None, parts=None) -> tuple[str, dict]:
    """Return the module's text and {part: (origin, source, its file name)} in PARTS
    order; ``parts``: the training parts and any other exported or switched."""
    chosen, folder = _switch(use_lab_part), Path(workdir) / STUDENT_DIRNAME
    if parts is None:
        parts = {*TRAINING_PARTS, *chosen, *(f.stem for f in folder.glob("*.py"))}
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


def _failure(run, filename: str = "") -> str | None:
    """Run the student's code: None, or what went wrong in a line (and where in it)."""
    try:
        run()
    except NotImplementedError:
        return "its code still raises NotImplementedError (the TODO is not done)"
    except Exception as error:  # a CheckFailed, or the student's code crashed
        tb = traceback.extract_tb(error.__traceback__)
        at = [f" (line {f.lineno} of {filename})" for f in tb if f.filename == filename]
        if not isinstance(error, checks.CheckFailed):
            error = f"{type(error).__name__}: {error}"
        text = " ".join(str(error).split())
        return (text if len(text) <= 240 else text[:237] + "...") + "".join(at[-1:])
    return None


def load_student_parts(
    workdir,
    use_lab_part=None,
    config: VAEConfig | None = None,
    check: bool = True,
    parts=None,
    verbose: bool = True,
) -> StudentParts:
    """Assemble the exported parts into ``<workdir>/student/student_vae.py``, run it as
    ``sys.modules["student_vae"]`` (``.keras`` files reload its classes), self-check
    each part quietly for ``config`` (default: smoke), print who wrote what; LabError if
    a part is missing or fails to run. ``use_lab_part``: {part: True} or part names."""
    source, found = assemble_source(workdir, use_lab_part, parts)
    (Path(workdir) / STUDENT_DIRNAME).mkdir(parents=True, exist_ok=True)
    path = atomic_write_text(Path(workdir) / STUDENT_DIRNAME / MODULE_FILE, source)
    module = types.ModuleType(MODULE_NAME)
    module.__file__ = str(path)
    exec(compile(HEADER, str(path), "exec"), vars(module))
    status = {}
    for part, (origin, body, name) in found.items():
        error = (
            f"not exported: run the `%%export {part}` cell in {PARTS[part]}"
            f" (or switch on USE_LAB_PART[{part!r}])"
        )
        if origin != MISSING:
            linecache.cache[name] = (len(body), None, body.splitlines(True), name)
            error = _failure(
                lambda: exec(compile(body, name, "exec"), vars(module)), name
            )
            absent = [n for n in PART_NAMES[part] if n not in vars(module)]
            error = error or (absent and f"it does not define {', '.join(absent)}")
        status[part] = PartStatus(part, origin, False if error else None, error or "")
    broken = [part for part, s in status.items() if s.passed is False]
    sys.modules[MODULE_NAME] = module
    result = StudentParts(module, path, status)
    if check:
        _check_parts(status, module, config or preset("smoke"))
    if verbose:
        mine = [s.part for s in status.values() if s.origin == YOURS]
        print(f"{result.table()}\n\nYour code: {', '.join(mine) or 'none'}")
        if result.lab_parts:
            print(
                f"The lab's reference code: {', '.join(result.lab_parts)}\n  (each is "
                "the solution's code, run in your module: the lab's VAE uses your "
                "Sampling and losses where those are yours)"
            )
        if result.failed:
            print(
                f"Failing self-check: {', '.join(result.failed)}. Training uses YOUR "
                "code as it is; to train with the lab's reference part instead, set "
                + " and ".join(f"USE_LAB_PART[{p!r}] = True" for p in result.failed)
                + " and run this cell again."
            )
    if broken:
        raise LabError(
            f"cannot assemble your model: {', '.join(broken)} "
            f"{'is' if len(broken) == 1 else 'are'} missing or does not run (see the "
            "table): fix and re-export it, or use the lab's: USE_LAB_PART[part] = True."
        )
    return result


def _check_parts(status: dict, module, config: VAEConfig) -> None:
    """Self-check the student's parts quietly ("not judged" if a part it uses fails)."""
    for part, item in status.items():
        if item.origin != YOURS or item.passed is not None:
            continue
        check = PART_REGISTRY[part].check
        with contextlib.redirect_stdout(io.StringIO()):
            item.message = _failure(lambda: check(vars(module), config)) or ""
        item.passed = not item.message
        broken = [d for d in USES.get(part, ()) if d in status]
        broken = [d for d in broken if status[d].passed is False]
        if broken and not item.passed:
            item.passed = None
            item.message = (
                f"not judged: it uses your {', '.join(broken)}, whose check fails; fix "
                "that first"
            )


def build_student_vae(parts, config: VAEConfig):
    """Build the VAE by the parts' ``build_my_vae`` (a StudentParts or the lab's)."""
    build = getattr(getattr(parts, "module", parts), "build_my_vae", None)
    if build is None:
        raise LabError(
            "the parts hold no build_my_vae: run its `%%export build_my_vae` cell in "
            "04_train, then load the parts again (or pass build=...)"
        )
    return build(parts, config)


def import_student_module(workdir, verbose: bool = True):
    """Import the module 04 assembled (or None): best.keras needs its classes."""
    path = Path(workdir) / STUDENT_DIRNAME / MODULE_FILE
    if not path.exists():
        if verbose:
            print(f"(no assembled module at {path}: 04_train has not run here)")
        return None
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = sys.modules[MODULE_NAME] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if verbose:
        print(f"imported your assembled model code from {path}")
    return module
