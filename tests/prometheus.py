"""A real Prometheus server on loopback, its TSDB backfilled by `promtool tsdb
create-blocks-from openmetrics` from an OpenMetrics file the test writes, with series shaped
as dcgm-exporter and kube-state-metrics emit them and Prometheus stores them:

- dcgm-exporter's labels (`internal/pkg/rendermetrics/render_metrics.go`: gpu, UUID,
  pci_bus_id, device, modelName, GPU_I_PROFILE and GPU_I_ID on a MIG instance, hostname),
  its Pod attributes (`internal/pkg/transformation/const.go`: pod, namespace, container,
  vgpu) and what it maps (`kubernetes.go`: one Pod per device, the last listed winning,
  unless KUBERNETES_VIRTUAL_GPUS copies each counter per sharing Pod, with per-process
  GPU_UTIL and FB_USED (`process_metrics.go`) beside the device's own series);
  DCGM_FI_DEV_GPU_UTIL is not written for MIG instances;
- the scrape: with honorLabels false (the exporter chart's `deployment/values.yaml`) the
  Pod attributes become exported_* and the target's namespace/pod/container (the
  exporter's own Pod) take the plain names; with honorLabels true the target's labels fill
  only what the exporter left out;
- kube-state-metrics' kube_pod_owner (`internal/store/pod.go`): a Pod with no owner gets
  empty owner labels, which Prometheus drops.
"""

import math
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.served import free_port

STEP = 15
"""The exporter chart's ServiceMonitor interval."""
DAYS = 2
SPAN = DAYS * 24 * 3600
CARD_MIB, RESERVED_MIB = 40448, 512
"""An A100-40GB as the exporter reports it: FB_USED + FB_FREE + FB_RESERVED = 40960."""
EXPORTER = {"namespace": "gpu-operator", "pod": "nvidia-dcgm-exporter-7xk2p",
            "container": "nvidia-dcgm-exporter"}
"""The exporter's own Pod: the scrape target."""
JOBS = {False: "gpu-operator/nvidia-dcgm-exporter", True: "dcgm-honor"}


@dataclass
class Holder:
    """A Pod holding the device from sample `start` to `end` (exclusive), with its own use."""

    pod: dict[str, str]
    util: Callable[[int], float]
    used: Callable[[int], float]
    start: int = 0
    end: int | None = None
    vgpu: str = ""
    dram: Callable[[int], float] | None = None
    """DCGM_FI_PROF_DRAM_ACTIVE (0-1), a default counter (etc/default-counters.csv), where
    the device reports it: the device's own, repeated on every series of it."""

    def holds(self, i: int, count: int) -> bool:
        return self.start <= i < (count if self.end is None else self.end)


@dataclass
class Gpu:
    """One device dcgm-exporter reports: who held it when, and how it was scraped."""

    uuid: str
    holders: list[Holder]
    seconds: int = SPAN
    profile: str = ""
    instance: str = ""
    virtual: bool = False
    """KUBERNETES_VIRTUAL_GPUS: each sharing Pod gets its own series."""
    copies: bool = False
    """An exporter before per-process values (before fb5e3dc, 4.5.3-4.8.2): under
    KUBERNETES_VIRTUAL_GPUS each sharing Pod's series repeats the GPU's value (the first
    holder's figures stand for the GPU's own)."""
    honor_labels: bool = False
    memory_mib: int = CARD_MIB
    values: dict[str, list[float]] = field(default_factory=dict)

    def count(self) -> int:
        return self.seconds // STEP


def labels(**found: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(found.items()))


def scraped(device: dict[str, str], attributes: dict[str, str], honor: bool) -> dict[str, str]:
    """What Prometheus stores for one exposed series."""
    target = EXPORTER | {"job": JOBS[honor], "instance": "10.0.0.7:9400",
                         "endpoint": "gpu-metrics"}
    if honor:
        return target | device | attributes
    moved = {f"exported_{k}" if k in EXPORTER else k: v for k, v in attributes.items()}
    return device | moved | target


def _exposed(gpu: Gpu, i: int) -> list[tuple[dict[str, str], dict[str, float]]]:
    """The series one scrape of the device exposes at sample i: attributes and values."""
    count = gpu.count()
    active = [h for h in gpu.holders if h.holds(i, count)]
    if gpu.copies and active:
        value = {"util": active[0].util(i), "engine": active[0].util(i) / 100,
                 "used": active[0].used(i), "free": gpu.memory_mib - active[0].used(i),
                 "reserved": RESERVED_MIB}
        return [(h.pod | {"vgpu": h.vgpu}, value) for h in active]
    util = sum(h.util(i) for h in active)
    util = util if math.isnan(util) else min(100.0, util)
    used = sum(h.used(i) for h in active)
    device = {"util": util, "engine": util / 100, "used": used,
              "free": gpu.memory_mib - used, "reserved": RESERVED_MIB}
    if any(h.dram for h in active):
        device["dram"] = min(1.0, sum(h.dram(i) for h in active if h.dram))
    if gpu.virtual and active:
        found = [({}, {"util": util, "used": used})]
        for h in active:
            attributes = h.pod | ({"vgpu": h.vgpu} if h.vgpu else {})
            found.append((attributes, device | {"util": h.util(i), "used": h.used(i)}))
        return found
    return [(active[-1].pod if active else {}, device)]


FAMILIES = {"DCGM_FI_PROF_GR_ENGINE_ACTIVE": "engine", "DCGM_FI_PROF_DRAM_ACTIVE": "dram",
            "DCGM_FI_DEV_GPU_UTIL": "util",
            "DCGM_FI_DEV_FB_USED": "used", "DCGM_FI_DEV_FB_FREE": "free",
            "DCGM_FI_DEV_FB_RESERVED": "reserved"}


@dataclass
class Gauge:
    """Any other series, one sample a minute from `start` to `end` seconds into the span:
    kube-state-metrics' kube_pod_container_resource_requests, an application's SLO."""

    name: str
    labels: dict[str, str]
    value: Callable[[int], float]
    """The value at each minute of the span."""
    start: int = 0
    end: int = SPAN


def write_openmetrics(path: Path, gpus: list[Gpu], owners: list[dict[str, str]],
                      end: int, counters: list[tuple[str, dict[str, str]]] = (),
                      gauges: list[Gauge] = ()) -> None:
    """Every sample of every series, timestamps in seconds, each series contiguous;
    `counters` (name, labels) rise by one a minute (CastSlice's own, for the dashboard)."""
    series: dict[str, dict[str, list[str]]] = {
        name: {} for name in [*FAMILIES, "kube_pod_owner", *(name for name, _ in counters),
                              *(g.name for g in gauges)]}
    for gauge in gauges:
        key = labels(**gauge.labels)
        series[gauge.name][key] = [
            f"{gauge.name}{{{key}}} {_number(gauge.value(minute))} {end - SPAN + seconds}"
            for minute, seconds in enumerate(range(gauge.start + 60, gauge.end + 1, 60))]
    for n, gpu in enumerate(gpus):
        count = gpu.count()
        start = end - (count - 1) * STEP
        device = {"gpu": str(n % 8), "UUID": gpu.uuid, "pci_bus_id": f"00000000:{n:02x}:00.0",
                  "device": f"nvidia{n % 8}", "modelName": "NVIDIA A100-SXM4-40GB",
                  "hostname": "node-1"}
        if gpu.profile:
            device |= {"GPU_I_PROFILE": gpu.profile, "GPU_I_ID": gpu.instance}
        gpu.values = {"util": [], "used": []}
        for i in range(count):
            exposed = _exposed(gpu, i)
            gpu.values["util"].append(exposed[0][1]["util"])
            gpu.values["used"].append(exposed[0][1]["used"])
            for attributes, values in exposed:
                key = labels(**scraped(device, attributes, gpu.honor_labels))
                for name, value in FAMILIES.items():
                    if value not in values or (name == "DCGM_FI_DEV_GPU_UTIL" and gpu.profile):
                        continue
                    series[name].setdefault(key, []).append(
                        f"{name}{{{key}}} {_number(values[value])} {start + i * STEP}")
    for owner in owners:
        key = labels(**{k: v for k, v in owner.items() if v})  # Prometheus drops empty labels
        series["kube_pod_owner"][key] = [f"kube_pod_owner{{{key}}} 1 {at}"
                                         for at in range(end - SPAN + 60, end + 1, 60)]
    for name, found in counters:
        key = labels(**found)
        series[name][key] = [f"{name}{{{key}}} {n} {at}"
                             for n, at in enumerate(range(end - SPAN + 60, end + 1, 60))]
    with path.open("w") as out:
        for name, found in series.items():
            out.write(f"# TYPE {name} gauge\n")
            for lines in found.values():
                out.write("\n".join(lines) + "\n")
        out.write("# EOF\n")


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:g}"


@contextmanager
def prometheus(tmp: Path, gpus: list[Gpu], owners: list[dict[str, str]],
               end: int, counters: list[tuple[str, dict[str, str]]] = (),
               gauges: list[Gauge] = ()) -> Iterator[str]:
    """The server's URL, serving the backfilled days."""
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (.ci/run installs Debian's "
                               "prometheus package)")
    source, data = tmp / "series.om", tmp / "tsdb"
    write_openmetrics(source, gpus, owners, end, counters, gauges)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(data)], check=True, capture_output=True, timeout=600)
    config = tmp / "prometheus.yml"
    config.write_text(f"global: {{scrape_interval: {STEP}s}}\n")
    port = free_port()
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d",
         "--query.lookback-delta=5m"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("prometheus did not become ready in 60 s")


def prometheus_quantile(q: float, values: list[float]) -> float:
    """PromQL's quantile_over_time, written out from its documentation: sorted samples,
    rank q x (n - 1), linear interpolation between neighbours (NaN sorts first)."""
    ordered = sorted(values, key=lambda v: (not math.isnan(v), v))
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    weight = rank - low
    return ordered[low] * (1 - weight) + ordered[high] * weight
