"""`castslice verify` against a real Prometheus holding two days of kube-state-metrics' Pod
requests and owners (kube-state-metrics `internal/store/pod.go`:
kube_pod_container_resource_requests{namespace, pod, container, node, resource, unit},
resource names sanitised) and an application's p99 latency: a workload whose latency doubled
after its conversion is hurt, one whose latency did not move is kept, and only the hurt one
is taken back."""

import json
import os
import shutil
import time

import pytest

from castslice.cli import main
from tests.prometheus import SPAN, STEP, Gauge, Gpu, Holder, prometheus

END = int(time.time()) // STEP * STEP
MIDDLE = SPAN // 2
"""Both workloads are converted halfway through the span."""
SLO = "app_request_p99_seconds"


def requests(namespace, pod, resource, count, start, end):
    return Gauge("kube_pod_container_resource_requests",
                 {"namespace": namespace, "pod": pod, "container": "main", "node": "gpu-1",
                  "resource": resource, "unit": "integer"}, lambda m: count, start, end)


def latency(namespace, pod, seconds, start, end):
    return Gauge(SLO, {"namespace": namespace, "pod": pod},
                 lambda m: seconds * (1 + (m % 7) / 100), start, end)


def owner(namespace, pod, replicaset):
    return {"namespace": namespace, "pod": pod, "owner_kind": "ReplicaSet",
            "owner_name": replicaset, "owner_is_controller": "true"}


PODS = {  # (namespace, pod, replica set, latency before or after, converted)
    ("inference", "chat-7d9f8c6b5-aaaaa", "chat-7d9f8c6b5", 0.10, False),
    ("inference", "chat-5c4b3a2f1-bbbbb", "chat-5c4b3a2f1", 0.20, True),
    ("search", "rank-6b5a4c3d2-ccccc", "rank-6b5a4c3d2", 0.05, False),
    ("search", "rank-8e7d6c5b4-ddddd", "rank-8e7d6c5b4", 0.051, True),
}
GAUGES = [gauge for ns, pod, _, seconds, converted in PODS for gauge in (
    requests(ns, pod, "nvidia_com_gpu_shared" if converted else "nvidia_com_gpu",
             2 if converted else 1, MIDDLE if converted else 0, SPAN if converted else MIDDLE),
    latency(ns, pod, seconds, MIDDLE if converted else 0, SPAN if converted else MIDDLE))]
OWNERS = [owner(ns, pod, rs) for ns, pod, rs, _, _ in PODS]
ENV = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared"}
HALF = SPAN // STEP // 2
GPUS = [Gpu("GPU-chat", [  # chat alone on a GPU, then (converted) beside another Pod
    Holder({"namespace": "inference", "pod": "chat-7d9f8c6b5-aaaaa", "container": "main"},
           lambda i: 30, lambda i: 8000, end=HALF),
    Holder({"namespace": "inference", "pod": "chat-5c4b3a2f1-bbbbb", "container": "main"},
           lambda i: 45, lambda i: 9000, start=HALF, vgpu="0")], virtual=True)]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    if not (shutil.which("prometheus") and shutil.which("promtool")) and not os.environ.get("CI"):
        pytest.skip("needs Debian's prometheus package (.ci/run installs it)")
    with prometheus(tmp_path_factory.mktemp("prometheus"), GPUS, OWNERS, END,
                    gauges=GAUGES) as found:
        yield found


def run(capsys, url, *args):
    code = main(["verify", "--prometheus", url, "--slo", SLO, "--window", "2d", "--at",
                 str(END), *args], ENV)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_a_workload_whose_latency_doubled_is_hurt_and_one_that_did_not_move_is_kept(capsys,
                                                                                   url):
    code, out, err = run(capsys, url, "--output", "json")
    assert code == 1, err
    found = {w["workload"]: w for w in json.loads(out)["workloads"]}
    assert set(found) == {"chat", "rank"}
    assert (found["chat"]["verdict"], found["rank"]["verdict"]) == ("hurt", "kept")
    assert found["chat"]["slo_after"] == pytest.approx(2 * found["chat"]["slo_before"], rel=0.05)
    assert abs(found["chat"]["converted_at"] - (END - SPAN + MIDDLE)) <= 360
    assert found["rank"]["revert"] == ""
    assert (found["chat"]["gpu_before"], found["chat"]["gpu_after"]) == (30, 45)
    assert (found["chat"]["memory_before_mib"], found["chat"]["memory_after_mib"]) == (8000, 9000)
    assert found["rank"]["gpu_before"] is None  # no exporter series of its Pods


def test_only_the_hurt_workload_is_taken_back(capsys, url):
    code, out, _ = run(capsys, url)
    assert code == 1
    takes = [line for line in out.splitlines() if line.startswith("take back")]
    assert takes == ["take back inference/chat: kubectl patch deployment chat -n inference "
                     "--type merge -p '{\"spec\":{\"template\":{\"metadata\":{\"annotations\":"
                     "{\"castops.io/optimize\":\"false\"}}}}}'"]


def test_a_looser_threshold_keeps_both(capsys, url):
    code, out, _ = run(capsys, url, "--worse-by", "150", "--output", "json")
    assert code == 0
    assert {w["verdict"] for w in json.loads(out)["workloads"]} == {"kept"}


def test_a_window_too_short_for_the_before_side_is_too_little_data(capsys, url):
    code, out, _ = run(capsys, url, "--window", "1470m", "--output", "json")  # 30 min before
    verdicts = {w["workload"]: w["verdict"] for w in json.loads(out)["workloads"]}
    assert verdicts == {"chat": "too-little-data", "rank": "too-little-data"}, out
    assert code == 0


def test_an_slo_prometheus_refuses_is_one_line(capsys, url):
    code, _, err = run(capsys, url, "--slo", "rate(")
    assert code == 1 and err.count("\n") == 1 and "HTTP 400" in err, err


def test_verify_under_dra_says_what_it_cannot_read(capsys, url):
    code = main(["verify", "--prometheus", url, "--slo", SLO], {"CASTSLICE_BACKEND": "dra"})
    err = capsys.readouterr().err
    assert code == 1 and "dra claims are not among them" in err
