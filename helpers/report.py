"""Build the hand-in report from a run directory: report.md and one report.html.

Fills the ``$section`` placeholders of ``report_template/report.md`` (which holds
the fixed text; ``report.css`` styles the HTML) from the run's files; a missing file
never stops the build (its section says which command makes it). The HTML embeds
every figure. Nothing here imports TensorFlow.
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

from helpers.cache import cache_info, evenly
from helpers.celeba import is_generated_slice
from helpers.config import VAEConfig
from helpers.errors import DataError, LabError
from helpers.plots import plot_history, read_history_rows
from helpers.runs import RunPaths, read_info

# Symlinks to report_template/, so the template also ships in the wheel.
TEMPLATE = Path(__file__).resolve().parent / "templates" / "report.md"
STYLE = TEMPLATE.with_name("report.css")
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
LOSSES = ("loss", "reconstruction_loss", "kl_loss")
SWEEPS = {  # placeholder: (config field, what differs, example run, its flag)
    "analysis_latent": ("latent_dim", "the latent size", "latent16", "--latent-dim 16"),
    "analysis_beta": ("beta", "beta", "beta4", "--beta 4"),
}


def _table(header, rows) -> str:
    def cell(value):
        if isinstance(value, float):
            value = f"{value:.4g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

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

    def best(self) -> tuple[str, dict | None]:
        """The column best.keras was chosen by, and the best epoch's row (or None)."""
        first = self.history[0] if self.history else {}
        keys = ("val_loss_at_target_beta", "loss_at_target_beta", "val_loss", "loss")
        key = next((k for k in keys if k in first), "loss")
        best = min(self.history, key=lambda r: r.get(key, float("inf")), default=None)
        return key, best

    def data_facts(self) -> tuple[bool, dict]:
        """(is the data the generated stand-in?, split counts of the cache)."""
        cache = self.info.get("cache_dir")
        try:
            meta = cache_info(cache) if cache else {}
        except DataError:
            meta = {}
        source = meta.get("source")
        return bool(source) and is_generated_slice(source), meta.get("counts", {})

    def parameters(self) -> tuple[int, int]:
        """The (encoder, decoder) parameter counts of the run's model."""
        rows = architecture_rows(self.root)
        return tuple(
            sum(r[3] for r in rows if r[0] == p) for p in ("encoder", "decoder")
        )


def architecture_rows(run_dir) -> list[tuple[str, str, str, int]]:
    """Return (part, layer, output shape, parameters) of the model that trained,
    from the run's architecture.json ([] without one)."""
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
    c, (encoder, decoder) = run.config, run.parameters()
    data = "a generated CelebA-format slice" if run.data_facts()[0] else "CelebA faces"
    summary = (
        f"A convolutional variational autoencoder (VAE) trained on {data} "
        f"at {c.image_size}x{c.image_size}: latent size {c.latent_dim}, "
        f"beta = {c.beta:g}, {c.reconstruction_loss.upper()} reconstruction loss"
        + (f", {encoder + decoder:,} parameters" if encoder + decoder else "")
        + f". Run directory: `{run.root}` "
        f"(preset `{c.name}`), {len(run.history)} of {c.epochs} epochs in history.csv"
    )
    key, best = run.best()
    if best is not None:
        summary += f"; best {key} {best[key]:.4g} at epoch {int(best['epoch']) + 1}"
    return summary + "."


def _dataset_section(run: _Run) -> str:
    c, (generated, counts) = run.config, run.data_facts()
    used = []
    for split, limit, full in (
        ("training", c.train_limit, counts.get("train", 162_770)),
        ("validation", c.val_limit, counts.get("validation", 19_867)),
    ):
        if limit and limit < full:
            used.append(f"the first {min(limit, full):,} {split} images")
        else:
            used.append(f"all {full:,} {split} images")
    split = ", ".join(used)
    data_line = (
        "- **Data:** a procedurally GENERATED stand-in in CelebA's file layout "
        "(cartoon faces drawn by `vaelab.synthetic`), NOT CelebA: the numbers "
        f"below say nothing about real faces. Split: {split}."
        if generated
        else "- **Data:** CelebA, aligned and cropped faces (202,599 images of "
        f"10,177 celebrities, 178x218 JPEG), official split: {split}."
    )
    left, top, width, height = c.crop
    low, high = c.value_range
    cache = f" (`{run.info['cache_dir']}`)" if run.info.get("cache_dir") else ""
    return "\n".join(
        [
            data_line,
            f"- **Crop:** the central face box (left {left}, top {top}, "
            f"{width}x{height} pixels), so faces are not stretched.",
            f"- **Resize:** to {c.image_size}x{c.image_size} with an antialiased "
            f"bilinear filter, decoded once into a uint8 cache{cache}.",
            f"- **Scale:** pixels to [{low:g}, {high:g}] to match the decoder's "
            f"{c.output_activation} output.",
            "- **Caveat:** CelebA is skewed towards young, light-skinned celebrities; "
            "the model inherits that bias.",
        ]
    )


def _architecture_section(run: _Run) -> str:
    rows = architecture_rows(run.root)
    if not rows:
        return "(no architecture.json in the run: it was trained by an older lab)"
    encoder, decoder = run.parameters()
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

        columns = {k: [r.get(k, float("nan")) for r in history] for k in history[0]}
        figure = out / "loss_curves.png"
        plt.close(plot_history(columns, figure, title=f"Losses of {run.root.name}"))
    keys = [p + k for p in ("", "val_") for k in LOSSES if p + k in history[0]]
    rows = [[int(r["epoch"]) + 1] + [r[k] for k in keys] for r in evenly(history, 10)]
    caption = (
        "Total, reconstruction and KL loss per epoch (train solid, validation dashed)"
    )
    pixels = run.config.image_size**2 * 3 if run.config else 12288
    return (
        f"{_image(figure, out, caption)}\n\n{_table(['epoch'] + keys, rows)}\n\n"
        f"Best epoch: {int(run.best()[1]['epoch']) + 1}. The reconstruction term is "
        f"summed over the {pixels:,} pixel values of an image and the KL over the "
        f"latent dimensions, both averaged over the batch."
    )


def _epochs_section(run: _Run, out: Path) -> str:
    grids = sorted(run.paths.samples.glob("epoch_*.png"))
    if not grids:
        return _missing(f"sample grids in {run.paths.samples}", run.train)
    parts = [
        "The same latent vectors decoded after each of these epochs: faces "
        "appear as training goes on."
    ]
    for grid in evenly(grids, 4):
        epoch = int(re.sub(r"\D", "", grid.stem) or 0)
        image = _image(grid, out, f"Faces after epoch {epoch}")
        parts += ["", f"**Epoch {epoch}**", "", image]
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


def _generation_section(run: _Run, out: Path, figures) -> str:
    roots = ([Path(figures)] if figures else []) + [run.root]
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
    else:
        missing.append("attribute_*.png (attribute arithmetic)")
    for path in attributes:
        name = path.stem.removeprefix("attribute_").replace("_", " ")
        parts += [_image(path, out, f"Adding and removing the '{name}' direction"), ""]
    if missing:
        explore = f"python -m vaelab explore --run-dir {run.root}"
        command = f"{explore} --out {run.root}/figures"
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


def _sweep_section(sweeps: list[_Run], key, what, name, flag) -> str:
    """The table of the runs that differ in ``key`` (or how to make them)."""
    if not sweeps:
        return (
            f"> Train runs that differ only in {what} (e.g. `python -m "
            f"vaelab train --data DATA --run-dir runs/sweeps/{name} {flag}`), "
            "evaluate them, and rebuild with `--analysis runs/sweeps` to get the "
            "comparison table."
        )
    rows = []
    for run in sorted(sweeps, key=lambda r: (getattr(r.config, key), r.root.name)):
        c, last = run.config, run.history[-1] if run.history else {}
        latent = (run.evaluation or {}).get("latent", {})
        sharp = (run.evaluation or {}).get("sharpness", {})
        row = [run.root.name, c.latent_dim, f"{c.beta:g}", len(run.history)]
        row += [last.get(f"val_{k}", "-") for k in LOSSES]
        rows.append(
            row + [latent.get("active_units", "-"), sharp.get("prior_samples", "-")]
        )
    header = ("run", "latent", "beta", "epochs", "val loss", "val recon", "val KL")
    header += ("active units", "prior sharpness")
    return _table(header, rows)


def _blur_section(run: _Run) -> str:
    sharp = (run.evaluation or {}).get("sharpness")
    if not sharp:
        return ""
    return (
        "Evidence from evaluation.json (variance of the Laplacian; lower is "
        "blurrier):\n\n" + _table(("images", "sharpness"), sharp.items())
    )


def build_markdown(run_dir, out_dir, analysis=None, figures=None, template=TEMPLATE):
    """Fill the report template from a run directory; return the Markdown.

    Image paths are relative to ``out_dir``; ``analysis`` holds the sweep's runs,
    ``figures`` the ``explore`` figures if outside the run. Ends in a checksum.
    """
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
            raise LabError(
                f"--analysis {analysis} has no run directories (folders with "
                f"config.json) below it"
            )
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
        **{name: _sweep_section(sweeps, *sweep) for name, sweep in SWEEPS.items()},
        "analysis_blur": _blur_section(run),
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
                kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                data = base64.b64encode(path.read_bytes()).decode("ascii")
                img.attrib.update(src=f"data:{kind};base64,{data}", alt=alt, title=alt)


def markdown_to_html(text: str, base=".", title: str | None = "Report") -> str:
    """Convert report Markdown into one HTML page, images (relative to ``base``)
    embedded, comments dropped; ``title=None`` returns the body alone."""
    converter = markdown.Markdown(
        extensions=["tables", "fenced_code"], output_format="html"
    )
    converter.treeprocessors.register(_EmbedImages(converter, Path(base)), "embed", 0)
    inner = converter.convert(re.sub(r"<!--.*?-->", "", text, flags=re.DOTALL))
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
        raise LabError(
            f"{md_path} does not exist yet: build it first without --html-only"
        )
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
