"""gunicorn as process manager, with its event-loop `asgi` worker.

Why this worker: the API server's Go client opens spare keep-alive connections and leaves
them idle. A thread-per-connection worker (gthread) pins a thread on each one until its
first request, so under load admissions queue until the client times out and Pods are
admitted unmutated (failurePolicy Ignore). On an event loop an idle connection costs no
thread. Measured figures: bench/README.md.
"""

import math
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from gunicorn.workers.gasgi import ASGIWorker

from castslice.config import Config
from castslice.handler.app import create_app
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.metrics import Metrics
from castslice.handler.tls import ReloadingTLS

KEEPALIVE_SECONDS = 120
"""Longer than Go's idle-connection timeout (90 s), so the client closes first and never
sends on a connection the server is closing."""


class CastSliceWorker(ASGIWorker):  # type: ignore[misc]
    """On SIGTERM, report not-ready and keep serving `drain_seconds`, then stop gracefully."""

    def handle_exit_signal(self) -> None:
        server: Server = self.app
        if server.lifecycle.draining:
            return
        server.lifecycle.draining = True
        self.loop.call_later(server.config.drain_seconds, super().handle_exit_signal)


class NoAccessLogger(Logger):  # type: ignore[misc]
    """gunicorn's logger with its access log off for good.

    gunicorn turns the access log on whenever a logging config is given, as ours is (for
    JSON lines). That wrote a second line per admission next to the decision log and cost
    about 15% of a worker's CPU in a profile (bench/README.md).
    """

    access_log_enabled = False


class Server(BaseApplication):  # type: ignore[misc]
    """The gunicorn application, built from Config alone (no command-line parsing)."""

    def __init__(self, config: Config, metrics_dir: str) -> None:
        self.config = config
        self.lifecycle = Lifecycle()
        self.app = create_app(config, self.lifecycle, Metrics(config, metrics_dir))
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
        "http_protocols": "h1",
        "accesslog": None,
        "logger_class": f"{__name__}.NoAccessLogger",
        "errorlog": "-",
        "loglevel": config.log_level,
        "logconfig_dict": json_logging(config.log_level),
        "proc_name": "castslice",
        "control_socket_disable": True,
    }
    if config.tls_cert_file and config.tls_key_file:
        tls = ReloadingTLS(config.tls_cert_file, config.tls_key_file)
        options |= {"certfile": config.tls_cert_file, "keyfile": config.tls_key_file,
                    "ssl_context": lambda _cfg, _default: tls.context}
    return options


def json_logging(level: str) -> dict[str, Any]:
    """gunicorn's own lines (start, stop, worker events) as JSON too, so every line parses."""
    return {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"json": {"()": "castslice.handler.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        "loggers": {name: {"level": level.upper(), "handlers": ["stderr"], "propagate": False}
                    for name in ("gunicorn.error", "gunicorn.access")},
    }
