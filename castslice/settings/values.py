"""How each CASTSLICE_* variable is read: the reader that collects every problem, and one
parser per kind of value (a number in a range, a name, a list, a URL).

A parser raises ValueError saying what is allowed; the reader turns that into the one line
that names the variable and its value, and goes on, so a user sees every problem at once.
"""

import math
import re
from collections.abc import Callable, Mapping
from typing import TypeVar

from castslice.functions.memory import base, memory_ask
from castslice.functions.mig import parse_ladder, resource_suffix

PREFIX = "CASTSLICE_"
DEFAULT_PRESETS = "training=4,inference=2,batch=2,dev=1"
_QUALIFIED_NAME = re.compile(
    r"(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_PRESET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
T = TypeVar("T")


class ConfigError(Exception):
    """Invalid configuration: one line per problem, each naming variable, value and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Reader:
    """Reads CASTSLICE_* variables, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(PREFIX + name, default)

    def problem(self, name: str, value: str, allowed: str) -> None:
        self.problems.append(f"{PREFIX}{name}={shown(value)}: {allowed}")

    def parse(self, name: str, default: str, parser: Callable[[str], T]) -> T:
        """An empty or blank variable counts as unset, as Kubernetes env often leaves them."""
        value = self.text(name).strip() or default
        try:
            return parser(value)
        except ValueError as error:
            self.problem(name, value, str(error))
            return parser(default)

    def whole(self, name: str, default: int, low: int, high: int) -> int:
        def parser(value: str) -> int:
            if not is_whole(value) or not low <= int(value) <= high:
                raise ValueError(f"allowed: a whole number from {low} to {high}")
            return int(value)
        return self.parse(name, str(default), parser)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        """One of `allowed`, spelled exactly (as the Helm schema checks it)."""
        def parser(value: str) -> str:
            if value.strip() not in allowed:
                spelled = (f" (values are lowercase: {value.strip().lower()})"
                           if value.strip().lower() in allowed else "")
                raise ValueError(f"allowed: {', '.join(allowed)}{spelled}")
            return value.strip()
        return self.parse(name, default, parser)


SHOWN = 60
"""The most characters of a value an error line repeats: a 50 MB line stays one line."""


def shown(value: str) -> str:
    """A value as an error line quotes it, cut past SHOWN characters with its length."""
    if len(value) <= SHOWN:
        return repr(value)
    return f"{value[:SHOWN - 20]!r}... ({len(value):,} characters)"


def is_whole(text: str) -> bool:
    """ASCII digits only, at most 18 of them: str.isdigit() and int() also accept "²" and
    Arabic-Indic digits, and int() refuses thousands of digits with its own error."""
    return re.fullmatch(r"[0-9]{1,18}", text.strip()) is not None


def presets(value: str) -> dict[str, int]:
    """CASTSLICE_PRESETS: name=count pairs, lowercase names, counts from 1."""
    presets: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, count = item.partition("=")
        name, count = name.strip(), count.strip()
        if not _PRESET_NAME.fullmatch(name) or not is_whole(count) or int(count) < 1:
            raise ValueError(f"entry {shown(item)} is not name=count (lowercase name, whole "
                             f"count from 1); example: {DEFAULT_PRESETS}")
        if name in presets:
            raise ValueError(f"{name!r} is given twice; each preset once, e.g. "
                             f"{DEFAULT_PRESETS}")
        presets[name] = int(count)
    if not presets:
        raise ValueError(f"needs at least one name=count; example: {DEFAULT_PRESETS}")
    return presets


def name_list(value: str) -> list[str]:
    """Comma-separated namespace names (DNS-1123 labels)."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if not _PRESET_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"{shown(bad[0])} is not a namespace name; allowed: comma-separated "
                         "names")
    if not names:
        raise ValueError("names no namespace (unset it for the default, kube-system)")
    return names


def resource_name(value: str) -> str:
    """An extended resource name: a qualified name with a domain."""
    if not _QUALIFIED_NAME.fullmatch(value) or "/" not in value:
        raise ValueError("allowed: an extended resource name such as nvidia.com/gpu-shared")
    return value


def mig_prefix(value: str, ladder: tuple[str, ...]) -> str:
    """A prefix that makes an extended resource name with every profile of the ladder."""
    if not all(_QUALIFIED_NAME.fullmatch(value + resource_suffix(p)) for p in ladder) or (
            "/" not in value):
        raise ValueError("allowed: a resource name prefix such as nvidia.com/mig- (prefix + "
                         "profile must be an extended resource name)")
    return value


def template_prefix(value: str) -> str:
    """ResourceClaimTemplate names are DNS-1123 subdomains: prefix + slice count must be one."""
    if not re.fullmatch(r"[a-z0-9][-a-z0-9.]{0,240}", value) or ".." in value or (
            re.search(r"[.-]\.|\.-", value)):
        raise ValueError("allowed: lowercase letters, digits, '-' and '.', starting with a "
                         "letter or digit, e.g. castslice-gpu-")
    return value


def default_bind(env: Mapping[str, str]) -> str:
    """0.0.0.0:$PORT when Knative sets PORT, else 0.0.0.0:8443."""
    port = env.get("PORT", "").strip()
    return f"0.0.0.0:{port}" if port else "0.0.0.0:8443"


def bind(value: str) -> str:
    """HOST:PORT with a port from 1 to 65535."""
    host, _, port = value.strip().rpartition(":")
    if not host or not is_whole(port) or not 1 <= int(port) <= 65535:
        raise ValueError("allowed: HOST:PORT with a port from 1 to 65535, e.g. 0.0.0.0:8443")
    return value.strip()


def capture(value: str) -> str:
    """file:///absolute/dir or s3://bucket/prefix, or empty for no capture."""
    value = value.strip()
    if value and not re.fullmatch(r"file:///.+|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?",
                                  value):
        raise ValueError("allowed: file:///absolute/dir or s3://bucket/prefix")
    return value


def real(low: float, high: float, allowed: str,
          above_low: bool = False) -> Callable[[str], float]:
    """A parser for a number in [low, high] (or (low, high]); NaN and text are refused."""
    def parser(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not ((low < number) if above_low else (low <= number)) or not number <= high:
            raise ValueError(f"allowed: {allowed}")
        return number
    return parser


def blank_is_none(parser: Callable[[str], T]) -> Callable[[str], T | None]:
    """`parser`, with a blank value meaning unset (None)."""
    return lambda value: parser(value) if value.strip() else None


def redact_fields(value: str) -> frozenset[str]:
    """Container fields a capture also redacts: args and/or command."""
    fields = frozenset(f.strip() for f in value.split(",") if f.strip())
    if not fields <= {"args", "command"}:
        raise ValueError("allowed: comma-separated args, command (env values are always "
                         "redacted)")
    return fields


def globs(value: str) -> tuple[str, ...]:
    """Comma-separated globs, lowercased (annotation keys are matched case-insensitively)."""
    return tuple(g.strip().lower() for g in value.split(",") if g.strip())


def optional_whole(value: str) -> int | None:
    """A whole number from 1 to 10000, or None when blank."""
    if not value.strip():
        return None
    if not is_whole(value) or not 1 <= int(value) <= 10_000:
        raise ValueError("allowed: a whole number from 1 to 10000")
    return int(value)



def memory(value: str) -> int | None:
    """A GPU's memory as a Kubernetes quantity (80Gi, 81559Mi), in whole bytes; None when
    blank."""
    if not value.strip():
        return None
    ask = memory_ask(value.strip())
    if ask is None:
        raise ValueError("allowed: a memory quantity above 0, e.g. 80Gi or 81559Mi (nvidia-smi "
                         "--query-gpu=memory.total)")
    return ask


def mig_memory(value: str, ladder: tuple[str, ...]) -> dict[str, int]:
    """profile=quantity pairs: the real memory of the ladder's profiles (nvidia-smi mig -lgip,
    or the DRA driver's ResourceSlices), in whole bytes."""
    found: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, size = item.partition("=")
        profile = base(name.strip())
        try:
            in_ladder = profile in {base(p) for p in ladder} and parse_ladder(name.strip())
        except ValueError:
            in_ladder = False
        ask = memory_ask(size.strip())
        if not in_ladder or ask is None:
            raise ValueError(f"entry {shown(item)} is not profile=memory for a profile of "
                             "CASTSLICE_MIG_PROFILES (e.g. 2g.10gb=9856Mi)")
        found[profile] = ask
    return found


def tls_pair(cert: str, key: str) -> str | None:
    """Why a certificate and key cannot serve HTTPS, or None: the load the server does at
    start, so `castslice config` says what `castslice serve` would meet."""
    import os
    import ssl

    for path in (cert, key):
        if os.path.isdir(path):
            return f"{path} is a directory, not a PEM file"
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as error:
        if "KEY_VALUES_MISMATCH" in str(error):
            return "the key does not belong to the certificate (swapped, or another pair's)"
        return "not a PEM certificate and its private key"
    except OSError as error:
        return str(error.strerror or error)
    return None
