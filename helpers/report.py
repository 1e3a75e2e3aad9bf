"""Build the hand-in report from a run directory: report.md and one report.html.

Typical use::

    python -m helpers report --run-dir runs/cpu --analysis runs/sweeps

fills ``report_template/report.md`` (``string.Template`` placeholders, one per
section) from the run's files (see ``helpers.runs``) and writes ``report.md`` and a
self-contained ``report.html`` (converted by Python-Markdown) whose figures are
embedded as base64 ``data:`` URIs.
A missing file never stops the build: its section says what is missing and which
command makes it. The analysis sections hold "TODO: your analysis" prompts for the
student; write into report.md and rebuild the HTML with ``--html-only``.

Nothing here imports TensorFlow; matplotlib is used only to draw the loss curves
when a run has history.csv but no loss_curves.png.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import mimetypes
import os
import re
from pathlib import Path
from string import Template

import markdown
from markdown.treeprocessors import Treeprocessor

from helpers.cache import cache_info
from helpers.config import VAEConfig
from helpers.errors import DataError, LabError
from helpers.plots import plot_history
from helpers.plots import read_history_rows
from helpers.runs import RunPaths, read_info
from helpers.synthetic import is_generated_slice

# A symlink to report_template/report.md, so the template also ships in the wheel.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.md"
CHECKSUM = re.compile(r"\n<!-- report-sha256: ([0-9a-f]{64}) -->\n?$")
FIGURES = (  # (file name, heading, caption)
    ("prior_samples.png", "Samples from the prior", "Faces decoded from z ~ N(0, I)."),
    (
        "gmm_samples.png",
        "Samples from a mixture fitted to the latent codes",
        "z drawn from a Gaussian mixture fitted to encoded training faces.",
    ),
    (
        "reconstructions.png",
        "Reconstructions",
        "Held-out faces (top) and their reconstructions (bottom).",
    ),
    (
        "latent_grid_2d.png",
        "A 2-D slice of the latent space",
        "Decoded points on a grid spanning two latent directions.",
    ),
    ("interpolation.png", "Interpolation", "Decoded points between two faces."),
    ("traversal.png", "Latent traversal", "One latent dimension varied per row."),
)
TODO = "> **TODO: your analysis.**"


# ---------------------------------------------------------------------- markdown
def _table(header, rows) -> str:
    def cell(value):
        if isinstance(value, float):
            value = f"{value:.4g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _missing(what: str, command: str, them: bool = False) -> str:
    return (
        f"> **Missing:** {what}. Make {'them' if them else 'it'} with `{command}`, "
        f"then rebuild this report."
    )


def _image(path: Path, out: Path, caption: str) -> str:
    return f"![{caption}]({Path(os.path.relpath(path, out)).as_posix()})"


# -------------------------------------------------------------------- the run
class _Run:
    """The files of one run directory, read leniently."""

    def __init__(self, root: Path):
        self.root = root
        self.paths = RunPaths(root)
        self.config = (
            VAEConfig.load(self.paths.config) if self.paths.config.exists() else None
        )
        self.info = read_info(root)
        self.history = read_history_rows(self.paths.history)
        evaluation = root / "evaluation.json"
        self.evaluation = (
            json.loads(evaluation.read_text()) if evaluation.exists() else None
        )


def _best_key(row: dict) -> str:
    """The column best.keras was chosen by (older runs: val_loss or loss)."""
    for key in ("val_loss_at_target_beta", "loss_at_target_beta", "val_loss"):
        if key in row:
            return key
    return "loss"


def _best(history: list[dict]) -> dict | None:
    if not history:
        return None
    key = _best_key(history[0])
    return min(history, key=lambda r: r.get(key, float("inf")))


# ------------------------------------------------------------------ sections
def architecture_rows(run_dir) -> list[tuple[str, str, str, int]]:
    """Return (part, layer, output shape, parameters) of the model that trained.

    Read from the run's architecture.json (written by ``train()`` from the built
    encoder and decoder); [] for a run without one.
    """
    path = RunPaths(Path(run_dir)).architecture
    if not path.exists():
        return []
    rows = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        shape = row.get("output")
        if shape and isinstance(shape[0], list):
            shape = " + ".join("x".join(str(d) for d in s) for s in shape)
        elif shape:
            shape = "x".join(str(d) for d in shape)
        rows.append(
            (row["part"], f"{row['layer']}: {row['class']}", shape or "", row["parameters"])
        )
    return rows


def _data_facts(run: _Run) -> tuple[bool, dict]:
    """Return (is the data the generated stand-in?, split counts of the cache)."""
    cache = run.info.get("cache_dir")
    try:
        meta = cache_info(cache) if cache else {}
    except DataError:
        meta = {}
    source = meta.get("source")
    return bool(source) and is_generated_slice(source), meta.get("counts", {})


def _no_config(run: _Run) -> str | None:
    """The "missing config.json" note, or None when the run has its settings."""
    if run.config is not None:
        return None
    train = f"python -m helpers train --data DATA --run-dir {run.root}"
    return _missing(f"{run.paths.config} (the run's settings)", train)


def _parameters(run) -> tuple[int, int]:
    """Return the (encoder, decoder) parameter counts of the run's model."""
    rows = architecture_rows(run.root)
    encoder = sum(r[3] for r in rows if r[0] == "encoder")
    decoder = sum(r[3] for r in rows if r[0] == "decoder")
    return encoder, decoder


def _summary_section(run: _Run) -> str:
    """One paragraph: the model, the data, the run and its best epoch."""
    if missing := _no_config(run):
        return missing
    c = run.config
    encoder, decoder = _parameters(run)
    generated, _ = _data_facts(run)
    data_name = "a generated CelebA-format slice" if generated else "CelebA faces"
    summary = (
        f"A convolutional variational autoencoder (VAE) trained on {data_name} "
        f"at {c.image_size}x{c.image_size}: latent size {c.latent_dim}, "
        f"beta = {c.beta:g}, {c.reconstruction_loss.upper()} reconstruction loss"
        + (f", {encoder + decoder:,} parameters" if encoder + decoder else "")
        + f". Run directory: `{run.root}` "
        f"(preset `{c.name}`), {len(run.history)} of {c.epochs} epochs in history.csv"
    )
    best = _best(run.history)
    if best is not None:
        key = _best_key(best)
        summary += f"; best {key} {best[key]:.4g} at epoch {int(best['epoch']) + 1}"
    return summary + "."


def _dataset_section(run: _Run) -> str:
    """Which faces, which split, and how they were cropped, resized and scaled."""
    if missing := _no_config(run):
        return missing
    c = run.config
    generated, counts = _data_facts(run)
    n_train = counts.get("train", 162_770)
    n_val = counts.get("validation", 19_867)
    limit = (
        f"the first {min(c.train_limit, n_train):,} training images"
        if c.train_limit and c.train_limit < n_train
        else f"all {n_train:,} training images"
    )
    val = (
        f"the first {min(c.val_limit, n_val):,} validation images"
        if c.val_limit and c.val_limit < n_val
        else f"all {n_val:,} validation images"
    )
    data_line = (
        "- **Data:** a procedurally GENERATED stand-in in CelebA's file layout "
        "(cartoon faces drawn by `helpers.synthetic`), NOT CelebA: the numbers "
        "below say nothing about real faces. Split: " + f"{limit}, {val}."
        if generated
        else "- **Data:** CelebA, aligned and cropped faces (202,599 images of "
        "10,177 celebrities, 178x218 JPEG), official split: " + f"{limit}, {val}."
    )
    left, top, width, height = c.crop
    low, high = c.value_range
    return "\n".join(
        [
            data_line,
            f"- **Crop:** the central face box (left {left}, top {top}, "
            f"{width}x{height} pixels), so faces are not stretched.",
            f"- **Resize:** to {c.image_size}x{c.image_size} with an antialiased "
            f"bilinear filter, decoded once into a uint8 cache"
            + (f" (`{run.info['cache_dir']}`)" if run.info.get("cache_dir") else "")
            + ".",
            f"- **Scale:** pixels to [{low:g}, {high:g}] to match the decoder's "
            f"{c.output_activation} output.",
            "- **Caveat:** CelebA is skewed towards young, light-skinned celebrities; "
            "the model inherits that bias.",
        ]
    )


def _architecture_section(run: _Run) -> str:
    """Every weighted layer with its output shape and parameter count."""
    if missing := _no_config(run):
        return missing
    rows = architecture_rows(run.root)
    if not rows:
        return "(no architecture.json in the run: it was trained by an older lab)"
    encoder, decoder = _parameters(run)
    architecture = _table(
        ("part", "layer", "output", "parameters"),
        [(p, layer, shape, f"{n:,}") for p, layer, shape, n in rows],
    )
    return architecture + (
        f"\n\nEncoder {encoder:,} parameters, decoder {decoder:,}, total "
        f"{encoder + decoder:,}. Sampling: z = z_mean + "
        f"exp(0.5 * z_log_var) * eps, eps ~ N(0, I)."
    )


def _training_section(run: _Run) -> str:
    """The settings of the run, as a table."""
    if missing := _no_config(run):
        return missing
    c = run.config
    settings = [
        ("latent size", c.latent_dim),
        ("beta (KL weight)", f"{c.beta:g}"),
        ("KL warm-up epochs", c.kl_warmup_epochs),
        ("reconstruction loss", f"{c.reconstruction_loss}, summed over pixels"),
        ("optimizer", f"Adam, learning rate {c.learning_rate:g}"),
        ("batch size", c.batch_size),
        ("epochs", f"{len(run.history)} done of {c.epochs}"),
        ("sample grid every", f"{c.sample_interval} epoch(s)"),
        ("seed", c.seed),
        ("status", run.info.get("status", "unknown (no run.json)")),
    ]
    return _table(("setting", "value"), settings)


def _loss_section(run: _Run, out: Path) -> str:
    command = f"python -m helpers train --data DATA --run-dir {run.root}"
    if not run.history:
        return _missing(f"{run.paths.history} (the per-epoch losses)", command)
    figure = run.paths.loss_curves
    if not figure.exists():
        import matplotlib.pyplot as plt  # only when the run has no loss_curves.png

        columns = {
            k: [r.get(k, float("nan")) for r in run.history] for k in run.history[0]
        }
        figure = out / "loss_curves.png"
        plt.close(plot_history(columns, figure, title=f"Losses of {run.root.name}"))
    keys = [
        k
        for k in (
            "loss",
            "reconstruction_loss",
            "kl_loss",
            "val_loss",
            "val_reconstruction_loss",
            "val_kl_loss",
        )
        if k in run.history[0]
    ]
    n = len(run.history)
    shown = sorted({round(i * (n - 1) / 9) for i in range(10)}) if n > 10 else range(n)
    rows = [
        [int(run.history[i]["epoch"]) + 1] + [run.history[i][k] for k in keys]
        for i in shown
    ]
    text = [
        _image(
            figure,
            out,
            "Total, reconstruction and KL loss per epoch (train "
            "solid, validation dashed)",
        ),
        "",
        _table(["epoch"] + keys, rows),
    ]
    best = _best(run.history)
    text += [
        "",
        f"Best epoch: {int(best['epoch']) + 1}. The reconstruction term is "
        f"summed over the {run.config.image_size ** 2 * 3 if run.config else 12288:,}"
        f" pixel values of an image and the KL over the latent dimensions, both "
        f"averaged over the batch.",
    ]
    return "\n".join(text)


def _epochs_section(run: _Run, out: Path) -> str:
    grids = sorted(run.paths.samples.glob("epoch_*.png"))
    if not grids:
        return _missing(
            f"sample grids in {run.paths.samples}",
            f"python -m helpers train --data DATA --run-dir {run.root}",
        )
    n = len(grids)
    picked = sorted({round(i * (n - 1) / 3) for i in range(4)}) if n > 4 else range(n)
    parts = [
        "The same latent vectors decoded after each of these epochs: faces "
        "appear as training goes on."
    ]
    for i in picked:
        epoch = int(re.sub(r"\D", "", grids[i].stem) or 0)
        parts += [
            "",
            f"**Epoch {epoch}**",
            "",
            _image(grids[i], out, f"Faces after epoch {epoch}"),
        ]
    return "\n".join(parts)


def _find_figure(roots: list[Path], pattern: str, out: Path) -> list[Path]:
    for root in roots:
        found = [
            p
            for p in sorted(root.rglob(pattern))
            if out not in p.parents and "samples" not in p.parent.name
        ]
        if found:
            return found
    return []


def _generation_section(run: _Run, out: Path, figures: Path | None) -> str:
    roots = ([figures] if figures else []) + [run.root]
    command = f"python -m helpers explore --run-dir {run.root} --out {run.root}/figures"
    parts, missing = [], []
    for name, heading, caption in FIGURES:
        found = _find_figure(roots, name, out)
        if found:
            parts += [f"**{heading}.**", "", _image(found[0], out, caption), ""]
        else:
            missing.append(name)
    attributes = _find_figure(roots, "attribute_*.png", out)
    if attributes:
        parts += ["**Attribute arithmetic.**", ""]
    for path in attributes:
        name = path.stem.removeprefix("attribute_").replace("_", " ")
        parts += [_image(path, out, f"Adding and removing the '{name}' direction"), ""]
    if not attributes:
        missing.append("attribute_*.png (attribute arithmetic)")
    if missing:
        parts.append(_missing("the figures " + ", ".join(missing), command, them=True))
    return "\n".join(parts).rstrip()


def _evaluation_section(run: _Run) -> str:
    command = f"python -m helpers evaluate --run-dir {run.root} --fid --kid"
    if run.evaluation is None:
        return _missing(f"{run.root / 'evaluation.json'} (no evaluation yet)", command)
    data = run.evaluation
    rows = [
        (
            r.get("section", ""),
            r.get("metric", ""),
            r.get("value", ""),
            r.get("n", ""),
            r.get("note", ""),
        )
        for r in data.get("rows", [])
    ]
    if not rows:
        return _missing("rows in evaluation.json", command)
    text = [
        f"Evaluated on {data.get('n', '?')} {data.get('split', '')} images "
        f"(N is given per row: FID and KID depend strongly on it).",
        "",
        _table(("section", "metric", "value", "N", "note"), rows),
    ]
    if not any(r[0] == "fid" for r in rows):
        text += ["", _missing("FID/KID", command)]
    return "\n".join(text)


def _analysis_runs(folder: Path) -> list[_Run]:
    return [_Run(p.parent) for p in sorted(folder.rglob("config.json"))]


def _analysis_table(runs: list[_Run], key: str) -> str:
    header = (
        "run",
        "latent",
        "beta",
        "epochs",
        "val loss",
        "val recon",
        "val KL",
        "active units",
        "prior sharpness",
    )
    rows = []
    for run in sorted(runs, key=lambda r: (getattr(r.config, key), r.root.name)):
        last = run.history[-1] if run.history else {}
        evaluation = run.evaluation or {}
        latent = evaluation.get("latent", {})
        rows.append(
            (
                run.root.name,
                run.config.latent_dim,
                f"{run.config.beta:g}",
                len(run.history),
                last.get("val_loss", "-"),
                last.get("val_reconstruction_loss", "-"),
                last.get("val_kl_loss", "-"),
                latent.get("active_units", "-"),
                evaluation.get("sharpness", {}).get("prior_samples", "-"),
            )
        )
    return _table(header, rows)


def _sweep_runs(analysis: Path | None) -> list[_Run]:
    """Return the runs (with a config.json) below ``analysis``; [] without one."""
    if analysis is None:
        return []
    runs = [r for r in _analysis_runs(analysis) if r.config]
    if not runs:
        raise LabError(
            f"--analysis {analysis} has no run directories (folders with "
            f"config.json) below it"
        )
    return runs


_SWEEP = (
    "Train runs that differ only in {what} (e.g. `python -m helpers train "
    "--data DATA --run-dir runs/sweeps/{name} {flag}`), evaluate them, "
    "and rebuild with `--analysis runs/sweeps` to get the comparison table."
)


def _latent_section(sweeps: list[_Run]) -> str:
    """The latent-size comparison table (or how to make it), then the question."""
    todo = (
        f"{TODO} How do reconstructions, samples and the KL change with the "
        f"latent size? How many latent units are active?"
    )
    if sweeps:
        return _analysis_table(sweeps, "latent_dim") + "\n\n" + todo
    how = _SWEEP.format(what="the latent size", name="latent16", flag="--latent-dim 16")
    return todo + "\n>\n> " + how


def _beta_section(sweeps: list[_Run]) -> str:
    """The beta comparison table (or how to make it), then the question."""
    todo = (
        f"{TODO} What happens to reconstructions, samples and the latent "
        f"space as beta grows or shrinks? Where does the posterior collapse?"
    )
    if sweeps:
        return _analysis_table(sweeps, "beta") + "\n\n" + todo
    return todo + "\n>\n> " + _SWEEP.format(what="beta", name="beta4", flag="--beta 4")


def _blur_section(run: _Run) -> str:
    """The blur question, with the sharpness figures of evaluation.json if any."""
    blur = [
        f"{TODO} Why are VAE samples blurrier than the training faces? Consider "
        f"the Gaussian (MSE) likelihood, which averages over plausible details, and "
        f'the gap between the prior N(0, I) and the encoded faces ("prior holes").'
    ]
    sharp = (run.evaluation or {}).get("sharpness")
    if sharp:
        blur += [
            "",
            "Evidence from evaluation.json (variance of the Laplacian; lower "
            "is blurrier):",
            "",
            _table(("images", "sharpness"), sharp.items()),
        ]
    return "\n".join(blur)


def _improvements_section() -> str:
    """The closing question, with a few ideas."""
    return "\n".join(
        [
            f"{TODO} Which changes would you try next, and what do you expect from "
            f"each?",
            ">",
            "> Ideas: a larger decoder or residual blocks; KL warm-up; a learned or "
            "mixture prior (sample from a GMM fitted to the latent codes); a "
            "perceptual or adversarial loss for sharper images; more epochs on the "
            "full dataset.",
        ]
    )


def build_markdown(
    run_dir,
    out_dir,
    analysis=None,
    figures=None,
    template: str | os.PathLike = TEMPLATE,
) -> str:
    """Fill the report template from a run directory.

    Args:
        run_dir: the run directory (see ``helpers.runs``).
        out_dir: where report.md will live (image paths are relative to it; a loss
            plot drawn from history.csv is written there).
        analysis: optional folder holding the sweep's run directories.
        figures: optional folder of ``explore`` figures outside the run directory.
        template: the Markdown template with ``$section`` placeholders.

    Returns:
        The Markdown text, ending in a checksum comment.
    """
    root, out = Path(run_dir), Path(out_dir)
    if not root.is_dir():
        raise LabError(f"{root} is not a folder: pass a run directory with --run-dir")
    template = Path(template)
    if not template.exists():
        raise LabError(f"report template {template} not found: pass --template")
    out.mkdir(parents=True, exist_ok=True)
    run = _Run(root)
    sweeps = _sweep_runs(Path(analysis) if analysis else None)
    sections = {  # template placeholder -> its Markdown
        "title": f"Generating faces with a VAE: run `{root.name}`",
        "subtitle": "Built by `python -m helpers report` from the run "
        "directory; sections marked TODO are yours to write.",
        "summary": _summary_section(run),
        "dataset": _dataset_section(run),
        "architecture": _architecture_section(run),
        "training": _training_section(run),
        "losses": _loss_section(run, out),
        "epochs": _epochs_section(run, out),
        "generation": _generation_section(run, out, Path(figures) if figures else None),
        "evaluation": _evaluation_section(run),
        "analysis_latent": _latent_section(sweeps),
        "analysis_beta": _beta_section(sweeps),
        "analysis_blur": _blur_section(run),
        "improvements": _improvements_section(),
    }
    body = Template(template.read_text(encoding="utf-8")).safe_substitute(sections)
    body = body.rstrip() + "\n"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return body + f"\n<!-- report-sha256: {digest} -->\n"


def edited(text: str) -> bool:
    """True if report.md text no longer matches the checksum it was written with."""
    match = CHECKSUM.search(text)
    if match is None:
        return True
    body = text[: match.start()]
    return hashlib.sha256(body.encode("utf-8")).hexdigest() != match.group(1)


# ------------------------------------------------------------------------ html
def data_uri(path: Path) -> str:
    """Return the file as a ``data:`` URI (base64)."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{kind};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


class _EmbedImages(Treeprocessor):
    """Replace each local image's ``src`` by a ``data:`` URI of the file's bytes."""

    def __init__(self, md, base: Path):
        super().__init__(md)
        self.base = base

    def run(self, root):
        for img in root.iter("img"):
            src, alt = img.get("src", ""), img.get("alt", "")
            path = Path(src) if Path(src).is_absolute() else self.base / src
            img.attrib.clear()
            if src.startswith(("http://", "https://", "data:")) or not path.is_file():
                img.tag, img.text = "em", f"[image not found: {src}]"
            else:
                img.attrib.update(src=data_uri(path), alt=alt, title=alt)


def markdown_to_html(
    text: str, base: str | os.PathLike = ".", title: str | None = "Report"
) -> str:
    """Convert report Markdown into one self-contained HTML page.

    Python-Markdown does the conversion (with its ``tables`` and ``fenced_code``
    extensions); images are embedded from files relative to ``base`` as ``data:``
    URIs, and HTML comments (the checksum) are dropped. ``title=None`` returns the
    body alone.
    """
    converter = markdown.Markdown(
        extensions=["tables", "fenced_code"], output_format="html"
    )
    converter.treeprocessors.register(_EmbedImages(converter, Path(base)), "embed", 0)
    inner = converter.convert(re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL))
    if title is None:
        return inner
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{inner}\n</body>\n</html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
    "padding:0 1rem;line-height:1.5;color:#222}"
    "table{border-collapse:collapse;margin:1rem 0}th,td{border:1px solid #ccc;"
    "padding:.25rem .5rem;text-align:left}th{background:#f3f3f3}"
    "img{max-width:100%;image-rendering:pixelated}"
    "blockquote{border-left:4px solid #e0a000;margin:1rem 0;padding:.25rem 1rem;"
    "background:#fff8e5}code{background:#f3f3f3;padding:0 .2rem}"
    "figure{margin:1rem 0}"
)


# ----------------------------------------------------------------------- command
def write_report(
    run_dir,
    out_dir=None,
    analysis=None,
    figures=None,
    template=TEMPLATE,
    force=False,
    html_only=False,
) -> tuple[Path, Path]:
    """Write report.md (unless ``html_only``) and report.html; return both paths.

    Raises:
        LabError: report.md was edited by hand (use ``html_only`` or ``force``),
            or the run or template is missing.
    """
    out = Path(out_dir) if out_dir else Path(run_dir) / "report"
    md_path, html_path = out / "report.md", out / "report.html"
    if html_only:
        if not md_path.exists():
            raise LabError(
                f"{md_path} does not exist yet: build it first without " f"--html-only"
            )
        text = md_path.read_text(encoding="utf-8")
    else:
        if (
            md_path.exists()
            and not force
            and edited(md_path.read_text(encoding="utf-8"))
        ):
            raise LabError(
                f"{md_path} was edited by hand: rebuild only the HTML with "
                f"--html-only, or pass --force to overwrite your edits"
            )
        text = build_markdown(run_dir, out, analysis, figures, template)
        md_path.write_text(text, encoding="utf-8")
    title = f"VAE report: {Path(run_dir).name}"
    html_path.write_text(markdown_to_html(text, out, title), encoding="utf-8")
    return md_path, html_path
