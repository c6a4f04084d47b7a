"""The Falcon ASGI app: create_app(config) takes its dependencies, get_app() reads the env."""

import os
from typing import Any

import falcon.asgi

from castslice.config import Config, available_cpus
from castslice.handler import logs
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.metrics import Metrics
from castslice.handler.resources import Health, MetricsPage, Mutate, Ready


def create_app(config: Config, lifecycle: Lifecycle | None = None,
               metrics: Metrics | None = None) -> "falcon.asgi.App[Any, Any]":
    """The app with its routes; `lifecycle` turns ready at the end of this call."""
    lifecycle = lifecycle or Lifecycle()
    metrics = metrics or Metrics(config)
    app = falcon.asgi.App()
    app.add_route("/mutate", Mutate(config, metrics, logs.setup(config.log_level)))
    app.add_route("/healthz", Health())
    app.add_route("/readyz", Ready(lifecycle))
    app.add_route("/metrics", MetricsPage(metrics))
    lifecycle.ready = True
    return app


def get_app() -> "falcon.asgi.App[Any, Any]":
    """For running under a gunicorn of your own: `gunicorn 'castslice.handler.app:get_app()'`."""
    return create_app(Config.from_env(os.environ, available_cpus()))
