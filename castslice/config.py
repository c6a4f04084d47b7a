"""CastSlice's configuration: environment variables, read once at start (SPEC §8).

Every setting has a default, a type and a clear error; a running server never meets a
config error, so everything that can be checked is checked here.
"""

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from castslice.functions.mig import COMPUTE_SLICES, DEFAULT_LADDER, parse_ladder
from castslice.functions.policy import BACKENDS, Policy
from castslice.functions.rules import Rule, parse_rules

PREFIX = "CASTSLICE_"
DEFAULT_PRESETS = "training=4,inference=2,batch=2,dev=1"
DEFAULT_REDACTED_ANNOTATIONS = ("*token*", "*secret*", "*password*", "*credential*",
                                "kubectl.kubernetes.io/last-applied-configuration")
"""Annotation keys (globs) whose values a capture replaces; castops.io/* never is."""
_QUALIFIED_NAME = re.compile(
    r"(?:[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_PRESET_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
T = TypeVar("T")


class ConfigError(Exception):
    """Invalid configuration: one line per problem, each naming variable, value and rule."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration: the decision's Policy and how to serve it. Build
    variants in tests with dataclasses.replace (on `policy` for decision settings)."""

    policy: Policy = field(default_factory=Policy)
    max_body_bytes: int = 6 * 1024 * 1024
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    bind: str = "0.0.0.0:8443"
    workers: int = 1
    log_level: str = "info"
    namespace: str | None = None
    capture: str | None = None
    capture_sample: float = 1.0
    capture_redact: frozenset[str] = frozenset()
    capture_redact_annotations: tuple[str, ...] = DEFAULT_REDACTED_ANNOTATIONS
    capture_queue: int = 10_000
    gpu_hourly_cost: float | None = None
    slices_per_gpu: int | None = None
    drain_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], cpus: int = 1) -> "Config":
        """Parse the environment; raise ConfigError listing every problem at once."""
        read = _Reader(env)
        namespace = read.text("NAMESPACE") or None
        cert, key = read.text("TLS_CERT_FILE") or None, read.text("TLS_KEY_FILE") or None
        if (cert is None) != (key is None):
            read.problem("TLS_CERT_FILE" if cert is None else "TLS_KEY_FILE", "",
                         "set both CASTSLICE_TLS_CERT_FILE and CASTSLICE_TLS_KEY_FILE, "
                         "or neither for plain HTTP")
        for name, path in (("TLS_CERT_FILE", cert), ("TLS_KEY_FILE", key)):
            if path is not None and not os.access(path, os.R_OK):
                read.problem(name, path, "must be a readable file")
        config = cls(
            policy=_policy(read, namespace),
            max_body_bytes=read.whole("MAX_BODY_BYTES", 6 * 1024 * 1024, 1024, 1 << 30),
            tls_cert_file=cert,
            tls_key_file=key,
            bind=read.parse("BIND", _default_bind(env), _bind),
            workers=read.whole("WORKERS", max(1, cpus), 1, 256),
            log_level=read.choice("LOG_LEVEL", "info", _LOG_LEVELS),
            namespace=namespace,
            capture=read.parse("CAPTURE", "", _capture) or None,
            capture_sample=read.parse("CAPTURE_SAMPLE", "1", _real(
                0, 1, "a share of events from 0 to 1, e.g. 0.1")),
            capture_redact=read.parse("CAPTURE_REDACT", "", _redact_fields),
            capture_redact_annotations=read.parse(
                "CAPTURE_REDACT_ANNOTATIONS", ",".join(DEFAULT_REDACTED_ANNOTATIONS), _globs),
            capture_queue=read.whole("CAPTURE_QUEUE", 10_000, 1, 1_000_000),
            gpu_hourly_cost=read.parse("GPU_HOURLY_COST", "", _blank_is_none(_real(
                0, 1e6, "dollars per GPU-hour, a number above 0, e.g. 2.5", above_low=True))),
            slices_per_gpu=read.parse("SLICES_PER_GPU", "", _optional_whole),
            drain_seconds=read.parse("DRAIN_SECONDS", "5", _real(
                0, 600, "seconds from 0 to 600, e.g. 5 or 0.5")),
        )
        if read.problems:
            raise ConfigError(read.problems)
        return config

    @property
    def units_per_card(self) -> int | None:
        """What one physical GPU holds, for the savings model: its 7 compute slices under
        mig, else the shared units of CASTSLICE_SLICES_PER_GPU (None when unset)."""
        return COMPUTE_SLICES if self.policy.backend == "mig" else self.slices_per_gpu

    def fingerprint(self) -> str:
        """A short hash of every effective setting, rules' content included, stamped on
        captured events: two configurations that decide differently never share one."""
        text = json.dumps(self.describe(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> dict[str, object]:
        """Every effective setting as plain data under its variable's name, for `castslice
        config`."""
        return {name: _plain(value) for name, value in self._settings().items()}

    def as_env(self) -> dict[str, str]:
        """Every effective setting as the variable that sets it, so that
        Config.from_env(config.as_env()) == config: what a capture records, so a replay
        can decide under the configuration that decided then."""
        return {name: _env_text(value) for name, value in self._settings().items()}

    def _settings(self) -> dict[str, object]:
        settings = {name: getattr(self.policy, name) for name in self.policy.__dataclass_fields__}
        settings |= {name: getattr(self, name) for name in self.__dataclass_fields__
                     if name != "policy"}
        return {f"{PREFIX}{name.upper()}": value for name, value in settings.items()}


def policy_from_env(env: Mapping[str, str]) -> Policy:
    """The decision's settings alone, for replaying under a recorded configuration: TLS
    files, bind address and capture target of another machine are not looked at."""
    read = _Reader(env)
    policy = _policy(read, read.text("NAMESPACE") or None)
    if read.problems:
        raise ConfigError(read.problems)
    return policy


def _policy(read: "_Reader", namespace: str | None) -> Policy:
    """The decision's settings; the namespace CastSlice runs in is always excluded."""
    max_slices = read.whole("MAX_SLICES", 64, 1, 10_000)
    presets = read.parse("PRESETS", DEFAULT_PRESETS, _presets)
    too_big = [f"{name}={count}" for name, count in presets.items() if count > max_slices]
    if too_big:
        read.problem("PRESETS", read.text("PRESETS") or DEFAULT_PRESETS,
                     f"{', '.join(too_big)} above CASTSLICE_MAX_SLICES={max_slices}")
    source = read.parse("SOURCE_RESOURCE", "nvidia.com/gpu", _resource_name)
    target = read.parse("TARGET_RESOURCE", "nvidia.com/gpu-shared", _resource_name)
    if source == target:
        read.problem("TARGET_RESOURCE", target, "must differ from CASTSLICE_SOURCE_RESOURCE")
    excluded = read.parse("EXCLUDE_NAMESPACES", "kube-system", _name_list)
    ladder = read.parse("MIG_PROFILES", ",".join(DEFAULT_LADDER), parse_ladder)
    mig_prefix = read.parse("MIG_RESOURCE_PREFIX", "nvidia.com/mig-",
                            lambda value: _mig_prefix(value, ladder))
    if source in {mig_prefix + profile for profile in ladder}:
        read.problem("MIG_RESOURCE_PREFIX", mig_prefix,
                     f"a profile's resource name equals CASTSLICE_SOURCE_RESOURCE={source}")
    return Policy(
        source_resource=source,
        target_resource=target,
        default_slices=read.whole("DEFAULT_SLICES", 1, 1, max_slices),
        max_slices=max_slices,
        presets=MappingProxyType(presets),
        on_invalid=read.choice("ON_INVALID", "warn", ("warn", "deny")),  # type: ignore[arg-type]
        exclude_namespaces=frozenset(excluded) | ({namespace} if namespace else set()),
        rules=read.parse("RULES", "", lambda v: parse_rules(v, presets, max_slices)),
        backend=read.choice("BACKEND", "extended", BACKENDS),  # type: ignore[arg-type]
        mig_profiles=ladder,
        mig_resource_prefix=mig_prefix,
        dra_template_prefix=read.parse("DRA_TEMPLATE_PREFIX", "castslice-gpu-", _template_prefix),
    )


class _Reader:
    """Reads CASTSLICE_* variables, collecting problems instead of stopping at the first."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []

    def text(self, name: str, default: str = "") -> str:
        return self.env.get(PREFIX + name, default)

    def problem(self, name: str, value: str, allowed: str) -> None:
        self.problems.append(f"{PREFIX}{name}={value!r}: {allowed}")

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
            if not _is_whole(value) or not low <= int(value) <= high:
                raise ValueError(f"allowed: a whole number from {low} to {high}")
            return int(value)
        return self.parse(name, str(default), parser)

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        def parser(value: str) -> str:
            if value.strip().lower() not in allowed:
                raise ValueError(f"allowed: {', '.join(allowed)}")
            return value.strip().lower()
        return self.parse(name, default, parser)


def _is_whole(text: str) -> bool:
    """ASCII digits only: str.isdigit() and int() also accept "²" and Arabic-Indic digits."""
    return re.fullmatch(r"[0-9]+", text.strip()) is not None


def _presets(value: str) -> dict[str, int]:
    presets: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, count = item.partition("=")
        name, count = name.strip(), count.strip()
        if not _PRESET_NAME.fullmatch(name) or not _is_whole(count) or int(count) < 1:
            raise ValueError(f"entry {item!r} is not name=count (lowercase name, whole "
                             f"count from 1); example: {DEFAULT_PRESETS}")
        presets[name] = int(count)
    if not presets:
        raise ValueError(f"needs at least one name=count; example: {DEFAULT_PRESETS}")
    return presets


def _name_list(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if not _PRESET_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a namespace name; allowed: comma-separated names")
    return names


def _resource_name(value: str) -> str:
    if not _QUALIFIED_NAME.fullmatch(value) or "/" not in value:
        raise ValueError("allowed: an extended resource name such as nvidia.com/gpu-shared")
    return value


def _mig_prefix(value: str, ladder: tuple[str, ...]) -> str:
    if not all(_QUALIFIED_NAME.fullmatch(value + profile) for profile in ladder) or (
            "/" not in value):
        raise ValueError("allowed: a resource name prefix such as nvidia.com/mig- (prefix + "
                         "profile must be an extended resource name)")
    return value


def _template_prefix(value: str) -> str:
    """ResourceClaimTemplate names are DNS-1123 subdomains: prefix + slice count must be one."""
    if not re.fullmatch(r"[a-z0-9][-a-z0-9.]{0,240}", value) or ".." in value or (
            re.search(r"[.-]\.|\.-", value)):
        raise ValueError("allowed: lowercase letters, digits, '-' and '.', starting with a "
                         "letter or digit, e.g. castslice-gpu-")
    return value


def _default_bind(env: Mapping[str, str]) -> str:
    port = env.get("PORT", "").strip()
    return f"0.0.0.0:{port}" if port else "0.0.0.0:8443"


def _bind(value: str) -> str:
    host, _, port = value.strip().rpartition(":")
    if not host or not _is_whole(port) or not 1 <= int(port) <= 65535:
        raise ValueError("allowed: HOST:PORT with a port from 1 to 65535, e.g. 0.0.0.0:8443")
    return value.strip()


def _capture(value: str) -> str:
    value = value.strip()
    if value and not re.fullmatch(r"file:///.+|s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/.*)?",
                                  value):
        raise ValueError("allowed: file:///absolute/dir or s3://bucket/prefix")
    return value


def _real(low: float, high: float, allowed: str,
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


def _blank_is_none(parser: Callable[[str], T]) -> Callable[[str], T | None]:
    return lambda value: parser(value) if value.strip() else None


def _redact_fields(value: str) -> frozenset[str]:
    fields = frozenset(f.strip() for f in value.split(",") if f.strip())
    if not fields <= {"args", "command"}:
        raise ValueError("allowed: comma-separated args, command (env values are always "
                         "redacted)")
    return fields


def _globs(value: str) -> tuple[str, ...]:
    return tuple(g.strip().lower() for g in value.split(",") if g.strip())


def _optional_whole(value: str) -> int | None:
    if not value.strip():
        return None
    if not _is_whole(value) or not 1 <= int(value) <= 10_000:
        raise ValueError("allowed: a whole number from 1 to 10000")
    return int(value)


def _env_text(value: object) -> str:
    """A setting as the text of its variable (the inverse of its parser)."""
    if value is None:
        return ""
    if isinstance(value, Mapping):
        return ",".join(f"{name}={count}" for name, count in value.items())
    if isinstance(value, frozenset):
        return ",".join(sorted(value))
    if isinstance(value, tuple):
        if value and isinstance(value[0], Rule):
            return json.dumps([rule.as_dict() for rule in value], separators=(",", ":"))
        return ",".join(value)
    return repr(value) if isinstance(value, float) else str(value)


def _plain(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return [r.as_dict() if isinstance(r, Rule) else r for r in value]
    return value


def available_cpus() -> int:
    """CPUs this container may use: the cgroup v2 quota when set, else the affinity mask."""
    cpus = len(os.sched_getaffinity(0))
    try:
        with open("/sys/fs/cgroup/cpu.max", encoding="ascii") as handle:
            quota, period = handle.read().split()
        if quota != "max":
            cpus = min(cpus, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return cpus
