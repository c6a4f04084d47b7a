"""The Falcon ASGI app: create_app(config) takes its dependencies, get_app() reads the env."""

import logging
import os
from typing import TYPE_CHECKING, Any

import falcon.asgi

from castslice import __version__
from castslice.handler import logs
from castslice.handler.lifecycle import Lifecycle, WorkerLifespan
from castslice.handler.metrics import Metrics
from castslice.handler.resources import Health, MetricsPage, Mutate, Ready
from castslice.settings.config import Config, available_cpus

if TYPE_CHECKING:  # the recorder is imported only when capture is on
    from castslice.capture.recorder import Recorder


def create_app(config: Config, lifecycle: Lifecycle | None = None,
               metrics: Metrics | None = None) -> "falcon.asgi.App[Any, Any]":
    """The app with its routes; `lifecycle` turns ready at the end of this call."""
    lifecycle = lifecycle or Lifecycle()
    metrics = metrics or Metrics(config)
    logger = logs.setup(config.log_level)
    recorder = capture_recorder(config, metrics, logger) if config.capture else None
    app = falcon.asgi.App(middleware=[WorkerLifespan(metrics, recorder)])
    app.add_route("/mutate", Mutate(config, metrics, logger, lifecycle, recorder))
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(lifecycle))
    app.add_route("/metrics", MetricsPage(metrics))
    lifecycle.ready = True
    return app


def capture_recorder(config: Config, metrics: Metrics, logger: logging.Logger) -> "Recorder":
    """The recorder for CASTSLICE_CAPTURE; its store is opened in each worker at startup.
    Imported here, so a CastSlice without capture never loads it (6 ms of a cold start)."""
    from castslice.capture.recorder import Recorder
    from castslice.capture.store import open_store

    location = config.capture or ""
    return Recorder(lambda: open_store(location), queue_size=config.capture_queue,
                    sample=config.capture_sample, redact_fields=config.capture_redact,
                    redact_annotations=config.capture_redact_annotations,
                    stamp={"version": __version__, "config": config.fingerprint()},
                    counters=metrics, logger=logger, configuration=config.as_env())


def get_app() -> "falcon.asgi.App[Any, Any]":
    """For running under a server of your own, e.g.
    `gunicorn -k uvicorn_worker.UvicornWorker 'castslice.handler.app:get_app()'`."""
    return create_app(Config.from_env(os.environ, available_cpus()))
