"""The student release (no answers) and the repository URL in one place."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from helpers.errors import LabError
from helpers.notebook_tools import (
    REPO_URL,
    check_repo_url,
    plan_student_notebooks,
    set_repo_url,
    write_student_notebooks,
)
from helpers.release import (
    NotInReleaseError,
    ReleaseError,
    build_release,
    strip_reference,
)
from helpers.student import PARTS

REPO = Path(__file__).resolve().parents[1]
FORK = "https://github.com/my-uni/vae-lab-2027"

MODULE = '''\
"""A module."""

import math

SCALE = 2


# BEGIN REFERENCE (sampling)
@decorate
class Sampling(Base):
    """The answer."""

    def call(self, x):
        return x * math.exp(0.5)


# END REFERENCE


def keep(x):
    return Sampling(x)


# BEGIN REFERENCE (losses)
def kl(a, b):
    return a - b


WEIGHT: float = 0.5
# END REFERENCE
'''


# ---------------------------------------------------------------- reference code
def test_strip_reference_replaces_regions_with_stubs_of_the_same_names():
    text, parts = strip_reference(MODULE, "helpers/x.py")
    assert parts == ["sampling", "losses"]
    assert "math.exp(0.5)" not in text and "return a - b" not in text
    assert "BEGIN REFERENCE" not in text and "@decorate" not in text
    assert "def keep(x):" in text and "SCALE = 2" in text
    assert "WEIGHT = None" in text
    namespace: dict = {"__name__": "x"}
    exec(compile(text, "x.py", "exec"), namespace)  # noqa: S102 - our own stub
    with pytest.raises(NotInReleaseError) as info:
        namespace["keep"](1)
    assert str(info.value).startswith(
        "the lab's sampling is not in the student release: you write it in notebook "
        "02_model"
    )
    assert isinstance(info.value, (LabError, NotImplementedError))
    with pytest.raises(NotInReleaseError, match="losses .* notebook 03_loss"):
        namespace["kl"](1, 2)
    assert "02_model" in namespace["Sampling"].__doc__


@pytest.mark.parametrize(
    "source, message",
    [
        (
            "# BEGIN REFERENCE (losses)\nx = 1\n",
            "line 1: '# BEGIN REFERENCE (losses)' is never closed",
        ),
        ("x = 1\n# END REFERENCE\n", "line 2: '# END REFERENCE' without a BEGIN"),
        (
            "# BEGIN REFERENCE (losses)\n# BEGIN REFERENCE (losses)\n",
            "line 2: reference regions cannot nest",
        ),
        (
            "# BEGIN REFERENCE (answers)\n# END REFERENCE\n",
            "line 1: unknown part 'answers'",
        ),
        ("#BEGIN REFERENCE losses\n", "line 1: '#BEGIN REFERENCE losses' looks like"),
        (
            "def f():\n# BEGIN REFERENCE (losses)\n    return 1\n# END REFERENCE\n",
            "lines 2-4: the losses region is not whole module-level statements",
        ),
    ],
    ids=["unclosed", "stray-end", "nested", "unknown-part", "misspelt", "partial"],
)
def test_bad_reference_markers_name_file_and_line(source, message):
    with pytest.raises(ReleaseError) as info:
        strip_reference(source, "helpers/x.py")
    assert str(info.value).startswith("helpers/x.py, " + message)


def test_every_marked_part_is_a_known_part_of_the_repository():
    found = {}
    for path in sorted((REPO / "helpers").rglob("*.py")):
        _, parts = strip_reference(path.read_text(encoding="utf-8"), str(path))
        for part in parts:
            found.setdefault(part, []).append(path.name)
    assert set(found) <= set(PARTS)
    for part in ("sampling", "encoder", "decoder", "vae_model", "losses"):
        assert part in found, f"no '# BEGIN REFERENCE ({part})' region in helpers/"


# ----------------------------------------------------------------------- release
@pytest.fixture(scope="module")
def release(tmp_path_factory):
    dest = tmp_path_factory.mktemp("release") / "student-lab"
    summary = build_release(dest, REPO, repo_url=FORK)
    return dest, summary


def run_in_release(script: str, dest: Path, **env) -> subprocess.CompletedProcess:
    """Run ``script`` in a fresh Python whose ``helpers`` is the release's."""
    env = dict(os.environ, PYTHONPATH=str(dest), RELEASE=str(dest), **env)
    env.pop("VAE_LAB_WORKDIR", None)  # the release's lab makes its own
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=dest,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_release_holds_notebooks_and_helpers_but_no_answers(release):
    dest, summary = release
    assert sorted(p.name for p in (dest / "notebooks").glob("*.ipynb")) == sorted(
        p.name for p in (REPO / "solutions").glob("*.ipynb")
    )
    assert len(summary.notebooks) == 6
    for name in ("solutions", "tests", "benchmarks", "INSTRUCTORS.md", "conftest.py"):
        assert not (dest / name).exists(), name
    assert (dest / "pyproject.toml").is_file() and (
        dest / "helpers/cli/course.py"
    ).is_file()
    assert "helpers/model.py" in summary.stripped
    # check_submission's list of graded cells goes with the notebooks
    assert (dest / "helpers/templates/graded_cells.json").is_file()
    code = "\n".join(
        p.read_text(encoding="utf-8") for p in (dest / "helpers").rglob("*.py")
    )
    for answer in (
        "ops.exp(0.5 * z_log_var) * eps",  # Sampling
        "class Sampling(layers.Layer)",
        '"total": reconstruction + beta * kl',  # vae_loss
        "dataset.shuffle(",  # make_pipeline
        "z[:, dims[0]] = rows.ravel()",  # latent_grid
        "np.random.default_rng(seed).standard_normal((n, latent_dim(vae)))",
        "keras.random.normal((n, latent_dim(vae)), seed=seed)",  # sample_faces
        "tf.image.crop_to_bounding_box(image, top, left, height, width)",
        "self.model.decoder(self.fixed_z",  # the grid callback
    ):
        assert answer not in code, answer
    assert not re.search(r"^# (BEGIN|END) REFERENCE", code, re.MULTILINE)
    assert not list((dest / "helpers").rglob("__pycache__"))
    for path in (dest / "notebooks").glob("*.ipynb"):
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    assert summary.lines()[0].startswith("6 student notebook(s)")


def test_release_refuses_a_folder_in_use(release, tmp_path):
    (tmp_path / "old.txt").write_text("x")
    with pytest.raises(ReleaseError, match="is not empty"):
        build_release(tmp_path, REPO)


def test_self_checks_work_from_the_release_helpers(release):
    """A correct Sampling and KL pass the release's checks; the reference is gone."""
    dest, _ = release
    script = textwrap.dedent("""
        import os
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import keras
        from keras import layers, ops

        import helpers
        from helpers.checks import check_kl, check_sampling
        from helpers.release import NotInReleaseError

        assert helpers.__file__.startswith(os.environ["RELEASE"]), helpers.__file__


        class MySampling(layers.Layer):
            def __init__(self, seed=None, **kwargs):
                super().__init__(**kwargs)
                self.seed_generator = keras.random.SeedGenerator(seed)

            def call(self, inputs):
                z_mean, z_log_var = inputs
                eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
                return z_mean + ops.exp(0.5 * z_log_var) * eps


        check_sampling(MySampling)


        def kl_divergence(z_mean, z_log_var):
            per_dim = -0.5 * (1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            return ops.sum(per_dim, axis=-1)


        check_kl(kl_divergence)
        from helpers.losses import kl_divergence as reference_kl
        try:
            reference_kl(0.0, 0.0)
            raise SystemExit("the reference KL is in the release")
        except NotInReleaseError:
            pass
        from helpers.model import Sampling
        try:
            Sampling()
        except NotInReleaseError as error:
            print("REFERENCE GONE:", error)
        # What students write is gone, whichever module held it ...
        from helpers.callbacks import SampleGrid
        from helpers.datasets import make_dataset
        from helpers.generate import interpolate, sample_prior
        from helpers.preprocess import crop_resize
        from helpers import reference

        stripped = {
            SampleGrid: "04_train", make_dataset: "01_setup", crop_resize: "01_setup",
            interpolate: "05_generate", sample_prior: "05_generate",
            reference.sample_faces: "05_generate", reference.latent_grid: "05_generate",
            reference.make_pipeline: "01_setup",
        }
        for gone, notebook in stripped.items():
            try:
                gone()
                raise SystemExit(f"{gone} is in the release")
            except NotInReleaseError as error:
                assert f"notebook {notebook}" in str(error), (gone, error)
        # ... and the scaffolding around it stays.
        from helpers.generate import latent_grid_2d, sample_in_batches, slerp_faces
        from helpers.losses import kl_per_dimension

        for kept in (latent_grid_2d, sample_in_batches, slerp_faces, kl_per_dimension):
            assert "student release" not in (kept.__doc__ or ""), kept
        print("CHECK PASSED")
        """)
    result = run_in_release(script, dest)
    assert "CHECK PASSED" in result.stdout
    assert (
        "REFERENCE GONE: the lab's sampling is not in the student release: you write "
        "it in notebook 02_model" in result.stdout
    )


def test_the_students_code_runs_the_whole_lab_in_the_release(release, tmp_path):
    """Only the student's parts (the solutions' %%export cells) and the release's
    helpers: checks, training, evaluation and every figure work; the lab's own
    generation is not there and says where to write it."""
    from helpers.student import parts_from_notebooks

    dest, _ = release
    parts = parts_from_notebooks(sorted((REPO / "solutions").glob("0*.ipynb")))
    (tmp_path / "parts.json").write_text(json.dumps(parts))
    script = textwrap.dedent("""
        import json, os
        from pathlib import Path
        os.environ["KERAS_BACKEND"] = "tensorflow"
        import numpy as np

        import helpers
        from helpers import generate, student
        from helpers.cache import load_split, prepare_cache
        from helpers.config import preset
        from helpers.metrics import evaluate
        from helpers.release import NotInReleaseError
        from helpers.runs import load_run
        from helpers.synthetic import make_slice

        assert helpers.__file__.startswith(os.environ["RELEASE"]), helpers.__file__
        root = Path(os.environ["WORK"])
        for part, source in json.loads((root / "parts.json").read_text()).items():
            student.export_source(part, source, root / "work")
        prepare_cache(make_slice(root / "slice", n=160, seed=0), root / "cache",
                      progress=False)
        config = preset("smoke", latent_dim=8, filters=(8, 16, 32), batch_size=16,
                        epochs=1, train_limit=64, val_limit=32)
        parts = student.load_student_parts(root / "work", config=config)
        assert parts.failed == [] and not parts.lab_parts, parts.table()
        assert "sample_faces" in parts.status and "latent_grid" in parts.status
        student.train_student(parts, config, root / "cache", root / "run", verbose=0)
        student.import_student_module(root / "work", verbose=False)
        run = load_run(root / "run")
        assert type(run.vae).__module__ == "student_vae", type(run.vae)
        report = evaluate(run, n=12, gmm_fit_n=40, write=False,
                          sample_faces=parts.sample_faces)
        assert report["n"] == 12 and "prior_samples" in report["sharpness"]
        train, _, _ = load_split(root / "cache", "train")
        val, attrs, _ = load_split(root / "cache", "validation")
        figures = generate.write_figures(
            run.vae, root / "figures", config.value_range, np.asarray(train[:40]),
            np.asarray(val[:12]), attrs[:12], sample_faces=parts.sample_faces,
            interpolate_faces=parts.interpolate_faces)
        names = sorted(p.name for p in figures)
        assert {"prior_samples.png", "interpolation.png", "latent_grid_2d.png"} <= set(
            names), names
        for call in (lambda: evaluate(run, n=12, gmm_fit_n=40, write=False),
                     lambda: generate.write_figures(run.vae, root / "f2", (0, 1),
                                                    train[:40], val[:12], attrs[:12])):
            try:
                call()
                raise SystemExit("the lab's generation ran in the release")
            except NotInReleaseError as error:
                assert "notebook 05_generate" in str(error), error
        print("RELEASE LAB OK", len(names), "figures")
        """)
    result = run_in_release(script, dest, WORK=str(tmp_path))
    assert "RELEASE LAB OK" in result.stdout


def _stripped_names() -> set[tuple[str, str]]:
    """(module, name) of every stub the release puts where reference code was."""
    names = set()
    for path in sorted((REPO / "helpers").rglob("*.py")):
        relative = path.relative_to(REPO)
        text, parts = strip_reference(path.read_text(encoding="utf-8"), str(relative))
        module = ".".join(relative.with_suffix("").parts)
        for node in ast.parse(text).body if parts else ():
            if "NotInReleaseError" in ast.unparse(node):
                names.add((module, getattr(node, "name", "")))
    return names


def _helpers_used(source: str, modules: dict) -> set[tuple[str, str]]:
    """(module, name) of every helpers name a cell imports or reads as mod.name.

    ``modules`` maps the names earlier cells imported to what they are; the cell's
    own imports are added to it (a notebook's cells share one namespace).
    """
    lines = [  # a magic or shell line becomes `pass`, at its indentation
        (
            line[: len(line) - len(line.lstrip())] + "pass"
            if line.lstrip().startswith(("%", "!"))
            else line
        )
        for line in source.split("\n")
    ]
    tree = ast.parse(textwrap.dedent("\n".join(lines)))
    used = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "helpers"
        ):
            for alias in node.names:
                used.add((node.module, alias.name))
                modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("helpers"):
                    modules[alias.asname or alias.name] = alias.name
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in modules:
                used.add((modules[node.value.id], node.attr))
    return used


def test_no_notebook_cell_uses_what_the_release_strips():
    """Every cell runs in the release: none may call the lab's reference code."""
    stripped = _stripped_names()
    assert {("helpers.generate", "sample_prior"), ("helpers.model", "Sampling")} <= (
        stripped
    )
    found = []
    for path in sorted((REPO / "solutions").glob("0*.ipynb")):
        modules = {}
        for index, cell in enumerate(nbformat.read(str(path), as_version=4).cells):
            if cell.cell_type == "code":
                for name in sorted(_helpers_used(cell.source, modules) & stripped):
                    found.append(f"{path.name} cell {index}: {'.'.join(name)}")
    assert not found, "\n".join(found)
    earlier = {}
    _helpers_used("from helpers import generate", earlier)  # an earlier cell
    later = _helpers_used("x = generate.sample_prior(vae, 4)", earlier)
    assert ("helpers.generate", "sample_prior") in later & stripped


# ------------------------------------------------------------------ repository URL
def _links(nb) -> list[str]:
    text = "\n".join(cell.source for cell in nb.cells)
    return re.findall(
        r"colab\.research\.google\.com/github/[\w.-]+/[\w.-]+|git\+https://\S+?(?=[\"'\s])",
        text,
    )


def test_repository_notebooks_point_at_the_one_repo_url():
    repo = REPO_URL.removeprefix("https://github.com/")
    for folder in ("solutions", "notebooks"):
        for path in sorted((REPO / folder).glob("*.ipynb")):
            links = _links(nbformat.read(str(path), as_version=4))
            assert len(links) >= 2, (path, links)  # the badge and the install line
            assert all(repo in link for link in links), (path, links)


def test_repo_url_points_badges_and_installs_at_a_fork(tmp_path, release):
    solutions, out = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    for path in sorted((REPO / "solutions").glob("*.ipynb"))[:2]:
        (solutions / path.name).write_text(path.read_text(encoding="utf-8"))
    assert write_student_notebooks(solutions, out, repo_url=FORK + ".git")
    for folder in (solutions, out):
        for path in folder.glob("*.ipynb"):
            links = _links(nbformat.read(str(path), as_version=4))
            assert links and all("my-uni/vae-lab-2027" in link for link in links)
            assert "vae-celeba-lab/vae-celeba-lab" not in path.read_text()
    assert plan_student_notebooks(solutions, out, FORK).ok
    assert not plan_student_notebooks(solutions, out).ok  # the default differs
    dest, _ = release
    for path in (dest / "notebooks").glob("*.ipynb"):
        links = _links(nbformat.read(str(path), as_version=4))
        assert links and all("my-uni/vae-lab-2027" in link for link in links), path


@pytest.mark.parametrize(
    "url", ["git@github.com:me/lab.git", "https://gitlab.com/me/lab", "me/lab"]
)
def test_repo_url_must_be_a_github_repository(url):
    with pytest.raises(LabError, match="is not a GitHub repository URL"):
        check_repo_url(url)


def test_set_repo_url_counts_what_it_rewrote():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell(
            "[![Open](https://colab.research.google.com/assets/colab-badge.svg)]"
            "(https://colab.research.google.com/github/a/b/blob/main/solutions/x.ipynb)"
        ),
        nbformat.v4.new_code_cell('PACKAGE = "lab @ git+https://github.com/a/b"'),
    ]
    assert set_repo_url(nb, FORK) == 2
    assert set_repo_url(nb, FORK) == 0
    assert (
        "github/my-uni/vae-lab-2027/blob/main/solutions/x.ipynb" in nb.cells[0].source
    )
    assert (
        nb.cells[1].source
        == 'PACKAGE = "lab @ git+https://github.com/my-uni/vae-lab-2027"'
    )


# ---------------------------------------------------------------------- the CLI
def test_make_student_release_course_and_repo_url_from_the_command_line(
    tmp_path, capsys
):
    from helpers.cli import main

    solutions = str(REPO / "solutions")
    dest = tmp_path / "release"
    assert (
        main(
            [
                "make-student",
                "--solutions",
                solutions,
                "--release",
                str(dest),
                "--repo-url",
                FORK,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "6 student notebook(s)" in out and "stripped helpers/model.py" in out
    assert "my-uni/vae-lab-2027" in (dest / "notebooks/03_loss.ipynb").read_text()
    assert main(["make-student", "--solutions", solutions, "--release", str(dest)]) == 2
    assert "is not empty" in capsys.readouterr().err
    course = tmp_path / "course"
    assert (
        main(["make-student", "--solutions", solutions, "--course", str(course)]) == 0
    )
    assert (course / "source/03_loss/03_loss.ipynb").is_file()
    assert "c.Execute.timeout" in (course / "nbgrader_config.py").read_text()
    assert main(["make-student", "--repo-url", "gitlab.com/x/y", "--check"]) == 2
    assert "not a GitHub repository URL" in capsys.readouterr().err
    args = ["make-student", "--solutions", solutions, "--out", str(REPO / "notebooks")]
    assert main(args + ["--check", "--repo-url", FORK]) == 1
    assert f"--repo-url {FORK}" in capsys.readouterr().out
