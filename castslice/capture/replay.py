"""Replaying captured events through the current code and config, and saying what changed."""

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from castslice.capture.store import Store, decode
from castslice.events import readable
from castslice.functions.admit import admit, check_review
from castslice.functions.policy import Policy

KINDS = ("newly mutated", "no longer mutated", "different slice count", "different patch",
         "different warnings", "different verdict")


@dataclass(frozen=True, slots=True)
class Replayed:
    record: dict[str, Any]
    before: Any
    after: Any
    change: str | None


def records(store: Store, since: date | None, until: date | None) -> Iterator[dict[str, Any]]:
    for key in store.keys(since, until):
        yield from decode(store.read(key))


def replay(store: Store, policy: Policy, since: date | None = None,
           until: date | None = None) -> Iterator[Replayed]:
    """Each captured event with its recorded and current answers, and the kind of change."""
    for record in records(store, since, until):
        before = readable(record["response"])
        after = readable(admit(check_review(record["request"]), policy).response)
        yield Replayed(record, before, after, change(before["response"], after["response"]))


def change(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """What kind of difference, most important first; None when the answers agree."""
    if before == after:
        return None
    if before.get("allowed") != after.get("allowed"):
        return "different verdict"
    if ("patch" in before) != ("patch" in after):
        return "newly mutated" if "patch" in after else "no longer mutated"
    if before.get("patch") != after.get("patch"):
        return "different slice count" if _same_paths(before["patch"], after["patch"]) else (
            "different patch")
    return "different warnings"


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
