"""Captured events decided again, and what kind of change each one shows.

A capture batch carries the configuration its events were decided under (store.CONFIGURATION),
so an event can be decided again under that configuration (what changed with the code), under
a proposed one (what a configuration change would do), or under this process's environment.
"""

from collections import Counter
from collections.abc import Iterator, Mapping
from datetime import date
from typing import Any, NamedTuple

from castslice.capture.store import CONFIGURATION, Store, decode
from castslice.functions.policy import Policy
from castslice.offline.events import readable
from castslice.settings.config import ConfigError, policy_from_env

KINDS = ("newly converted", "no longer converted", "no longer fits", "slices changed",
         "profile changed", "patch changed", "warnings changed", "now denied",
         "no longer denied")
"""Kinds of change, most important first; "no longer fits" and "profile changed" come
from a what-if (capture/preview.py), which compares effects, not bytes."""


class Captured(NamedTuple):
    record: dict[str, Any]
    configuration: Mapping[str, str] | None
    """The variables recorded with its batch; None for captures made before 0.4."""


def captured(store: Store, since: date | None, until: date | None) -> Iterator[Captured]:
    """Every captured event with its batch's configuration, one batch in memory at a time;
    ValueError names the batch of a line that is neither."""
    for key in store.keys(since, until):
        configuration = None
        try:
            records = list(decode(store.read(key)))
        except (OSError, EOFError, ValueError) as error:  # gzip and JSON errors alike
            raise ValueError(f"{key}: not a gzip batch of JSON lines ({error}); move it "
                             "aside to replay the rest") from None
        for record in records:
            if isinstance(record, dict) and CONFIGURATION in record:
                configuration = _configuration(record[CONFIGURATION], key)
            elif _is_event(record):
                yield Captured(record, configuration)
            else:
                raise ValueError(f"{key}: a line is neither a configuration nor an event")


def _configuration(value: object, key: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError(f"{key}: the batch's configuration is not a map of variables")
    return value


def _is_event(record: object) -> bool:
    return isinstance(record, dict) and isinstance(record.get("request"), dict) and (
        isinstance(record.get("response"), dict)
        and isinstance(record["response"].get("response"), dict))


class RecordedPolicies:
    """The Policy each event was decided under, parsed once per recorded configuration;
    events captured without one fall back to `fallback` and are counted."""

    def __init__(self, fallback: Policy) -> None:
        self.fallback = fallback
        self.parsed: dict[str, Policy] = {}
        self.unrecorded = 0

    def of(self, event: Captured) -> Policy:
        if event.configuration is None:
            self.unrecorded += 1
            return self.fallback
        fingerprint = str(event.record.get("config"))
        if fingerprint not in self.parsed:
            try:
                self.parsed[fingerprint] = policy_from_env(event.configuration)
            except ConfigError as error:
                raise ValueError(f"the configuration recorded as {fingerprint} is refused by "
                                 f"this version: {'; '.join(error.problems)}") from None
        return self.parsed[fingerprint]


def change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str | None:
    """What kind of difference between two answers (`response` parts as sent, patches in
    base64), most important first; None when they agree."""
    if before == after:
        return None
    if before.get("allowed") != after.get("allowed"):
        return "now denied" if before.get("allowed") else "no longer denied"
    if ("patch" in before) != ("patch" in after):
        return "newly converted" if "patch" in after else "no longer converted"
    if before.get("patch") != after.get("patch"):
        old, new = (readable({"response": a})["response"]["patch"] for a in (before, after))
        return "slices changed" if _same_paths(old, new) else "patch changed"
    return "warnings changed"


def _same_paths(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> bool:
    """Both patches touch the same places and differ only in values: the slice counts
    (and the castops.io/sliced text that records them)."""
    return [(op["op"], op["path"]) for op in before] == [(op["op"], op["path"]) for op in after]


def summary(counts: Counter[str | None]) -> str:
    total = sum(counts.values())
    changed = total - counts[None]
    lines = [f"{'events':24} {total:>8}", f"{'unchanged':24} {counts[None]:>8}",
             f"{'changed':24} {changed:>8}"]
    lines += [f"  {kind:22} {counts[kind]:>8}" for kind in KINDS if counts[kind]]
    return "\n".join(lines)
