"""Secret-bearing fields out before anything leaves the process; the decision unchanged.

Env values are always replaced (valueFrom references stay: they name, not hold, secrets);
args and command on request; annotations by glob, never CastSlice's own, so a redacted
event replays to the same decision. Any field may hold any JSON type (the API server
answered such a Pod too): what is not of the expected type is left as it is.
"""

import copy
from collections.abc import Collection
from fnmatch import fnmatchcase
from typing import Any

from castslice.functions.patch import CONTAINER_LISTS
from castslice.functions.reviews import mapping, metadata_of

REDACTED = "<redacted>"


def redact(review: Any, fields: Collection[str], annotations: Collection[str]) -> Any:
    """A redacted deep copy of `review`; `fields` may hold "args" and "command"."""
    review = copy.deepcopy(review)
    pod = mapping(review).get("request")
    pod = mapping(pod).get("object")
    if not isinstance(pod, dict):
        return review
    spec = mapping(pod.get("spec"))
    for list_name in CONTAINER_LISTS:
        for container in _list(spec.get(list_name)):
            if isinstance(container, dict):
                _container(container, fields)
    found = metadata_of(pod).get("annotations")
    if isinstance(found, dict):
        for key in found:
            if not key.startswith("castops.io/") and any(
                fnmatchcase(key.lower(), pattern) for pattern in annotations
            ):
                found[key] = REDACTED
    return review


def _container(container: dict[str, Any], fields: Collection[str]) -> None:
    for variable in _list(container.get("env")):
        if isinstance(variable, dict) and "value" in variable:
            variable["value"] = REDACTED
    for field in ("args", "command"):
        if field in fields and isinstance(container.get(field), list):
            container[field] = [REDACTED for _ in container[field]]


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
