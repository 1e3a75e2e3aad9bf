"""``python -m vaelab report``: build the hand-in report.md and report.html."""

from __future__ import annotations

from helpers.report import TEMPLATE, write_report
from vaelab.validate import output_dir


def report_command(parser):
    """``python -m vaelab report``: build report.md and report.html from a run."""
    parser.add_argument("--run-dir", required=True, help="the run directory")
    parser.add_argument(
        "--analysis",
        default=None,
        help="folder holding the run directories of your latent-size "
        "and beta experiments (fills the analysis tables)",
    )
    parser.add_argument(
        "--figures",
        default=None,
        help="folder of `explore` figures, if outside the run directory",
    )
    parser.add_argument(
        "--out",
        default=None,
        type=output_dir,
        help="output folder (default: RUN_DIR/report)",
    )
    parser.add_argument(
        "--template",
        default=str(TEMPLATE),
        help="Markdown template with $section placeholders",
    )
    parser.add_argument(
        "--html-only",
        action="store_true",
        help="keep report.md (with your edits); rebuild report.html",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite report.md even if you edited it"
    )

    def run(args) -> int:
        md_path, html_path = write_report(
            args.run_dir,
            args.out,
            args.analysis,
            args.figures,
            args.template,
            args.force,
            args.html_only,
        )
        print(f"wrote {md_path}" if not args.html_only else f"kept {md_path}")
        print(f"wrote {html_path} (self-contained: figures embedded)")
        return 0

    return run
