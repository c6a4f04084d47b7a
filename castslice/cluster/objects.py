"""Pods from `kubectl get pods -A -o json` (or YAML): a List, a single Pod, or documents."""

from collections.abc import Iterator, Mapping
from typing import Any

from castslice.functions.patch import CONTAINER_LISTS
from castslice.functions.quantity import whole_count
from castslice.functions.requests import scheduled
from castslice.functions.reviews import mapping

FINISHED = ("Succeeded", "Failed")


def objects_of(documents: list[Any], kind: str) -> list[dict[str, Any]]:
    """Every object of `kind` in the documents, listed (`items`, whose entries kubectl may
    leave without a kind) or standalone."""
    found: list[dict[str, Any]] = []
    for document in documents:
        items = document.get("items") if isinstance(document, dict) else None
        for item in items if isinstance(items, list) else [document]:
            if isinstance(item, dict) and item.get("kind", kind) == kind:
                found.append(item)
    return found


def listed_empty(documents: list[Any], kind: str) -> bool:
    """Whether kubectl answered "none of them": an empty List (or <kind>List)."""
    return any(isinstance(d, dict) and d.get("kind") in ("List", f"{kind}List")
               and d.get("items") == [] for d in documents)


def pods_in(documents: list[Any]) -> list[dict[str, Any]]:
    """Every Pod with a spec in the documents."""
    return [p for p in objects_of(documents, "Pod") if isinstance(p.get("spec"), dict)]


def live(pod: Mapping[str, Any]) -> bool:
    """Still holding its resources: not Succeeded or Failed."""
    return mapping(pod.get("status")).get("phase") not in FINISHED


def _amounts(containers: object, resource: str) -> Iterator[int]:
    for container in containers if isinstance(containers, list) else ():
        resources = mapping(mapping(container).get("resources"))
        limits, requests = mapping(resources.get("limits")), mapping(resources.get("requests"))
        yield whole_count(limits.get(resource, requests.get(resource))) or 0


def effective_request(pod: Mapping[str, Any], resource: str) -> int:
    """What the scheduler reserves of `resource` for the Pod, sidecars included."""
    spec = mapping(pod.get("spec"))
    init = spec.get("initContainers")
    sidecars = [mapping(c).get("restartPolicy") == "Always"
                for c in (init if isinstance(init, list) else ())]
    return scheduled(zip(_amounts(init, resource), sidecars, strict=True),
                     _amounts(spec.get("containers"), resource))


def holds(pod: Mapping[str, Any], resource: str) -> bool:
    spec = mapping(pod.get("spec"))
    return any(any(_amounts(spec.get(name), resource)) for name in CONTAINER_LISTS)
