"""CastSlice registered with a real API server as its webhook: `castslice serve` processes
behind the MutatingWebhookConfiguration of `deploy/castslice.yaml`, only `clientConfig`
pointed at them (url + caBundle), as ../shared/envtest/README.md describes."""

import base64
import copy
import json
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import yaml

from tests.envtest import ControlPlane
from tests.served import Served, serve

ROOT = Path(__file__).resolve().parent.parent
ROUTE = "castslice.test/server"
"""The Pod label that routes a test Pod to the server of its configuration."""
SOURCE = "nvidia.com/gpu"
_ADMISSIONS = re.compile(r"^castslice_admissions_total\{[^}]*\} ([0-9.e+]+)$", re.M)


def shipped_webhook(path: Path = ROOT / "deploy" / "castslice.yaml") -> dict[str, Any]:
    """The MutatingWebhookConfiguration an install applies."""
    found = [d for d in yaml.safe_load_all(path.read_text())
             if d and d.get("kind") == "MutatingWebhookConfiguration"]
    assert len(found) == 1, path
    return found[0]


def pointed_at(webhook: Mapping[str, Any], name: str, url: str, ca_pem: bytes,
               object_selector: dict[str, Any] | None = None) -> dict[str, Any]:
    """The same configuration calling `url` with the test CA, everything else as shipped."""
    configured = copy.deepcopy(dict(webhook))
    configured["metadata"] = {"name": name}
    for hook in configured["webhooks"]:
        hook["clientConfig"] = {"url": url, "caBundle": base64.b64encode(ca_pem).decode()}
        if object_selector is not None:
            hook["objectSelector"] = object_selector
    return configured


def admissions(served: Served) -> int:
    """How many admissions the server answered, from its own metric."""
    status, body = served.request("GET", "/metrics")
    assert status == 200
    return int(sum(float(v) for v in _ADMISSIONS.findall(body.decode())))


def sent(pod: Mapping[str, Any], source: str = SOURCE) -> bool:
    """Whether the shipped matchConditions send this Pod: a container or init container with
    the source in its limits, or CastSlice's own annotation, and not opted out. The tests'
    reading of the CEL; the API server judges (tests/test_apiserver_match.py)."""
    spec = pod.get("spec", {})
    annotations = pod["metadata"].get("annotations", {})
    asks = any(source in (c.get("resources") or {}).get("limits", {})
               for c in [*spec.get("containers", []), *spec.get("initContainers", [])])
    return (asks or "castops.io/sliced" in annotations) and annotations.get(
        "castops.io/optimize") != "false"


def probe_pod(namespace: str, route: str, gpus: str = "1",
              resource: str = "nvidia.com/gpu") -> dict[str, Any]:
    """A small GPU Pod opted in by annotation, routed to one server."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "probe-", "namespace": namespace,
                         "labels": {ROUTE: route},
                         "annotations": {"castops.io/optimize": "true"}},
            "spec": {"containers": [{"name": "main", "image": "registry.example/app:1",
                                     "resources": {"limits": {resource: gpus}}}]}}


def create(kube: ControlPlane, pod: Mapping[str, Any],
           *extra: str) -> tuple[dict[str, Any] | None, str]:
    """`kubectl create -o json`: the Pod as the server stored it (None if refused), and
    what kubectl printed on stderr (admission warnings, refusals)."""
    done = kube.kubectl("create", "-o", "json", "-f", "-", *extra, stdin=json.dumps(pod),
                        check=False)
    return (json.loads(done.stdout) if done.returncode == 0 else None), done.stderr


class Webhooks:
    """One `castslice serve` per configuration, each its own webhook configuration that
    selects the Pods labelled with its route; started on first use, stopped at the end."""

    def __init__(self, kube: ControlPlane, tmp: Path, webhook: Mapping[str, Any],
                 prefix: str = "castslice-test") -> None:
        """`prefix` names the configurations and routes, so two registries never meet."""
        self.kube, self.tmp, self.webhook, self.prefix = kube, tmp, webhook, prefix
        self.servers: dict[str, tuple[str, Served]] = {}
        self.stack = ExitStack()

    def route(self, env: Mapping[str, str]) -> tuple[str, Served]:
        """The route label and the server for `env`, registered and answering."""
        key = json.dumps(dict(env), sort_keys=True)
        if key not in self.servers:
            route = f"{self.prefix}-{len(self.servers)}"
            served = self.stack.enter_context(
                serve(self.tmp / route, dict(env), workers=1))
            assert served.ca is not None
            self.kube.apply([pointed_at(
                self.webhook, route, f"https://127.0.0.1:{served.port}/mutate",
                served.ca.cert_pem.bytes(), {"matchLabels": {ROUTE: route}})])
            self._wait_called(route, served, env.get("CASTSLICE_SOURCE_RESOURCE", SOURCE))
            self.servers[key] = (route, served)
        return self.servers[key]

    def _wait_called(self, route: str, served: Served, resource: str,
                     deadline: float = 20) -> None:
        """The API server picks a new configuration up from its informer: dry-run creations
        until this server is called."""
        before, end = admissions(served), time.monotonic() + deadline
        while time.monotonic() < end:
            create(self.kube, probe_pod("default", route, resource=resource), "--dry-run=server")
            if admissions(served) > before:
                return
            time.sleep(0.2)
        raise AssertionError(f"the API server never called server {route}")

    def close(self) -> None:
        """Stop the servers; their configurations go with the control plane."""
        self.stack.close()


def fresh(kube: ControlPlane, tmp: Path, prefix: str = "castslice-test") -> Iterator[Webhooks]:
    """A Webhooks registry, closed after use (for fixtures)."""
    registry = Webhooks(kube, tmp, shipped_webhook(), prefix)
    try:
        yield registry
    finally:
        registry.close()
