"""The student's code is what trains: parts assembled, checked, switched, trained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest

from helpers import student
from helpers.config import preset
from helpers.errors import LabError
from instructor import export_cells

ROOT = Path(__file__).resolve().parents[1]

SOLUTIONS = Path(__file__).resolve().parents[1] / "solutions"
CONFIG = preset(
    "smoke",
    latent_dim=8,
    filters=(8, 16, 32),
    batch_size=16,
    epochs=1,
    train_limit=64,
    val_limit=32,
)


def solution_parts() -> dict[str, str]:
    """Each part's source: the solutions' %%export cell (every part has one)."""
    parts = export_cells.parts_from_notebooks(sorted(SOLUTIONS.glob("0*.ipynb")))
    assert set(parts) == set(student.PARTS), sorted(set(student.PARTS) ^ set(parts))
    return parts


def write_parts(workdir: Path, **changes) -> Path:
    """Write every part into workdir/student, with (old, new) edits per part."""
    folder = workdir / "student"
    if folder.exists():
        shutil.rmtree(folder)
    for part, source in solution_parts().items():
        for old, new in changes.get(part, ()):
            assert old in source, (part, old)
            source = source.replace(old, new)
        student.export_source(part, source, workdir)
    return workdir


KL_SIGN = ("-0.5 * (1.0 +", "0.5 * (1.0 +")


def test_parts_from_notebooks_reads_export_cells(tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%%export sampling\nclass Sampling: ...\n"),
        nbformat.v4.new_code_cell("x = 1"),
    ]
    path = tmp_path / "02_model.ipynb"
    nbformat.write(nb, path)
    assert export_cells.parts_from_notebooks([path]) == {"sampling": "class Sampling: ...\n"}


def test_correct_parts_pass_and_a_broken_kl_is_named(tmp_path, capsys):
    parts = student.load_student_parts(write_parts(tmp_path / "ok"), config=CONFIG)
    out = capsys.readouterr().out
    assert parts.failed == [] and out.count("✅ passed") == len(student.PARTS)
    broken = student.load_student_parts(
        write_parts(tmp_path / "bad", losses=[KL_SIGN]), config=CONFIG
    )
    out = capsys.readouterr().out
    # the VAE uses those losses: its check would see the same mistake (a cascade),
    # so it is "not judged" and the table names the first broken part only
    assert broken.failed == ["losses"]
    assert broken.status["vae_model"].passed is None
    assert "not judged: it uses your losses" in broken.status["vae_model"].message
    assert "USE_LAB_PART['vae_model']" not in out
    assert broken.status["losses"].passed is False
    assert "losses            03_loss      yours    ❌ failed:" in out
    assert "USE_LAB_PART['losses'] = True" in out
    assert "Traceback" not in out


def test_a_missing_part_is_named_and_stops_assembly(tmp_path, capsys):
    workdir = write_parts(tmp_path)
    (workdir / "student" / "decoder.py").unlink()
    with pytest.raises(LabError, match="decoder is missing or does not run"):
        student.load_student_parts(workdir, config=CONFIG, check=False)
    out = capsys.readouterr().out
    assert (
        "decoder           02_model     missing  ❌ not exported: run the `%%export "
        in out
    )


def test_a_part_that_does_not_run_is_named(tmp_path, capsys):
    workdir = write_parts(tmp_path, encoder=[("def build_encoder", "1/0\ndef f")])
    with pytest.raises(LabError, match="encoder is missing or does not run"):
        student.load_student_parts(workdir, config=CONFIG, check=False)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_the_switch_uses_exactly_the_solutions_part_and_says_so(tmp_path, capsys):
    no_noise = ("return z_mean + ops.exp(0.5 * z_log_var) * eps", "return z_mean")
    workdir = write_parts(tmp_path, sampling=[no_noise])
    mine = student.load_student_parts(workdir, config=CONFIG)
    assert mine.failed == ["sampling"]  # the VAE samples with it: not judged
    assert "uses your sampling" in mine.status["vae_model"].message
    capsys.readouterr()
    switched = {part: False for part in student.PARTS} | {"sampling": True}
    parts = student.load_student_parts(workdir, switched, config=CONFIG)
    out = capsys.readouterr().out
    assert parts.lab_parts == ["sampling"] and parts.failed == []
    assert "sampling          02_model     LAB'S" in out
    assert "The lab's reference code: sampling" in out
    # the solution cell's own source, registered as the student's class would be
    cell = export_cells.parts_from_notebooks([ROOT / "solutions" / "02_model.ipynb"])
    expected = export_cells.strip_solution_markers(cell["sampling"]).strip()
    assert expected in parts.path.read_text()
    assert parts.Sampling.__module__ == student.MODULE_NAME
    assert "student>Sampling" == keras.saving.get_registered_name(parts.Sampling)
    with pytest.raises(LabError, match="unknown part"):
        student.load_student_parts(workdir, ("sampler",), config=CONFIG)


def test_without_the_solution_module_the_switch_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(student, "SOLUTION_FILE", tmp_path / "absent.py")
    with pytest.raises(LabError, match="not shipped with this copy of the lab"):
        student.load_student_parts(
            write_parts(tmp_path), ("sampling",), config=CONFIG, check=False
        )
    with pytest.raises(LabError, match="reference parts are not shipped"):
        student.solution_module()


def test_the_solution_module_is_generated_from_the_solutions():
    """vaelab/solution.py is the solutions' %%export cells; stale fails here."""
    assert not export_cells.solution_module_stale(ROOT / "solutions"), (
        "vaelab/solution.py is out of date: run python -m instructor make-student"
    )
    text = student.SOLUTION_FILE.read_text()
    assert text.startswith('"""The lab\'s reference VAE') and "do not edit" in text
    assert "### BEGIN SOLUTION" not in text and 'package="student"' not in text
    assert list(student.solution_sources()) == list(student.PARTS)


def train_parts(workdir, cache_dir, run_dir, config=CONFIG):
    import keras

    keras.utils.set_random_seed(config.seed)
    parts = student.load_student_parts(workdir, config=config, check=False)
    from helpers.training import train_student

    return train_student(parts, config, cache_dir, run_dir, verbose=0)


def test_the_students_parts_are_what_trains(tmp_path, cache_dir):
    """A broken KL (its sign flipped) trains to a different result."""
    good = train_parts(write_parts(tmp_path / "ok"), cache_dir, tmp_path / "run_ok")
    bad = train_parts(
        write_parts(tmp_path / "bad", losses=[KL_SIGN]),
        cache_dir,
        tmp_path / "run_bad",
    )
    good_kl, bad_kl = good.history["kl_loss"][-1], bad.history["kl_loss"][-1]
    assert good_kl > 0 > bad_kl  # the flipped closed form is negative
    assert not np.isclose(good.history["loss"][-1], bad.history["loss"][-1])
    origins = json.loads((tmp_path / "run_ok" / "student_parts.json").read_text())
    assert set(origins.values()) == {"student"}
    # the student's callback wrote the grid; their VAE class reloads from best.keras
    assert sorted(p.name for p in (tmp_path / "run_ok" / "samples").iterdir()) == [
        "epoch_001.png"
    ]
    from helpers.runs import load_run

    student.import_student_module(tmp_path / "ok", verbose=False)
    run = load_run(tmp_path / "run_ok")
    assert type(run.vae).__module__ == student.MODULE_NAME


def test_a_students_run_resumes(tmp_path, cache_dir):
    workdir = write_parts(tmp_path)
    first = train_parts(workdir, cache_dir, tmp_path / "run")
    assert first.epoch == [0]
    again = train_parts(workdir, cache_dir, tmp_path / "run", CONFIG.replace(epochs=2))
    assert again.initial_epoch == 1 and again.epoch == [0, 1]


def test_a_student_class_under_the_labs_name_still_reloads_as_theirs(tmp_path):
    """Registered as lab>VAE (the solution's name), the student's class wins."""
    lab_name = ('package="student"', 'package="lab"')
    workdir = write_parts(tmp_path, vae_model=[lab_name])
    try:
        parts = student.load_student_parts(workdir, config=CONFIG, check=False)
        vae = student.build_student_vae(parts, CONFIG)
        vae(np.zeros((1, *CONFIG.image_shape), "float32"))
        vae.save(tmp_path / "m.keras")
        again = keras.models.load_model(tmp_path / "m.keras", compile=False)
        assert type(again) is parts.VAE
    finally:  # give the lab its name back for the tests that follow
        keras.saving.register_keras_serializable(package="lab")(
            student.solution_module().VAE
        )


def test_05s_generation_parts_join_once_exported_and_are_checked(tmp_path, capsys):
    """04 assembles the training parts only; 06 asks for 05's and gets them checked."""
    workdir = write_parts(tmp_path)
    later = ("build_my_vae", "sample_faces", "interpolate_faces", "latent_grid")
    for part in later:  # what 04's load cell sees: written after it
        (workdir / "student" / f"{part}.py").unlink()
    parts = student.load_student_parts(workdir, config=CONFIG, check=False)
    assert set(parts.status) == set(student.TRAINING_PARTS)  # 04: nothing missing
    assert not set(later) & set(student.TRAINING_PARTS)
    with pytest.raises(AttributeError, match="%%export sample_faces.*05_generate"):
        _ = parts.sample_faces
    wanted = [*student.TRAINING_PARTS, "sample_faces"]
    with pytest.raises(LabError, match="sample_faces is missing"):
        student.load_student_parts(workdir, config=CONFIG, check=False, parts=wanted)
    capsys.readouterr()
    # a draw that ignores its seed: the part is the student's, and its check fails
    unseeded = ("seed=seed)", "seed=None)")
    workdir = write_parts(tmp_path, sample_faces=[unseeded])
    parts = student.load_student_parts(workdir, config=CONFIG, parts=wanted)
    assert parts.failed == ["sample_faces"]
    assert "same seed gave different faces" in parts.status["sample_faces"].message
    # a correct one passes the same check, and is what parts.sample_faces calls
    workdir = write_parts(tmp_path)
    parts = student.load_student_parts(workdir, config=CONFIG)
    assert parts.failed == [] and "latent_grid" in parts.status
    assert parts.sample_faces.__module__ == student.MODULE_NAME
