"""`castslice savings`: the live picture of GPU sharing from a Pod list.

What it knows: Pods running now that hold what the back-end writes, and how much of it the
scheduler reserves for each. Under `extended` the slices per GPU come from the same
resolution the webhook runs (annotations, rules, presets of the current configuration), so
the whole GPUs a Pod would have asked for are its units / slices, and a Pod admitted under
another configuration is counted as this one would admit it. Under `mig` each device of a
g profile is one GPU asked and g/C of a card used (C the card's compute slices: 7 on A100,
4 on A30); under `dra` each claim from a CastSlice template `<prefix><s>` is one GPU asked
and its MIG profile's g/C, or s/N of a card's shares. What it cannot know: how long Pods
will run, or whether the cards are really full.
"""

import html
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from castslice.cluster.cards import cards_used
from castslice.cluster.objects import effective_request, live
from castslice.functions import resolve
from castslice.functions.annotations import GPU_MEMORY, SLICED, WORKLOAD_TYPE
from castslice.functions.mig import compute
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of
from castslice.functions.rules import first_match

HOURS_PER_MONTH = 730


@dataclass(frozen=True, slots=True)
class Group:
    namespace: str
    workload_type: str
    pods: int
    slices: int
    gpus_without_sharing: int
    gpus_with_sharing: float


@dataclass(frozen=True, slots=True)
class Report:
    groups: list[Group]
    slices_per_gpu: int
    price: float | None

    @property
    def gpus_without(self) -> int:
        return sum(g.gpus_without_sharing for g in self.groups)

    @property
    def cards_used(self) -> float:
        """Cards' worth of shared units, before packing onto whole cards."""
        return sum(g.gpus_with_sharing for g in self.groups)

    @property
    def gpus_with(self) -> float:
        return round(self.cards_used, 2)

    def dollars_per_hour(self) -> float | None:
        """Cards freed (gpucards' model, summed over Pods) times the price."""
        if self.price is None:
            return None
        return (self.gpus_without - self.cards_used) * self.price

    def as_dict(self) -> dict[str, Any]:
        hourly = self.dollars_per_hour()
        return {"slices_per_gpu": self.slices_per_gpu, "price_per_gpu_hour": self.price,
                "gpus_without_sharing": self.gpus_without, "gpus_with_sharing": self.gpus_with,
                "saved_dollars_per_hour": None if hourly is None else round(hourly, 2),
                "saved_dollars_per_month": None if hourly is None else round(
                    hourly * HOURS_PER_MONTH, 2),
                "groups": [asdict(g) for g in self.groups]}


def summarize(pods: list[dict[str, Any]], policy: Policy, slices_per_gpu: int,
              price: float | None) -> Report:
    """Group live Pods holding what the back-end writes by namespace and workload type."""
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
    for pod in pods:
        if not live(pod):
            continue
        gpus, slices, cards = _usage(pod, policy, slices_per_gpu)
        if not gpus:
            continue
        metadata = metadata_of(pod)
        namespace = str(metadata.get("namespace", "default"))
        group = totals[(namespace, _asked(mapping(metadata.get("annotations"))))]
        group[0] += 1
        group[1] += slices
        group[2] += gpus
        group[3] += cards
    groups = [Group(ns, kind, int(pods_), int(units), int(gpus), round(used, 4))
              for (ns, kind), (pods_, units, gpus, used) in sorted(totals.items())]
    return Report(groups, slices_per_gpu, price)


def why_none(pods: list[dict[str, Any]], policy: Policy) -> str:
    """Why a Pod list gave no group, in words: finished converted Pods, whole GPUs, none."""
    finished = sum(1 for pod in pods if not live(pod) and SLICED in mapping(
        metadata_of(pod).get("annotations")))
    whole = sum(1 for pod in pods if live(pod) and effective_request(
        pod, policy.source_resource))
    said = []
    if finished:
        said.append(f"{finished} converted Pod(s) have finished (Succeeded or Failed): savings "
                    "count running ones")
    if whole:
        said.append(f"{whole} running Pod(s) hold whole {policy.source_resource}: not "
                    "converted (castslice audit names the opted-in ones)")
    return "; ".join(said) or (f"none of the {len(pods)} Pod(s) read was converted by "
                               "CastSlice (no castops.io/sliced annotation) or holds a GPU")


def _asked(annotations: dict[str, Any]) -> str:
    """The group a Pod is counted in: its memory ask (which beats a workload type), else
    its workload type."""
    if GPU_MEMORY in annotations:
        return f"memory {annotations[GPU_MEMORY]}"
    return str(annotations.get(WORKLOAD_TYPE, "unspecified"))


def _usage(pod: dict[str, Any], policy: Policy, per_card: int) -> tuple[int, int, float]:
    """(whole GPUs it would have held, slices it holds, cards' worth it uses) under the
    back-end, by the one card model (cards.py): a MIG device or MIG claim costs its
    profile's compute slices over the card's, a shares claim s/N, a shared unit 1/R."""
    if policy.backend == "mig":
        held = [(effective_request(pod, policy.mig_resource(p)), compute(p))
                for p in policy.mig_profiles]
        return (sum(n for n, _ in held), sum(n * g for n, g in held),
                sum(cards_used(n, g, per_card) for n, g in held))
    if policy.backend == "dra":
        granted = [policy.granted(int(n))
                   for n in _template_suffixes(pod, policy.dra_template_prefix)]
        return len(granted), sum(granted), sum(cards_used(1, g, per_card) for g in granted)
    units = effective_request(pod, policy.target_resource)
    if not units:
        return 0, 0, 0.0
    metadata = metadata_of(pod)
    rule = first_match(policy.rules, str(metadata.get("namespace", "default")),
                       mapping(metadata.get("labels")))
    slices = resolve.slices(mapping(metadata.get("annotations")), rule, policy)[0].value
    gpus = -(-units // slices)  # whole GPUs asked: units / slices, rounded up
    return gpus, units, cards_used(gpus, slices, per_card)


def _template_suffixes(pod: dict[str, Any], prefix: str) -> list[str]:
    """The slice counts in the names of the Pod's claims from CastSlice's templates."""
    claims = mapping(pod.get("spec")).get("resourceClaims")
    names = [str(mapping(c).get("resourceClaimTemplateName", ""))
             for c in (claims if isinstance(claims, list) else ())]
    return [n[len(prefix):] for n in names
            if n.startswith(prefix) and n[len(prefix):].isascii() and n[len(prefix):].isdigit()]


def table(report: Report) -> str:
    """A terminal table, one row per namespace and workload type, and the totals."""
    lines = [f"{'NAMESPACE':20} {'WORKLOAD':12} {'PODS':>5} {'SLICES':>7} "
             f"{'GPUS WITHOUT':>13} {'GPUS WITH':>10}"]
    lines += [f"{g.namespace:20} {g.workload_type:12} {g.pods:>5} {g.slices:>7} "
              f"{g.gpus_without_sharing:>13} {g.gpus_with_sharing:>10}" for g in report.groups]
    lines.append(f"\nCards needed: {report.gpus_without} without sharing, {report.gpus_with} "
                 f"with sharing ({report.slices_per_gpu} slices per card).")
    hourly = report.dollars_per_hour()
    if hourly is not None:
        lines.append(f"Saved: ${hourly:,.2f} per hour, ${hourly * HOURS_PER_MONTH:,.2f} per "
                     f"month at ${report.price}/GPU-hour, while these Pods run.")
    return "\n".join(lines) + "\n"


def page(report: Report) -> str:
    """A self-contained HTML page with an inline SVG chart of cards per namespace."""
    per_namespace: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for g in report.groups:
        per_namespace[g.namespace][0] += g.gpus_without_sharing
        per_namespace[g.namespace][1] += g.gpus_with_sharing
    top = max((v[0] for v in per_namespace.values()), default=1) or 1
    bars = []
    for row, (namespace, (without, with_)) in enumerate(sorted(per_namespace.items())):
        y = 30 + row * 60
        bars.append(
            f'<text x="0" y="{y + 14}">{html.escape(namespace)}</text>'
            f'<rect class="without" x="160" y="{y}" width="{400 * without / top:.1f}" '
            f'height="20"/><text x="{166 + 400 * without / top:.1f}" y="{y + 15}">'
            f'{without:g} without</text>'
            f'<rect class="with" x="160" y="{y + 24}" width="{400 * with_ / top:.1f}" '
            f'height="20"/><text x="{166 + 400 * with_ / top:.1f}" y="{y + 39}">'
            f'{with_:g} with</text>')
    height = 40 + 60 * len(per_namespace)
    hourly = report.dollars_per_hour()
    saved = "" if hourly is None else (
        f"<p>Saved: <b>${hourly:,.2f}</b> per hour, <b>${hourly * HOURS_PER_MONTH:,.2f}</b> per "
        f"month at ${report.price}/GPU-hour, while these Pods run.</p>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CastSlice GPU sharing</title>
<style>body{{font-family:sans-serif;margin:2em}} .without{{fill:#c0392b}} .with{{fill:#27ae60}}
svg text{{font-size:13px}}</style></head><body>
<h1>GPU cards needed, per namespace</h1>
<p>{report.gpus_without} cards without sharing, {report.gpus_with} with sharing
({report.slices_per_gpu} slices per card).</p>{saved}
<svg id="chart" role="img" aria-label="cards per namespace" width="720" height="{height}">
{"".join(bars)}</svg>
<pre>{html.escape(table(report))}</pre></body></html>
"""
