"""Running the ``eno serve`` app on uvicorn with its connection limits.

uvicorn (0.54) has settings for the keep-alive timeout (``timeout_keep_alive``), a concurrency limit
answered with 503 (``limit_concurrency``), the largest header block (``h11_max_incomplete_event_size``)
and the graceful-shutdown grace (``timeout_graceful_shutdown``); ``run`` passes them from
``ServeConfig``. It has no timeout on *receiving* a request: its keep-alive timer runs only between
requests and restarts on every byte, so a client that never finishes its headers, or sends its body
at one byte per second, holds a connection (and a file descriptor) forever. ``DeadlineH11Protocol``
adds the two missing deadlines and a hard cap on open connections to uvicorn's h11 protocol:

- **headers**: a connection must deliver a whole request line + headers within
  ``header_timeout_s`` of opening (or of its previous response); trickled bytes do not extend it;
- **body**: the body must be complete within ``body_timeout_s`` of the headers;
- **connections**: beyond ``max_connections`` open connections, a new one is closed at once.

A connection past a deadline is closed (logged at INFO with the client address); a request whose
body was cut sees a disconnect, which ends its handler.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from eno_hf.serving.config import ServeConfig

log = logging.getLogger(__name__)


class DeadlineH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline, a body deadline and a connection cap.

    The limits are class attributes (``header_timeout_s``, ``body_timeout_s`` in seconds,
    ``max_connections``); ``protocol_class(cfg)`` makes a subclass with the values of a
    ``ServeConfig``. Timers run on the event loop (``loop.call_later``), one per connection at most.
    """

    header_timeout_s: float = 10.0
    body_timeout_s: float = 120.0
    max_connections: int = 256

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_kind: str | None = None

    # --- connection cap -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.info("closing a new connection from %s: %d connections open (max_connections=%d)",
                     self.client, len(self.connections), self.max_connections)
            transport.close()
            return
        self._update_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    # --- deadlines ------------------------------------------------------------------------------
    def handle_events(self) -> None:
        super().handle_events()
        self._update_deadline()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update_deadline()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._deadline_kind = None

    def _update_deadline(self) -> None:
        """Arm the header deadline while waiting for a request, the body deadline while its body
        arrives, none otherwise; a running deadline is never pushed back."""
        if self.transport is None or self.transport.is_closing():
            self._cancel_deadline()
            return
        state = self.conn.their_state
        kind = "headers" if state is h11.IDLE else "body" if state is h11.SEND_BODY else None
        if kind == self._deadline_kind:
            return
        self._cancel_deadline()
        if kind is not None:
            seconds = self.header_timeout_s if kind == "headers" else self.body_timeout_s
            self._deadline = self.loop.call_later(seconds, self._expired, kind, seconds)
            self._deadline_kind = kind

    def _expired(self, kind: str, seconds: float) -> None:
        self._deadline = self._deadline_kind = None
        if self.transport is None or self.transport.is_closing():
            return
        log.info("closing the connection from %s: request %s not received within %g s",
                 self.client, kind, seconds)
        self.transport.close()


def protocol_class(cfg: ServeConfig) -> type[DeadlineH11Protocol]:
    """A ``DeadlineH11Protocol`` subclass carrying ``cfg``'s header/body timeouts and connection cap."""
    return type("EnoH11Protocol", (DeadlineH11Protocol,), {
        "header_timeout_s": float(cfg.header_timeout_s), "body_timeout_s": float(cfg.body_timeout_s),
        "max_connections": int(cfg.max_connections)})


def uvicorn_config(app: Any, cfg: ServeConfig, log_level: str = "info") -> Any:
    """The ``uvicorn.Config`` for ``app`` with ``cfg``'s address, timeouts and limits.

    ``limit_concurrency`` is ``max_connections + 1``: the protocol already closes connections beyond
    ``max_connections``, so uvicorn's 503 only bounds concurrent requests (tasks), never idle connections.
    """
    import uvicorn

    return uvicorn.Config(
        app, host=cfg.host, port=cfg.port, log_level=log_level, http=protocol_class(cfg),
        timeout_keep_alive=int(cfg.keep_alive_s), limit_concurrency=int(cfg.max_connections) + 1,
        h11_max_incomplete_event_size=int(cfg.max_header_bytes),
        timeout_graceful_shutdown=int(cfg.graceful_shutdown_s), server_header=False)


def run(app: Any, cfg: ServeConfig, log_level: str = "info") -> None:
    """Serve ``app`` with ``uvicorn_config`` until stopped (SIGINT/SIGTERM)."""
    import uvicorn

    uvicorn.Server(uvicorn_config(app, cfg, log_level)).run()
