"""Pods from `kubectl get pods -A -o json` (or YAML): a List, a single Pod, or documents."""

from collections.abc import Iterator, Mapping
from typing import Any

from castslice.functions.patch import CONTAINER_LISTS
from castslice.functions.quantity import whole_count

FINISHED = ("Succeeded", "Failed")


def pods_in(documents: list[Any]) -> list[dict[str, Any]]:
    """Every Pod in the documents, whether listed (`items`) or standalone."""
    found: list[dict[str, Any]] = []
    for document in documents:
        if isinstance(document, dict) and isinstance(document.get("items"), list):
            found += [i for i in document["items"] if isinstance(i, dict) and _is_pod(i)]
        elif isinstance(document, dict) and _is_pod(document):
            found.append(document)
    return found


def _is_pod(item: Mapping[str, Any]) -> bool:
    return item.get("kind", "Pod") == "Pod" and isinstance(item.get("spec"), dict)


def meta(pod: Mapping[str, Any]) -> dict[str, Any]:
    metadata = pod.get("metadata")
    return metadata if isinstance(metadata, dict) else {}


def strings(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def live(pod: Mapping[str, Any]) -> bool:
    """Still holding its resources: not Succeeded or Failed."""
    return strings(pod.get("status")).get("phase") not in FINISHED


def _amounts(containers: object, resource: str) -> Iterator[int]:
    for container in containers if isinstance(containers, list) else ():
        resources = strings(strings(container).get("resources"))
        limits, requests = strings(resources.get("limits")), strings(resources.get("requests"))
        yield whole_count(limits.get(resource, requests.get(resource))) or 0


def effective_request(pod: Mapping[str, Any], resource: str) -> int:
    """What the scheduler reserves: max(sum of containers, largest init container).

    https://kubernetes.io/docs/concepts/workloads/pods/init-containers/#resource-sharing-within-containers
    """
    spec = strings(pod.get("spec"))
    regular = sum(_amounts(spec.get("containers"), resource))
    return max(regular, max(_amounts(spec.get("initContainers"), resource), default=0))


def holds(pod: Mapping[str, Any], resource: str) -> bool:
    spec = strings(pod.get("spec"))
    return any(any(_amounts(spec.get(name), resource)) for name in CONTAINER_LISTS)
