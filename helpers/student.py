"""What students write travels: exported notebook cells become a module on disk.

Each Colab notebook runs on a fresh machine, so the parts a student writes in
01_setup, 02_model and 03_loss reach 04_train through the lab's work directory (on
Google Drive in Colab), the way d2l's ``#@save`` and nbdev's ``#|export`` collect
marked cells into a module. A cell that starts with::

    %%export sampling

runs as usual and, if it ran without error, its source (less the magic line) is
saved as ``<workdir>/student/sampling.py``. Re-running the cell overwrites that
part only. ``setup_lab()`` registers the magic, so notebooks need no ``%load_ext``.

``PARTS`` lists every part in the order the assembled module needs them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from helpers.files import atomic_write_text

# part name -> the notebook where the student writes it (module order = this order)
PARTS: dict[str, str] = {
    "preprocess": "01_setup",
    "pipeline": "01_setup",
    "encoder": "02_model",
    "sampling": "02_model",
    "decoder": "02_model",
    "losses": "03_loss",
    "vae_model": "03_loss",
    "callbacks": "04_train",
}
STUDENT_DIRNAME = "student"
_PART_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
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
    if not _PART_NAME.match(part) or part not in PARTS:
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
        return None
    path = export_source(part, cell, _active_workdir)
    print(f"exported {part!r} to {path}")
    return None


def register_magic() -> bool:
    """Register ``%%export`` in the running IPython; False outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython ships with Jupyter
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.register_magic_function(_export_magic, magic_kind="cell", magic_name="export")
    return True


def load_ipython_extension(shell) -> None:  # ``%load_ext helpers.student``
    """IPython extension hook: register ``%%export``."""
    shell.register_magic_function(_export_magic, magic_kind="cell", magic_name="export")
