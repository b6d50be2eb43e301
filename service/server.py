"""The HTTP server around the app: uvicorn, with bounds on connections that send nothing or too little.

uvicorn closes an idle keep-alive connection after `timeout_keep_alive`, but a connection that never
finishes its request head holds a file descriptor for as long as its client likes: 20,000 such
connections used up the open-file limit, and then the model watcher could not open a card. So:
- a request head must arrive within `header_seconds` of the connection (or of the previous response),
  else the connection is closed;
- past `max_connections` open connections a new one is answered 503 at once and closed, well before
  the process runs out of file descriptors (the limit is held below the open-file limit, which is
  raised to its hard maximum at start).
"""
from __future__ import annotations

import logging
import resource

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from service.settings import get_settings

log = logging.getLogger(__name__)
RESERVED_FILES = 256  # descriptors kept for models, logs, sockets to Redis and the store
BUSY = (b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
        b"connection: close\r\ncontent-length: 96\r\n\r\n"
        b'{"error": {"status": 503, "message": "connections: at the limit (max_connections); retry shortly"}}')


def connection_limit(wanted: int) -> int:
    """Raise the soft open-file limit to the hard one; the connections allowed, at most `wanted`, below it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    return max(16, min(wanted, soft - RESERVED_FILES))


class BoundedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request head and a cap on open connections.

    Its bounds are read from the settings (GANSERVE_*) once per process, on the first connection: uvicorn's
    worker processes are spawned and configure themselves."""
    header_seconds: float | None = None
    max_connections: int = 0

    @classmethod
    def _configure(cls) -> None:
        settings = get_settings()
        cls.max_connections = connection_limit(settings.max_connections)
        cls.header_seconds = settings.header_seconds

    def connection_made(self, transport) -> None:
        if self.header_seconds is None:
            self._configure()
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.write(BUSY)
            transport.close()
            return
        self._deadline = None
        self._await_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:
            self._await_head()

    def on_headers_complete(self) -> None:
        self._stop_waiting()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request's head has the same deadline (keep-alive's own timer also runs)

    def connection_lost(self, exc) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        self._stop_waiting()
        self._deadline = self.loop.call_later(self.header_seconds, self._too_slow)

    def _stop_waiting(self) -> None:
        deadline, self._deadline = getattr(self, "_deadline", None), None
        if deadline is not None:
            deadline.cancel()

    def _too_slow(self) -> None:
        self._deadline = None
        if self.cycle is None or self.cycle.response_complete:  # nothing being answered: a head that never came
            self.transport.close()


def run(host: str, port: int, workers: int = 1, quiet: bool = False) -> None:
    """The app's server: `ganserve serve`."""
    settings = get_settings()
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port, workers=workers, http=BoundedProtocol,
                timeout_keep_alive=int(settings.keep_alive_seconds),
                **({"access_log": False, "log_level": "warning"} if quiet else {}))
