"""`castslice serve`: the server, configured by the environment."""

import argparse
import gc
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping

from castslice.cli.inputs import Register, load_config
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


def boto3_installed() -> bool:
    """boto3 is an extra (castslice[s3]): only s3:// capture needs it."""
    return importlib.util.find_spec("boto3") is not None
