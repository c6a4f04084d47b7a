"""CastSlice's configuration: environment variables, read once at start (SPEC §8).

Every setting has a default, a type and a clear error; a running server never meets a
config error, so everything that can be checked is checked here. The decision's settings
are read in `decision.py`, each kind of value in `values.py`.
"""

import difflib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from castslice.functions.policy import Policy
from castslice.functions.rules import Rule
from castslice.settings import values
from castslice.settings.decision import policy_from_env, read_policy
from castslice.settings.values import PREFIX, ConfigError, Reader

__all__ = ["PREFIX", "Config", "ConfigError", "available_cpus", "policy_from_env"]

DEFAULT_REDACTED_ANNOTATIONS = ("*token*", "*secret*", "*password*", "*credential*",
                                "kubectl.kubernetes.io/last-applied-configuration")
"""Annotation keys (globs) whose values a capture replaces; castops.io/* never is."""
_LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


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
    drain_seconds: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str], cpus: int = 1) -> "Config":
        """Parse the environment; raise ConfigError listing every problem at once."""
        read = Reader(env)
        namespace = read.text("NAMESPACE") or None
        cert, key = read.text("TLS_CERT_FILE") or None, read.text("TLS_KEY_FILE") or None
        if (cert is None) != (key is None):
            read.problem("TLS_CERT_FILE" if cert is None else "TLS_KEY_FILE", "",
                         "set both CASTSLICE_TLS_CERT_FILE and CASTSLICE_TLS_KEY_FILE, "
                         "or neither for plain HTTP")
        readable = True
        for name, path in (("TLS_CERT_FILE", cert), ("TLS_KEY_FILE", key)):
            if path is not None and not os.access(path, os.R_OK):
                read.problem(name, path, "must be a readable file")
                readable = False
        tls = values.tls_pair(cert, key) if cert and key and readable else None
        if tls:
            read.problem("TLS_CERT_FILE", cert or "", f"with CASTSLICE_TLS_KEY_FILE={key}: {tls}")
        config = cls(
            policy=read_policy(read, namespace),
            max_body_bytes=read.whole("MAX_BODY_BYTES", 6 * 1024 * 1024, 1024, 1 << 30),
            tls_cert_file=cert,
            tls_key_file=key,
            bind=read.parse("BIND", values.default_bind(env), values.bind),
            workers=read.whole("WORKERS", max(1, cpus), 1, 256),
            log_level=read.choice("LOG_LEVEL", "info", _LOG_LEVELS),
            namespace=namespace,
            capture=read.parse("CAPTURE", "", values.capture) or None,
            capture_sample=read.parse("CAPTURE_SAMPLE", "1", values.real(
                0, 1, "a share of events from 0 to 1, e.g. 0.1")),
            capture_redact=read.parse("CAPTURE_REDACT", "", values.redact_fields),
            capture_redact_annotations=read.parse(
                "CAPTURE_REDACT_ANNOTATIONS", ",".join(DEFAULT_REDACTED_ANNOTATIONS),
                values.globs),
            capture_queue=read.whole("CAPTURE_QUEUE", 10_000, 1, 1_000_000),
            gpu_hourly_cost=read.parse("GPU_HOURLY_COST", "", values.blank_is_none(values.real(
                0, 1e6, "dollars per GPU-hour, a number above 0, e.g. 2.5", above_low=True))),
            drain_seconds=read.parse("DRAIN_SECONDS", "5", values.real(
                0, 600, "seconds from 0 to 600, e.g. 5 or 0.5")),
        )
        if read.problems:
            raise ConfigError(read.problems)
        return config

    @staticmethod
    def unknown(env: Mapping[str, str]) -> list[str]:
        """One warning per CASTSLICE_* variable CastSlice never reads (a misspelling is
        otherwise silently a default), with the closest setting's name."""
        known = sorted(Config()._settings())  # every setting, named as its variable
        found = []
        for name in sorted(k for k in env if k.startswith(PREFIX) and k not in known):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            found.append(f"warning: {name} is not a CastSlice setting{hint}; ignored")
        return found

    @property
    def units_per_card(self) -> int | None:
        """What one physical GPU holds, for the savings model (Policy.card_units)."""
        return self.policy.card_units()

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
