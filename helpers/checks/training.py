"""Self-check for 04_train: the callback list."""

from __future__ import annotations

from pathlib import Path

from helpers.checks._common import (
    CheckFailed,
    _call,
    _passed,
)


# ----------------------------------------------------------------------- callbacks
def _same_path(value, want: Path) -> bool:
    return value is not None and Path(str(value)).resolve() == want.resolve()


def _inside(value, root: Path) -> bool:
    if value is None:
        return False
    path, root = Path(str(value)).resolve(), root.resolve()
    return path == root or root in path.parents


def check_callbacks(callbacks, run_dir) -> None:
    """Check the training callbacks write everything a run directory needs.

    Looks for ModelCheckpoint (val_loss, best only, run_dir/best.keras),
    TensorBoard (under run_dir), CSVLogger (run_dir/history.csv, append=True),
    TerminateOnNaN, BackupAndRestore (under run_dir) and the lab's SampleGrid
    (matched by class name). Subclasses count.

    Args:
        callbacks: the list passed to ``fit(callbacks=...)``, or a function of no
            arguments that returns it (``lambda: make_callbacks(...)``), so a TODO
            left as ``raise NotImplementedError()`` gets the friendly message.
        run_dir: the run directory they should write to.

    Raises:
        CheckFailed: listing every missing or misconfigured callback.
    """
    from helpers.runs import RunPaths

    paths = RunPaths(Path(run_dir))
    if callable(callbacks) and not isinstance(callbacks, (list, tuple)):
        callbacks = _call(
            callbacks, what="make_callbacks"
        )  # lambda: make_callbacks(...)
    if not isinstance(callbacks, (list, tuple)):
        raise CheckFailed(
            f"expected a list of callbacks, got {type(callbacks).__name__}"
        )
    found: dict[str, object] = {}
    problems = []
    for index, item in enumerate(callbacks):
        if isinstance(item, type):
            problems.append(
                f"item {index} is the class {item.__name__}, not an "
                f"instance: add the parentheses and arguments"
            )
            continue
        names = [cls.__name__ for cls in type(item).__mro__]
        if "Callback" not in names:
            problems.append(
                f"item {index} is a {type(item).__name__}, not a Keras " f"callback"
            )
        for name in names:
            found.setdefault(name, item)
    needs = {
        "ModelCheckpoint": "ModelCheckpoint(run_dir / 'best.keras', "
        "monitor='val_loss', save_best_only=True) keeps the best model for evaluation",
        "TensorBoard": "TensorBoard(log_dir=run_dir / 'tensorboard') to watch the "
        "losses live",
        "CSVLogger": "CSVLogger(run_dir / 'history.csv', append=True) writes the loss "
        "table that plots and the report read",
        "TerminateOnNaN": "TerminateOnNaN() stops at the first NaN loss instead of "
        "training on garbage",
        "BackupAndRestore": "BackupAndRestore(run_dir / 'backup') lets an interrupted "
        "run (a Colab disconnect) resume where it stopped",
        "SampleGrid": "SampleGrid(...) from helpers.callbacks decodes the fixed latent "
        "vectors into run_dir/samples/ so you can watch faces appear",
    }
    for name, hint in needs.items():
        if name not in found:
            problems.append(f"missing {name}: {hint}")
    checkpoint = found.get("ModelCheckpoint")
    if checkpoint is not None:
        if getattr(checkpoint, "monitor", None) != "val_loss":
            problems.append(
                f"ModelCheckpoint monitors {checkpoint.monitor!r}: use "
                f"monitor='val_loss' so the best model is chosen on "
                f"held-out images"
            )
        if not getattr(checkpoint, "save_best_only", False):
            problems.append(
                "ModelCheckpoint needs save_best_only=True, or it keeps the "
                "last epoch instead of the best"
            )
        if not _same_path(getattr(checkpoint, "filepath", None), paths.best_model):
            problems.append(
                f"ModelCheckpoint writes {checkpoint.filepath}: save to "
                f"{paths.best_model} (evaluate and sample load it)"
            )
    logger = found.get("CSVLogger")
    if logger is not None:
        if not _same_path(getattr(logger, "filename", None), paths.history):
            problems.append(f"CSVLogger writes {logger.filename}: use {paths.history}")
        if not getattr(logger, "append", False):
            problems.append(
                "CSVLogger needs append=True, or a resumed run overwrites "
                "the epochs before the interruption"
            )
    for name, attribute in (
        ("TensorBoard", "log_dir"),
        ("BackupAndRestore", "backup_dir"),
    ):
        callback = found.get(name)
        if callback is not None and not _inside(
            getattr(callback, attribute, None), paths.root
        ):
            problems.append(
                f"{name} writes to {getattr(callback, attribute, None)}: "
                f"keep it inside the run directory {paths.root}"
            )
    if problems:
        raise CheckFailed("callbacks to fix:\n- " + "\n- ".join(problems))
    _passed(
        "check_callbacks passed: best model, TensorBoard, history.csv, NaN guard, "
        "resume backup and sample grids all go to " + str(paths.root)
    )
