"""Logging set-up of the ``eno`` command and the verbosity other code reads.

Library code logs with ``logging.getLogger(__name__)`` (loggers under ``eno_hf``) and never adds
handlers. The ``eno`` command's root options call :func:`setup_logging`: ``eno_hf`` logs at INFO
by default, ``-v`` at DEBUG, ``-q`` at WARNING (and :func:`quiet` then tells progress bars to stay
hidden). One handler on the root logger writes to stderr: rich on a terminal, plain
``time level logger: message`` lines otherwise (CI, worker logs). The root logger's level is left
alone, so other libraries still show only their warnings.

The chosen level is exported as ``ENO_LOG_LEVEL``, so processes the command starts (Prefect or Dask
workers, ``accelerate launch``) can read it with :func:`configured_level`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

__all__ = ["ENV_VAR", "LOGGER_NAME", "STDERR_LOCK", "configured_level", "console", "quiet", "setup_logging"]

STDERR_LOCK = threading.RLock()
"""Held while file descriptor 2 is redirected (``eno_hf.audio.io`` captures what C decoders print
there) and while eno writes to stderr from Python (progress bars, the ``eno`` log handler): a line
written by one thread while another decodes would otherwise land in that file's decoder notes."""

LOGGER_NAME = "eno_hf"
ENV_VAR = "ENO_LOG_LEVEL"

_explicit: int | None = None  # the level setup_logging was last called with (this process)
_console = None


def console():
    """The one ``rich`` console on stderr that the log handler writes to (created on first use).

    Progress bars should draw on this console: rich then prints log lines above a live bar
    instead of tearing it.
    """
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(stderr=True)
    return _console


class StderrHandler(logging.StreamHandler):
    """A stream handler on whatever ``sys.stderr`` is at emit time (test runners swap it).

    Public name on purpose: Prefect's logging set-up keeps root handlers it counts as the user's,
    and it does not count classes whose name starts with ``_``."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it; the property wins
        pass


def _to_level(level: int | str) -> int:
    if isinstance(level, int):
        return level
    value = logging.getLevelName(str(level).strip().upper())
    if not isinstance(value, int):
        raise ValueError(f"unknown log level {level!r} (DEBUG, INFO, WARNING, ERROR)")
    return value


def _make_handler() -> logging.Handler:
    if sys.stderr is not None and sys.stderr.isatty():
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(console=console(), show_path=False,
                                               rich_tracebacks=False, markup=False, log_time_format="%X")
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                               datefmt="%H:%M:%S"))
    handler._eno = True  # type: ignore[attr-defined]  (found again by the next setup_logging call)
    # written under the lock audio decoding holds while it captures fd 2 (else a line written
    # meanwhile by another thread would become that file's "decoder notes")
    handler.lock = STDERR_LOCK
    return handler


def setup_logging(level: int | str = logging.INFO) -> int:
    """Set the ``eno_hf`` loggers' level and make sure one stderr handler shows them.

    Idempotent: a second call changes the level and keeps the one handler. The handler sits on
    the root logger (a formatter set, so Prefect's logging set-up keeps it instead of adding its
    own console handler: no line printed twice).

    Args:
        level: ``logging.DEBUG`` / ``"DEBUG"``, ``INFO``, ``WARNING``, ...

    Returns:
        The level as an int.

    Raises:
        ValueError: an unknown level name.
    """
    global _explicit
    lvl = _to_level(level)
    logging.getLogger(LOGGER_NAME).setLevel(lvl)
    root = logging.getLogger()
    if not any(getattr(h, "_eno", False) for h in root.handlers):
        root.addHandler(_make_handler())
    _explicit = lvl
    os.environ[ENV_VAR] = logging.getLevelName(lvl)
    return lvl


def configured_level() -> int:
    """The level the user asked for: :func:`setup_logging`'s in this process, else ``ENO_LOG_LEVEL``
    (set by a parent ``eno`` command), else INFO."""
    if _explicit is not None:
        return _explicit
    env = os.environ.get(ENV_VAR)
    if env:
        try:
            return _to_level(env)
        except ValueError:
            pass
    return logging.INFO


def quiet() -> bool:
    """True when the user asked for less output (``eno -q``): progress bars and INFO lines stay hidden."""
    return configured_level() > logging.INFO
