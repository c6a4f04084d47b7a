"""`castslice serve`: the server, configured by the environment."""

import argparse
import errno
import gc
import importlib.util
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Mapping

from castslice.cli.inputs import Failure, Register, load_config
from castslice.settings.config import Config, ConfigError


def register(command: Register) -> None:
    command("serve", serve, "serve /mutate over HTTPS (or HTTP) with the environment's config")


def serve(_args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = load_config(env)
    for warning in Config.unknown(env):
        print(f"castslice: {warning}", file=sys.stderr)
    if config.capture and config.capture.startswith("s3://") and not boto3_installed():
        raise ConfigError([f"CASTSLICE_CAPTURE={config.capture!r}: s3:// capture needs boto3; "
                           "install it with: pip install 'castslice[s3]'"])
    _check_free(config.bind)
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="castslice-metrics-")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    gc.disable()  # importing the stack and building the app make only long-lived objects
    from castslice.handler.server import Server

    server = Server(config, metrics_dir)
    gc.freeze()  # so the workers' collections never scan them (and their pages stay shared)
    gc.enable()
    server.run()
    return 0


def _check_free(bind: str) -> None:
    """A port already taken is one line now, not gunicorn's five retries and ten lines."""
    host, _, port = bind.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, int(port)))
        except PermissionError as error:
            raise Failure(f"CASTSLICE_BIND={bind}: {error.strerror or error} (a port below "
                          "1024 needs root or CAP_NET_BIND_SERVICE; use a port above 1023, "
                          "e.g. 8443)") from None
        except OSError as error:
            hint = ("another server on that port? set CASTSLICE_BIND to another address"
                    if error.errno == errno.EADDRINUSE else "not an address of this host?")
            raise Failure(f"CASTSLICE_BIND={bind}: {error.strerror or error} ({hint})"
                          ) from None


def boto3_installed() -> bool:
    """boto3 is an extra (castslice[s3]): only s3:// capture needs it."""
    return importlib.util.find_spec("boto3") is not None
