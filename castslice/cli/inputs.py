"""Reading what the commands are given: a path or "-" for stdin, JSON or YAML."""

import argparse
import math
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson

from castslice.settings.config import Config, ConfigError, available_cpus
from castslice.settings.envfile import EnvFileError, read_env_files

Register = Callable[[str, Callable[[argparse.Namespace, Mapping[str, str]], int], str],
                    argparse.ArgumentParser]
"""How a command module adds its commands to the parser."""


class Failure(Exception):
    """A problem with the user's input: printed as one line, exit code 1."""


def load_config(env: Mapping[str, str]) -> Config:
    return Config.from_env(env, available_cpus())


def add_env_files(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--env-file", action="append", metavar="FILE", default=[], help=(
        f"{what} from this env file (KEY=value lines, as kustomize's configMapGenerator "
        "reads them); repeatable, later files win; the process environment is then not "
        "consulted"))


def environment(files: list[str], env: Mapping[str, str]) -> Mapping[str, str]:
    """The env files' variables when any are given, else the process environment. An env
    file that cannot be read is a configuration error (exit 2), like a bad value in it."""
    if not files:
        return env
    try:
        return read_env_files(files)
    except EnvFileError as error:
        raise ConfigError([str(error)]) from None


def documents(file: str) -> list[Any]:
    """Every document in the file: one JSON document (what kubectl and the API server
    write, parsed fast) or one or more YAML documents; empty YAML documents dropped."""
    if file == "-" and sys.stdin.isatty():
        print("castslice: reading from stdin (end with Ctrl-D); or name a file", file=sys.stderr)
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise Failure(f"cannot read {file}: {getattr(error, 'strerror', None) or error}"
                      ) from None
    try:
        return [orjson.loads(text)]
    except orjson.JSONDecodeError:
        pass
    import yaml  # only for YAML input: `castslice serve` imports this module, not PyYAML

    try:
        return [d for d in yaml.safe_load_all(text) if d is not None]
    except (yaml.YAMLError, RecursionError) as error:
        raise Failure(f"{file}: neither JSON nor YAML: {' '.join(str(error).split())[:200]}"
                      ) from None
    except ValueError:  # PyYAML hands an integer of any length to int(), which refuses it
        raise Failure(f"{file}: holds an integer of more than {sys.get_int_max_str_digits()} "
                      "digits, which no Kubernetes field takes") from None


def one_document(file: str) -> Any:
    """The file's only document; None for an empty file."""
    found = documents(file)
    if len(found) > 1:
        raise Failure(f"{file}: expected one document, found {len(found)}")
    return found[0] if found else None


def seconds(high: float) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds above 0 and at most `high`."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and 0 < value <= high):
            raise argparse.ArgumentTypeError(f"{text!r}: seconds above 0, at most {high:g}")
        return value
    return parse


def http_url(text: str) -> str:
    """An argparse type: an http:// or https:// URL with a host."""
    parts = urllib.parse.urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise argparse.ArgumentTypeError(f"{text!r}: an http:// or https:// URL, e.g. "
                                         "http://prometheus.monitoring:9090")
    return text.strip()
