"""The JSON Patch (RFC 6902) that turns whole GPUs into shared slices.

Every op is computed from the object as received, never from a re-serialized model: a
`remove` of a key that is not there makes the API server refuse the Pod outright, even
with failurePolicy Ignore.
"""

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple, cast

from castslice.functions.annotations import SLICED
from castslice.functions.quantity import parse_quantity, scaled, whole_count
from castslice.functions.requests import scheduled
from castslice.functions.reviews import PatchOp
from castslice.functions.text import short, show

INIT, REGULAR, EPHEMERAL = "initContainers", "containers", "ephemeralContainers"
CONTAINER_LISTS = (INIT, REGULAR, EPHEMERAL)
SECTIONS = ("limits", "requests")


class Holding(NamedTuple):
    """A container holding whole GPUs of the source that can be converted."""

    list_name: str
    position: int
    container: dict[str, Any]
    counts: tuple[tuple[str, int], ...]
    """(section, whole count) for each of limits and requests that holds the source."""
    gpus: int
    """The largest of the counts: what the container asks for."""
    sidecar: bool
    resources_path: str
    """/spec/<list>/<position>/resources/, the prefix of every op on this container."""

    def remove_source(self, source: str) -> list[PatchOp]:
        """The ops that take the source out of limits and requests."""
        return [{"op": "remove", "path": self.resources_path + section + _key(source)}
                for section, _ in self.counts]


class Scan(NamedTuple):
    """The containers to convert, why others were left alone, whether some container
    already holds what a conversion writes (a Pod admitted twice), and the most whole GPUs
    any one container asks for."""

    holdings: tuple[Holding, ...]
    warnings: tuple[str, ...]
    already_sliced: bool
    most: int = 0


class Rewrite(NamedTuple):
    """The ops for one Pod, the containers they convert, and why anything was left alone."""

    ops: tuple[PatchOp, ...]
    converted: tuple[Holding, ...]
    warnings: tuple[str, ...]
    already_sliced: bool
    most: int = 0
    """The most whole GPUs any one container asks for: above 1, nothing is converted."""

    def scheduled_gpus(self) -> int:
        """Whole GPUs the scheduler would have reserved for the converted containers."""
        return scheduled_gpus(self.converted)


def scheduled_gpus(containers: Sequence[Holding]) -> int:
    """Whole GPUs the scheduler reserves for these containers (requests.scheduled), from
    each one's list, count and sidecar flag."""
    init = [(c.gpus, c.sidecar) for c in containers if c.list_name == INIT]
    return scheduled(init, [c.gpus for c in containers if c.list_name == REGULAR])


Held = Callable[[dict[str, Any]], tuple[str, str] | None]
"""Given a container's resources: what it already holds of a back-end's output, in words,
and where ("nvidia.com/gpu-shared", "limits"), or None."""


def pointer(*parts: str | int) -> str:
    """An RFC 6901 JSON Pointer: '~' becomes '~0' and '/' becomes '~1', in that order."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _escaped(resource: str) -> str:
    """A resource name as one escaped pointer segment."""
    return pointer(resource)


_key = lru_cache(maxsize=64)(_escaped)
"""_escaped once per resource name and process (the names come from the config), not twice
per Pod; cached by assignment, so a mutation run reaches the function itself."""


def scan(pod: Mapping[str, Any], source: str, held: Held) -> Scan:
    """Every container holding `source`, checked: a whole count in each section, and
    nothing of the back-end's output already there. A container is converted whole or not
    at all, so its requests keep equal to its limits (Kubernetes requires that for
    extended resources)."""
    holdings: list[Holding] = []
    warnings: list[str] = []
    already = False
    most = 0
    spec = pod.get("spec")
    if not isinstance(spec, dict):
        return Scan((), (), False)
    for list_name in CONTAINER_LISTS:
        containers = spec.get(list_name)
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            resources = container.get("resources") if isinstance(container, dict) else None
            if not isinstance(resources, dict):
                continue
            has = held(resources)
            counts: list[tuple[str, int | None]] = []
            gpus, broken = 0, False
            for section in SECTIONS:
                found = resources.get(section)
                if isinstance(found, dict) and source in found:
                    count = whole_count(found[source])
                    counts.append((section, count))
                    broken = broken or count is None
                    gpus = max(gpus, count or 0)
            if not counts:
                already = already or has is not None
                continue
            if gpus > most:
                most = gpus
            if has is not None or broken:
                problem = _problem(container, resources, counts, source, has)
                if problem:
                    warnings.append(problem)
                continue  # without a problem: a zero count, no GPU asked for
            holdings.append(Holding(
                list_name, index, container, cast(tuple[tuple[str, int], ...], tuple(counts)),
                gpus, list_name == INIT and container.get("restartPolicy") == "Always",
                f"/spec/{list_name}/{index}/resources/"))
    return Scan(tuple(holdings), tuple(warnings), already, most)


def _resource_held(name: str, prefix: bool = False) -> Held:
    """A Held for back-ends that write a resource: `name` itself, or with `prefix` any
    resource whose name starts with it (a MIG profile of any size); one per name and
    process, as the names come from the config."""
    def held(resources: dict[str, Any]) -> tuple[str, str] | None:
        for section in SECTIONS:
            found = resources.get(section)
            if not isinstance(found, dict):
                continue
            if not prefix:
                if name in found:  # the hot path: one hash lookup
                    return name, section
                continue
            owned = next((key for key in found if key.startswith(name)), None)
            if owned is not None:
                return owned, section
        return None
    return held


resource_held = lru_cache(maxsize=16)(_resource_held)
"""One Held per name and process, cached by assignment (a mutation run reaches the
function itself)."""


def rewrite_resources(pod: Mapping[str, Any], source: str, target: str, per_gpu: int,
                      held: Held) -> Rewrite:
    """Replace `source` with `target` x per_gpu in every convertible container's limits
    and requests."""
    found = scan(pod, source, held)
    ops: list[PatchOp] = []
    source_key, target_key = _key(source), _key(target)
    for holding in found.holdings:
        prefix = holding.resources_path
        for section, count in holding.counts:
            ops += ({"op": "remove", "path": prefix + section + source_key},
                    {"op": "add", "path": prefix + section + target_key,
                     "value": str(scaled(count, per_gpu))})
    return Rewrite(tuple(ops), found.holdings, found.warnings, found.already_sliced,
                   found.most)


_SLICED_PATH = pointer("metadata", "annotations", SLICED)


def annotate(pod: Mapping[str, Any], text: str) -> PatchOp:
    """The op that records `text` under castops.io/sliced, creating annotations if absent."""
    metadata = pod.get("metadata")
    if not isinstance(metadata, dict):
        return {"op": "add", "path": "/metadata", "value": {"annotations": {SLICED: text}}}
    if not isinstance(metadata.get("annotations"), dict):
        return {"op": "add", "path": "/metadata/annotations", "value": {SLICED: text}}
    return {"op": "add", "path": _SLICED_PATH, "value": text}


def _problem(container: dict[str, Any], resources: dict[str, Any],
             counts: list[tuple[str, int | None]], source: str,
             has: tuple[str, str] | None) -> str | None:
    """Why a container holding `source` is left unchanged; None for a plain zero count."""
    if has is not None:
        name, section = has
        where = section if any(s == section for s, _ in counts) else "its resources"
        return short(f"container {show(container.get('name'), 40)} has both {source} and "
                     f"{name} in {where}; left unchanged")
    for section, count in counts:
        value = resources[section][source]
        if count is None and parse_quantity(value) != 0:
            return short(f"container {show(container.get('name'), 40)} {section} "
                         f"{source}={show(value)} is not a whole number; left unchanged")
    return None
