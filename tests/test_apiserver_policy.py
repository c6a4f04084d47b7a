"""The two engines decide the same (SPEC §7a): every golden Pod creation, sent through a real
kube-apiserver v1.36 once to the webhook and once to only the policies `castslice policy`
prints for the same configuration, is stored identically (limits, requests and claims of
every container, the Pod's claims, castops.io/sliced), refused by both or neither, and warned
about by both or neither."""

import copy
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from castslice.cli import main
from castslice.settings.envfile import read_env_file
from tests.envtest import ControlPlane
from tests.policies import Policies, printed, routed
from tests.test_apiserver_webhook import REFUSED_BY_KUBERNETES, SENT, _resources, case_pod
from tests.webhooks import ROUTE, Webhooks, create, fresh, probe_pod

ROOT = Path(__file__).resolve().parent.parent

_WARNING = re.compile(r"^Warning: (.*)$", re.M)
_POLICY_PREFIX = re.compile(r"^Validation failed for ValidatingAdmissionPolicy '[^']+' with "
                            r"binding '[^']+': ")


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    yield from fresh(kube, tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def policies(kube: ControlPlane) -> Policies:
    return Policies(kube)


def _created(kube: ControlPlane, case, route: str) -> tuple[dict | None, str, list[str]]:
    """The case's Pod created under `route`: as stored, what kubectl said, the warnings."""
    stored, said = create(kube, case_pod(kube, case, route))
    warnings = [_POLICY_PREFIX.sub("", w) for w in _WARNING.findall(said)]
    return stored, said, warnings


@pytest.mark.parametrize("case", SENT, ids=lambda c: c.name)
def test_the_policies_store_what_the_webhook_stores(kube, webhooks, policies, case):
    by_webhook, said_webhook, warned_webhook = _created(kube, case, webhooks.route(case.env)[0])
    by_policy, said_policy, warned_policy = _created(kube, case, policies.route(case.env))
    assert (by_webhook is None) == (by_policy is None), (said_webhook, said_policy)
    if by_webhook is not None:
        assert _resources(by_policy) == _resources(by_webhook)
    if case.name in REFUSED_BY_KUBERNETES:
        # Kubernetes' own validation refuses it before any ValidatingAdmissionPolicy runs,
        # so the policies cannot warn; a webhook's warnings come back with the refusal.
        assert REFUSED_BY_KUBERNETES[case.name] in said_policy, said_policy
        return
    assert bool(warned_policy) == bool(warned_webhook), (warned_webhook, warned_policy)
    for warning in warned_webhook:
        assert warning in "\n".join(warned_policy), (warned_webhook, warned_policy)


RULES = [{"name": f"team-{i}", "namespaces": [f"team-{i}-*", "lab-[a-c]?"],
          "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["batch", "x"]},
                               {"key": f"skip-{i}", "operator": "DoesNotExist"}],
          "sliceRatio": 1 + i % 4} for i in range(30)] + [
    {"name": "gpu-apps", "matchLabels": {"app": "llm"}, "gpuMemory": "9Gi"},
    {"name": "no-batch", "matchExpressions": [{"key": "tier", "operator": "In",
                                               "values": ["batch"]}], "optimize": False}]
CONFIGURATIONS = {
    "many-rules": {"CASTSLICE_RULES": json.dumps(RULES), "CASTSLICE_SLICES_PER_GPU": "8",
                   "CASTSLICE_GPU_MEMORY": "40Gi"},
    "mig-h100": {"CASTSLICE_BACKEND": "mig",
                 "CASTSLICE_MIG_PROFILES": "1g.10gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb"},
    "dra-shares": {"CASTSLICE_BACKEND": "dra", "CASTSLICE_DRA_DEVICES": "shares",
                   "CASTSLICE_SLICES_PER_GPU": "4", "CASTSLICE_GPU_MEMORY": "80Gi"},
    "deny": {"CASTSLICE_ON_INVALID": "deny", "CASTSLICE_EXCLUDE_NAMESPACES": "kube-system,lab-a1"},
}


def _pod(namespace: str, annotations: dict[str, str], labels: dict[str, str],
         containers: int = 1, init: int = 0, gpu: str = "1") -> dict[str, Any]:
    def container(name: str) -> dict[str, Any]:
        return {"name": name, "image": "registry.example/app:1",
                "resources": {"limits": {"nvidia.com/gpu": gpu}}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "p-", "namespace": namespace,
                         "annotations": annotations, "labels": labels},
            "spec": {"containers": [container(f"c{i}") for i in range(containers)],
                     **({"initContainers": [container(f"i{i}") for i in range(init)]}
                        if init else {})}}


ON = {"castops.io/optimize": "true"}
PODS = {  # name: (configuration, Pod): shapes past the golden events, cost included
    "sixty-containers-rule": ("many-rules", _pod("team-7-a", {}, {}, containers=60)),
    "rule-opted-out-by-label": ("many-rules", _pod("team-3-x", {}, {"tier": "batch"})),
    "glob-class-namespace": ("many-rules", _pod("lab-b9", {}, {})),
    "label-memory-rule": ("many-rules", _pod("default", {}, {"app": "llm"})),
    "memory-ask-over-card": ("many-rules", _pod("default", {**ON, "castops.io/gpu-memory":
                                                             "41Gi"}, {})),
    "odd-optimize-on-converted": ("many-rules", {
        **_pod("team-1-a", {"castops.io/optimize": "Yes", "castops.io/sliced": "x"}, {})}),
    "mig-memory-ladder": ("mig-h100", _pod("default", {**ON, "castops.io/gpu-memory": "19Gi"},
                                           {}, init=2)),
    "mig-two-gpus": ("mig-h100", _pod("default", ON, {}, gpu="2")),
    "dra-init-and-containers": ("dra-shares", _pod("default", {**ON, "castops.io/slice-ratio":
                                                               "2"}, {}, containers=3, init=2)),
    "dra-past-the-claim-cap": ("dra-shares", _pod("default", ON, {}, containers=65)),
    "dra-memory": ("dra-shares", _pod("default", {**ON, "castops.io/gpu-memory": "30Gi"}, {})),
    "deny-bad-ratio": ("deny", _pod("default", {**ON, "castops.io/slice-ratio": "0x1",
                                                "castops.io/workload-type": "nope"}, {})),
    "deny-excluded-namespace": ("deny", _pod("lab-a1", {**ON, "castops.io/slice-ratio": "x"}, {})),
}


@pytest.mark.parametrize("name", PODS)
def test_the_policies_store_what_the_webhook_stores_past_the_golden_events(
        kube, webhooks, policies, name):
    configuration, pod = PODS[name]
    env = CONFIGURATIONS[configuration]
    namespace = pod["metadata"]["namespace"]
    kube.ensure_namespace(namespace)
    results = []
    for route in (webhooks.route(env)[0], policies.route(env)):
        labelled = copy.deepcopy(pod)
        labelled["metadata"]["labels"][ROUTE] = route
        stored, said = create(kube, labelled)
        results.append((stored, said, [_POLICY_PREFIX.sub("", w) for w in _WARNING.findall(said)]))
    (by_webhook, said_webhook, warned_webhook), (by_policy, said_policy, warned_policy) = results
    assert (by_webhook is None) == (by_policy is None), (said_webhook, said_policy)
    if by_webhook is not None:
        assert _resources(by_policy) == _resources(by_webhook)
    assert bool(warned_policy) == bool(warned_webhook), (warned_webhook, warned_policy)
    for warning in warned_webhook:
        assert warning in "\n".join(warned_policy), (warned_webhook, warned_policy)


def test_the_printed_policies_type_check_clean_on_the_server(kube, policies):
    for env in CONFIGURATIONS.values():
        route = policies.route(env)
        for kind in ("mutatingadmissionpolicy", "validatingadmissionpolicy"):
            for item in kube.get(kind)["items"]:
                if item["metadata"]["name"].endswith(route):
                    assert not item.get("status", {}).get("typeChecking", {}).get(
                        "expressionWarnings"), item["metadata"]["name"]


def test_the_one_file_install_converts_a_pod_with_no_castslice_running(kube):
    """deploy/castslice-policy.yaml as shipped (only renamed and bound to one route, so it
    leaves other tests' Pods alone): a GPU Pod that opts in is stored converted."""
    shipped = [d for d in yaml.safe_load_all((ROOT / "deploy" / "castslice-policy.yaml")
                                             .read_text()) if d]
    assert shipped == printed(read_env_file(ROOT / "deploy" / "base" / "castslice.env"))
    kube.apply(routed(shipped, "one-file"))
    namespace = kube.namespace("one-file")
    deadline = time.monotonic() + 30
    while True:
        stored, said = create(kube, probe_pod(namespace, "one-file"))
        assert stored is not None, said
        limits = stored["spec"]["containers"][0]["resources"]["limits"]
        if limits == {"nvidia.com/gpu-shared": "1"} or time.monotonic() > deadline:
            break
        time.sleep(0.3)  # the server compiles a new policy from its informer
    assert limits == {"nvidia.com/gpu-shared": "1"}
    assert stored["metadata"]["annotations"]["castops.io/sliced"] == (
        "nvidia.com/gpu x1 -> nvidia.com/gpu-shared x1 (1 per GPU by default; opted in by "
        "castops.io/optimize=true)")


def _engines_as_stored(kube: ControlPlane, route: str) -> list[dict[str, Any]]:
    """The policy objects of one route as the API server stores them (status included)."""
    kinds = ("mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
             "validatingadmissionpolicies")
    return [dict(item, kind=kind_name) for kind, kind_name in zip(kinds, (
        "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding",
        "ValidatingAdmissionPolicy"), strict=True)
        for item in kube.get(kind)["items"] if item["metadata"]["name"].endswith(route)]


def _doctor(documents: list[dict[str, Any]], env: dict[str, str], tmp_path: Path,
            capsys: pytest.CaptureFixture[str]) -> list[str]:
    listed = tmp_path / "cluster.json"
    listed.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": documents}))
    main(["doctor", str(listed)], env)
    return capsys.readouterr().out.splitlines()


def test_doctor_names_the_live_policy_and_one_printed_from_another_configuration(
        kube, policies, tmp_path, capsys):
    stored = _engines_as_stored(kube, policies.route({}))
    lines = _doctor(stored, {}, tmp_path, capsys)
    assert any(line.startswith("ok: the policy engine decides (MutatingAdmissionPolicy "
                               "castslice-castslice-policy") for line in lines), lines
    assert not [line for line in lines if "another configuration" in line], lines
    other = _doctor(stored, {"CASTSLICE_DEFAULT_SLICES": "2"}, tmp_path, capsys)
    assert any(line.startswith("problem: MutatingAdmissionPolicy castslice-castslice-policy")
               and "printed from another configuration" in line for line in other), other


def test_doctor_says_both_engines_are_double_work(kube, policies, tmp_path, capsys):
    webhook = yaml.safe_load_all((ROOT / "deploy" / "castslice.yaml").read_text())
    configuration = next(d for d in webhook if d and d["kind"] == "MutatingWebhookConfiguration")
    lines = _doctor([*_engines_as_stored(kube, policies.route({})), configuration], {},
                    tmp_path, capsys)
    assert any(line.startswith("warning: both engines are live (webhook castslice and policy "
                               "castslice-castslice-policy") for line in lines), lines


def test_doctor_names_a_policy_without_its_binding(tmp_path, capsys):
    mutation = printed({})[0]
    lines = _doctor([mutation], {}, tmp_path, capsys)
    assert "warning: MutatingAdmissionPolicy castslice has no binding: it converts nothing " \
           "(apply castslice policy's whole output)" in lines, lines


def test_doctor_says_whether_the_quota_guard_is_live(kube, policies, tmp_path, capsys):
    stored = _engines_as_stored(kube, policies.route({}))
    assert any(line.startswith("ok: the quota guard is live (MutatingAdmissionPolicy "
                               "castslice-quota-guard-") for line in _doctor(stored, {}, tmp_path,
                                                                             capsys))
    unguarded = [d for d in stored if "quota-guard" not in d["metadata"]["name"]]
    assert any(line.startswith("warning: no quota guard (castslice-quota-guard)")
               for line in _doctor(unguarded, {}, tmp_path, capsys))
