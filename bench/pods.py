"""Benchmark bodies: small, typical and large Pod AdmissionReviews, shaped like real ones."""

import copy
from pathlib import Path
from typing import Any

import orjson

TYPICAL_CASE = Path(__file__).parent.parent / "events" / "optimize-inference-two-containers.json"


def typical() -> dict[str, Any]:
    """A golden event's request, two GPU containers with probes, env and volumes, plus the
    managedFields a controller writes for every field it set (~9 KB, as the API server sends)."""
    review: dict[str, Any] = orjson.loads(TYPICAL_CASE.read_bytes())["request"]
    pod = review["request"]["object"]
    pod["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"] = _fields(pod["spec"])
    return review


def _fields(value: Any) -> Any:
    """The FieldsV1 shape of `value`: every key as "f:key", lists keyed by name."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v) for k, v in value.items()} | {".": {}}
    if isinstance(value, list):
        return {f'k:{{"name":"{i.get("name", n)}"}}' if isinstance(i, dict) else f"v:{n}":
                _fields(i) for n, i in enumerate(value)}
    return {}


def small() -> dict[str, Any]:
    """One lean container, no probes or env (~3 KB)."""
    review = typical()
    spec = review["request"]["object"]["spec"]
    container = spec["containers"][0]
    for key in ("env", "livenessProbe", "readinessProbe", "args", "ports"):
        container.pop(key, None)
    spec["containers"] = [container]
    review["request"]["object"]["metadata"].pop("managedFields", None)
    return review


def large(containers: int = 40) -> dict[str, Any]:
    """Forty GPU containers (~60 KB): the worst case a batch system sends."""
    review = typical()
    spec = review["request"]["object"]["spec"]
    template = spec["containers"][0]
    spec["containers"] = []
    for i in range(containers):
        container = copy.deepcopy(template)
        container["name"] = f"worker-{i}"
        spec["containers"].append(container)
    return review


BODIES = {"small": small, "typical": typical, "large": large}
