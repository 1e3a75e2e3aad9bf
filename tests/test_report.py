"""The hand-in report: sections, embedded figures, missing files, edit protection."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

from helpers.config import preset
from helpers.errors import LabError
from helpers.plots import save_png
from helpers.report import architecture_rows, markdown_to_html, write_report
from vaelab.cli import main

HEADINGS = [
    "## 1. Summary and setup",
    "### 1.1 Dataset and preprocessing",
    "### 1.2 Architecture",
    "### 1.3 Training settings",
    "## 2. Losses over training",
    "## 3. Faces at several epochs",
    "## 4. Generation",
    "## 5. Evaluation",
    "## 6. Analysis",
    "### 6.1 Latent size",
    "### 6.2 The weight of the KL term (beta)",
    "### 6.3 Why are the samples blurry?",
    "## 7. Possible improvements",
]
HISTORY = (
    "epoch,kl_loss,loss,reconstruction_loss,val_kl_loss,val_loss,"
    "val_reconstruction_loss\n"
    "0,10.5,300.25,289.75,11.0,290.0,279.0\n"
    "1,20.0,200.0,180.0,21.0,210.5,189.5\n"
    "2,25.0,150.0,125.0,26.0,220.0,194.0\n"
)


def _png(path, value):
    save_png(np.full((8, 8, 3), value, np.uint8), path)


def make_run(root, config=None, evaluation=None, loss_curves=True):
    root.mkdir(parents=True)
    (config or preset("smoke", epochs=3)).save(root / "config.json")
    (root / "history.csv").write_text(HISTORY)
    for epoch in (1, 2, 3):
        _png(root / "samples" / f"epoch_{epoch:03d}.png", 10 * epoch)
    if loss_curves:
        _png(root / "loss_curves.png", 200)
    _png(root / "figures" / "prior_samples.png", 90)
    _png(root / "figures" / "attribute_Smiling.png", 91)
    if evaluation is not None:
        (root / "evaluation.json").write_text(json.dumps(evaluation))
    return root


def image_sources(html_text):
    return re.findall(r'<img [^>]*\bsrc="([^"]*)"', html_text)


def test_report_sections_figures_and_missing_evaluation(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["report", "--run-dir", str(run)]) == 0
    assert (
        capsys.readouterr().out.splitlines()[0] == f"wrote {run / 'report/report.md'}"
    )
    md = (run / "report" / "report.md").read_text()
    html = (run / "report" / "report.html").read_text()
    for heading in HEADINGS:
        assert heading + "\n" in md
        text = heading.lstrip("# ").replace("(beta)", "(beta)")
        assert f">{text}</h{heading.count('#')}>" in html
    assert "$" not in md.replace("$section", "")  # every placeholder filled
    for figure in (
        "../loss_curves.png",
        "../samples/epoch_001.png",
        "../samples/epoch_002.png",
        "../samples/epoch_003.png",
        "../figures/prior_samples.png",
        "../figures/attribute_Smiling.png",
    ):
        assert f"]({figure})" in md
    assert "| 2 | 200 | 180 | 20 | 210.5 | 189.5 | 21 |" in md
    assert "best val_loss 210.5 at epoch 2" in md
    assert (
        f"> **Missing:** {run / 'evaluation.json'} (no evaluation yet). Make it "
        f"with `python -m vaelab evaluate --run-dir {run} --fid --kid`"
    ) in md
    assert (
        f"> **Missing:** the figures gmm_samples.png, reconstructions.png, "
        f"latent_grid_2d.png, interpolation.png, traversal.png. Make them with "
        f"`python -m vaelab explore --run-dir {run} --out {run}/figures`"
    ) in md
    assert md.count("> **TODO: your analysis.**") == 4
    # HTML: one file, every figure embedded, nothing external.
    sources = image_sources(html)
    assert len(sources) == 6
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    first = base64.b64decode(sources[0].split(",", 1)[1])
    assert first == (run / "loss_curves.png").read_bytes()
    assert "href=" not in html and not re.search(r'src="(?!data:)', html)
    assert "<strong>Missing:</strong>" in html and "<table>" in html


def test_architecture_table_is_the_model_that_trained(tmp_path):
    """architecture.json (train() writes it from the built model) gives the table:
    every layer of the encoder and decoder, with Keras' own parameter counts,
    whatever the student built."""
    import keras

    from helpers.runs import RunPaths
    from helpers.student import build_student_vae, solution_module
    from helpers.training import write_architecture

    config = preset("smoke", latent_dim=8, filters=(4, 8, 16), image_size=32)
    run = make_run(tmp_path / "run", config)
    md = write_report(run)[0].read_text()
    assert "(no architecture.json in the run: it was trained by an older lab)" in md
    lab = solution_module()
    # A student's own encoder, unlike the lab's: one convolution, other names.
    images = keras.Input(config.image_shape, name="faces")
    x = keras.layers.Conv2D(4, 3, strides=4, padding="same", name="mine")(images)
    x = keras.layers.Flatten(name="flat")(x)
    heads = [keras.layers.Dense(8, name=n)(x) for n in ("mean", "log_var")]
    encoder = keras.Model(images, heads, name="encoder")
    theirs = lab.VAE(encoder, lab.build_decoder(config), name="vae")
    for vae in (build_student_vae(lab, config), theirs):
        write_architecture(RunPaths(run), vae)
        rows = architecture_rows(run)
        for part in ("encoder", "decoder"):
            model = getattr(vae, part)
            mine = [r for r in rows if r[0] == part]
            assert [r[1] for r in mine] == [
                f"{layer.name}: {type(layer).__name__}" for layer in model.layers
            ]
            assert [r[3] for r in mine] == [
                layer.count_params() for layer in model.layers
            ]
            assert sum(r[3] for r in mine) == model.count_params()
        assert rows[-1] == ("decoder", "reconstruction: Conv2D", "32x32x3", 111)
        encoder_n = vae.encoder.count_params()
        md = write_report(run, force=True)[0].read_text()
        assert f"Encoder {encoder_n:,} parameters, decoder " in md
        total = encoder_n + vae.decoder.count_params()
        assert f"{total:,} parameters. Run directory" in md
    assert ("encoder", "mine: Conv2D", "8x8x4", 3 * 3 * 3 * 4 + 4) in rows
    assert "| encoder | mine: Conv2D | 8x8x4 | 112 |" in md


def test_evaluation_analysis_and_drawn_loss_curves(tmp_path):
    evaluation = {
        "n": 500,
        "split": "validation",
        "rows": [
            {
                "section": "reconstruction",
                "metric": "psnr",
                "value": 21.5,
                "n": 500,
                "note": "pixels scaled to [0, 1]",
            },
            {
                "section": "fid",
                "metric": "prior_samples",
                "value": 80.25,
                "n": 500,
                "note": "vs 500 real",
            },
        ],
        "sharpness": {"real": 410.0, "prior_samples": 35.5},
        "latent": {"active_units": 17},
    }
    run = make_run(tmp_path / "run", evaluation=evaluation, loss_curves=False)
    sweeps = tmp_path / "sweeps"
    make_run(sweeps / "latent16", preset("smoke", latent_dim=16))
    make_run(sweeps / "beta4", preset("smoke", beta=4.0), evaluation=evaluation)
    out = tmp_path / "out"
    md_path, html_path = write_report(run, out, analysis=sweeps)
    md = md_path.read_text()
    assert "| fid | prior_samples | 80.25 | 500 | vs 500 real |" in md
    assert "Evaluated on 500 validation images" in md
    assert "Missing:** FID" not in md
    assert "| beta4 | 32 | 4 | 3 | 220 | 194 | 26 | 17 | 35.5 |" in md
    assert "| latent16 | 16 | 1 | 3 | 220 | 194 | 26 | - | - |" in md
    assert "| prior_samples | 35.5 |" in md
    assert (out / "loss_curves.png").stat().st_size > 1000  # drawn from history.csv
    assert "](loss_curves.png)" in md
    assert all(
        s.startswith("data:image/png;base64,")
        for s in image_sources(html_path.read_text())
    )


def test_missing_run_files_and_edit_protection(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    md_path, _ = write_report(empty)
    md = md_path.read_text()
    assert f"> **Missing:** {empty / 'config.json'} (the run's settings)" in md
    assert f"> **Missing:** {empty / 'history.csv'} (the per-epoch losses)" in md
    write_report(empty)  # an untouched report is rebuilt without --force
    md_path.write_text(md.replace("TODO: your analysis.**", "**My analysis:", 1))
    with pytest.raises(LabError, match="was edited by hand: rebuild only the HTML"):
        write_report(empty)
    write_report(empty, html_only=True)
    assert "My analysis:" in (empty / "report" / "report.html").read_text()
    write_report(empty, force=True)
    assert "My analysis:" not in md_path.read_text()
    assert main(["report", "--run-dir", str(tmp_path / "nope")]) == 2


def test_markdown_to_html_embeds_images_and_drops_comments(tmp_path):
    """Check the page: Markdown converted, local images embedded, comments gone."""
    _png(tmp_path / "figs" / "face.png", 77)
    page = markdown_to_html(
        "# T\n\nA *b* **c** `<x>` [k](https://x.org)\n\n- one\n- two\n\n"
        "> quote\n\n| a | b |\n|---|---|\n| 1 \\| 2 | 3 |\n\n"
        "```\nx < y\n```\n\n![a face](figs/face.png)\n\n"
        "![gone](missing.png) ![web](https://x.org/a.png)\n<!-- sha: 123 -->\n",
        base=tmp_path,
        title="t & u",
    )
    assert page.startswith("<!DOCTYPE html>") and "<title>t &amp; u</title>" in page
    body = page.split("<body>\n")[1].split("\n</body>")[0]
    for piece in (
        "<h1>T</h1>",
        "<em>b</em>",
        "<strong>c</strong>",
        "<code>&lt;x&gt;</code>",
        '<a href="https://x.org">k</a>',
        "<li>one</li>",
        "<blockquote>",
        "<th>a</th>",
        "<td>1 | 2</td>",
        "x &lt; y",
    ):
        assert piece in body, piece
    (source,) = image_sources(body)
    data = base64.b64decode(source.removeprefix("data:image/png;base64,"))
    assert data == (tmp_path / "figs" / "face.png").read_bytes()
    assert 'alt="a face"' in body
    assert "[image not found: missing.png]" in body
    assert "[image not found: https://x.org/a.png]" in body  # nothing external
    assert "sha: 123" not in body and "<!--" not in body
    assert "<h1>T</h1>" == markdown_to_html("# T", title=None).strip()


def test_dataset_section_says_when_the_data_is_the_generated_stand_in(
    tmp_path, cache_dir
):
    """Check a run on the generated slice is never reported as CelebA."""
    from helpers.runs import write_info

    run = make_run(tmp_path / "run", preset("smoke", epochs=3, train_limit=10_000))
    md_path, _ = write_report(run)
    assert "- **Data:** CelebA, aligned and cropped" in md_path.read_text()
    write_info(run, cache_dir=str(cache_dir))
    md = write_report(run, force=True)[0].read_text()
    assert "GENERATED stand-in in CelebA's file layout" in md
    assert "- **Data:** CelebA, aligned" not in md
    assert "trained on a generated CelebA-format slice" in md
    assert "all 160 training images, the first 128 validation" not in md
    assert "all 160 training images, all 20 validation images" in md


def test_report_from_a_real_smoke_run(trained_lab, tmp_path, capsys):
    """Check the report of a trained run: every section and every figure, embedded."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_lab.run_dir, run)
    assert (
        main(
            [
                "explore",
                "--run-dir",
                str(run),
                "--out",
                str(run / "figures"),
                "--n",
                "200",
            ]
        )
        == 0
    )
    assert main(["evaluate", "--run-dir", str(run), "--n", "40"]) == 0
    assert main(["report", "--run-dir", str(run)]) == 0
    md = (run / "report" / "report.md").read_text()
    html = (run / "report" / "report.html").read_text()
    for heading in HEADINGS:
        assert heading in md
    figures = sorted(p.name for p in (run / "figures").glob("*.png"))
    samples = sorted(p.name for p in (run / "samples").glob("*.png"))
    assert len(figures) >= 8 and samples
    for name in figures + samples + ["loss_curves.png"]:
        assert f"/{name})" in md, name
    sources = image_sources(html)
    assert len(sources) == md.count("![") and all(
        s.startswith("data:image/png;base64,") for s in sources
    )
    # Only FID/KID may be missing (no InceptionV3 weights offline).
    missing = [line for line in md.splitlines() if "**Missing:**" in line]
    assert len(missing) == 1 and "FID/KID" in missing[0]
    assert "| reconstruction | psnr |" in md and "| latent | active_units |" in md
    assert "GENERATED stand-in" in md
