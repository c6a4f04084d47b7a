"""A real Prometheus server on loopback, its TSDB backfilled by `promtool tsdb
create-blocks-from openmetrics` from an OpenMetrics file the test writes, and a week of
dcgm-exporter and kube-state-metrics series for it: what `castslice recommend` reads."""

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

STEP = 30
WEEK = 7 * 24 * 3600
CARD_MIB = 40960


@dataclass
class Gpu:
    """One dcgm-exporter GPU: who used it and what it measured, sample by sample."""

    uuid: str
    pods: list[dict[str, str]]
    """Attribution labels of each Pod on it; empty for series without Pod labels."""
    util: Callable[[int], float]
    used: Callable[[int], float]
    seconds: int = WEEK
    values: dict[str, list[float]] = field(default_factory=dict)


def labels(**found: str) -> str:
    return ",".join(f'{k}="{v}"' for k, v in sorted(found.items()))


def write_openmetrics(path: Path, gpus: list[Gpu], owners: list[dict[str, str]],
                      end: int) -> None:
    """The samples of every series, timestamps in seconds, each family contiguous."""
    families: dict[str, list[str]] = {"DCGM_FI_DEV_GPU_UTIL": [], "DCGM_FI_DEV_FB_USED": [],
                                      "DCGM_FI_DEV_FB_FREE": [], "kube_pod_owner": []}
    for gpu in gpus:
        count = gpu.seconds // STEP
        start = end - (count - 1) * STEP
        gpu.values = {"util": [gpu.util(i) for i in range(count)],
                      "used": [gpu.used(i) for i in range(count)]}
        for pod in gpu.pods or [{}]:
            base = labels(UUID=gpu.uuid, modelName="NVIDIA A100-SXM4-40GB", gpu="0",
                          Hostname="node-1", **pod)
            for i in range(count):
                at = start + i * STEP
                util, used = gpu.values["util"][i], gpu.values["used"][i]
                families["DCGM_FI_DEV_GPU_UTIL"].append(f"DCGM_FI_DEV_GPU_UTIL{{{base}}} "
                                                        f"{_number(util)} {at}")
                families["DCGM_FI_DEV_FB_USED"].append(f"DCGM_FI_DEV_FB_USED{{{base}}} "
                                                       f"{used:g} {at}")
                families["DCGM_FI_DEV_FB_FREE"].append(f"DCGM_FI_DEV_FB_FREE{{{base}}} "
                                                       f"{CARD_MIB - used:g} {at}")
    for owner in owners:
        for at in range(end - WEEK + STEP, end + 1, 300):
            families["kube_pod_owner"].append(f"kube_pod_owner{{{labels(**owner)}}} 1 {at}")
    with path.open("w") as out:
        for name, lines in families.items():
            out.write(f"# TYPE {name} gauge\n")
            out.write("\n".join(lines) + "\n")
        out.write("# EOF\n")


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:g}"


@contextmanager
def prometheus(tmp: Path, gpus: list[Gpu], owners: list[dict[str, str]],
               end: int) -> Iterator[str]:
    """The server's URL, serving the backfilled week."""
    for tool in ("prometheus", "promtool"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (.ci/run installs Debian's "
                               "prometheus package)")
    source, data = tmp / "series.om", tmp / "tsdb"
    write_openmetrics(source, gpus, owners, end)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(source),
                    str(data)], check=True, capture_output=True, timeout=600)
    config = tmp / "prometheus.yml"
    config.write_text("global: {scrape_interval: 30s}\n")
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
