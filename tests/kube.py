"""What the API server would do with a patched Pod: apply the patch, then validate it."""

import copy
from typing import Any

import jsonpatch
import kubernetes_validate

from castslice.events import readable
from castslice.functions.admit import admit, check_review
from castslice.functions.patch import CONTAINER_LISTS
from castslice.functions.policy import Policy
from castslice.functions.quantity import parse_quantity

K8S_VERSION = kubernetes_validate.latest_version()
NATIVE_PREFIXES = ("kubernetes.io/", "requests.")


def pod_review(annotations: dict[str, str] | None = None, *, namespace: str = "ml",
               containers: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
               operation: str = "CREATE", api_version: str = "admission.k8s.io/v1",
               **spec: Any) -> dict[str, Any]:
    """A small, valid Pod CREATE review; the golden events hold the full-size ones."""
    metadata: dict[str, Any] = {"generateName": "trainer-", "namespace": namespace,
                                "labels": labels or {"app": "trainer"}}
    if annotations is not None:
        metadata["annotations"] = annotations
    return {
        "apiVersion": api_version, "kind": "AdmissionReview",
        "request": {
            "uid": "0b5e3c1e-0000-4000-8000-000000000001",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "operation": operation, "namespace": namespace,
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
                       "spec": {"containers": containers or [gpu_container("main", "1")],
                                **spec}},
        },
    }


def gpu_container(name: str, gpus: Any, resource: str = "nvidia.com/gpu") -> dict[str, Any]:
    return {"name": name, "image": "registry.example/trainer:1",
            "resources": {"limits": {resource: gpus, "cpu": "1"},
                          "requests": {resource: gpus, "cpu": "1"}}}


def answer(review: dict[str, Any], policy: Policy | None = None) -> dict[str, Any]:
    """The response the server would send for `review`, checked at the one boundary."""
    return dict(admit(check_review(review), policy or Policy()).response)


def patch_of(response: dict[str, Any]) -> list[dict[str, Any]]:
    patch: list[dict[str, Any]] = readable(response)["response"].get("patch", [])
    return patch


def admitted_pod(review: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The Pod as the API server would store it: the patch applied to the request's object."""
    return jsonpatch.apply_patch(copy.deepcopy(review["request"]["object"]), patch_of(response))


def assert_valid_pod(pod: dict[str, Any]) -> None:
    """Kubernetes' own Pod schema, and its extended-resource rules (integers, requests==limits)."""
    kubernetes_validate.validate(pod, K8S_VERSION, strict=True)
    for list_name in CONTAINER_LISTS:
        for container in pod["spec"].get(list_name, []):
            resources = container.get("resources", {})
            limits, requests = resources.get("limits", {}), resources.get("requests", {})
            for name in set(limits) | set(requests):
                if "/" not in name or name.startswith(NATIVE_PREFIXES):
                    continue
                for value in (limits.get(name), requests.get(name)):
                    if value is not None:
                        assert parse_quantity(value).denominator == 1, (name, value)
                assert name in limits, f"{name}: Limit must be set for non overcommitable resources"
                if name in requests:
                    assert parse_quantity(requests[name]) == parse_quantity(limits[name]), (
                        f"{name}: must be equal to {name} limit")
