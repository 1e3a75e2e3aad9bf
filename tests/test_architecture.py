"""The package's shape: no import cycles, real layers, every module in the README.

Imports inside functions count: a function-level import is still a dependency, and
a cycle through one is still a cycle (it only moves the failure to run time).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("helpers", "instructor", "vaelab")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(modules: dict[str, Path]) -> dict[str, set[str]]:
    """{module: the lab modules it imports anywhere in its file}."""
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                wanted = [node.module]
                wanted += [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in wanted:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # a package's own __init__ is not a dependency of its modules
                if target and target != name and not name.startswith(target + "."):
                    targets.add(target)
        graph[name] = targets
    return graph


MODULES = _modules()
GRAPH = _imports(MODULES)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path of modules, or None."""
    state: dict[str, int] = {}
    trail: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        trail.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return trail[trail.index(target) :] + [target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        trail.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    cycle = _cycle(GRAPH)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_students_package_never_imports_the_instructors_or_the_checkouts():
    leaks = {
        name: sorted(t for t in targets if t.startswith(("instructor", "vaelab")))
        for name, targets in GRAPH.items()
        if name.startswith("helpers")
    }
    assert not {k: v for k, v in leaks.items() if v}


def _readme_layers() -> list[list[str]]:
    """The README's "Inside helpers/" table: modules per row, top layer first."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("### Inside `helpers/`", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][2:]
    layers = []
    for row in rows:
        cells = row.split("|")[2]
        names = re.findall(r"`([a-z_/]+)`", cells)
        layers.append(["helpers." + n.replace("/", ".") if n != "helpers" else n
                       for n in names])
    return layers


LAYERS = _readme_layers()


def test_the_readme_lists_every_module_once():
    listed = [name for layer in LAYERS for name in layer]
    helpers_modules = sorted(m for m in MODULES if m.startswith("helpers"))
    assert sorted(listed) == helpers_modules, (
        "README's 'Inside helpers/' table: missing "
        f"{sorted(set(helpers_modules) - set(listed))}, not modules "
        f"{sorted(set(listed) - set(helpers_modules))}, twice "
        f"{sorted({n for n in listed if listed.count(n) > 1})}"
    )


@pytest.mark.parametrize("row", range(len(LAYERS)))
def test_each_layer_imports_only_its_own_row_and_below(row):
    allowed = {name for layer in LAYERS[row:] for name in layer}
    wrong = {
        name: sorted(GRAPH[name] - allowed)
        for name in LAYERS[row]
        if name in GRAPH and GRAPH[name] - allowed
    }
    assert not wrong, f"README row {row + 1} imports from a layer above it: {wrong}"


# Issue 18: what students install holds at most 9,000 lines of Python. The cap only
# comes down: a change that grows what students install fails here (move it to
# vaelab/ or instructor/, or make room).
STUDENTS_WHEEL_CAP = 9_000


def test_what_students_install_stays_under_its_cap(tmp_path):
    """Build the wheel the notebooks' first cell installs and count its Python."""
    import importlib.util
    import shutil
    import subprocess
    import sys
    import zipfile

    if importlib.util.find_spec("setuptools") is None:  # Python 3.12+ venvs
        pytest.skip("building the wheel offline needs setuptools in this environment")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "helpers", source / "helpers",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
         "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        python = [n for n in archive.namelist() if n.endswith(".py")]
        lines = sum(len(archive.read(n).splitlines()) for n in python)
    assert all(n.startswith("helpers/") for n in python), python
    assert lines <= STUDENTS_WHEEL_CAP, (
        f"the students' wheel holds {lines:,} lines of Python, over its cap of "
        f"{STUDENTS_WHEEL_CAP:,} (issue 18)"
    )
