"""The recommendation, pure: from what a workload's Pods used of a whole GPU, how many such
Pods fit on one card, and the grant that packs them so, rounded to the configuration.

Only a Pod's own use counts: a device it held alone, or its per-process figures on a shared
GPU (a shared GPU's utilisation is its tenants' sum). Pods that held one device one after
another (a Job's Pods, a rollout) are one workload's history, not sharing: only Pods whose
times on a device overlap share it. A MIG instance's use counts as its share of the card
(g / C of the ladder's largest profile). A card fits k Pods when k x p95 stays within the
compute target and k x peak framebuffer within the card's memory (time-slicing isolates no
memory). With R units per card, a grant of s units packs floor(R / s) Pods, so the grant
is the smallest s with floor(R / s) <= k, rounded up to a preset. Under MIG devices the
grant is the smallest profile of the ladder whose memory holds the peak and whose compute
share g/C holds p95 / target (its real memory, the card model's: functions/memory.py).

Each workload also gets a memory ask: its peak framebuffer use plus a stated headroom,
rounded up to 256 MiB, which `--rules memory` writes as rules' `gpuMemory`.
"""

import re
from dataclasses import dataclass, replace

from castslice.cluster.cards import cards_freed
from castslice.functions.memory import MiB, base
from castslice.functions.mig import compute, profile_for
from castslice.functions.policy import Policy
from castslice.usage.series import ENGINE, RESOLUTION, UTIL, Measured, Usage, by_device

SATURATED = 95.0
"""p95 utilisation (percent) or framebuffer share above which a shared GPU is over-packed."""
ASK_STEP_MIB = 256
"""Memory asks are rounded up to this many MiB: "12544Mi" reads better than "12289Mi"."""
_DEPLOYMENT_POD = re.compile(r"(.+)-[a-z0-9]{6,10}-[a-z0-9]{5}")
_GENERATED_POD = re.compile(r"(.+)-[a-z0-9]{5}")
_ORDINAL_POD = re.compile(r"(.+)-[0-9]+")


TIME_SLICING_DERATE = 24.0
"""Percent of a card time-slicing loses to context switches, as NVIDIA measured it (March 2026,
an A100: ~1.00 requests/s per GPU under MIG, 0.76 under time-slicing): co-tenants under
`extended` are fitted within the target lowered by this (--time-slicing-derate)."""


@dataclass(frozen=True, slots=True)
class Workload:
    """One controller's Pods (or a Pod no controller owns), and what they used of a GPU."""

    namespace: str
    kind: str
    name: str
    guessed: bool
    """No kube_pod_owner series for its Pods: kind and name guessed from the Pod name."""
    pods: tuple[str, ...]
    running: int
    """Of its Pods, those holding a whole GPU at the evaluation time."""
    p95: float
    peak_mib: float
    card_mib: float
    model: str
    hours: float
    """Hours of samples over all its Pods, one after another."""
    metric: str
    """What p95 was measured from (GPU_UTIL if any of its devices lacked engine activity)."""
    profiles: tuple[str, ...]
    """The MIG profiles its Pods ran on; empty on whole GPUs."""
    dram: float | None = None
    """p95 DRAM activity (percent of the card's bandwidth); None where not reported."""


@dataclass(frozen=True, slots=True)
class Advice:
    """The grant for one workload, why, and what it saves."""

    workload: Workload
    fit: int
    """Pods of this workload that fit on one card; 1 means keep whole GPUs."""
    limited_by: str
    units: int
    """The grant per GPU: shared units, shares, or the MIG profile's compute slices."""
    grant: str
    """How to set it: workloadType=<preset>, sliceRatio=<n>, or "whole GPU"."""
    profile: str
    saved_per_hour: float | None
    memory_ask: int = 0
    """Bytes to ask with castops.io/gpu-memory: the peak plus the headroom, rounded up."""

    @property
    def shares(self) -> bool:
        return self.fit > 1


@dataclass(frozen=True, slots=True)
class Skipped:
    """What could not be recommended from, and why."""

    namespace: str
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class OverPacked:
    """A shared GPU that ran saturated or near memory exhaustion."""

    uuid: str
    model: str
    p95: float
    peak_mib: float
    card_mib: float
    workloads: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Everything `castslice recommend` reports."""

    advice: list[Advice]
    skipped: list[Skipped]
    over_packed: list[OverPacked]


def workload_of(namespace: str, pod: str,
                owners: dict[tuple[str, str], tuple[str, str]]) -> tuple[str, str, bool]:
    """(kind, name, guessed) of the Pod's controller: kube_pod_owner (a ReplicaSet stands
    for its Deployment; no owner, written empty or `<none>`, is the Pod itself), else only
    where no owner series exists a guess from the Pod name without its controller's suffix
    (`-<hash>-<id>`, `-<ordinal>`, `-<id>`)."""
    if (namespace, pod) in owners:
        kind, name = owners[(namespace, pod)]
        if kind in ("", "<none>") or not name:
            return "Pod", pod, False
        if kind == "ReplicaSet" and "-" in name:
            return "Deployment", name.rsplit("-", 1)[0], False
        return kind, name, False
    for pattern, guess in ((_DEPLOYMENT_POD, "Deployment"), (_ORDINAL_POD, "StatefulSet"),
                           (_GENERATED_POD, "ReplicaSet")):
        match = pattern.fullmatch(pod)
        if match:
            return guess, match[1], True
    return "Pod", pod, True


def recommend(measured: Measured, policy: Policy, *, target: float, min_hours: float,
              price: float | None, headroom: float = 20.0,
              derate: float = TIME_SLICING_DERATE) -> Recommendation:
    """Per workload the grant that packs its Pods as tightly as compute and memory allow,
    and the memory ask (peak + `headroom` percent) that says the same in memory."""
    on_device = by_device(measured.usage)
    shared = {device for device, on in on_device.items() if _overlapping(on)}
    own = [u for u in measured.usage if u.device not in shared or u.per_process or u.copied]
    groups: dict[tuple[str, str, str, bool], list[Usage]] = {}
    for item in own:
        groups.setdefault((item.namespace, *workload_of(item.namespace, item.pod,
                                                        measured.owners)), []).append(item)
    advice, skipped = [], [Skipped("", name, "only NaN samples of the GPU's use: no figure "
                                   "to recommend from") for name in measured.unusable]
    for (namespace, kind, name, guessed), items in sorted(groups.items()):
        workload = _workload(namespace, (kind, name, guessed), items, measured, policy)
        problem = _too_little(workload, min_hours) or _card_problem(workload, policy)
        if problem:
            skipped.append(Skipped(namespace, f"{kind}/{name}", problem))
        else:
            advice.append(replace(_advise(workload, policy, target, price, derate),
                                  memory_ask=memory_ask(workload.peak_mib, headroom)))
    return Recommendation(advice, skipped, _over_packed(measured, on_device, shared))


def _overlapping(on: list[Usage]) -> bool:
    """Whether two Pods held the device at once (longer than the lookup resolution): Pods
    one after another only hand it over."""
    spans: dict[tuple[str, str], tuple[float, float]] = {}
    for u in on:
        first, last = spans.get((u.namespace, u.pod), (u.first, u.last))
        spans[(u.namespace, u.pod)] = (min(first, u.first), max(last, u.last))
    ordered = sorted(spans.values())
    return any(later[0] < earlier[1] - RESOLUTION
               for i, earlier in enumerate(ordered) for later in ordered[i + 1:])


def _workload(namespace: str, owner: tuple[str, str, bool], items: list[Usage],
              measured: Measured, policy: Policy) -> Workload:
    pods = tuple(sorted({u.pod for u in items}))
    running = sum((namespace, pod) in measured.running for pod in pods)
    card = compute(policy.mig_profiles[-1])
    profiles = tuple(sorted({u.profile for u in items if u.profile}))
    p95 = max(u.p95 * (compute(u.profile) / card if u.profile else 1) for u in items)
    memory = [measured.devices[u.device].card_mib if u.device in measured.devices else 0.0
              for u in items if not u.profile]
    samples: dict[str, int] = {}
    for u in items:
        samples[u.pod] = max(samples.get(u.pod, 0), u.samples)
    return Workload(namespace, *owner, pods, running, p95, max(u.peak_mib for u in items),
                    min(memory) if memory else profile_memory_mib(policy.mig_profiles[-1]),
                    items[0].model, sum(samples.values()) * measured.interval / 3600,
                    UTIL if any(u.metric == UTIL for u in items) else ENGINE,
                    profiles, max((u.dram for u in items if u.dram is not None), default=None))


def _too_little(workload: Workload, min_hours: float) -> str | None:
    if workload.hours < min_hours:
        return (f"too little data: {workload.hours:.1f} h of {workload.metric} samples, at "
                f"least {min_hours:g} h needed (--min-hours)")
    if workload.card_mib <= 0:
        return "no DCGM_FI_DEV_FB_FREE series: the card's memory is unknown"
    return None


def _card_problem(workload: Workload, policy: Policy) -> str | None:
    """Under MIG devices the ladder must describe this card (its largest profile is the
    card); a workload on MIG instances is advised only in the ladder's terms."""
    if workload.profiles:
        if not policy.mig_devices:
            return (f"ran on MIG instances ({', '.join(workload.profiles)}): advised under "
                    "CASTSLICE_BACKEND=mig, or dra with CASTSLICE_DRA_DEVICES=mig")
        unknown = [p for p in workload.profiles if p not in policy.mig_profiles]
        return (f"ran on {', '.join(unknown)}, which CASTSLICE_MIG_PROFILES does not list: "
                "set the ladder of this card") if unknown else None
    if not policy.mig_devices:
        return None
    largest = policy.mig_profiles[-1]
    memory = profile_memory_mib(largest)
    if not 0.85 * memory <= workload.card_mib <= 1.25 * memory:
        return (f"{workload.model or 'this GPU'} has {workload.card_mib:.0f} MiB, but the "
                f"ladder's largest profile {largest} is {memory:.0f} MiB: set "
                "CASTSLICE_MIG_PROFILES for this card")
    return None


def memory_ask(peak_mib: float, headroom: float) -> int:
    """Bytes a workload of this peak asks, `headroom` percent above it, rounded up to
    ASK_STEP_MIB: memory_ask(10000, 20) == 12032 MiB."""
    steps = -(-peak_mib * (1 + headroom / 100) // ASK_STEP_MIB)
    return int(steps) * ASK_STEP_MIB * MiB


def profile_memory_mib(profile: str) -> float:
    """A profile's memory as its name says it: 4g.20gb -> 20 x 1024 MiB."""
    return float(profile.split(".")[1].split("gb")[0]) * 1024


def _advise(workload: Workload, policy: Policy, target: float, price: float | None,
            derate: float = 0.0) -> Advice:
    """k Pods fit a card when k x p95 engine activity and k x p95 DRAM activity stay within
    the target (time-slicing's target lowered by `derate` percent, what its context switches
    cost), and k x peak framebuffer within the card's memory."""
    shared = target if policy.mig_devices else target * (1 - derate / 100)
    limits = {"compute": _per(shared, workload.p95), "bandwidth": _per(shared, workload.dram),
              "memory": _per(workload.card_mib, workload.peak_mib)}
    limited_by = min(limits, key=lambda name: limits[name])
    fit = max(1, limits[limited_by])
    if policy.mig_devices:
        return _mig(workload, policy, target, price, fit, limited_by)
    per_card = policy.card_units() or policy.max_slices
    fit = min(fit, per_card)
    if fit == 1:
        return Advice(workload, 1, limited_by, per_card, "whole GPU", "", 0.0 if price else None)
    units = per_card // (fit + 1) + 1
    units, grant = _rounded(units, policy)
    return Advice(workload, per_card // units, limited_by, units, grant, "",
                  _saved(workload, units, per_card, price))


def _per(room: float, each: float | None) -> int:
    """How many of `each` fit in `room`; unbounded where there is no figure."""
    return int(room // each) if each else 10**6


def _mig(workload: Workload, policy: Policy, target: float, price: float | None, fit: int,
         limited_by: str) -> Advice:
    card = compute(policy.mig_profiles[-1])
    needed = max(workload.p95, workload.dram or 0.0) / target * card  # bandwidth goes with
    # the instance's share of the card, as compute does
    memory = policy.profile_memory
    profile = next((p for p in policy.mig_profiles if compute(p) >= needed
                    and memory.get(base(p), 0) >= workload.peak_mib * MiB), None)
    if profile is not None:
        units, grant = _rounded(compute(profile), policy)
        profile = profile_for(policy.mig_profiles, units)
    if profile is None or profile == policy.mig_profiles[-1]:
        return Advice(workload, 1, limited_by, card, "whole GPU", policy.mig_profiles[-1],
                      0.0 if price else None)
    return Advice(workload, card // compute(profile), limited_by, compute(profile), grant,
                  profile, _saved(workload, compute(profile), card, price))


def _rounded(units: int, policy: Policy) -> tuple[int, str]:
    """The smallest preset granting at least `units` (fewer Pods per card, never more),
    else the count itself as a sliceRatio."""
    fitting = [(count, order, name) for order, (name, count) in enumerate(policy.presets.items())
               if count >= units]
    if fitting:
        count, _, name = min(fitting)  # ties: the preset listed first in CASTSLICE_PRESETS
        return count, f"workloadType={name}"
    return units, f"sliceRatio={units}"


def _saved(workload: Workload, units: int, per_card: int, price: float | None) -> float | None:
    """Dollars per hour for the Pods running now (the one card model, cards.py)."""
    return None if price is None else cards_freed(workload.running, units, per_card) * price


def _over_packed(measured: Measured, on_device: dict[tuple[str, str], list[Usage]],
                 shared: set[tuple[str, str]]) -> list[OverPacked]:
    """Devices Pods held at once that ran saturated or near memory exhaustion, from every
    series of the device (under KUBERNETES_VIRTUAL_GPUS its own series is the sum)."""
    found = []
    for device in sorted(shared):
        on, use = on_device[device], measured.devices.get(device)
        if use is None:
            continue
        if use.p95 > SATURATED or (use.card_mib and use.peak_mib >= use.card_mib * SATURATED
                                   / 100):
            names = sorted({"/".join((u.namespace, *workload_of(u.namespace, u.pod,
                                                                measured.owners)[:2]))
                            for u in on})
            found.append(OverPacked("/".join(filter(None, device)), on[0].model, use.p95,
                                    use.peak_mib, use.card_mib, tuple(names)))
    return found
