"""Progress with an ETA for the whole job: ``RunETA`` for ``fit()`` (also of a
resumed run), ``progress`` for long loops (a tqdm bar with the lab's defaults)."""

from __future__ import annotations

import time

import keras


def format_duration(seconds: float) -> str:
    """Return seconds as '45 s', '12 min 05 s' or '2 h 03 min'."""
    minutes, seconds = divmod(max(0, int(round(seconds))), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"
    return "{} h {:02d} min".format(*divmod(minutes, 60))


class RunETA(keras.callbacks.Callback):
    """Print where the run (``total_epochs``, default ``fit``'s) stands and the time
    left, from this session's mean epoch after the first (compiling; no clock time:
    Colab's is UTC), when the next epoch begins or training ends (not inside the bar).
    """

    def __init__(self, total_epochs=None, clock=time.monotonic, printer=print):
        super().__init__()
        self.total_epochs = total_epochs
        self.clock = clock
        self.printer = printer
        self._pending = None

    def on_train_begin(self, logs=None):
        self._train_start = self.clock()
        self._epoch_seconds = []
        self._pending = None

    def on_epoch_begin(self, epoch, logs=None):
        self.on_train_end()
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self._epoch_seconds.append(now - self._epoch_start)
        total = self.total_epochs or (self.params or {}).get("epochs") or epoch + 1
        done, session = epoch + 1, len(self._epoch_seconds)
        steady = self._epoch_seconds[1:] or self._epoch_seconds
        left = (total - done) * sum(steady) / len(steady)
        tail = f", about {format_duration(left)} left for the run."
        self._pending = (
            f"[run] epoch {done}/{total} done: {session} epoch"
            f"{'s' if session != 1 else ''} in "
            f"{format_duration(now - self._train_start)} this session"
            + ("; the run is complete." if done >= total else tail)
        )

    def on_train_end(self, logs=None):
        if self._pending:
            self.printer(self._pending)
            self._pending = None


def progress(iterable=None, desc=None, total=None, unit="it", disable=False, **kwargs):
    """Return a tqdm bar (notebook widget or text) with elapsed time and ETA."""
    from tqdm.auto import tqdm

    from helpers.environment import enable_colab_widgets

    if not disable:
        enable_colab_widgets()  # the notebook bar is an ipywidget
    kwargs.setdefault("mininterval", 1.0)  # Colab's output is slow to redraw
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, **kwargs)
