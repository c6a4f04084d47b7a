"""CastSlice as a real API server's webhook (the envtest tier): every golden Pod creation
sent through kube-apiserver v1.36 comes back stored as its expected answer says, under each
back-end; when CastSlice is down, Pods are admitted unchanged (failurePolicy: Ignore)."""

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch
import pytest

from castslice.cli import main
from castslice.functions.patch import CONTAINER_LISTS
from castslice.offline import events
from tests.envtest import ControlPlane
from tests.kube import kube_quantity
from tests.served import free_port
from tests.webhooks import (
    ROUTE,
    Webhooks,
    admissions,
    create,
    fresh,
    pointed_at,
    probe_pod,
    sent,
    shipped_webhook,
)

ROOT = Path(__file__).resolve().parent.parent
SENT = [c for c in events.load_cases(ROOT / "events")
        if c.request["request"].get("operation") == "CREATE"
        and c.request["request"].get("kind", {}).get("kind") == "Pod"
        and not c.request["request"].get("subResource")
        and not c.request["request"].get("dryRun")
        and c.request["request"].get("object", {}).get("kind") == "Pod"
        # Kubernetes refuses ephemeralContainers on CREATE (they come by a subresource):
        and not c.request["request"]["object"].get("spec", {}).get("ephemeralContainers")]
SKIPPED_NAMESPACES = {name for e in shipped_webhook()["webhooks"][0]["namespaceSelector"][
    "matchExpressions"] if e["operator"] == "NotIn" for name in e["values"]}
REFUSED_BY_KUBERNETES = {"fractional-gpu-left-alone": "Invalid value: \"500m\": must be an integer"}
"""Cases CastSlice must answer (a webhook sees the object before validation) that Kubernetes'
own validation then refuses, whatever the webhook said."""


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    yield from fresh(kube, tmp_path_factory.mktemp("webhooks"))


def _resources(pod: dict[str, Any]) -> dict[str, Any]:
    """What the decision may change, quantities compared by value (the server writes
    them canonically: "1e0" is stored as "1")."""
    spec = pod.get("spec", {})
    found: dict[str, Any] = {"resourceClaims": spec.get("resourceClaims"),
                             "sliced": pod["metadata"].get("annotations", {}).get(
                                 "castops.io/sliced")}
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or []:
            resources = container.get("resources", {})
            limits = resources.get("limits", {})
            # Kubernetes defaults a request from its limit (pkg/apis/core/v1/defaults.go):
            requests = limits | resources.get("requests", {})
            found[f"{list_name}/{container['name']}"] = {
                "limits": {k: kube_quantity(str(v)) for k, v in limits.items()},
                "requests": {k: kube_quantity(str(v)) for k, v in requests.items()},
                "claims": resources.get("claims")}
    return found


def test_the_golden_cases_cover_every_back_end():
    backends = {c.env.get("CASTSLICE_BACKEND", "extended") for c in SENT}
    assert backends == {"extended", "mig", "dra"}, backends
    assert len(SENT) >= 30


@pytest.mark.parametrize("case", SENT, ids=lambda c: c.name)
def test_stored_pod_is_what_the_golden_answer_says(kube, webhooks, case):
    route, served = webhooks.route(case.env)
    request = case.request["request"]
    namespace = request["namespace"]
    pod = case_pod(kube, case, route)
    called = sent(pod) and namespace not in SKIPPED_NAMESPACES
    before = admissions(served)
    stored, said = create(kube, pod)
    assert admissions(served) - before == called, "the API server sent what it should not"
    if not called:  # no call, so no warning (README: Only GPU Pods are sent)
        assert stored is not None and _resources(stored) == _resources(pod), said
        return
    response = case.expected["response"]
    if case.name in REFUSED_BY_KUBERNETES:
        assert stored is None and REFUSED_BY_KUBERNETES[case.name] in said, said
        return
    if not response["allowed"]:
        assert stored is None, "the denial reached the user"
        assert response["status"]["message"] in said
        return
    assert stored is not None, said
    expected = jsonpatch.apply_patch(request["object"], response.get("patch", []))
    assert _resources(stored) == _resources(expected)
    for warning in response.get("warnings", []):
        assert f"Warning: {warning}" in said


def case_pod(kube: ControlPlane, case: events.Case, route: str) -> dict[str, Any]:
    """A golden case's Pod as a client would create it, in its namespace (made if absent),
    labelled for `route`."""
    request = case.request["request"]
    kube.ensure_namespace(request["namespace"])
    pod = copy.deepcopy(request["object"])
    pod["metadata"].pop("managedFields", None)
    pod["metadata"]["namespace"] = request["namespace"]
    pod["metadata"].setdefault("labels", {})[ROUTE] = route
    return pod


def _created_while_down(kube: ControlPlane, route: str) -> tuple[str, dict[str, Any]]:
    """An opted-in GPU Pod created while the shipped configuration points at a port where
    nothing listens: its namespace, and the Pod as stored."""
    namespace = kube.namespace(route)
    kube.apply([pointed_at(shipped_webhook(), f"castslice-test-{route}",
                           f"https://127.0.0.1:{free_port()}/mutate", b"not a CA",
                           {"matchLabels": {ROUTE: route}})])
    stored, said = create(kube, probe_pod(namespace, route))
    assert stored is not None, said
    return namespace, stored


def test_a_pod_is_admitted_unchanged_when_castslice_is_down(kube):
    """failurePolicy: Ignore, as shipped."""
    _, stored = _created_while_down(kube, "down")
    limits = stored["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu": "1"}
    assert "castops.io/sliced" not in stored["metadata"].get("annotations", {})


def test_audit_names_the_pod_admitted_while_castslice_was_down(kube, capsys):
    namespace, stored = _created_while_down(kube, "audit")
    code = main(["audit", "--kubeconfig", str(kube.kubeconfig), "-n", namespace], {})
    out = capsys.readouterr().out
    assert code == 1
    name = stored["metadata"]["name"]
    assert f"  {namespace}/{name}  (opted in by castops.io/optimize=true)" in out


def test_savings_counts_the_pods_castslice_converted_through_the_server(kube, webhooks, capsys):
    env = {"CASTSLICE_SLICES_PER_GPU": "8"}
    route, _ = webhooks.route(env)
    namespace = kube.namespace("savings")
    for gpus in ("1", "1"):
        stored, said = create(kube, probe_pod(namespace, route, gpus))
        assert stored is not None, said
        assert stored["spec"]["containers"][0]["resources"]["limits"] == {
            "nvidia.com/gpu-shared": "1"}
    code = main(["savings", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                 "--output", "json"], env)
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    assert (summary["gpus_without_sharing"], summary["gpus_with_sharing"]) == (2, 0.25), summary
