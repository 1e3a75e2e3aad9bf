"""The instructor's ``export-model``: publish a trained run for students to download.

``python -m helpers export-model RUN_DIR OUT.keras`` writes the run's best model as a
portable file (``helpers.pretrained.export_portable_model``: Keras' own layers only,
so it loads in the student release) and prints its SHA-256 and the two lines to
paste into ``helpers/pretrained.py``.
"""

from __future__ import annotations

from helpers.validate import output_file_of


def export_model_command(parser):
    """``python -m helpers export-model``: write a run's model as a portable file."""
    from helpers.pretrained import INSTRUCTOR_MODEL_URL

    parser.add_argument(
        "run_dir", help="a trained run directory (it holds best.keras and config.json)"
    )
    parser.add_argument(
        "out",
        type=output_file_of(".keras"),
        help="the portable model file to write, e.g. model.keras",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace OUT if it already exists"
    )
    parser.add_argument(
        "--url",
        default=INSTRUCTOR_MODEL_URL,
        help="where you will upload OUT, for the printed lines (default: the current "
        "INSTRUCTOR_MODEL_URL)",
    )

    def run(args) -> int:
        from helpers.pretrained import export_portable_model

        path, digest = export_portable_model(args.run_dir, args.out, force=args.force)
        size = path.stat().st_size / 2**20
        print(f"wrote {path} ({size:.1f} MiB)\nSHA-256 {digest}")
        print(
            f"Upload it to {args.url} (e.g. as a GitHub release asset), then set in "
            "helpers/pretrained.py:\n"
            f'INSTRUCTOR_MODEL_URL = "{args.url}"\n'
            f'INSTRUCTOR_MODEL_SHA256 = "{digest}"'
        )
        return 0

    return run
