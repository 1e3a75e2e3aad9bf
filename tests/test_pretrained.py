"""The instructor's portable model: exported from a run, fetched, loaded without the
lab's model classes, and the same numbers as the lab's VAE it came from."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers.config import preset
from helpers.errors import LabError

REPO = Path(__file__).resolve().parents[1]
# A tiny run of the lab's VAE (vaelab.solution): seconds on 2 CPU cores.
CONFIG = preset(
    "smoke",
    latent_dim=4,
    filters=(4, 8, 8),
    epochs=1,
    batch_size=16,
    train_limit=48,
    val_limit=16,
    sample_interval=1,
)


@pytest.fixture(scope="module")
def exported(cache_dir, tmp_path_factory):
    """A tiny trained run, its loaded VAE, and its exported portable file."""
    from helpers.runs import load_run
    from helpers.training import train
    from instructor.export import export_portable_model

    root = tmp_path_factory.mktemp("portable")
    train(CONFIG, cache_dir, root / "run", verbose=0)
    out, digest = export_portable_model(root / "run", root / "published.keras")
    return types.SimpleNamespace(
        root=root,
        run_dir=root / "run",
        vae=load_run(root / "run").vae,
        path=out,
        digest=digest,
        cache_dir=cache_dir,
    )


def inputs(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(3, *CONFIG.image_shape)).astype("float32")
    z = rng.normal(size=(3, CONFIG.latent_dim)).astype("float32")
    return images, z


def test_export_is_one_keras_file_with_its_hash_and_config(exported):
    assert exported.digest == hashlib.sha256(exported.path.read_bytes()).hexdigest()
    with zipfile.ZipFile(exported.path) as archive:
        names = archive.namelist()
    assert {"config.json", "model.weights.h5", "vae_lab.json"} <= set(names)
    from helpers.portable import load_portable_model

    vae = load_portable_model(exported.path)
    assert vae.config == CONFIG
    assert vae.value_range == CONFIG.value_range and vae.latent_dim == 4
    assert vae.info["epochs_done"] == 1
    assert not hasattr(vae, "sampling") and not hasattr(vae, "compute_loss")


def test_fetched_model_gives_the_lab_vaes_numbers(exported, tmp_path, capsys):
    from helpers import generate
    from helpers.portable import PretrainedVAE
    from helpers.pretrained import fetch_instructor_model
    from helpers.runs import load_run
    from helpers.student import solution_module

    lab_parts = solution_module()

    run_dir = tmp_path / "run"
    url = exported.path.as_uri()
    path = fetch_instructor_model(run_dir, CONFIG, url=url, sha256=exported.digest)
    assert (
        path == run_dir / "instructor.keras" and not (run_dir / "best.keras").exists()
    )
    assert path.read_bytes() == exported.path.read_bytes()
    assert (run_dir / "config.json").exists()
    run = load_run(run_dir)  # no best.keras: the instructor's model
    assert isinstance(run.vae, PretrainedVAE)
    assert run.info["epochs_done"] == 1 and run.config == CONFIG
    images, z = inputs()
    lab, mine = exported.vae, run.vae
    for got, want in zip(mine.encode(images), lab.encode(images)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=1e-5)
    np.testing.assert_allclose(
        np.asarray(mine.decode(z)), np.asarray(lab.decode(z)), atol=1e-5
    )
    # What 05 uses: generate's functions take the wrapper as they take a VAE.
    np.testing.assert_allclose(
        generate.reconstruct(mine, images),
        generate.reconstruct(lab, images),
        atol=1e-5,
    )
    np.testing.assert_allclose(  # 05's sample_faces (here the solution's)
        generate.sample_in_batches(lab_parts.sample_faces, mine, 4, seed=3),
        generate.sample_in_batches(lab_parts.sample_faces, lab, 4, seed=3),
        atol=1e-5,
    )
    # A trained decoder differs from a fresh one: the comparison can fail.
    fresh = np.asarray(lab_parts.build_decoder(CONFIG)(z))
    assert not np.allclose(fresh, np.asarray(lab.decode(z)), atol=1e-5)


def test_a_wrong_hash_is_refused_and_nothing_is_kept(exported, tmp_path):
    from helpers.pretrained import fetch_instructor_model

    url = exported.path.as_uri()
    with pytest.raises(LabError, match="has not published"):
        fetch_instructor_model(tmp_path / "run", CONFIG, url=url, sha256="")
    with pytest.raises(LabError, match="could not fetch"):
        fetch_instructor_model(tmp_path / "run", CONFIG, url=url, sha256="0" * 64)
    assert not (tmp_path / "run" / "instructor.keras").exists()


def test_ensure_model_downloads_once_and_evaluate_copes(
    exported, tmp_path, monkeypatch
):
    from helpers import pretrained, student
    from helpers.metrics import evaluate
    from helpers.portable import PretrainedVAE
    from helpers.pretrained import ensure_model

    monkeypatch.setattr(student, "import_student_module", lambda *a, **k: None)
    monkeypatch.setattr(pretrained, "describe_run_time", lambda *a, **k: "")
    lab = types.SimpleNamespace(
        run_dir=tmp_path / "run",
        workdir=tmp_path,
        config=CONFIG,
        cache_dir=exported.cache_dir,
    )
    url, digest = exported.path.as_uri(), exported.digest
    run = ensure_model(lab, "download", url=url, sha256=digest)
    assert isinstance(run.vae, PretrainedVAE) and run.cache_dir == lab.cache_dir
    # Found again, not downloaded: a URL that cannot work is never asked.
    again = ensure_model(lab, "download", url="file:///nowhere.keras", sha256=digest)
    assert isinstance(again.vae, PretrainedVAE)
    report = evaluate(again, n=8, gmm_fit_n=16, write=False)
    assert report["latent"]["latent_dim"] == CONFIG.latent_dim
    assert np.isfinite(report["reconstruction"]["mse"])
    # A config for other images is refused, naming the difference.
    other = types.SimpleNamespace(
        **{**vars(lab), "config": CONFIG.replace(image_size=32)}
    )
    with pytest.raises(LabError, match="trained on"):
        ensure_model(other, "download", url=url, sha256=digest)


def test_export_refuses_a_missing_run_and_an_existing_file(exported, tmp_path, capsys):
    from instructor.commands import main

    (tmp_path / "empty").mkdir()
    assert (
        main(["export-model", str(tmp_path / "empty"), str(tmp_path / "a.keras")]) == 2
    )
    assert "not a trained run (no config.json)" in capsys.readouterr().err
    (tmp_path / "half").mkdir()
    CONFIG.save(tmp_path / "half" / "config.json")
    assert (
        main(["export-model", str(tmp_path / "half"), str(tmp_path / "a.keras")]) == 2
    )
    assert "no best.keras" in capsys.readouterr().err
    assert not (tmp_path / "a.keras").exists()
    out = tmp_path / "taken.keras"
    out.write_bytes(b"the instructor's other file")
    assert main(["export-model", str(exported.run_dir), str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert out.read_bytes() == b"the instructor's other file"
    assert main(["export-model", str(exported.run_dir), str(out), "--force"]) == 0
    printed = capsys.readouterr().out
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert f'INSTRUCTOR_MODEL_SHA256 = "{digest}"' in printed
    assert "INSTRUCTOR_MODEL_URL = " in printed


def test_a_lab_vae_file_is_not_a_portable_model(exported):
    from helpers.portable import load_portable_model

    with pytest.raises(LabError, match="not a portable model.*export-model"):
        load_portable_model(exported.run_dir / "best.keras")


def test_a_portable_model_whose_metadata_is_no_object_is_refused(exported, tmp_path):
    """A vae_lab.json holding a JSON list is named, not an AttributeError."""
    import zipfile

    from helpers.portable import METADATA_MEMBER, load_portable_model

    bad = tmp_path / "list.keras"
    with zipfile.ZipFile(exported.path) as src, zipfile.ZipFile(bad, "w") as out:
        for item in src.infolist():
            data = src.read(item)
            out.writestr(item, b"[1, 2]" if item.filename == METADATA_MEMBER else data)
    with pytest.raises(LabError, match="vae_lab.json holds no JSON object"):
        load_portable_model(bad)


LOAD = textwrap.dedent("""
    import os, sys
    os.environ["KERAS_BACKEND"] = "tensorflow"
    if os.environ.get("BLOCK"):
        for name in ("helpers.solution", "vaelab.solution"):
            sys.modules[name] = None  # importing it now fails
    import numpy as np
    import helpers
    from helpers.runs import load_run

    assert helpers.__file__.startswith(os.environ["WHERE"]), helpers.__file__
    run = load_run(os.environ["RUN_DIR"])
    z = np.load(os.environ["Z"])
    np.save(os.environ["OUT"], np.asarray(run.vae.decode(z)))
    print(type(run.vae).__name__, any(sys.modules.get(name) for name in
          ("helpers.solution", "vaelab.solution")))
    """)


def _load_elsewhere(exported, tmp_path, where: Path, block: bool) -> np.ndarray:
    from helpers.pretrained import fetch_instructor_model

    run_dir = tmp_path / "run"
    fetch_instructor_model(
        run_dir, CONFIG, url=exported.path.as_uri(), sha256=exported.digest
    )
    _, z = inputs(1)
    np.save(tmp_path / "z.npy", z)
    env = dict(
        os.environ,
        PYTHONPATH=str(where),
        WHERE=str(where),
        RUN_DIR=str(run_dir),
        Z=str(tmp_path / "z.npy"),
        OUT=str(tmp_path / "out.npy"),
        BLOCK="1" if block else "",
    )
    result = subprocess.run(
        [sys.executable, "-c", LOAD],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["PretrainedVAE", "False"]
    return np.load(tmp_path / "out.npy"), exported.vae.decode(z)


def test_it_loads_without_the_labs_vae_code(exported, tmp_path):
    """The file loads though the lab's reference VAE classes cannot be imported."""
    got, want = _load_elsewhere(exported, tmp_path, REPO, block=True)
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5)


def test_it_loads_in_the_student_release(exported, tmp_path):
    from instructor.release import build_release

    dest = tmp_path / "release"
    summary = build_release(dest, REPO)
    # the lab's VAE is not there: the release ships no helpers/solution.py
    assert summary.given == () and not (dest / "helpers" / "solution.py").exists()
    got, want = _load_elsewhere(exported, tmp_path, dest, block=False)
    np.testing.assert_allclose(got, np.asarray(want), atol=1e-5)
