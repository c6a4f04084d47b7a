"""`castslice mutate`: Kubernetes manifests as the Pods they create would be admitted.

Each Pod, or each workload's pod template, goes through the same admit() as the server,
wrapped in the AdmissionReview the API server would send, and the patch is applied with
an RFC 6902 implementation, exactly as the API server applies it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonpatch

from castslice.functions.admit import admit
from castslice.functions.policy import Policy
from castslice.functions.reviews import AdmissionReview, metadata_of
from castslice.offline.events import readable

TEMPLATE_PATHS: dict[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}


@dataclass(frozen=True, slots=True)
class Preview:
    """One manifest as admitted, with what CastSlice said about it."""

    document: Any
    label: str
    warnings: tuple[str, ...] = ()
    denied: str = ""


def expanded(documents: list[Any]) -> list[Any]:
    """The documents with each `kind: List` (what `kubectl get -o yaml` prints) replaced by
    its items, as kubectl apply reads it."""
    found = []
    for document in documents:
        items = document.get("items") if isinstance(document, dict) else None
        if isinstance(document, dict) and document.get("kind", "").endswith("List") and (
                isinstance(items, list)):
            found += expanded(items)
        else:
            found.append(document)
    return found


OWN_METADATA = "castops.io/ annotations on the {kind}'s own metadata are not read: move " \
    "them to {path}.metadata.annotations, where its Pods get them"


def preview(documents: list[Any], policy: Policy, namespace: str) -> Iterator[Preview]:
    """Every document, Pods and pod templates mutated; other kinds untouched."""
    for index, document in enumerate(expanded(documents)):
        if not isinstance(document, dict):
            continue
        kind = document.get("kind")
        metadata = metadata_of(document)
        label = f"{kind}/{metadata.get('name', index)}"
        if kind in TEMPLATE_PATHS and _misplaced(metadata, document, kind):
            yield Preview(document, label, (OWN_METADATA.format(
                kind=kind, path=".".join(TEMPLATE_PATHS[kind])),))
            continue
        if kind == "Pod":
            yield _admit_pod(document, document, (), policy,
                             metadata.get("namespace", namespace), label, index)
        elif kind in TEMPLATE_PATHS:
            template = _get(document, TEMPLATE_PATHS[kind])
            if not isinstance(template, dict):
                yield Preview(document, label)
                continue
            pod = {"apiVersion": "v1", "kind": "Pod", **template}
            yield _admit_pod(document, pod, TEMPLATE_PATHS[kind], policy,
                             metadata.get("namespace", namespace), label, index)
        else:
            yield Preview(document, label)


def _admit_pod(document: dict[str, Any], pod: dict[str, Any], where: tuple[str, ...],
               policy: Policy, namespace: str, label: str, index: int) -> Preview:
    review: AdmissionReview = {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": f"preview-{index}", "kind": {"group": "", "version": "v1",
                                                        "kind": "Pod"},
                    "resource": {"group": "", "version": "v1", "resource": "pods"},
                    "operation": "CREATE", "namespace": namespace, "object": pod},
    }
    response = readable(admit(review, policy).response)["response"]
    warnings = tuple(response.get("warnings", ()))
    if not response["allowed"]:
        return Preview(document, label, warnings, response["status"]["message"])
    if "patch" not in response:
        return Preview(document, label, warnings)
    admitted = jsonpatch.apply_patch(pod, response["patch"])
    if not where:
        return Preview(admitted, label, warnings)
    template = {k: v for k, v in admitted.items() if k not in ("apiVersion", "kind")}
    return Preview(_replace(document, where, template), label, warnings)


def _misplaced(metadata: dict[str, Any], document: dict[str, Any], kind: str) -> bool:
    """castops.io/ annotations on a workload's own metadata while its template has none:
    a common slip that leaves every Pod it makes unconverted, silently."""
    own = metadata.get("annotations")
    template = _get(document, (*TEMPLATE_PATHS[kind], "metadata", "annotations"))
    return isinstance(own, dict) and any(str(k).startswith("castops.io/") for k in own) and (
        not isinstance(template, dict)
        or not any(str(k).startswith("castops.io/") for k in template))


def _get(data: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        data = data.get(key) if isinstance(data, dict) else None
    return data


def _replace(data: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of `data` with `value` at `path`; the input is not changed."""
    head, *rest = path
    return {**data, head: _replace(data[head], tuple(rest), value) if rest else value}
