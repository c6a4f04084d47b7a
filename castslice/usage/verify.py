"""`castslice verify`: did sharing hurt? For each workload CastSlice converted in the window,
the SLO the user names (PromQL with `namespace` and `pod` labels, lower is better: a latency),
before and after its conversion, and a verdict.

Conversions are read off kube-state-metrics (`internal/store/pod.go`,
`kube_pod_container_resource_requests`, resource names sanitised: `nvidia.com/gpu` is
`nvidia_com_gpu`): a workload's Pods asked the source resource, then the target (a MIG
resource under `mig`); the first Pod asking the target is when. A ReplicaSet stands for its
Deployment, as in `recommend`. Each window's figure is the p95 of the SLO over it, the median
over the workload's Pods; `hurt` when after is worse than before by more than `worse_by`
percent, `too-little-data` when either window holds fewer than MIN_SAMPLES points.
"""

import json
import re
import statistics
from dataclasses import dataclass, replace

from castslice.functions.annotations import OPTIMIZE
from castslice.functions.policy import Policy
from castslice.usage.advice import workload_of
from castslice.usage.prometheus import Prometheus
from castslice.usage.series import FB_USED, UTIL, attributed, queries

REQUESTS = "kube_pod_container_resource_requests"
STEP = 300
"""Seconds between the points each window's p95 is read from."""
MIN_SAMPLES = 12
"""An hour of points at STEP: less in either window says too little."""
TEMPLATES = {"Deployment": "/spec/template", "StatefulSet": "/spec/template",
             "DaemonSet": "/spec/template", "Job": "/spec/template",
             "CronJob": "/spec/jobTemplate/spec/template"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One converted workload: when, its SLO before and after, and what to do."""

    namespace: str
    kind: str
    workload: str
    converted_at: float
    verdict: str
    slo_before: float | None
    slo_after: float | None
    change_percent: float | None
    revert: str
    """The change that takes back only this workload (for a hurt one), else ""."""
    gpu_before: float | None = None
    gpu_after: float | None = None
    """p95 of its Pods' own GPU use (DCGM_FI_DEV_GPU_UTIL, per Pod under
    KUBERNETES_VIRTUAL_GPUS), percent, median over its Pods; None without series."""
    memory_before_mib: float | None = None
    memory_after_mib: float | None = None
    """Its Pods' peak framebuffer (DCGM_FI_DEV_FB_USED), MiB."""


def sanitised(resource: str) -> str:
    """A resource name as kube-state-metrics writes it in the `resource` label."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", resource)


def _target(policy: Policy) -> str:
    """A regular expression for the `resource` label of what CastSlice converts to."""
    if policy.backend == "mig":
        return re.escape(sanitised(policy.mig_resource_prefix)) + ".*"
    return re.escape(sanitised(policy.target_resource))


def verify(prometheus: Prometheus, policy: Policy, slo: str, window: str, at: float,
           worse_by: float) -> list[Verdict]:
    """Every workload converted within the window, judged on `slo`."""
    owners = {(s.labels.get("namespace", ""), s.labels.get("pod", "")):
              (s.labels.get("owner_kind", ""), s.labels.get("owner_name", ""))
              for s in prometheus.query(queries(window)["owners"], at)}
    first = prometheus.query(
        f'min by (namespace, pod) (min_over_time(timestamp({REQUESTS}{{resource=~"'
        f'{_target(policy)}"}})[{window}:{STEP}s]))', at)
    before = prometheus.query(
        f'max by (namespace, pod) (max_over_time({REQUESTS}{{resource="'
        f'{sanitised(policy.source_resource)}"}}[{window}]))', at)
    start = at - _seconds(window)
    workloads: dict[tuple[str, str, str], float] = {}
    for sample in first:
        key = _workload(sample.labels, owners)
        workloads[key] = min(workloads.get(key, at), sample.value)
    whole = {_workload(s.labels, owners) for s in before}
    found = []
    for key, converted in sorted(workloads.items()):
        if key not in whole:  # converted from the first day of the window: nothing before
            found.append(_judged(key, converted, None, None, worse_by))
            continue
        # before ends a step short of the conversion: the first converted Pod's first point
        # is the conversion's, not the before side's
        sides = ((converted - STEP, converted - STEP - start), (at, at - converted))
        slo_before, slo_after = (_figure(prometheus, slo, key, owners, end, seconds)
                                 for end, seconds in sides)
        verdict = _judged(key, converted, slo_before, slo_after, worse_by)
        gpu = [_use(prometheus, key, owners, end, seconds) for end, seconds in sides]
        found.append(replace(verdict, gpu_before=gpu[0][0], gpu_after=gpu[1][0],
                             memory_before_mib=gpu[0][1], memory_after_mib=gpu[1][1]))
    return found


def _use(prometheus: Prometheus, key: tuple[str, str, str],
         owners: dict[tuple[str, str], tuple[str, str]], at: float,
         seconds: float) -> tuple[float | None, float | None]:
    """The workload's own GPU use and peak memory over the `seconds` before `at`, from the
    exporter's series as recommend attributes them (exported_* wins)."""
    span = f"[{max(int(seconds), STEP)}s]"
    utils = [s for s in prometheus.query(f"quantile_over_time(0.95, {UTIL}{span})", at)
             if _held_by(s.labels, owners) == key]
    peaks = [s.value for s in prometheus.query(f"max_over_time({FB_USED}{span})", at)
             if _held_by(s.labels, owners) == key]
    return (statistics.median(s.value for s in utils) if utils else None,
            max(peaks) if peaks else None)


def _held_by(labels: dict[str, str] | object,
             owners: dict[tuple[str, str], tuple[str, str]]) -> tuple[str, str, str] | None:
    held = attributed(labels if isinstance(labels, dict) else {}, set())
    return None if held is None else _workload(
        {"namespace": held[0], "pod": held[1]}, owners)


def _seconds(window: str) -> float:
    return float(window[:-1]) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[window[-1]]


def _workload(labels: dict[str, str] | object,
              owners: dict[tuple[str, str], tuple[str, str]]) -> tuple[str, str, str]:
    found = labels if isinstance(labels, dict) else {}
    namespace, pod = found.get("namespace", ""), found.get("pod", "")
    kind, name, _ = workload_of(namespace, pod, owners)
    return namespace, kind, name


def _figure(prometheus: Prometheus, slo: str, key: tuple[str, str, str],
            owners: dict[tuple[str, str], tuple[str, str]], at: float,
            seconds: float) -> float | None:
    """The workload's SLO over the `seconds` before `at`: p95 per Pod, median over Pods;
    None with fewer than MIN_SAMPLES points."""
    if seconds < STEP * MIN_SAMPLES:
        return None
    span = f"[{int(seconds)}s:{STEP}s]"
    p95 = prometheus.query(f"quantile_over_time(0.95, ({slo}){span})", at)
    counts = prometheus.query(f"count_over_time(({slo}){span})", at)
    enough = {(s.labels.get("namespace"), s.labels.get("pod")) for s in counts
              if s.value >= MIN_SAMPLES}
    values = [s.value for s in p95 if _workload(s.labels, owners) == key
              and (s.labels.get("namespace"), s.labels.get("pod")) in enough]
    return statistics.median(values) if values else None


def _judged(key: tuple[str, str, str], converted: float, before: float | None,
            after: float | None, worse_by: float) -> Verdict:
    namespace, kind, name = key
    if before is None or after is None or before <= 0:
        return Verdict(namespace, kind, name, converted, "too-little-data", before, after, None,
                       "")
    change = (after - before) / before * 100
    hurt = change > worse_by
    return Verdict(namespace, kind, name, converted, "hurt" if hurt else "kept", before, after,
                   round(change, 1), revert(namespace, kind, name) if hurt else "")


def revert(namespace: str, kind: str, name: str) -> str:
    """The change that opts only this workload out: its controller's Pod template gets
    castops.io/optimize: "false" (new Pods come whole); a bare Pod is created again so."""
    if kind not in TEMPLATES:
        return (f"kubectl get pod {name} -n {namespace} -o yaml: create it again with the "
                f'annotation {OPTIMIZE}: "false"')
    patch: dict[str, object] = {"metadata": {"annotations": {OPTIMIZE: "false"}}}
    for part in reversed(TEMPLATES[kind].strip("/").split("/")):
        patch = {part: patch}
    return (f"kubectl patch {kind.lower()} {name} -n {namespace} --type merge -p "
            f"'{json.dumps(patch, separators=(',', ':'))}'")
