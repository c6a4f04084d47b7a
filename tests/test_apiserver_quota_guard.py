"""The quota guard (SPEC §9, tenancy) on a real API server with the ResourceQuota plugin and
kube-controller-manager: with the guard each install ships and nobody running `castslice
quotas`, opting in never lifts a namespace past its GPU quota, under the webhook and under
the policy engine; where no quota limits GPUs, or the quota counts what Pods convert to,
Pods convert as before."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.envtest import ControlPlane
from tests.policies import Policies, routed
from tests.webhooks import Webhooks, create, fresh, probe_pod

ROOT = Path(__file__).resolve().parent.parent
ENV = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared", "CASTSLICE_SLICES_PER_GPU": "8"}
SHIPPED_GUARD = [d for d in yaml.safe_load_all((ROOT / "deploy" / "castslice.yaml").read_text())
                 if d and d["metadata"]["name"] == "castslice-quota-guard"]


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    kube.start_controllers()
    yield from fresh(kube, tmp_path_factory.mktemp("guard-webhooks"), prefix="castslice-guarded")


@pytest.fixture(scope="module")
def policies(kube: ControlPlane) -> Policies:
    kube.start_controllers()
    return Policies(kube, prefix="castslice-guarded-policy")


def _guarded_webhook(kube: ControlPlane, webhooks: Webhooks, env: dict[str, str]) -> str:
    """The webhook for `env`, with the quota guard of deploy/castslice.yaml as shipped (only
    renamed and bound to the route)."""
    route, _ = webhooks.route(env)
    kube.apply(routed(SHIPPED_GUARD, route))
    return route


def _namespace(kube: ControlPlane, hard: dict[str, str] | None) -> str:
    """A namespace with a quota `gpu` of `hard`, enforced; none when `hard` is None."""
    namespace = kube.namespace("guard")
    if hard is None:
        return namespace
    kube.apply([{"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "gpu", "namespace": namespace}, "spec": {"hard": hard}}])
    end = time.monotonic() + 30
    while kube.get("resourcequota", "gpu", "-n", namespace).get("status", {}).get(
            "hard") != hard:
        assert time.monotonic() < end, kube.logs()
        time.sleep(0.2)
    return namespace


def _opted(namespace: str, route: str, **annotations: str) -> dict[str, Any]:
    pod = probe_pod(namespace, route)
    pod["metadata"]["annotations"].update({"castops.io/workload-type": "inference",
                                           **annotations})
    return pod


def _until_refused(kube: ControlPlane, pod: dict[str, Any],
                   most: int = 12) -> tuple[list[dict[str, Any]], list[str]]:
    """Create copies until one is refused: the Pods stored, and what each creation said."""
    stored, said = [], []
    for _ in range(most):
        found, text = create(kube, pod)
        said.append(text)
        if found is None:
            break
        stored.append(found)
    return stored, said


def _held(kube: ControlPlane, namespace: str) -> float:
    """GPUs the namespace holds as its quota counts them plus what escapes it: whole GPUs
    plus shared units / 8, read from the stored Pods."""
    pods = kube.get("pods", "-n", namespace)["items"]
    limits = [c["resources"].get("limits", {}) for p in pods for c in p["spec"]["containers"]]
    return sum(int(x.get("nvidia.com/gpu", 0)) + int(x.get("nvidia.com/gpu.shared", 0)) / 8
               for x in limits)


def _wait(route_ready: Any) -> None:
    """The guard is compiled by the API server from its informer: give it a moment."""
    time.sleep(2)


def test_the_webhook_with_the_shipped_guard_keeps_a_namespace_within_its_gpu_quota(
        kube, webhooks):
    route = _guarded_webhook(kube, webhooks, ENV)
    namespace = _namespace(kube, {"requests.nvidia.com/gpu": "2"})
    _wait(route)
    stored, said = _until_refused(kube, _opted(namespace, route))
    assert len(stored) == 2 and "exceeded quota" in said[-1], said
    assert all(p["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
               for p in stored)
    assert stored[0]["metadata"]["annotations"]["castops.io/quota-guard"] == (
        "gpu=requests.nvidia.com/gpu")
    assert ("Warning: ResourceQuota gpu limits nvidia.com/gpu and would not count this Pod "
            "converted; left whole (see castslice quotas)") in said[0]
    assert _held(kube, namespace) == 2


def test_without_a_gpu_quota_or_with_one_counting_the_target_pods_convert(kube, webhooks):
    route = _guarded_webhook(kube, webhooks, ENV)
    _wait(route)
    for hard in (None, {"pods": "10"}, {"requests.nvidia.com/gpu": "1",
                                        "requests.nvidia.com/gpu.shared": "8"}):
        namespace = _namespace(kube, hard)
        stored, said = create(kube, _opted(namespace, route))
        assert stored is not None, said
        assert stored["spec"]["containers"][0]["resources"]["limits"] == {
            "nvidia.com/gpu.shared": "2"}, (hard, said)


def test_the_guard_refuses_instead_when_asked(kube, webhooks):
    route = _guarded_webhook(kube, webhooks, {**ENV, "CASTSLICE_ON_QUOTA_ESCAPE": "deny"})
    namespace = _namespace(kube, {"requests.nvidia.com/gpu": "4"})
    _wait(route)
    stored, said = create(kube, _opted(namespace, route))
    assert stored is None
    assert "ResourceQuota gpu limits nvidia.com/gpu and would not count this Pod converted" in said


def test_under_mig_a_profile_the_quota_counts_converts_and_one_it_does_not_stays_whole(
        kube, webhooks):
    env = {"CASTSLICE_BACKEND": "mig"}
    route = _guarded_webhook(kube, webhooks, env)
    namespace = _namespace(kube, {"requests.nvidia.com/gpu": "4",
                                  "requests.nvidia.com/mig-1g.5gb": "7"})
    _wait(route)
    small, said = create(kube, _opted(namespace, route, **{"castops.io/slice-ratio": "1"}))
    assert small["spec"]["containers"][0]["resources"]["limits"] == {
        "nvidia.com/mig-1g.5gb": "1"}, said
    large, said = create(kube, _opted(namespace, route, **{"castops.io/slice-ratio": "3"}))
    assert large["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}, said


def test_the_policy_engine_with_its_guard_never_lets_a_namespace_past_its_quota(kube, policies):
    """MutatingAdmissionPolicies run in no fixed order: the guard may run after the
    conversion, and the backstop then refuses the Pod. Either way nothing escapes."""
    route = policies.route(ENV)
    namespace = _namespace(kube, {"requests.nvidia.com/gpu": "2"})
    _wait(route)
    outcomes = []
    for _ in range(8):
        stored, said = create(kube, _opted(namespace, route))
        outcomes.append("refused" if stored is None else json.dumps(
            stored["spec"]["containers"][0]["resources"]["limits"]))
    assert '{"nvidia.com/gpu.shared": "2"}' not in outcomes, outcomes
    assert _held(kube, namespace) <= 2
    free = _namespace(kube, None)
    stored, said = create(kube, _opted(free, route))
    assert stored["spec"]["containers"][0]["resources"]["limits"] == {
        "nvidia.com/gpu.shared": "2"}, said
