""""What would this configuration change do?": captured admissions decided under the
configuration recorded with them and under a proposed one, summed per namespace and kind
of change, with GPUs and slices before and after and a few example Pods per kind.

Memory stays bounded whatever the number of events: one row per namespace and kind, and
at most EXAMPLES examples per kind.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from castslice.capture.replay import KINDS, change
from castslice.functions.admit import Admission
from castslice.functions.decide import Decision
from castslice.functions.reviews import mapping, metadata_of

EXAMPLES = 3


NOTHING_FITS = frozenset({"no-mig-profile", "no-template", "no-memory-fit"})
"""Reasons a Pod opted in passes unchanged because the cluster offers nothing that large
(for a memory ask: no grant whose memory holds it)."""


@dataclass(slots=True)
class Row:
    events: int = 0
    gpus_before: int = 0
    gpus_after: int = 0
    slices_before: int = 0
    slices_after: int = 0
    profiles: dict[str, int] = field(default_factory=dict)
    """MIG profile before -> after ("3g.20gb->4g.20gb"), events each: what the slices were
    granted as, under mig or dra with MIG templates."""


@dataclass(slots=True)
class Preview:
    events: int = 0
    rows: dict[tuple[str, str], Row] = field(default_factory=dict)
    examples: dict[str, list[dict[str, str]]] = field(default_factory=dict)

    def add(self, record: dict[str, Any], before: Admission, after: Admission) -> str | None:
        """Count one event; returns its kind of change, None when the answer stays."""
        self.events += 1
        kind = effect(before, after)
        if kind is None:
            return None
        namespace = str(record.get("namespace") or "")
        row = self.rows.setdefault((namespace, kind), Row())
        row.events += 1
        row.gpus_before += before.decision.gpus
        row.gpus_after += after.decision.gpus
        row.slices_before += before.decision.granted
        row.slices_after += after.decision.granted
        if before.decision.profile or after.decision.profile:
            pair = f"{before.decision.profile or '-'}->{after.decision.profile or '-'}"
            row.profiles[pair] = row.profiles.get(pair, 0) + 1
        shown = self.examples.setdefault(kind, [])
        if len(shown) < EXAMPLES:
            shown.append({"namespace": namespace, "pod": _pod_name(record),
                          "uid": str(record.get("uid")), "before": outcome(before.decision),
                          "after": outcome(after.decision)})
        return kind

    @property
    def changed(self) -> int:
        return sum(row.events for row in self.rows.values())

    def as_dict(self, seconds: float) -> dict[str, Any]:
        return {"events": self.events, "changed": self.changed,
                "seconds": round(seconds, 3),
                "events_per_second": round(self.events / seconds) if seconds else None,
                "changes": [{"namespace": ns, "kind": kind, **asdict(row)}
                            for (ns, kind), row in self._sorted()],
                "examples": {kind: self.examples[kind] for kind in KINDS
                             if kind in self.examples}}

    def table(self, seconds: float) -> str:
        lines = [f"{'NAMESPACE':24} {'CHANGE':20} {'EVENTS':>7} {'GPUS':>11} {'SLICES':>13}"]
        lines += [f"{ns:24} {kind:20} {row.events:>7} "
                  f"{f'{row.gpus_before}->{row.gpus_after}':>11} "
                  f"{','.join(row.profiles) or f'{row.slices_before}->{row.slices_after}':>13}"
                  for (ns, kind), row in self._sorted()]
        for kind in KINDS:
            for example in self.examples.get(kind, ()):
                lines.append(f"  {kind}: {example['namespace']}/{example['pod']} (uid "
                             f"{example['uid']})\n    before: {example['before']}\n"
                             f"    after:  {example['after']}")
        rate = f", {self.events / seconds:,.0f} events/s" if seconds else ""
        lines.append(f"{self.events} events, {self.changed} would change ({seconds:.1f} s"
                     f"{rate})")
        return "\n".join(lines) + "\n"

    def _sorted(self) -> list[tuple[tuple[str, str], Row]]:
        return sorted(self.rows.items(), key=lambda item: (item[0][0], KINDS.index(item[0][1])))


def effect(before: Admission, after: Admission) -> str | None:
    """What the change would do to the Pod, not to the answer's bytes: a MIG device of the
    same profile is no change (castslice-gpu-5 and -6 both claim 7g.40gb on an A100), a
    different profile is "profile changed", and a conversion that now passes because
    nothing is that large is "no longer fits"."""
    kind = change(before.response["response"], after.response["response"])
    old, new = before.decision, after.decision
    if kind == "no longer converted" and new.reason in NOTHING_FITS:
        return "no longer fits"
    if kind in ("slices changed", "patch changed") and old.profile and new.profile:
        if old.profile != new.profile:
            return "profile changed"
        return None if (old.gpus, _places(old)) == (new.gpus, _places(new)) else "patch changed"
    return kind


def _places(decision: Decision) -> list[tuple[str, str]]:
    """The ops of a patch without their values: which containers and fields it changes."""
    return [(op["op"], op["path"]) for op in decision.patch]


def outcome(decision: Decision) -> str:
    """A decision in one line: what castops.io/sliced would say, or why nothing is done."""
    said = decision.message if decision.outcome == "mutated" else (
        f"{decision.outcome}: {decision.message or decision.reason}")
    warnings = "; ".join(w.text for w in decision.warnings)
    return f"{said} [warnings: {warnings}]" if warnings else said


def _pod_name(record: dict[str, Any]) -> str:
    request = mapping(mapping(record.get("request")).get("request"))
    metadata = metadata_of(mapping(request.get("object")))
    name = metadata.get("name") or (f"{metadata.get('generateName')}*"
                                    if metadata.get("generateName") else "")
    return str(name)[:253] or "(no name)"
