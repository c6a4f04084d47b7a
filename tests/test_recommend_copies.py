"""`recommend` on what engine activity alone misses. DRAM activity: two memory-bound Pods at
20 % engine activity and 60 % DRAM activity contend for bandwidth, so such a workload keeps a
whole GPU. And an exporter before per-process values (dcgm-exporter 4.5.2-4.8.1 and older:
under KUBERNETES_VIRTUAL_GPUS every Pod on a shared GPU carries the GPU's own value, with its
`vgpu` label; `internal/pkg/transformation/kubernetes.go` before fb5e3dc): the use is the
GPU's, each Pod is charged its share, and the GPU is named. Against a real Prometheus."""

import json
import os
import shutil
import time

import pytest

from castslice.cli import main
from tests.prometheus import STEP, Gpu, Holder, prometheus

END = int(time.time()) // STEP * STEP
ENV = {"CASTSLICE_SLICES_PER_GPU": "8"}


def _copy(name: str, vgpu: str) -> Holder:
    """A Pod on the shared GPU whose series repeats the GPU's value (60-63 %, 24,000 MiB)."""
    return Holder({"namespace": "batch", "pod": name, "container": "sim"},
                  lambda i: 60 + i % 4, lambda i: 24000, vgpu=vgpu)


def _alone(namespace: str, name: str, dram: float) -> Gpu:
    """A Pod alone on a GPU at ~20 % engine activity and `dram` DRAM activity."""
    return Gpu(f"GPU-{name}", [Holder({"namespace": namespace, "pod": f"{name}-0",
                                        "container": "main"}, lambda i: 18 + i % 3,
                                       lambda i: 4000, dram=lambda i: dram)])


GPUS = [Gpu("GPU-copied-1", [_copy("sim-7b6c5d4e3-aaaaa", "0"), _copy("sim-7b6c5d4e3-bbbbb", "1")],
            virtual=True, copies=True),
        _alone("bandwidth", "membound", 0.6), _alone("bandwidth", "compute", 0.1)]
OWNERS = [{"namespace": "batch", "pod": p, "owner_kind": "ReplicaSet",
           "owner_name": "sim-7b6c5d4e3", "owner_is_controller": "true"}
          for p in ("sim-7b6c5d4e3-aaaaa", "sim-7b6c5d4e3-bbbbb")] + [
    {"namespace": "bandwidth", "pod": f"{name}-0", "owner_kind": "StatefulSet",
     "owner_name": name, "owner_is_controller": "true"} for name in ("membound", "compute")]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    if not (shutil.which("prometheus") and shutil.which("promtool")) and not os.environ.get("CI"):
        pytest.skip("needs Debian's prometheus package (.ci/run installs it)")
    with prometheus(tmp_path_factory.mktemp("prometheus"), GPUS, OWNERS, END) as found:
        yield found


def test_copied_gpu_values_are_the_gpus_and_each_pod_is_charged_its_share(capsys, url):
    code = main(["recommend", "--prometheus", url, "--at", str(END), "--window", "48h",
                 "--output", "json"], ENV)
    found = json.loads(capsys.readouterr().out)
    assert code in (0, 1)
    assert found["copied_devices"] == ["GPU-copied-1"]
    (workload,) = [w for w in found["workloads"] if w["namespace"] == "batch"]
    assert workload["peak_mib"] == 12000  # 24,000 MiB of the GPU, two Pods on it
    assert 30 <= workload["p95"] <= 32  # the GPU's ~63 % p95, halved
    main(["recommend", "--prometheus", url, "--at", str(END), "--window", "48h"], ENV)
    assert ("GPU GPU-copied-1: its Pods all carry the same values: the exporter copies the "
            "GPU's use to each") in capsys.readouterr().out


def test_a_memory_bound_workload_keeps_a_whole_gpu_though_its_engine_is_mostly_idle(capsys,
                                                                                   url):
    main(["recommend", "--prometheus", url, "--at", str(END), "--window", "48h",
          "--output", "json"], ENV)
    found = {w["name"]: w for w in json.loads(capsys.readouterr().out)["workloads"]}
    membound, compute = found["membound"], found["compute"]
    assert membound["dram"] == pytest.approx(60) and membound["p95"] == pytest.approx(20)
    assert (membound["fit"], membound["grant"], membound["limited_by"]) == (
        1, "whole GPU", "bandwidth")
    assert compute["fit"] > 1 and compute["limited_by"] == "compute"
