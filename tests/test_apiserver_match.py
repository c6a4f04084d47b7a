"""Only GPU Pods reach CastSlice (the envtest tier): the shipped matchConditions, evaluated by a
real kube-apiserver v1.36, send every Pod asking for the source resource and no other, counted
by CastSlice's own admission metric."""

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from castslice.cli import main
from castslice.cluster.webhook import match_conditions
from tests.envtest import ControlPlane
from tests.test_helm import template
from tests.webhooks import ROOT, ROUTE, Webhooks, admissions, fresh, sent, shipped_webhook

RULES = json.dumps([{"name": "ml", "namespaces": ["ml-*"], "optimize": True},
                    {"name": "team", "matchLabels": {"team": "vision"},
                     "optimize": True}])


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    yield from fresh(kube, tmp_path_factory.mktemp("match"))


def _container(name: str, limits: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    resources = {"limits": limits} if limits else {}
    return {"name": name, "image": "registry.example/app:1", "resources": resources, **extra}


def _pod(containers: list[dict[str, Any]], annotations: dict[str, str] | None = None,
         init: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
         ) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": containers}
    if init:
        spec["initContainers"] = init
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "p-", "labels": labels or {},
                         "annotations": {"castops.io/optimize": "true"}
                         if annotations is None else annotations},
            "spec": spec}


GPU = {"nvidia.com/gpu": "1"}
SIDECAR = {"restartPolicy": "Always"}
GPU_PODS = {
    "limits": _pod([_container("main", GPU)]),
    "limits-and-requests": _pod([_container("main", GPU, resources={
        "limits": GPU, "requests": GPU})]),
    "init-container": _pod([_container("main")], init=[_container("fetch", GPU)]),
    "sidecar": _pod([_container("main")], init=[_container("proxy", GPU, **SIDECAR)]),
    "two-gpu-containers": _pod([_container("a", GPU), _container("b", GPU)]),
    "last-of-three": _pod([_container("a"), _container("b"), _container("c", GPU)]),
    "namespace-rule": _pod([_container("main", GPU)], annotations={}),
    "label-rule": _pod([_container("main", GPU)], annotations={}, labels={"team": "vision"}),
    "slice-ratio": _pod([_container("main", GPU)], {"castops.io/optimize": "true",
                                                    "castops.io/slice-ratio": "2"}),
    "workload-type": _pod([_container("main", GPU)], {"castops.io/optimize": "true",
                                                      "castops.io/workload-type": "inference"}),
    "odd-optimize-value-rule-decides": _pod([_container("main", GPU)],
                                            {"castops.io/optimize": "yes"}),
    "cpu-and-memory-beside": _pod([_container("main", GPU | {"cpu": "1", "memory": "1Gi"})]),
    "init-and-regular": _pod([_container("main", GPU)], init=[_container("fetch", GPU)]),
    "sixty-containers": _pod([_container(f"c{i}") for i in range(59)]
                             + [_container("gpu", GPU)]),
    "twenty-init-containers": _pod([_container("main")],
                                   init=[_container(f"i{i}") for i in range(19)]
                                   + [_container("gpu", GPU)]),
    "other-annotations-too": _pod([_container("main", GPU)], {
        "castops.io/optimize": "true", "prometheus.io/scrape": "true"}),
}
"""16 GPU Pods of every shape a workload has; `ml-*` namespaces and team=vision opt in by rule."""

PLAIN = [_container("main"), _container("main", {"cpu": "1", "memory": "1Gi"}),
         _container("main", {"nvidia.com/gpu-shared": "1"}),
         _container("main", {"example.com/fpga": "1"})]
ANNOTATIONS: list[dict[str, str]] = [{}, {"castops.io/optimize": "true"},
                                     {"castops.io/optimize": "yes"},
                                     {"castops.io/slice-ratio": "4"}, {"other": "x"}]


def _plain_pods() -> list[dict[str, Any]]:
    """100 Pods without a GPU: no limits, CPU and memory, an already shared GPU, another
    device; with no annotation, opted in, odd values; as regular or init containers."""
    pods = []
    for i in range(100):
        container = copy.deepcopy(PLAIN[i % len(PLAIN)])
        init = [_container("init", {"cpu": "1"})] if i % 3 == 0 else None
        pods.append(_pod([container], ANNOTATIONS[i % len(ANNOTATIONS)], init=init))
    return pods


def _in(pods: list[dict[str, Any]], namespace: str, route: str) -> str:
    for pod in pods:
        pod["metadata"]["namespace"] = namespace
        pod["metadata"]["labels"][ROUTE] = route
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": pods})


def _dry_run_all(kube: ControlPlane, pods: list[dict[str, Any]], namespace: str,
                 route: str) -> list[dict[str, Any]]:
    """One `kubectl create --dry-run=server` of them all: the objects as they would be stored."""
    done = kube.kubectl("create", "--dry-run=server", "-o", "json", "-f", "-",
                        stdin=_in(pods, namespace, route))
    decoder, text, found, at = json.JSONDecoder(), done.stdout, [], 0
    while text[at:].strip():  # kubectl prints one JSON object per Pod, one after another
        pod, at = decoder.raw_decode(text, len(text) - len(text[at:].lstrip()))
        found.append(pod)
    return found


def test_no_pod_without_a_gpu_reaches_castslice(kube, webhooks):
    route, served = webhooks.route({"CASTSLICE_RULES": RULES})
    namespace = kube.namespace("ml-plain")  # a namespace a rule opts in: still no call
    pods = _plain_pods()
    assert not any(sent(p) for p in pods)
    before = admissions(served)
    stored = _dry_run_all(kube, pods, namespace, route)
    assert len(stored) == 100
    assert admissions(served) - before == 0


def test_gpu_pods_opted_out_by_annotation_are_not_sent(kube, webhooks):
    route, served = webhooks.route({"CASTSLICE_RULES": RULES})
    namespace = kube.namespace("ml-out")
    pods = [_pod([_container("main", GPU)], {"castops.io/optimize": "false"}) for _ in range(10)]
    before = admissions(served)
    stored = _dry_run_all(kube, pods, namespace, route)
    assert admissions(served) - before == 0
    assert all(p["spec"]["containers"][0]["resources"]["limits"] == GPU for p in stored)


def test_the_cases_are_sixteen_gpu_pods():
    assert len(GPU_PODS) == 16
    assert all(sent(p) for p in GPU_PODS.values())


@pytest.mark.parametrize("name", GPU_PODS)
def test_every_gpu_pod_is_sent_and_converted(kube, webhooks, name):
    route, served = webhooks.route({"CASTSLICE_RULES": RULES})
    namespace = kube.namespace("team" if name == "label-rule" else "ml-gpu")
    before = admissions(served)
    (stored,) = _dry_run_all(kube, [copy.deepcopy(GPU_PODS[name])], namespace, route)
    assert admissions(served) - before == 1
    assert "castops.io/sliced" in stored["metadata"]["annotations"]
    for container in [*stored["spec"]["containers"], *stored["spec"].get("initContainers", [])]:
        assert "nvidia.com/gpu" not in container["resources"].get("limits", {}), container


def _chart_webhook(*sets: str) -> dict[str, Any]:
    (found,) = [d for d in yaml.safe_load_all(template(*sets))
                if d and d["kind"] == "MutatingWebhookConfiguration"]
    return found


def test_every_install_writes_the_same_match_conditions():
    """The one-file installs, the chart and the code doctor reads them with agree."""
    for path in ("castslice.yaml", "castslice-knative.yaml"):
        (hook,) = shipped_webhook(ROOT / "deploy" / path)["webhooks"]
        assert hook["matchConditions"] == match_conditions("nvidia.com/gpu"), path
    for sets in ([], ["--set", "mode=knative"]):
        (hook,) = _chart_webhook(*sets)["webhooks"]
        assert hook["matchConditions"] == match_conditions("nvidia.com/gpu"), sets
    (hook,) = _chart_webhook("--set", "config.CASTSLICE_SOURCE_RESOURCE=example.com/gpu")[
        "webhooks"]
    assert hook["matchConditions"] == match_conditions("example.com/gpu")


def test_a_custom_source_resource_is_what_the_chart_sends(kube, tmp_path):
    """The chart's configuration for another resource, accepted by the API server (CEL
    compiled and its cost estimated on write): that resource is sent, nvidia.com/gpu not."""
    source = "example.com/gpu"
    registry = Webhooks(kube, tmp_path, _chart_webhook(
        "--set", f"config.CASTSLICE_SOURCE_RESOURCE={source}"), prefix="castslice-custom")
    try:
        route, served = registry.route({"CASTSLICE_SOURCE_RESOURCE": source})
        namespace = kube.namespace("custom")
        before = admissions(served)
        asked = _dry_run_all(kube, [_pod([_container("main", {source: "1"})])], namespace, route)
        assert admissions(served) - before == 1
        assert asked[0]["spec"]["containers"][0]["resources"]["limits"] == {
            "nvidia.com/gpu-shared": "1"}
        _dry_run_all(kube, [_pod([_container("main", GPU)])], namespace, route)
        assert admissions(served) - before == 1
    finally:
        registry.close()


def test_the_api_server_refuses_a_match_condition_that_does_not_compile(kube):
    """The check the tier relies on: a broken expression is refused on write, not skipped."""
    webhook = copy.deepcopy(shipped_webhook())
    webhook["metadata"] = {"name": "castslice-broken"}
    webhook["webhooks"][0]["matchConditions"][0]["expression"] = "object.spec.nope("
    done = kube.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(webhook),
                        check=False)
    assert done.returncode != 0 and "matchConditions" in done.stderr, done.stderr


def test_doctor_reads_the_live_webhook_configurations_and_exporter(kube, webhooks, capsys):
    webhooks.route({"CASTSLICE_RULES": RULES})
    unfiltered = copy.deepcopy(shipped_webhook())
    unfiltered["metadata"] = {"name": "castslice-unfiltered"}
    del unfiltered["webhooks"][0]["matchConditions"]
    unfiltered["webhooks"][0]["objectSelector"] = {"matchLabels": {ROUTE: "none"}}
    kube.ensure_namespace("gpu-operator")
    labels = {"app": "nvidia-dcgm-exporter"}
    exporter = {"apiVersion": "apps/v1", "kind": "DaemonSet",
                "metadata": {"name": "nvidia-dcgm-exporter", "namespace": "gpu-operator"},
                "spec": {"selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{
                        "name": "nvidia-dcgm-exporter",
                        "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.4.1-4.6.0-ubuntu22.04",
                        "env": [{"name": "KUBERNETES_VIRTUAL_GPUS", "value": "true"}]}]}}}}
    kube.apply([unfiltered, exporter])
    main(["doctor", "--kubeconfig", str(kube.kubeconfig)], {})
    out = capsys.readouterr().out
    assert ("warning: dcgm-exporter DaemonSet gpu-operator/nvidia-dcgm-exporter does not "
            "attribute converted Pods: set NVIDIA_RESOURCE_NAMES=nvidia.com/gpu-shared ") in out
    assert ("ok: MutatingWebhookConfiguration castslice-test-0 sends only Pods asking for "
            "nvidia.com/gpu") in out, out
    assert ("warning: MutatingWebhookConfiguration castslice-unfiltered has no "
            "matchConditions") in out
