"""What the API server would do with a patched Pod: apply the patch, then validate it."""

import copy
import re
from decimal import Decimal, localcontext
from typing import Any

import jsonpatch
import kubernetes_validate

from castslice.functions.admit import admit, check_review
from castslice.functions.patch import CONTAINER_LISTS
from castslice.functions.policy import Policy
from castslice.offline.events import readable

# An oracle written apart from the implementation: Kubernetes' serialization grammar
# (quantity.go's comment) as one regex, and decimal arithmetic for the value.
ORACLE = re.compile(r"([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?",
                    re.ASCII)
SUFFIX_VALUE = {"": Decimal(1), "n": Decimal("1e-9"), "u": Decimal("1e-6"),
                "m": Decimal("1e-3"), "k": Decimal("1e3"), "M": Decimal("1e6"),
                "G": Decimal("1e9"), "T": Decimal("1e12"), "P": Decimal("1e15"),
                "E": Decimal("1e18"), "Ki": Decimal(1024), "Mi": Decimal(1024**2),
                "Gi": Decimal(1024**3), "Ti": Decimal(1024**4), "Pi": Decimal(1024**5),
                "Ei": Decimal(1024**6)}


def kube_quantity(text: str) -> Decimal | None:
    match = ORACLE.fullmatch(text)
    if match is None:
        return None
    sign, number, suffix = match.group(1), match.group(2), match.group(3) or ""
    scale = SUFFIX_VALUE[suffix] if suffix in SUFFIX_VALUE else Decimal(10) ** int(suffix[1:])
    with localcontext() as context:
        context.prec = 200
        return Decimal(sign + number) * scale


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
                        amount = kube_quantity(str(value))
                        assert amount is not None and amount == amount.to_integral_value(), (
                            name, value)
                assert name in limits, f"{name}: Limit must be set for non overcommitable resources"
                if name in requests:
                    assert kube_quantity(str(requests[name])) == kube_quantity(str(limits[name])), (
                        f"{name}: must be equal to {name} limit")
