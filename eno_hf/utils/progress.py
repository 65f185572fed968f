"""Progress of long work, one helper for every stage: a rich bar on a terminal, log lines elsewhere.

Every loop that can take more than a few seconds (dataset build, embedding, the frozen-feature /
frozen-prefix cache, training, evaluation, tagging) reports through :func:`track` (an iterable)
or :class:`Progress` (a context manager with ``advance(n)``). How it is shown depends on where
the process runs (:func:`progress_mode`):

- ``"bar"``: stderr is a terminal: a rich progress bar on stderr (done/total, rate, elapsed,
  ETA); when it closes, one INFO line with the total count, time and rate stays in the log.
- ``"log"``: stderr is not a terminal (a Prefect or Dask worker, CI, a pipe into a file): an INFO
  line ``"{description}: {done}/{total} {unit}s (NN %), R {unit}/s, ETA ..."`` on the
  ``eno_hf.progress`` logger each time another ~10 % is done (or a minute has passed), and one at
  the end. Under Prefect these lines reach the flow run's logs like any other ``eno_hf`` line.
- ``"off"``: the user asked for less output (``eno -q``, see ``eno_hf.utils.logs.quiet``), or
  the caller passed ``enabled=False``: nothing is shown.

``ENO_PROGRESS`` (``auto`` | ``bar`` | ``log`` | ``off``) overrides the choice; ``auto`` is the
default. ``trainer_progress_callback`` gives a ``transformers.TrainerCallback`` that reports
training steps and epochs through the same helper.
"""

from __future__ import annotations

import io
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, TypeVar

from eno_hf.utils.logs import STDERR_LOCK, quiet

__all__ = ["ENV_VAR", "LOGGER_NAME", "STDERR_LOCK", "LockedStderr", "Progress", "progress_mode", "track",
           "trainer_progress_callback"]

ENV_VAR = "ENO_PROGRESS"
"""Environment variable forcing the display: ``auto`` (default), ``bar``, ``log`` or ``off``."""
LOGGER_NAME = "eno_hf.progress"
"""Logger of the progress lines (a child of ``eno_hf``: same handlers, same level)."""
LOG_STEPS = 10
"""Log mode: a line each time another 1/LOG_STEPS of the total (10 %) is done."""
LOG_EVERY_S = 60.0
"""Log mode: a line at least this often (seconds) while work goes on (no line for idle time)."""

STDERR_LOCK_WAIT_S = 5.0
"""Longest wait for ``STDERR_LOCK`` before writing anyway (never a deadlock, at worst a lost line)."""

log = logging.getLogger(LOGGER_NAME)
T = TypeVar("T")
_MODES = ("bar", "log", "off")


class LockedStderr(io.TextIOBase):
    """``sys.stderr`` (as it is at each write; a rich live display's proxy unwrapped), written
    under ``STDERR_LOCK``. The file of the progress bar's console."""

    @staticmethod
    def _stream() -> Any:
        stream = sys.stderr
        return getattr(stream, "rich_proxied_file", stream)

    def write(self, text: str) -> int:
        got = STDERR_LOCK.acquire(timeout=STDERR_LOCK_WAIT_S)
        try:
            return self._stream().write(text)
        finally:
            if got:
                STDERR_LOCK.release()

    def flush(self) -> None:
        got = STDERR_LOCK.acquire(timeout=STDERR_LOCK_WAIT_S)
        try:
            self._stream().flush()
        finally:
            if got:
                STDERR_LOCK.release()

    def isatty(self) -> bool:
        return bool(self._stream().isatty())

    def fileno(self) -> int:
        return self._stream().fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._stream(), "encoding", None) or "utf-8"


def _quiet() -> bool:
    return quiet()


def progress_mode(enabled: bool = True) -> str:
    """How progress is shown in this process now: ``"bar"``, ``"log"`` or ``"off"``.

    ``"off"`` when ``enabled`` is False, ``ENO_PROGRESS=off`` or the user asked for quiet output;
    else ``ENO_PROGRESS=bar|log`` when set; else ``"bar"`` when stderr is a terminal and ``"log"``
    otherwise. An unknown ``ENO_PROGRESS`` value counts as ``auto``.
    """
    forced = os.environ.get(ENV_VAR, "auto").strip().lower()
    if not enabled or forced == "off" or _quiet():
        return "off"
    if forced in _MODES:
        return forced
    stream = sys.stderr
    try:
        return "bar" if stream is not None and stream.isatty() else "log"
    except (AttributeError, ValueError):  # a closed or odd stream
        return "log"


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"1 h 02 min"``."""
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def _rate(done: float, elapsed: float, unit: str) -> str:
    if elapsed <= 0 or done <= 0:
        return f"? {unit}/s"
    r = done / elapsed
    if r >= 10:
        return f"{r:.0f} {unit}/s"
    return f"{r:.2f} {unit}/s" if r >= 1 else f"{elapsed / done:.1f} s/{unit}"


class Progress:
    """Progress of one piece of work of known (or unknown) size, shown as ``progress_mode`` says.

    Use as a context manager (or call ``close()``); ``advance(n)`` after each ``n`` units done.

    Args:
        total: units of work (``None`` or 0: unknown; the log mode then reports every minute).
        description: what is being done, e.g. ``"4q: processing"`` or ``"prefix train"``.
        unit: singular unit name for the lines (``"file"``, ``"clip"``, ``"step"``, ``"batch"``).
        enabled: False shows nothing (the caller's own switch, e.g. ``progress=False``).
        mode: force ``"bar"``, ``"log"`` or ``"off"`` (default: ``progress_mode(enabled)``).

    Attributes:
        done: units reported so far. mode: the display in use.
    """

    def __init__(self, total: int | None = None, description: str = "working", unit: str = "item",
                 enabled: bool = True, mode: str | None = None) -> None:
        self.total = int(total) if total else None
        self.description = description
        self.unit = unit
        self.mode = mode if mode in _MODES else progress_mode(enabled)
        if self.mode == "log" and not log.isEnabledFor(logging.INFO):
            self.mode = "off"
        self.done = 0
        self._start = time.monotonic()
        self._last_log = self._start
        self._next_step = 1  # log mode: next multiple of total / LOG_STEPS to report
        self._closed = False
        self._bar: Any = None
        self._task: Any = None
        if self.mode == "bar":
            self._bar = _acquire_bar()
            self._task = self._bar.add_task(description, total=self.total, unit=unit + "s")

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(failed=exc_type is not None)

    def _line(self, now: float) -> str:
        elapsed = now - self._start
        rate = _rate(self.done, elapsed, self.unit)
        if not self.total:
            return f"{self.description}: {self.done} {self.unit}s, {rate}, {_duration(elapsed)}"
        pct = 100.0 * self.done / self.total
        left = self.total - self.done
        eta = _duration(left * elapsed / self.done) if self.done and left > 0 else "0 s"
        return (f"{self.description}: {self.done}/{self.total} {self.unit}s ({pct:.0f} %), {rate}, "
                f"elapsed {_duration(elapsed)}, ETA {eta}")

    def advance(self, n: float = 1) -> None:
        """``n`` more units done (shows a line in log mode when another ~10 % or a minute passed)."""
        if self._closed:
            return
        self.done += n
        if self.mode == "bar":
            self._bar.update(self._task, advance=n)
            now = time.monotonic()
            if now - self._last_log >= 0.2 or (self.total and self.done >= self.total):
                self._bar.refresh()
                self._last_log = now
        elif self.mode == "log":
            now = time.monotonic()
            crossed = bool(self.total) and self.done * LOG_STEPS >= self._next_step * self.total
            if crossed or now - self._last_log >= LOG_EVERY_S:
                if self.total:
                    self._next_step = int(self.done * LOG_STEPS // self.total) + 1
                if not (self.total and self.done >= self.total):  # the last line comes from close()
                    log.info("%s", self._line(now))
                    self._last_log = now

    def update(self, done: float) -> None:
        """Set the units done so far to ``done`` (never backwards)."""
        if done > self.done:
            self.advance(done - self.done)

    def set_description(self, description: str) -> None:
        """Change the description shown from now on (e.g. ``"training (epoch 3/60)"``)."""
        self.description = description
        if self.mode == "bar":
            self._bar.update(self._task, description=description, refresh=True)

    def close(self, failed: bool = False) -> None:
        """Stop the bar / write the final line (INFO; nothing when ``failed``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        now = time.monotonic()
        if self.mode == "bar":
            _release_bar(self._task)
        if self.mode in ("bar", "log") and not failed:
            elapsed = now - self._start
            total = f"/{self.total}" if self.total and self.done != self.total else ""
            log.info("%s: %g%s %ss in %s (%s)", self.description, self.done, total, self.unit,
                     _duration(elapsed), _rate(self.done, elapsed, self.unit))


_shared_bar: Any = None
_bar_users = 0
_bar_lock = threading.Lock()


def _acquire_bar() -> Any:
    """The one rich live display of this process (rich allows one at a time): nested or concurrent
    ``Progress`` objects add their own line to it."""
    global _shared_bar, _bar_users
    with _bar_lock:
        if _shared_bar is None:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

            _shared_bar = RichProgress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                                       MofNCompleteColumn(), TextColumn("{task.fields[unit]}"), TimeElapsedColumn(),
                                       TextColumn("ETA"), TimeRemainingColumn(),
                                       console=Console(file=LockedStderr()), transient=False,
                                       auto_refresh=False)  # redrawn by advance(): no thread writing to stderr
            _shared_bar.start()
        _bar_users += 1
        return _shared_bar


def _release_bar(task: Any) -> None:
    """One user fewer: the last one stops the display; a nested one removes its finished line."""
    global _shared_bar, _bar_users
    with _bar_lock:
        _bar_users -= 1
        if _shared_bar is None:
            return
        if _bar_users <= 0:
            _shared_bar.refresh()
            _shared_bar.stop()
            _shared_bar, _bar_users = None, 0
        else:
            _shared_bar.remove_task(task)
            _shared_bar.refresh()


def track(iterable: Iterable[T], total: int | None = None, description: str = "working", unit: str = "item",
          enabled: bool = True, weight: Any = None) -> Iterator[T]:
    """Yield the items of ``iterable`` while showing progress (see :class:`Progress`).

    Args:
        iterable: the work; each item counts as one unit (or ``weight(item)`` units).
        total: units in all (default ``len(iterable)`` when it has one).
        description, unit, enabled: as for :class:`Progress`.
        weight: optional ``weight(item) -> float`` (e.g. segments per outcome).

    The display closes when the iterable is exhausted, fails or the generator is closed.
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(total, description, unit, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.advance(weight(item) if weight is not None else 1)


_callback_cls: type | None = None


def trainer_progress_callback(description: str = "training") -> Any:
    """A ``transformers.TrainerCallback`` showing training progress through :class:`Progress`:
    steps done of ``state.max_steps``, the epoch in the description (``"training (epoch 3/60)"``).
    Metrics are logged by the trainer's own log callback; early stopping ends the display early
    (its final line says how many steps ran). Only the main process (``is_local_process_zero``)
    shows anything."""
    global _callback_cls
    if _callback_cls is None:
        from transformers import TrainerCallback

        class _ProgressCallback(TrainerCallback):
            def __init__(self, description: str) -> None:
                self.description = description
                self.bar: Progress | None = None
                self.epochs = 0

            def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if state.is_local_process_zero:
                    self.epochs = int(math.ceil(args.num_train_epochs)) if args.max_steps <= 0 else 0
                    self.bar = Progress(state.max_steps, self.description, "step")
                    self.bar.update(state.global_step)

            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if self.bar is not None:
                    self.bar.update(state.global_step)

            def on_epoch_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if self.bar is not None and state.max_steps and state.num_train_epochs:
                    epoch = int(round(state.epoch or 0)) + 1
                    self.bar.set_description(f"{self.description} (epoch {epoch}/{int(state.num_train_epochs)})")

            def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if self.bar is not None:
                    self.bar.set_description(self.description)
                    self.bar.close()
                    self.bar = None

        _callback_cls = _ProgressCallback
    return _callback_cls(description)
