"""The JSON Patch (RFC 6902) that turns whole GPUs into shared slices.

Every op is computed from the object as received, never from a re-serialized model: a
`remove` of a key that is not there makes the API server refuse the Pod outright, even
with failurePolicy Ignore.
"""

from collections.abc import Mapping
from functools import lru_cache
from typing import Any, NamedTuple, cast

from castslice.functions.annotations import SLICED
from castslice.functions.quantity import parse_quantity, scaled, whole_count
from castslice.functions.requests import scheduled
from castslice.functions.reviews import PatchOp
from castslice.functions.text import short, show, text_or_empty

INIT, REGULAR, EPHEMERAL = "initContainers", "containers", "ephemeralContainers"
CONTAINER_LISTS = (INIT, REGULAR, EPHEMERAL)
SECTIONS = ("limits", "requests")


class Conversion(NamedTuple):
    """One container converted: the facts logs, metrics and reports read (never the
    castops.io/sliced text, which is for people)."""

    list_name: str
    position: int
    name: str
    gpus: int
    """Whole GPUs the container asked for (limits and requests hold the same count)."""
    granted: int
    """Target units it asks for instead: gpus x slices."""
    sidecar: bool
    """An init container with restartPolicy Always: it runs beside the regular ones."""


class Rewrite(NamedTuple):
    """The resource ops for one Pod, what they convert, and why anything was left alone."""

    ops: tuple[PatchOp, ...]
    conversions: tuple[Conversion, ...]
    warnings: tuple[str, ...]
    already_sliced: bool

    def scheduled_gpus(self) -> int:
        """Whole GPUs the scheduler would have reserved for the converted containers."""
        init = [(c.gpus, c.sidecar) for c in self.conversions if c.list_name == INIT]
        return scheduled(init, [c.gpus for c in self.conversions if c.list_name == REGULAR])


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON Pointer: '~' becomes '~0' and '/' becomes '~1', in that order."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


@lru_cache(maxsize=64)
def _key(resource: str) -> str:
    """A resource name as one escaped pointer segment; the names come from the config, so
    each is escaped once per process rather than twice per Pod."""
    return pointer(resource)


def rewrite_resources(pod: Mapping[str, Any], source: str, target: str,
                      slices: int) -> Rewrite:
    """Replace `source` with `target` x slices in every container's limits and requests.

    A container is rewritten whole or not at all, so its requests keep equal to its limits
    (Kubernetes requires that for extended resources).
    """
    ops: list[PatchOp] = []
    conversions: list[Conversion] = []
    warnings: list[str] = []
    already = False
    source_key, target_key = _key(source), _key(target)
    spec = pod.get("spec")
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name) if isinstance(spec, dict) else None
        for index, container in enumerate(containers if isinstance(containers, list) else ()):
            holding, has_target = _holding(container, source, target)
            if not holding:
                already = already or has_target
                continue
            counts = [whole_count(m[source]) for _, m in holding]
            if has_target or None in counts:
                problem = _problem(container, holding, counts, source, target, has_target)
                if problem:
                    warnings.append(problem)
                continue  # without a problem: a zero count, no GPU asked for
            whole = cast(list[int], counts)  # no None past the check above
            prefix = f"/spec/{list_name}/{index}/resources/"
            # counts were made from holding: equal lengths, so no strict check on the hot path
            for (section, _), count in zip(holding, whole, strict=False):
                ops += ({"op": "remove", "path": prefix + section + source_key},
                        {"op": "add", "path": prefix + section + target_key,
                         "value": str(scaled(count, slices))})
            gpus = max(whole)
            conversions.append(Conversion(
                list_name, index, text_or_empty(container.get("name")), gpus,
                scaled(gpus, slices), container.get("restartPolicy") == "Always"))
    return Rewrite(tuple(ops), tuple(conversions), tuple(warnings), already)


def annotate(pod: Mapping[str, Any], text: str) -> PatchOp:
    """The op that records `text` under castops.io/sliced, creating annotations if absent."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, dict):
        return {"op": "add", "path": "/metadata", "value": {"annotations": {SLICED: text}}}
    if not isinstance(metadata.get("annotations"), dict):
        return {"op": "add", "path": "/metadata/annotations", "value": {SLICED: text}}
    return {"op": "add", "path": pointer("metadata", "annotations", SLICED), "value": text}


def _holding(container: object, source: str,
             target: str) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
    """The (section, map) pairs holding `source`, and whether any map holds `target`."""
    resources = container.get("resources") if isinstance(container, dict) else None
    holding, has_target = [], False
    if isinstance(resources, dict):
        for section in SECTIONS:
            found = resources.get(section)
            if isinstance(found, dict):
                if source in found:
                    holding.append((section, found))
                has_target = has_target or target in found
    return holding, has_target


def _problem(container: dict[str, Any], holding: list[tuple[str, dict[str, Any]]],
             counts: list[int | None], source: str, target: str,
             has_target: bool) -> str | None:
    """Why a container holding `source` is left unchanged; None for a plain zero count."""
    if has_target:
        where = next((s for s, m in holding if target in m), "its resources")
        return short(f"container {show(container.get('name'), 40)} has both {source} and "
                     f"{target} in {where}; left unchanged")
    for (section, resources), count in zip(holding, counts, strict=True):
        value = resources[source]
        if count is None and parse_quantity(value) != 0:
            return short(f"container {show(container.get('name'), 40)} {section} "
                         f"{source}={show(value)} is not a whole number; left unchanged")
    return None
