"""What dcgm-exporter and kube-state-metrics measured, aggregated on the Prometheus server
(one number per container and GPU comes back, never raw samples).

dcgm-exporter attributes a GPU's series to the Pod using it with `namespace`/`pod`/
`container` labels, or `exported_namespace`/`exported_pod`/`exported_container` when the
scrape does not honour its labels; both are read, the exported ones first.
https://github.com/NVIDIA/dcgm-exporter (default counters: DCGM_FI_DEV_GPU_UTIL in percent,
DCGM_FI_DEV_FB_USED and DCGM_FI_DEV_FB_FREE in MiB)
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass

from castslice.usage.prometheus import Prometheus, Sample

UTIL, FB_USED, FB_FREE = "DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"
OWNER = "kube_pod_owner"
KEYS = ("namespace", "pod", "container", "UUID", "modelName")
_WINDOW = re.compile(r"[1-9][0-9]{0,4}[mhdw]")


@dataclass(frozen=True, slots=True)
class Usage:
    """One container on one GPU over the window."""

    namespace: str
    pod: str
    container: str
    uuid: str
    model: str
    p95: float
    """p95 of DCGM_FI_DEV_GPU_UTIL, percent of the GPU."""
    peak_mib: float
    """max of DCGM_FI_DEV_FB_USED."""
    samples: int
    """count of DCGM_FI_DEV_GPU_UTIL samples."""


@dataclass(frozen=True, slots=True)
class Measured:
    """Everything the recommendation reads, and the expressions it came from."""

    usage: list[Usage]
    card_mib: dict[str, float]
    """GPU UUID -> its framebuffer (FB_USED + FB_FREE), MiB."""
    owners: dict[tuple[str, str], tuple[str, str]]
    """(namespace, pod) -> (owner kind, owner name), from kube_pod_owner."""
    running: set[tuple[str, str]]
    """(namespace, pod) with a GPU sample at the evaluation time."""
    unattributed: list[str]
    """GPU UUIDs with samples but no Pod labels."""
    unusable: list[str]
    """namespace/pod/container with samples, none of them a number (NaN)."""
    queries: dict[str, str]


def check_window(text: str) -> str:
    """A Prometheus duration such as 7d or 36h; ValueError says what is allowed."""
    if not _WINDOW.fullmatch(text):
        raise ValueError(f"--window {text!r}: use a duration such as 7d, 36h or 90m")
    return text


def attributed(expr: str) -> str:
    """`expr` with the workload's labels under their plain names (exported_* win)."""
    for label in ("namespace", "pod", "container"):
        expr = f'label_replace({expr}, "{label}", "$1", "exported_{label}", "(.+)")'
    return expr


def queries(window: str) -> dict[str, str]:
    """The PromQL, each aggregated to one series per container and GPU (or per GPU)."""
    by = ", ".join(KEYS)
    return {
        "p95": f"max by ({by}) ({attributed(f'quantile_over_time(0.95, {UTIL}[{window}])')})",
        "peak": f"max by ({by}) ({attributed(f'max_over_time({FB_USED}[{window}])')})",
        "samples": f"max by ({by}) ({attributed(f'count_over_time({UTIL}[{window}])')})",
        "card": f"max by (UUID) (max_over_time(({FB_USED} + {FB_FREE})[{window}:1h]))",
        "running": f"max by (namespace, pod) ({attributed(UTIL)})",
        "owners": (f"max by (namespace, pod, owner_kind, owner_name) "
                   f"(max_over_time({OWNER}{{owner_is_controller!=\"false\"}}[{window}]))"),
    }


def measure(prometheus: Prometheus, window: str, at: float | None) -> Measured:
    """Ask the six queries at `at` (now when None)."""
    asked = queries(window)
    found = {name: prometheus.query(expr, at) for name, expr in asked.items()}
    peak = {_key(s): s.value for s in found["peak"]}
    samples = {_key(s): int(s.value) for s in found["samples"]}
    usage, unattributed = [], []
    p95_keys = {_key(s) for s in found["p95"]}
    for sample in found["p95"]:
        key = _key(sample)
        if not key[1]:
            unattributed.append(key[3] or "(no UUID)")
            continue
        usage.append(Usage(*key, p95=sample.value, peak_mib=peak.get(key, 0.0),
                           samples=samples.get(key, 0)))
    return Measured(
        usage=usage,
        card_mib={s.labels.get("UUID", ""): s.value for s in found["card"]},
        owners={(s.labels.get("namespace", ""), s.labels.get("pod", "")):
                (s.labels.get("owner_kind", ""), s.labels.get("owner_name", ""))
                for s in found["owners"]},
        running={(s.labels.get("namespace", ""), s.labels.get("pod", ""))
                 for s in found["running"] if s.labels.get("pod")},
        unattributed=sorted(set(unattributed)),
        unusable=sorted({"/".join(key[:3]) for key in samples.keys() - p95_keys if key[1]}),
        queries=asked)


def _key(sample: Sample) -> tuple[str, str, str, str, str]:
    labels = sample.labels
    return (labels.get("namespace", ""), labels.get("pod", ""), labels.get("container", ""),
            labels.get("UUID", ""), labels.get("modelName", ""))


def by_gpu(usage: Iterable[Usage]) -> dict[str, list[Usage]]:
    """GPU UUID -> what was measured on it over the window; more than one Pod among them
    means the GPU was shared."""
    found: dict[str, list[Usage]] = {}
    for item in usage:
        found.setdefault(item.uuid, []).append(item)
    return found
