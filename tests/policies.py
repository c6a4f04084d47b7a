"""CastSlice's printed admission policies on a real API server: `castslice policy`'s output for
a configuration, each object renamed for its route and bound only to the Pods labelled with
it, so several configurations (and the webhook registry) share one API server."""

import copy
import io
import json
import time
from collections.abc import Mapping
from contextlib import redirect_stdout
from typing import Any

import yaml

from castslice.cli import main
from castslice.functions.decide import decide
from castslice.settings.config import policy_from_env
from tests.envtest import ControlPlane
from tests.webhooks import ROUTE, create, probe_pod


def printed(env: Mapping[str, str]) -> list[dict[str, Any]]:
    """What `castslice policy` prints under `env`, parsed."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["policy"], dict(env))
    assert code == 0, out.getvalue()
    return list(yaml.safe_load_all(out.getvalue()))


def routed(objects: list[dict[str, Any]], route: str) -> list[dict[str, Any]]:
    """The objects renamed for `route`, each binding selecting only the Pods of that route."""
    found = copy.deepcopy(objects)
    for item in found:
        item["metadata"]["name"] = f"{item['metadata']['name']}-{route}"
        spec = item["spec"]
        if item["kind"].endswith("Binding"):
            spec["policyName"] = f"{spec['policyName']}-{route}"
            spec["matchResources"] = {"objectSelector": {"matchLabels": {ROUTE: route}}}
    return found


class Policies:
    """One printed policy set per configuration, applied on first use and waited for."""

    def __init__(self, kube: ControlPlane, prefix: str = "castslice-policy") -> None:
        self.kube, self.prefix = kube, prefix
        self.routes: dict[str, str] = {}

    def route(self, env: Mapping[str, str]) -> str:
        """The route label for `env`'s policies, applied and in force."""
        key = json.dumps(dict(env), sort_keys=True)
        if key not in self.routes:
            route = f"{self.prefix}-{len(self.routes)}"
            self.kube.apply(routed(printed(env), route))
            self._wait_in_force(route, env)
            self.routes[key] = route
        return self.routes[key]

    def _wait_in_force(self, route: str, env: Mapping[str, str], deadline: float = 30) -> None:
        """The API server compiles new policies from its informer: dry-run creations of
        probe Pods until the warnings policy warns of an odd optimize value and the mutation
        converts what the webhook would convert."""
        end = time.monotonic() + deadline
        pod = probe_pod("default", route, resource=env.get("CASTSLICE_SOURCE_RESOURCE",
                                                           "nvidia.com/gpu"))
        converts = decide({"kind": {"group": "", "version": "v1", "kind": "Pod"},
                           "operation": "CREATE", "namespace": "default", "object": pod,
                           "uid": "probe"}, policy_from_env(env)).outcome == "mutated"
        odd = copy.deepcopy(pod)
        odd["metadata"]["annotations"]["castops.io/optimize"] = "odd"
        invalid = copy.deepcopy(pod)
        invalid["metadata"]["annotations"]["castops.io/slice-ratio"] = "0"
        refuses = env.get("CASTSLICE_ON_INVALID") == "deny"
        while time.monotonic() < end:
            _, said = create(self.kube, odd, "--dry-run=server")
            stored, _ = create(self.kube, pod, "--dry-run=server")
            sliced = "castops.io/sliced" in (stored or {}).get("metadata", {}).get(
                "annotations", {})
            refused = create(self.kube, invalid, "--dry-run=server")[0] is None
            if 'castops.io/optimize="odd" ignored' in said and (sliced, refused) == (
                    converts, refuses):
                return
            time.sleep(0.2)
        raise AssertionError(f"the policies of {route} never answered")
