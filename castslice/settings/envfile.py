"""Env files: one cluster's configuration, read the way kustomize's configMapGenerator
(`envs:`) and `kubectl create configmap --from-env-file` read it, so what `castslice config
--env-file` validates is what the ConfigMap will hold.

Per line: leading whitespace dropped; blank lines and lines starting with `#` skipped;
`KEY=value` split at the first `=`, the value kept exactly (no quotes removed, trailing
spaces kept). Unlike kustomize, a line without `=` is an error rather than a value taken
from the environment of whoever runs the command.
"""

import re
from collections.abc import Iterable
from pathlib import Path

from castslice.settings.values import shown

_KEY = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_BOM = "\ufeff"


class EnvFileError(Exception):
    """An env file that kustomize would refuse or read differently; says file and line."""


def read_env_files(paths: Iterable[str | Path]) -> dict[str, str]:
    """The variables of every file, later files winning."""
    merged: dict[str, str] = {}
    for path in paths:
        merged |= read_env_file(path)
    return merged


def read_env_file(path: str | Path) -> dict[str, str]:
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as error:
        raise EnvFileError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise EnvFileError(f"{path}: not UTF-8 text") from None
    found: dict[str, str] = {}
    for number, raw in enumerate(text.removeprefix(_BOM).splitlines(), start=1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        where = f"{path}:{number}"
        if not equals:
            raise EnvFileError(f"{where}: {shown(key)} has no '=': write KEY=value (an empty "
                               "value is KEY=)")
        if not _KEY.fullmatch(key):
            raise EnvFileError(f"{where}: {shown(key)} is not a variable name")
        if key in found:
            raise EnvFileError(f"{where}: {key} is set twice in one file")
        found[key] = value
    if not found:
        raise EnvFileError(f"{path}: holds no KEY=value line (a command that failed while "
                           "writing it leaves it empty)")
    return found
