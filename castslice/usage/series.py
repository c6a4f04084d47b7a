"""What dcgm-exporter and kube-state-metrics measured, aggregated on the Prometheus server
(one number per series comes back, never raw samples), and read the way the exporter writes
its labels (NVIDIA/dcgm-exporter `internal/pkg/rendermetrics/render_metrics.go`,
`internal/pkg/transformation/kubernetes.go`):

- every series carries `UUID` and `modelName`; a MIG instance's also `GPU_I_ID` and
  `GPU_I_PROFILE`. A device is a GPU, or one instance of it.
- a Pod holding the device adds `namespace`/`pod`/`container` (and `vgpu` on a shared GPU
  under KUBERNETES_VIRTUAL_GPUS). Scraped with `honorLabels: false` (the exporter chart's
  default), Prometheus moves them to `exported_*` and writes the exporter's own Pod under the
  plain names, so a device no Pod holds carries only the exporter's Pod. `exported_*` wins;
  a series whose only Pod is the exporter's (or any DaemonSet's) is a device no workload holds.
- use is `DCGM_FI_PROF_GR_ENGINE_ACTIVE` (0-1, GPUs and MIG instances, a default counter)
  where reported, else `DCGM_FI_DEV_GPU_UTIL` (percent; not reported for MIG instances). On a
  shared GPU under KUBERNETES_VIRTUAL_GPUS only GPU_UTIL and FB_USED are each Pod's own
  (`process_metrics.go` isPerProcessMetric); the other counters repeat the GPU's value.
"""

import re
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from castslice.usage.prometheus import Prometheus, Sample

ENGINE, UTIL = "DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_DEV_GPU_UTIL"
DRAM = "DCGM_FI_PROF_DRAM_ACTIVE"
"""Memory bandwidth in use (0-1), a default counter (dcgm-exporter etc/default-counters.csv):
two memory-bound Pods contend for it though their engine activity adds up to little."""
FB_USED, FB_FREE, FB_RESERVED = ("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE",
                                 "DCGM_FI_DEV_FB_RESERVED")
OWNER = "kube_pod_owner"
WORKLOAD = ("namespace", "pod", "container")
RAW = (*WORKLOAD, *(f"exported_{label}" for label in WORKLOAD), "UUID", "GPU_I_ID",
       "GPU_I_PROFILE", "modelName", "vgpu", "job")
RESOLUTION = 300
"""Seconds between the points at which a series' first and last sample are looked up."""
RECENT = 3600
"""Seconds of the latest samples the scrape interval is read from (long enough that one
sample more or less at the range's edges does not move it a whole second)."""
DEFAULT_INTERVAL = 15.0
"""The exporter chart's scrape interval, where the data cannot say its own."""
_WINDOW = re.compile(r"[1-9][0-9]{0,4}[mhdw]")


@dataclass(frozen=True, slots=True)
class Usage:
    """One container on one device over the window."""

    namespace: str
    pod: str
    container: str
    uuid: str
    instance: str
    """GPU_I_ID of a MIG instance; empty for a whole GPU."""
    profile: str
    """GPU_I_PROFILE of a MIG instance, e.g. 3g.20gb; empty for a whole GPU."""
    model: str
    metric: str
    """ENGINE or UTIL: what p95 was measured from."""
    p95: float
    """p95 use of the device, percent of that device (an instance's, under MIG)."""
    peak_mib: float
    """max of DCGM_FI_DEV_FB_USED."""
    samples: int
    first: float
    last: float
    """Unix times of its first and last sample in the window (to RESOLUTION), asked only
    on GPUs more than one Pod held; 0 elsewhere."""
    per_process: bool
    """p95 and peak are this Pod's own on a shared GPU (KUBERNETES_VIRTUAL_GPUS)."""
    dram: float | None = None
    """p95 of DRAM activity, percent of the device's bandwidth; None where not reported."""
    copied: bool = False
    """The exporter wrote the GPU's value for every Pod on it (before 4.5.3-4.8.2): p95 and
    peak here are the GPU's divided among the Pods that held it at once."""

    @property
    def device(self) -> tuple[str, str]:
        return self.uuid, self.instance


@dataclass(frozen=True, slots=True)
class Device:
    """A GPU or MIG instance over every series of it, held or not: what it ran at."""

    p95: float
    peak_mib: float
    card_mib: float
    """Its framebuffer: FB_USED + FB_FREE + FB_RESERVED (without RESERVED where absent)."""


@dataclass(frozen=True, slots=True)
class Measured:
    """Everything the recommendation reads, and the expressions it came from."""

    usage: list[Usage]
    devices: dict[tuple[str, str], Device]
    """(UUID, GPU_I_ID) -> the device over all its series."""
    owners: dict[tuple[str, str], tuple[str, str]]
    """(namespace, pod) -> (owner kind, owner name) from kube_pod_owner; ("", "") for a Pod
    with an owner series and no owner (kube-state-metrics >= 2.8 writes empty labels)."""
    running: set[tuple[str, str]]
    """(namespace, pod) with a sample at the evaluation time."""
    unheld: list[str]
    """Devices with series but no workload on them all window: UUID[/GPU_I_ID]."""
    unusable: list[str]
    """namespace/pod/container with samples, none of them a number (NaN)."""
    copied: list[str]
    """GPUs whose Pods all carried the same values at once: the GPU's use, copied."""
    interval: float
    """Seconds between samples: read from the data, or --scrape-interval."""
    queries: dict[str, str]


def check_window(text: str) -> str:
    """A Prometheus duration such as 7d or 36h; ValueError says what is allowed."""
    if not _WINDOW.fullmatch(text):
        raise ValueError(f"--window {text!r}: use a duration such as 7d, 36h or 90m")
    return text


def queries(window: str) -> dict[str, str]:
    """The PromQL, each aggregated to one series per label set the exporter writes."""
    by = f"max by ({', '.join(RAW)})"
    each = "max by (UUID, GPU_I_ID)"  # a shared GPU's Pods repeat FREE, its own series USED
    card = f"{each} ({FB_USED}) + {each} ({FB_FREE})"
    return {
        "p95_engine": f"{by} (quantile_over_time(0.95, {ENGINE}[{window}]))",
        "p95_util": f"{by} (quantile_over_time(0.95, {UTIL}[{window}]))",
        "p95_dram": f"{by} (quantile_over_time(0.95, {DRAM}[{window}]))",
        "samples_engine": f"{by} (count_over_time({ENGINE}[{window}]))",
        "samples_util": f"{by} (count_over_time({UTIL}[{window}]))",
        "peak": f"{by} (max_over_time({FB_USED}[{window}]))",
        "recent": f"{by} (count_over_time({FB_USED}[{RECENT}s]))",
        "card": (f"{each} (max_over_time((({card} + {each} ({FB_RESERVED})) or "
                 f"({card}))[{window}:1h]))"),
        "running": f"{by} ({ENGINE} or {UTIL})",
        "owners": (f"max by (namespace, pod, owner_kind, owner_name) "
                   f"(max_over_time({OWNER}{{owner_is_controller!=\"false\"}}[{window}]))"),
    }


def spans(window: str, uuids: Iterable[str]) -> dict[str, str]:
    """First and last sample of each series on these GPUs (a subquery, so asked only for
    GPUs that more than one Pod held in the window)."""
    on = "|".join(re.escape(u).replace("\\", "\\\\") for u in sorted(uuids))  # in a PromQL string
    span, by = f"[{window}:{RESOLUTION}s]", ", ".join(RAW)
    held = f'timestamp({FB_USED}{{UUID=~"{on}"}})'
    return {"first": f"min by ({by}) (min_over_time({held}{span}))",
            "last": f"max by ({by}) (max_over_time({held}{span}))"}


@dataclass(frozen=True, slots=True)
class _Series:
    """The queries' answers, keyed by each series' labels."""

    found: dict[str, dict[tuple[str, ...], float]]

    def get(self, name: str, key: tuple[str, ...], default: float = 0.0) -> float:
        return self.found.get(name, {}).get(key, default)


def measure(prometheus: Prometheus, window: str, at: float | None,
            interval: float | None = None) -> Measured:
    """Ask the queries at `at` (now when None); `interval` overrides the data's own."""
    asked = queries(window)
    answers = {name: prometheus.query(expr, at) for name, expr in asked.items()}
    owners = {(s.labels.get("namespace", ""), s.labels.get("pod", "")):
              (s.labels.get("owner_kind", ""), s.labels.get("owner_name", ""))
              for s in answers["owners"]}
    answered = {name: {_raw(s.labels): s.value for s in answers[name]}
                for name in asked if name not in ("owners", "card")}
    keys = set(answered["p95_engine"]) | set(answered["p95_util"])
    counted = set(answered["samples_engine"]) | set(answered["samples_util"])
    exporters = _exporter_pods(counted, owners)
    workloads = {key: attributed(_labels(key), exporters)
                 for key in counted | keys | set(answered["running"])}
    pods: dict[str, set[tuple[str, str]]] = {}
    for key in keys:
        if held_by := workloads[key]:
            pods.setdefault(_labels(key)["UUID"], set()).add(held_by[:2])
    shared = [uuid for uuid, on in pods.items() if len(on) > 1]
    if shared:
        timed = spans(window, shared)
        asked |= timed
        answered |= {name: {_raw(s.labels): s.value for s in prometheus.query(expr, at)}
                     for name, expr in timed.items()}
    series = _Series(answered)
    held = {_device(key) for key in counted if workloads[key]}
    usage, copied = _split_copies(
        [_usage(key, found, series) for key in sorted(keys) if (found := workloads[key])])
    return Measured(
        usage=usage,
        devices=_devices(keys, series, answers["card"]),
        owners=owners,
        running={found[:2] for key in answered["running"] if (found := workloads[key])},
        unheld=sorted("/".join(filter(None, d)) for d in {_device(k) for k in counted} - held),
        unusable=sorted({"/".join(found) for key in counted - keys if (found := workloads[key])}),
        interval=interval or _interval(series),
        copied=copied,
        queries=asked)


def _split_copies(usage: list[Usage]) -> tuple[list[Usage], list[str]]:
    """Where every Pod on one GPU at once carries the same p95 and peak under
    KUBERNETES_VIRTUAL_GPUS, the exporter copied the GPU's values to each (it does before
    4.5.3-4.8.2): charge each Pod its share, not the whole GPU, and name the GPU."""
    groups: dict[tuple[str, str], list[Usage]] = {}
    for item in usage:
        if item.per_process:
            groups.setdefault(item.device, []).append(item)
    copies: dict[tuple[str, str], int] = {}
    for device, items in groups.items():
        together = len({(u.namespace, u.pod) for u in items}) > 1 and max(
            u.first for u in items) < min(u.last for u in items)
        if together and len({(u.p95, u.peak_mib) for u in items}) == 1:
            copies[device] = len(items)
    split = [replace(u, p95=u.p95 / copies[u.device], peak_mib=u.peak_mib / copies[u.device],
                     per_process=False, copied=True) if u.device in copies and u.per_process
             else u for u in usage]
    return split, sorted("/".join(filter(None, device)) for device in copies)


def attributed(labels: Mapping[str, str],
               exporters: set[tuple[str, str]]) -> tuple[str, str, str] | None:
    """(namespace, pod, container) of the workload a series belongs to, or None when its
    only Pod labels are the exporter's own (a device no workload holds)."""
    if labels.get("exported_pod"):
        return (labels.get("exported_namespace", ""), labels["exported_pod"],
                labels.get("exported_container", ""))
    if labels.get("pod") and (labels.get("namespace", ""), labels["pod"]) not in exporters:
        return labels.get("namespace", ""), labels["pod"], labels.get("container", "")
    return None


def _exporter_pods(keys: Iterable[tuple[str, ...]],
                   owners: Mapping[tuple[str, str], tuple[str, str]]) -> set[tuple[str, str]]:
    """The Pods that scrape rather than hold GPUs: the target Pod of any series that names
    its workload under exported_*, and every Pod a DaemonSet owns (the exporter is one in
    every install, and a DaemonSet's Pod is no candidate for sharing)."""
    found = {(labels["namespace"], labels["pod"]) for key in keys
             if (labels := _labels(key))["exported_pod"]}
    return found | {pod for pod, (kind, _) in owners.items() if kind == "DaemonSet"}


def _usage(key: tuple[str, ...], workload: tuple[str, str, str], series: _Series) -> Usage:
    labels = _labels(key)
    per_process = bool(labels["vgpu"]) and key in series.found["p95_util"]
    p95, metric = _p95(key, series, prefer_util=per_process)
    samples = series.get("samples_engine" if metric == ENGINE else "samples_util", key)
    return Usage(*workload, uuid=labels["UUID"], instance=labels["GPU_I_ID"],
                 profile=labels["GPU_I_PROFILE"], model=labels["modelName"], metric=metric,
                 p95=p95, peak_mib=series.get("peak", key), samples=int(samples),
                 first=series.get("first", key), last=series.get("last", key),
                 per_process=per_process,
                 dram=series.found["p95_dram"][key] * 100 if key in series.found.get(
                     "p95_dram", {}) else None)


def _p95(key: tuple[str, ...], series: _Series, prefer_util: bool = False) -> tuple[float, str]:
    """p95 percent and its metric: engine activity where reported, GPU_UTIL otherwise (or
    first, for per-process figures)."""
    if key in series.found["p95_engine"] and not prefer_util:
        return series.get("p95_engine", key) * 100, ENGINE
    return series.get("p95_util", key), UTIL


def _devices(keys: Iterable[tuple[str, ...]], series: _Series,
             card: list[Sample]) -> dict[tuple[str, str], Device]:
    memory = {(s.labels.get("UUID", ""), s.labels.get("GPU_I_ID", "")): s.value for s in card}
    use: dict[tuple[str, str], tuple[float, float]] = {}
    for key in keys:
        p95, peak = use.get(_device(key), (0.0, 0.0))
        use[_device(key)] = (max(p95, _p95(key, series)[0]), max(peak, series.get("peak", key)))
    return {device: Device(*use.get(device, (0.0, 0.0)), memory.get(device, 0.0))
            for device in use.keys() | memory.keys()}


def _interval(series: _Series) -> float:
    """The median spacing of the latest samples (RECENT seconds of each running series);
    the exporter chart's 15 s where no series runs now."""
    counts = [count for count in series.found["recent"].values() if count > 1]
    return float(max(1, round(RECENT / statistics.median(counts)))) if counts else (
        DEFAULT_INTERVAL)


def _raw(labels: Mapping[str, str]) -> tuple[str, ...]:
    """A series' key: its RAW labels' values, in order."""
    return tuple(labels.get(label, "") for label in RAW)


def _labels(key: tuple[str, ...]) -> dict[str, str]:
    """A key's labels by name again (the inverse of _raw)."""
    return dict(zip(RAW, key, strict=True))


def _device(key: tuple[str, ...]) -> tuple[str, str]:
    labels = _labels(key)
    return labels["UUID"], labels["GPU_I_ID"]


def by_device(usage: Iterable[Usage]) -> dict[tuple[str, str], list[Usage]]:
    """(UUID, GPU_I_ID) -> what was measured on it over the window."""
    found: dict[tuple[str, str], list[Usage]] = {}
    for item in usage:
        found.setdefault(item.device, []).append(item)
    return found
