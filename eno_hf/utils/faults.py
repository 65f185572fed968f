"""Fault injection for testing retries: ``ENO_FAULTS="point:N[,point:N]"``.

``inject(point)`` raises ``TransientIOError`` (an ``OSError``) on the first ``N`` calls with that
point name in this process, then does nothing. With ``ENO_FAULTS`` unset (always, outside tests)
it is a no-op. Points: ``register`` (before copying a model into the hub).

Used by the deployment test: a worker started with ``ENO_FAULTS=register:1`` must see the register
task fail once, be retried by Prefect, and complete.
"""

from __future__ import annotations

import os
import threading

ENV = "ENO_FAULTS"

_lock = threading.Lock()
_calls: dict[str, int] = {}


class TransientIOError(OSError):
    """An injected, retryable I/O failure."""


def _budget(point: str) -> int:
    for item in os.environ.get(ENV, "").split(","):
        name, _, count = item.strip().partition(":")
        if name == point:
            return int(count or 1)
    return 0


def inject(point: str) -> None:
    """Raise ``TransientIOError`` while ``point`` has injected failures left (see module docstring).

    Raises:
        TransientIOError: an injected failure.
        ValueError: ``ENO_FAULTS`` holds a count that is not an integer.
    """
    budget = _budget(point)
    if budget <= 0:
        return
    with _lock:
        n = _calls.get(point, 0) + 1
        _calls[point] = n
    if n <= budget:
        raise TransientIOError(f"injected transient I/O error at {point!r} ({n} of {budget}, {ENV})")
