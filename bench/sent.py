"""What the API server sends CastSlice, and what a Pod pays for the call, on a real
kube-apiserver v1.36 (tests/envtest.py) with `castslice serve` behind the shipped webhook
configuration: Pods created as dry runs through the API server's own HTTPS endpoint,
interleaved one by one under three configurations selected by label — no webhook, the
webhook without matchConditions (every Pod sent, as before 0.6), as shipped (only GPU
Pods sent), and the policy engine (`castslice policy`'s objects, no CastSlice process).
Latency is the client's, so it includes the API server's own work; the
difference between the rows is what the webhook adds. CastSlice's admission metric counts
what reached it."""

import copy
import http.client
import json
import ssl
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.envtest import ControlPlane, assets, control_plane
from tests.policies import printed, routed
from tests.served import Served, serve
from tests.webhooks import ROUTE, admissions, pointed_at, shipped_webhook

KINDS = {"none": "no webhook", "unfiltered": "webhook, no matchConditions",
         "shipped": "webhook as shipped", "policy": "policy engine"}
GPU_ROWS = {"shipped_gpu": "GPU Pods, webhook as shipped", "policy_gpu": "GPU Pods, policy engine"}


def _pod(route: str, gpu: bool) -> bytes:
    resources = {"limits": {"nvidia.com/gpu": "1"}} if gpu else {}
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": "bench-", "labels": {ROUTE: route},
                     "annotations": {"castops.io/optimize": "true"}},
        "spec": {"containers": [{"name": "main", "image": "registry.example/app:1",
                                 "resources": resources}]}}).encode()


def _client(kube: ControlPlane) -> http.client.HTTPSConnection:
    context = ssl.create_default_context(cafile=str(kube.folder / "ca.crt"))
    context.load_cert_chain(str(kube.folder / "admin.crt"), str(kube.folder / "admin.key"))
    host, port = kube.url.removeprefix("https://").split(":")
    return http.client.HTTPSConnection(host, int(port), context=context, timeout=30)


def _create(conn: http.client.HTTPSConnection, body: bytes) -> float:
    """One dry-run Pod creation, in milliseconds."""
    started = time.perf_counter()
    conn.request("POST", "/api/v1/namespaces/default/pods?dryRun=All", body=body,
                 headers={"Content-Type": "application/json"})
    answer = conn.getresponse()
    answer.read()
    assert answer.status == 201, answer.status
    return (time.perf_counter() - started) * 1000


def _register(kube: ControlPlane, served: Served) -> None:
    """Both configurations, and dry runs until the API server calls each."""
    assert served.ca is not None
    shipped = shipped_webhook()
    unfiltered = copy.deepcopy(shipped)
    del unfiltered["webhooks"][0]["matchConditions"]
    url, ca = f"https://127.0.0.1:{served.port}/mutate", served.ca.cert_pem.bytes()
    kube.apply([pointed_at(hook, f"castslice-bench-{route}", url, ca,
                           {"matchLabels": {ROUTE: route}})
                for route, hook in (("unfiltered", unfiltered), ("shipped", shipped))])
    kube.apply(routed(printed({}), "policy"))
    conn = _client(kube)
    for route in ("unfiltered", "shipped"):
        before, end = admissions(served), time.monotonic() + 30
        while admissions(served) == before:
            assert time.monotonic() < end, f"the API server never called {route}"
            _create(conn, _pod(route, gpu=True))
            time.sleep(0.1)
    end = time.monotonic() + 30
    while "castops.io/sliced" not in kube.kubectl(
            "create", "--dry-run=server", "-o", "json", "-f", "-",
            stdin=_pod("policy", gpu=True).decode()).stdout:
        assert time.monotonic() < end, "the policy engine never converted a Pod"
        time.sleep(0.1)


def run(pods: int) -> dict[str, Any] | None:
    """p50/p99 per configuration for Pods without a GPU (and GPU Pods as shipped), and how
    many of each reached CastSlice; None where no API server is installed."""
    if assets() is None:
        return None
    with tempfile.TemporaryDirectory() as tmp, control_plane(Path(tmp) / "kube") as kube, \
            serve(Path(tmp) / "server", {}, workers=1) as served:
        _register(kube, served)
        conn = _client(kube)
        times: dict[str, list[float]] = {kind: [] for kind in (*KINDS, *GPU_ROWS)}
        sent = dict.fromkeys(times, 0)
        for _ in range(pods):
            for kind in times:
                before = admissions(served)
                times[kind].append(_create(conn, _pod(kind.removesuffix("_gpu"),
                                                      gpu=kind.endswith("_gpu"))))
                sent[kind] += admissions(served) - before
    return {kind: {"p50_ms": round(statistics.median(t), 2),
                   "p99_ms": round(sorted(t)[int(len(t) * 0.99) - 1], 2),
                   "sent": sent[kind], "pods": len(t)} for kind, t in times.items()}


def table(found: dict[str, Any], cpu_us: float) -> str:
    """The measured rows, then what a cluster creating P Pods/s of which g % ask a GPU sends
    CastSlice and what each Pod without a GPU pays, before and with matchConditions."""
    floor = found["none"]["p50_ms"]
    lines = [f"  {'Pods created (dry run)':38} {'p50 ms':>7} {'p99 ms':>7} {'+p50 ms':>8} "
             f"{'sent to CastSlice':>18}"]
    for kind, figures in found.items():
        what = GPU_ROWS[kind] if kind in GPU_ROWS else KINDS[kind] + ", no GPU"
        lines.append(f"  {what:38} {figures['p50_ms']:>7.2f} {figures['p99_ms']:>7.2f} "
                     f"{figures['p50_ms'] - floor:>+8.2f} "
                     f"{figures['sent']:>8} of {figures['pods']}")
    before = found["unfiltered"]["p50_ms"] - floor
    now = found["shipped"]["p50_ms"] - floor
    lines.append(f"\n  {'P Pods/s':>8} {'g % GPU':>8} {'sent/s before':>14} {'now':>5} "
                 f"{'CastSlice CPU before':>21} {'now':>7}  a Pod without a GPU pays (p50)")
    for rate, share in ((100, 2), (100, 10), (1000, 2), (1000, 10)):
        gpu = rate * share / 100
        lines.append(f"  {rate:>8} {share:>8} {rate:>14} {gpu:>5.0f} "
                     f"{rate * cpu_us / 1e4:>19.1f} % {gpu * cpu_us / 1e4:>5.2f} %  "
                     f"{before:+.2f} ms before, {now:+.2f} ms now")
    return "\n".join(lines)
