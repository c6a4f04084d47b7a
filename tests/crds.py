"""Custom resources checked as the API server checks them: against their CRD's schema, with
unknown fields refused as `kubectl apply --validate=strict` refuses them."""

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRDS = Path(__file__).parent / "data" / "crds"


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema from a structural schema: objects with known properties close unless
    the CRD preserves unknown fields there."""
    out = {key: value for key, value in schema.items() if not key.startswith("x-kubernetes-")}
    if "properties" in schema:
        out["properties"] = {name: _strict(sub) for name, sub in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            out.setdefault("additionalProperties", False)
    if isinstance(schema.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(schema["additionalProperties"])
    if "items" in schema:
        out["items"] = _strict(schema["items"])
    return out


@cache
def _schemas() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())["spec"]
        for version in crd["versions"]:
            api_version = f"{crd['group']}/{version['name']}"
            found[api_version, crd["names"]["kind"]] = _strict(
                version["schema"]["openAPIV3Schema"])
    return found


def knows(document: dict[str, Any]) -> bool:
    return (document.get("apiVersion"), document.get("kind")) in _schemas()


def validate(document: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError naming the first field the CRD refuses."""
    jsonschema.validate(document, _schemas()[document["apiVersion"], document["kind"]])
