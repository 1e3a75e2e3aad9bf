"""Build a run's report.md and self-contained report.html: fill the template's
``$section`` placeholders from the run's files; a missing file's section says why."""

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

from helpers.cache import cache_info, evenly
from helpers.celeba import is_generated_slice
from helpers.config import VAEConfig
from helpers.errors import DataError, LabError
from helpers.plots import plot_history, read_history, read_history_rows
from helpers.runs import RunPaths, read_info

# Symlinks to report_template/, so the template also ships in the wheel.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.md"
STYLE = TEMPLATE.with_name("report.css")
CHECKSUM = re.compile(r"\n<!-- report-sha256: ([0-9a-f]{64}) -->\n?$")
FIGURES = {  # file name: "heading. caption"
    "prior_samples.png": "Samples from the prior. Faces decoded from z ~ N(0, I).",
    "gmm_samples.png": "Samples from a mixture fitted to the latent codes. z drawn "
    "from a Gaussian mixture fitted to encoded training faces.",
    "reconstructions.png": "Reconstructions. Held-out faces (top) and their "
    "reconstructions (bottom).",
    "latent_grid_2d.png": "A 2-D slice of the latent space. Decoded points on a grid "
    "spanning two latent directions.",
    "interpolation.png": "Interpolation. Decoded points between two faces.",
    "traversal.png": "Latent traversal. One latent dimension varied per row.",
    "attribute_*.png": "Attribute arithmetic. Adding and removing the '{}' direction",
}
LOSSES = ("loss", "reconstruction_loss", "kl_loss")
SWEEPS = {"analysis_latent": "latent_dim", "analysis_beta": "beta"}  # config field


def _table(header, rows) -> str:
    def cell(value):
        value = f"{value:.4g}" if isinstance(value, float) else str(value)
        return value.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(cell, row)) + " |" for row in rows]
    return "\n".join(lines)


def _missing(what: str, command: str, them: bool = False) -> str:
    return (
        f"> **Missing:** {what}. Make {'them' if them else 'it'} with `{command}`, "
        f"then rebuild this report."
    )


def _image(path: Path, out: Path, caption: str) -> str:
    return f"![{caption}]({Path(os.path.relpath(path, out)).as_posix()})"


class _Run:
    """The files of one run directory, read leniently."""

    def __init__(self, root: Path):
        self.root, self.paths = root, RunPaths(root)
        config, path = self.paths.config, root / "evaluation.json"
        self.config = VAEConfig.load(config) if config.exists() else None
        self.evaluation = json.loads(path.read_text()) if path.exists() else None
        self.info, self.history = read_info(root), read_history_rows(self.paths.history)
        self.train = f"python -m vaelab train --data DATA --run-dir {root}"
        self.layers = architecture_rows(root)
        self.encoder, self.decoder = (
            sum(r[3] for r in self.layers if r[0] == p) for p in ("encoder", "decoder")
        )
        first = self.history[0] if self.history else {}
        keys = ("val_loss_at_target_beta", "loss_at_target_beta", "val_loss", "loss")
        self.key = key = next((k for k in keys if k in first), "loss")  # best.keras's
        self.best = min(
            self.history, key=lambda r: r.get(key, float("inf")), default=None
        )
        cache = self.info.get("cache_dir")
        try:
            meta = cache_info(cache) if cache else {}
        except DataError:
            meta = {}
        self.generated = bool(meta.get("source")) and is_generated_slice(meta["source"])
        self.counts = meta.get("counts", {})


def architecture_rows(run_dir) -> list[tuple[str, str, str, int]]:
    """Return the (part, layer, output, parameters) rows of the architecture.json."""
    path = RunPaths(Path(run_dir)).architecture
    if not path.exists():
        return []
    rows = []
    for row in json.loads(path.read_text(encoding="utf-8")):
        shape = row.get("output") or []
        shapes = shape if shape and isinstance(shape[0], list) else [shape]
        shape = " + ".join("x".join(str(d) for d in s) for s in shapes)
        layer = f"{row['layer']}: {row['class']}"
        rows.append((row["part"], layer, shape, row["parameters"]))
    return rows


def _summary_section(run: _Run) -> str:
    c, total = run.config, run.encoder + run.decoder
    data = "a generated CelebA-format slice" if run.generated else "CelebA faces"
    summary = (
        f"A convolutional variational autoencoder (VAE) trained on {data} "
        f"at {c.image_size}x{c.image_size}: latent size {c.latent_dim}, "
        f"beta = {c.beta:g}, {c.reconstruction_loss.upper()} reconstruction loss"
        + (f", {total:,} parameters" if total else "")
        + f". Run directory: `{run.root}` "
        f"(preset `{c.name}`), {len(run.history)} of {c.epochs} epochs in history.csv"
    )
    if run.best is not None:
        best = run.best[run.key]
        summary += f"; best {run.key} {best:.4g} at epoch {int(run.best['epoch']) + 1}"
    return summary + "."


def _dataset_section(run: _Run) -> str:
    c, counts, used = run.config, run.counts, []
    for name, limit, full in (
        ("training", c.train_limit, counts.get("train", 162_770)),
        ("validation", c.val_limit, counts.get("validation", 19_867)),
    ):
        how = f"the first {limit:,}" if limit and limit < full else f"all {full:,}"
        used.append(f"{how} {name} images")
    split = ", ".join(used)
    data_line = (
        "- **Data:** a procedurally GENERATED stand-in in CelebA's file layout "
        "(cartoon faces drawn by `vaelab.synthetic`), NOT CelebA: the numbers "
        f"below say nothing about real faces. Split: {split}."
        if run.generated
        else "- **Data:** CelebA, aligned and cropped faces (202,599 images of "
        f"10,177 celebrities, 178x218 JPEG), official split: {split}."
    )
    left, top, width, height = c.crop
    low, high = c.value_range
    cache = f" (`{run.info['cache_dir']}`)" if run.info.get("cache_dir") else ""
    return (
        f"{data_line}\n- **Crop:** the central face box (left {left}, top {top}, "
        f"{width}x{height} pixels), so faces are not stretched.\n- **Resize:** to "
        f"{c.image_size}x{c.image_size} with an antialiased bilinear filter, decoded "
        f"once into a uint8 cache{cache}.\n- **Scale:** pixels to [{low:g}, "
        f"{high:g}] to match the decoder's {c.output_activation} output."
    )


def _architecture_section(run: _Run) -> str:
    if not run.layers:
        return "(no architecture.json in the run: it was trained by an older lab)"
    rows = [(part, layer, shape, f"{n:,}") for part, layer, shape, n in run.layers]
    return _table(("part", "layer", "output", "parameters"), rows) + (
        f"\n\nEncoder {run.encoder:,} parameters, decoder {run.decoder:,}, total "
        f"{run.encoder + run.decoder:,}."
    )


def _training_section(run: _Run) -> str:
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
    history = run.history
    if not history:
        return _missing(f"{run.paths.history} (the per-epoch losses)", run.train)
    figure = run.paths.loss_curves
    if not figure.exists():
        import matplotlib.pyplot as plt  # only when the run has no loss_curves.png

        figure, title = out / "loss_curves.png", f"Losses of {run.root.name}"
        plt.close(plot_history(read_history(run.paths.history), figure, title=title))
    keys = [p + k for p in ("", "val_") for k in LOSSES if p + k in history[0]]
    rows = [[int(r["epoch"]) + 1] + [r[k] for k in keys] for r in evenly(history, 10)]
    caption = "Total, reconstruction and KL loss (train solid, validation dashed)"
    return (
        f"{_image(figure, out, caption)}\n\n{_table(['epoch'] + keys, rows)}\n\n"
        f"Best epoch: {int(run.best['epoch']) + 1}."
    )


def _epochs_section(run: _Run, out: Path) -> str:
    grids = sorted(run.paths.samples.glob("epoch_*.png"))
    if not grids:
        return _missing(f"sample grids in {run.paths.samples}", run.train)
    parts = []
    for grid in evenly(grids, 4):
        epoch = int(re.sub(r"\D", "", grid.stem) or 0)
        parts += [f"**Epoch {epoch}**", _image(grid, out, f"Faces after epoch {epoch}")]
    return "\n\n".join(parts)


def _generation_section(run: _Run, out: Path, figures) -> str:
    roots = ([Path(figures)] if figures else []) + [run.root]
    command = f"python -m vaelab explore --run-dir {run.root} --out {run.root}/figures"

    def find(pattern):  # in the first root with any, outside the report and samples/
        for root in roots:
            found = [p for p in sorted(root.rglob(pattern)) if out not in p.parents]
            if found := [p for p in found if "samples" not in p.parent.name]:
                return found
        return []

    parts, missing = [], []
    for pattern, text in FIGURES.items():
        heading, caption = text.split(". ", 1)
        if not (found := find(pattern)):
            missing.append(pattern)
            continue
        parts += [f"**{heading}.**", ""]
        for path in found if "*" in pattern else found[:1]:  # every attribute strip
            name = path.stem.removeprefix("attribute_").replace("_", " ")
            parts += [_image(path, out, caption.format(name)), ""]
    if missing:
        parts.append(_missing("the figures " + ", ".join(missing), command, them=True))
    return "\n".join(parts).rstrip()


def _evaluation_section(run: _Run) -> str:
    command = f"python -m vaelab evaluate --run-dir {run.root} --fid --kid"
    if run.evaluation is None:
        return _missing(f"{run.root / 'evaluation.json'} (no evaluation yet)", command)
    data, columns = run.evaluation, ("section", "metric", "value", "n", "note")
    rows = [tuple(r.get(k, "") for k in columns) for r in data.get("rows", [])]
    if not rows:
        return _missing("rows in evaluation.json", command)
    text = (
        f"Evaluated on {data.get('n', '?')} {data.get('split', '')} images "
        f"(N is given per row: FID and KID depend strongly on it).\n\n"
        + _table(("section", "metric", "value", "N", "note"), rows)
    )
    if not any(r[0] == "fid" for r in rows):
        text += "\n\n" + _missing("FID/KID", command)
    return text


def _sweep_section(sweeps: list[_Run], key) -> str:
    if not sweeps:
        return "> (No `--analysis` runs in this build: make them as said above.)"
    rows = []
    for run in sorted(sweeps, key=lambda r: (getattr(r.config, key), r.root.name)):
        c, last, ev = run.config, (run.history or [{}])[-1], run.evaluation or {}
        row = [run.root.name, c.latent_dim, f"{c.beta:g}", len(run.history)]
        row += [last.get(f"val_{k}", "-") for k in LOSSES]
        row.append(ev.get("latent", {}).get("active_units", "-"))
        rows.append(row + [ev.get("sharpness", {}).get("prior_samples", "-")])
    header = ("run", "latent", "beta", "epochs", "val loss", "val recon", "val KL")
    header += ("active units", "prior sharpness")
    return _table(header, rows)


def _blur_section(run: _Run) -> str:
    if sharp := (run.evaluation or {}).get("sharpness"):
        return _table(("images", "sharpness"), sharp.items())
    command = f"python -m vaelab evaluate --run-dir {run.root}"
    return _missing(f"sharpness in {run.root / 'evaluation.json'}", command)


def build_markdown(run_dir, out_dir, analysis=None, figures=None, template=TEMPLATE):
    """Fill the template from a run directory; return the Markdown, ending in a checksum
    (image paths relative to ``out_dir``; ``figures``: explore's if outside the run)."""
    root, out = Path(run_dir), Path(out_dir)
    if not root.is_dir():
        raise LabError(f"{root} is not a folder: pass a run directory with --run-dir")
    template = Path(template)
    if not template.exists():
        raise LabError(f"report template {template} not found: pass --template")
    out.mkdir(parents=True, exist_ok=True)
    run, sweeps = _Run(root), []
    if analysis:
        sweeps = [_Run(p.parent) for p in sorted(Path(analysis).rglob("config.json"))]
        sweeps = [r for r in sweeps if r.config]
        if not sweeps:
            raise LabError(f"--analysis {analysis} holds no run folder (config.json)")
    no_config = _missing(f"{run.paths.config} (the run's settings)", run.train)
    sections = {  # template placeholder -> its Markdown
        "run": root.name,
        "summary": _summary_section(run) if run.config else no_config,
        "dataset": _dataset_section(run) if run.config else no_config,
        "architecture": _architecture_section(run) if run.config else no_config,
        "training": _training_section(run) if run.config else no_config,
        "losses": _loss_section(run, out),
        "epochs": _epochs_section(run, out),
        "generation": _generation_section(run, out, figures),
        "evaluation": _evaluation_section(run),
        **{name: _sweep_section(sweeps, key) for name, key in SWEEPS.items()},
        "analysis_blur": _blur_section(run),
    }
    body = Template(template.read_text(encoding="utf-8")).safe_substitute(sections)
    body = body.rstrip() + "\n"
    digest = hashlib.sha256(body.encode("utf-8")).hexdigest()
    return body + f"\n<!-- report-sha256: {digest} -->\n"


def edited(text: str) -> bool:
    """True if report.md text no longer matches the checksum it was written with."""
    match = CHECKSUM.search(text)
    body = text[: match.start()] if match else ""
    return not match or hashlib.sha256(body.encode("utf-8")).hexdigest() != match[1]


class _EmbedImages(Treeprocessor):
    """Replace each local image's ``src`` by a ``data:`` URI of the file's bytes."""

    def run(self, root):
        for img in root.iter("img"):
            src, alt = img.get("src", ""), img.get("alt", "")
            path = self.base / src  # an absolute src stays itself
            img.attrib.clear()
            if src.startswith(("http://", "https://", "data:")) or not path.is_file():
                img.tag, img.text = "em", f"[image not found: {src}]"
            else:
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                img.attrib.update(src=f"data:{kind};base64,{data}", alt=alt, title=alt)


def markdown_to_html(text: str, base=".", title: str | None = "Report") -> str:
    """Convert report Markdown into one HTML page, images (relative to ``base``)
    embedded, comments dropped; ``title=None`` returns the body alone."""
    md = markdown.Markdown(extensions=["tables", "fenced_code"], output_format="html")
    embed = _EmbedImages(md)
    embed.base = Path(base)
    md.treeprocessors.register(embed, "embed", 0)
    inner = md.convert(re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL))
    if title is None:
        return inner
    style = STYLE.read_text(encoding="utf-8")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{style}</style>\n</head>\n"
        f"<body>\n{inner}\n</body>\n</html>\n"
    )


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
    Raises LabError when report.md was edited by hand (unless ``force``)."""
    out = Path(out_dir) if out_dir else Path(run_dir) / "report"
    md_path, html_path = out / "report.md", out / "report.html"
    text = md_path.read_text(encoding="utf-8") if md_path.exists() else None
    if html_only and text is None:
        raise LabError(f"{md_path} does not exist: build it first without --html-only")
    if not html_only:
        if text is not None and not force and edited(text):
            raise LabError(
                f"{md_path} was edited by hand: rebuild only the HTML with "
                f"--html-only, or pass --force to overwrite your edits"
            )
        text = build_markdown(run_dir, out, analysis, figures, template)
        md_path.write_text(text, encoding="utf-8")
    title = f"VAE report: {Path(run_dir).name}"
    html_path.write_text(markdown_to_html(text, out, title), encoding="utf-8")
    return md_path, html_path
