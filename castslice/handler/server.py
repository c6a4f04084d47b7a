"""gunicorn as process manager, with uvicorn's event-loop worker.

Why an event loop: the API server's Go client opens spare keep-alive connections and leaves
them idle. A thread-per-connection worker (gthread) pins a thread on each one until its
first request, so under load admissions queue until the client times out and Pods are
admitted unmutated (failurePolicy Ignore). On an event loop an idle connection costs no
thread. Why uvicorn's worker (uvloop, httptools) rather than gunicorn's own asgi worker:
it took about 15% less CPU per admission, and its stop closes idle keep-alive connections
at once instead of waiting for them. Measured figures: bench/README.md.
"""

import asyncio
import logging
import math
import os
import select
import signal
import socket
import sys
import time
from typing import Any, ClassVar

from gunicorn.app.base import BaseApplication
from gunicorn.arbiter import Arbiter
from uvicorn.config import Config as UvicornConfig
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import Server as UvicornServer
from uvicorn_worker import UvicornWorker

from castslice.handler.app import create_app
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.metrics import Metrics
from castslice.handler.tls import ReloadingTLS
from castslice.settings.config import Config

logger = logging.getLogger("uvicorn.error")

KEEPALIVE_SECONDS = 120
"""Longer than Go's idle-connection timeout (90 s), so the client closes first and never
sends on a connection the server is closing."""


LATE_GRACE_SECONDS = 0.5
"""How long a connection that appears after the drain may take to send its one request."""
HANDSHAKE_SECONDS = 2
"""How long a TLS handshake may still be under way when the stop begins."""
HUNG_REQUEST_SECONDS = 5
"""After the drain, how long connections may take to finish before their requests are
cancelled; with the capture flush (at most 10 s) a stop stays inside gunicorn's grace of
drain + 20 s."""


class TrackedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, known from the moment its connection is accepted.
    With TLS, uvicorn hears of a connection only once its handshake is done; a stop that
    waited for those alone exits under a client that finished its side of the handshake
    and already sent its request (TLS 1.3 lets it), which then sees a reset: a lost POST."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.accepted = time.monotonic()
        HANDSHAKING.add(self)

    def stalled(self, now: float) -> bool:
        """Still handshaking HANDSHAKE_SECONDS after its accept: the handshake failed."""
        return now - self.accepted >= HANDSHAKE_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        HANDSHAKING.discard(self)
        super().connection_made(transport)


HANDSHAKING: set[TrackedProtocol] = set()
"""Accepted connections whose TLS handshake has not finished. One whose handshake fails
never hears of it: held here (not weakly, so it is counted whenever the collector runs)
until HANDSHAKE_SECONDS have passed, then counted as failed and dropped."""


class DrainingServer(UvicornServer):
    """On SIGTERM: report not-ready and keep serving `drain_seconds`, every answer carrying
    `Connection: close` (the resource adds it), then stop: the listener closes, idle
    connections close, in-flight requests finish, and the worker exits by itself."""

    def __init__(self, config: UvicornConfig, lifecycle: Lifecycle, drain_seconds: float,
                 parent: int, metrics: Metrics) -> None:
        super().__init__(config)
        self.lifecycle, self.drain_seconds, self.parent = lifecycle, drain_seconds, parent
        self.metrics = metrics
        self.stop_at: float | None = None
        self.handshakes_logged = -math.inf

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:
            self._count_failed_handshakes()
            if not self.should_exit and os.getppid() != self.parent:
                # the master was killed (SIGKILL, OOM): outside a container nothing reaps
                # an orphan, which would go on serving the port with no one to stop it
                logger.warning("the gunicorn master (pid %d) is gone; stopping", self.parent)
                self.should_exit = True
        if not await super().on_tick(counter):
            return False
        if self.stop_at is None:
            self.lifecycle.draining = True
            self.stop_at = time.monotonic() + self.drain_seconds
        return self.force_exit or time.monotonic() >= self.stop_at

    def _count_failed_handshakes(self) -> None:
        """Connections still in their TLS handshake after HANDSHAKE_SECONDS never finish
        it (the handshake failed: nothing else tells), counted and logged once a minute."""
        now = time.monotonic()
        failed = [p for p in list(HANDSHAKING) if p.stalled(now)]
        for protocol in failed:
            HANDSHAKING.discard(protocol)
        if failed:
            self.metrics.add(("requests_refused", "tls"), len(failed))
            if now - self.handshakes_logged >= 60:
                self.handshakes_logged = now
                logger.warning("%d TLS handshake(s) did not complete: a plain http:// client, "
                               "or one that does not trust the certificate (counted in "
                               "castslice_requests_refused_total{status=\"tls\"}; logged once "
                               "a minute)", len(failed))

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop accepting, let each connection finish, run the app's shutdown (capture and
        metrics flush). Written out rather than uvicorn's: that one closes, once, every
        connection without a request in progress, including one whose client is writing
        its first request right then (a POST lost), and never sees a TLS connection whose
        handshake ends later, which then held the worker until gunicorn killed it."""
        logger.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        await self._close_connections(time.monotonic() + HUNG_REQUEST_SECONDS)
        for task in self.server_state.tasks:
            task.cancel(msg="CastSlice: a request outlived the stop")
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()

    async def _close_connections(self, deadline: float) -> None:
        """Every 50 ms, ask each connection to close once idle (one busy with a request
        closes after its answer). A connection that has not sent a request yet gets
        LATE_GRACE_SECONDS to send it first: its client is likely writing it, and one still
        in its TLS handshake is waited for until it becomes one of those. One whose
        socket holds unread bytes is a request arriving: closing it now would reset it
        unanswered, so it waits for the next sweep, by which time it is busy."""
        first_seen: dict[Any, float] = {}
        while (self.server_state.connections or _handshaking()) and time.monotonic() < deadline:
            now = time.monotonic()
            for connection in list(self.server_state.connections):
                if _arriving(connection):
                    continue
                fresh = getattr(connection, "cycle", None) is None
                if not fresh or now - first_seen.setdefault(connection, now) >= (
                        LATE_GRACE_SECONDS):
                    connection.shutdown()
            await asyncio.sleep(0.05)


def _handshaking() -> bool:
    """Whether a connection is in its TLS handshake. One whose handshake failed (a plain
    http:// request, a client without the CA) stays in HANDSHAKING until the next tick
    counts it: past HANDSHAKE_SECONDS it no longer holds the stop."""
    now = time.monotonic()
    return any(not p.stalled(now) for p in list(HANDSHAKING))


def _arriving(connection: Any) -> bool:
    """Whether bytes wait unread on the connection's socket (a request being sent)."""
    transport = getattr(connection, "transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    try:
        return sock is not None and bool(select.select([sock.fileno()], [], [], 0)[0])
    except (OSError, ValueError):  # closed meanwhile: nothing arrives on it any more
        return False


class CastSliceWorker(UvicornWorker):  # type: ignore[misc]
    """uvicorn's worker with CastSlice's TLS context, no access log, no X-Forwarded-*
    rewriting (one middleware less per request), and the drain above."""

    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop", "http": TrackedProtocol, "access_log": False, "server_header": False,
        "proxy_headers": False}  # CastSlice never reads the client's address

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        tls = self.app.tls
        if tls is not None:
            self.config.ssl_context_factory = lambda _config, _default: tls.context

    def run(self) -> None:
        """gunicorn's entry to a worker (its public Worker API), running the draining
        server; uvicorn's worker offers no public hook to choose the server class."""
        with asyncio.Runner(loop_factory=self.config.get_loop_factory()) as runner:
            runner.run(self.serve())

    async def serve(self) -> None:
        self.config.app = self.wsgi
        server = DrainingServer(self.config, self.app.lifecycle, self.app.config.drain_seconds,
                                self.ppid, self.app.metrics)
        def quit_now() -> None:
            """SIGQUIT, gunicorn's quick shutdown (what the master sends on SIGINT): stop
            at once, no drain. gunicorn's own handler only marks the worker not alive,
            which nothing in an event-loop worker reads (uvicorn#1116, gunicorn#2604), so
            the master waited its graceful timeout and killed the worker."""
            self.alive = False
            server.should_exit = server.force_exit = True

        asyncio.get_running_loop().add_signal_handler(signal.SIGQUIT, quit_now)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)


class Server(BaseApplication):  # type: ignore[misc]
    """The gunicorn application, built from Config alone (no command-line parsing)."""

    def __init__(self, config: Config, metrics_dir: str) -> None:
        self.config = config
        self.lifecycle = Lifecycle()
        self.metrics = Metrics(config, metrics_dir)
        self.app = create_app(config, self.lifecycle, self.metrics)
        self.tls = (ReloadingTLS(config.tls_cert_file, config.tls_key_file)
                    if config.tls_cert_file and config.tls_key_file else None)
        super().__init__()

    def load_config(self) -> None:
        for key, value in gunicorn_options(self.config).items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app


def gunicorn_options(config: Config) -> dict[str, Any]:
    """Every gunicorn setting CastSlice uses, in one place."""
    options: dict[str, Any] = {
        "bind": [config.bind],
        "workers": config.workers,
        "worker_class": f"{__name__}.CastSliceWorker",
        "keepalive": KEEPALIVE_SECONDS,
        "graceful_timeout": math.ceil(config.drain_seconds) + 20,
        "timeout": 30,
        "preload_app": True,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": config.log_level,
        "logconfig_dict": json_logging(config.log_level),
        "proc_name": "castslice",
        "control_socket_disable": True,
    }
    if config.tls_cert_file and config.tls_key_file:  # the context itself: CastSliceWorker
        options |= {"certfile": config.tls_cert_file, "keyfile": config.tls_key_file}
    return options


def json_logging(level: str) -> dict[str, Any]:
    """gunicorn's and uvicorn's own lines (start, stop, worker events) as JSON too, so every
    line parses."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "castslice.handler.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"level": level.upper(), "handlers": ["stderr"], "propagate": False}
                    for name in ("gunicorn.error", "uvicorn.error")},
    }
