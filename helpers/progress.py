"""Progress with an ETA for the whole job, not just the current step.

- ``RunETA`` is a Keras callback: after every epoch it prints the epoch of the whole
  run (``epoch 12/40``), the time spent this session and the time left for the
  run, also when the run was resumed at a later epoch. ``helpers.training.train``
  adds it; use it in your own ``fit()`` too::

      model.fit(ds, epochs=40, callbacks=[RunETA()])

- ``progress(iterable, ...)`` is ``tqdm``'s notebook-aware progress bar (elapsed,
  rate and time left) with the lab's defaults, for long loops: evaluating many
  images, a sweep over runs, preparing the cache.
"""

from __future__ import annotations

import time

import keras


def format_duration(seconds: float) -> str:
    """Return seconds as '45 s', '12 min 05 s' or '2 h 03 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


class RunETA(keras.callbacks.Callback):
    """Print, after each epoch, where the whole run stands and when it will end.

    A line like ``[run] epoch 12/40 done: 3 epochs in 4 min 02 s this session,
    about 37 min 40 s left for the run``. The time per epoch is the mean of this
    session's epochs, leaving out the first when there are more (it includes
    tracing and compiling the model). With a resumed run (``initial_epoch`` > 0)
    the count starts at the resumed epoch. No clock time is shown: a Colab
    machine's clock is UTC, not the student's.

    The line of epoch k is printed when epoch k+1 begins (and at the end of
    training), so it never lands inside Keras' progress bar.

    Args:
        total_epochs: epochs of the whole run (default: ``fit``'s ``epochs``).
        clock: function returning seconds (tests pass a fake one).
        printer: function that shows a line (default ``print``).
    """

    def __init__(self, total_epochs=None, clock=time.monotonic, printer=print):
        super().__init__()
        self.total_epochs = total_epochs
        self.clock = clock
        self.printer = printer
        self._pending = None

    def on_train_begin(self, logs=None):
        self._first_epoch = None
        self._train_start = self.clock()
        self._epoch_seconds = []
        self._pending = None

    def on_epoch_begin(self, epoch, logs=None):
        self._flush()
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._epoch_start = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        now = self.clock()
        self._epoch_seconds.append(now - self._epoch_start)
        self._pending = self.message(epoch, now)

    def on_train_end(self, logs=None):
        self._flush()

    def _flush(self):
        if self._pending:
            self.printer(self._pending)
            self._pending = None

    def seconds_per_epoch(self) -> float:
        """Mean seconds per epoch of this session (the first left out if possible)."""
        times = self._epoch_seconds
        steady = times[1:] if len(times) > 1 else times
        return sum(steady) / len(steady)

    def message(self, epoch: int, now: float) -> str:
        """Return the line for 0-based ``epoch`` having just ended at ``now``."""
        total = self.total_epochs or (self.params or {}).get("epochs") or epoch + 1
        done = epoch + 1
        session = len(self._epoch_seconds)
        elapsed = now - self._train_start
        left = max(0, total - done) * self.seconds_per_epoch()
        text = (
            f"[run] epoch {done}/{total} done: {session} epoch"
            f"{'s' if session != 1 else ''} in {format_duration(elapsed)} this session"
        )
        if done >= total:
            return text + "; the run is complete."
        return text + f", about {format_duration(left)} left for the run."


def progress(iterable=None, desc=None, total=None, unit="it", disable=False, **kwargs):
    """Return a tqdm progress bar (notebook widget or text) with elapsed and ETA.

    Args:
        iterable: what to loop over (or None and call ``.update(n)`` yourself).
        desc: a few words saying what is being done.
        total: number of items, if ``len(iterable)`` does not tell.
        unit: what one item is ("img", "run", "batch").
        disable: True to show nothing (e.g. ``verbose=False``).
        **kwargs: passed on to ``tqdm``.
    """
    from tqdm.auto import tqdm

    from helpers.environment import enable_colab_widgets

    if not disable:
        enable_colab_widgets()  # the notebook bar is an ipywidget
    kwargs.setdefault("mininterval", 1.0)  # Colab's output is slow to redraw
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, unit=unit, disable=disable, **kwargs)
