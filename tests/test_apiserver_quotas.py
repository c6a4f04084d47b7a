"""Opting in never lifts a namespace past its GPU quota (the envtest tier, with the
ResourceQuota admission plugin as Kubernetes ships it and kube-controller-manager filling
the quota's status): the escape reproduced, then closed by what `castslice quotas` prints."""

import json
import time
from collections.abc import Iterator

import pytest

from castslice.cli import main
from tests.envtest import ControlPlane
from tests.webhooks import Webhooks, create, fresh, probe_pod

ENV = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared", "CASTSLICE_SLICES_PER_GPU": "8"}
OTHER_LIMITS = {"pods": "40", "count/configmaps": "7"}


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    kube.start_controllers()
    yield from fresh(kube, tmp_path_factory.mktemp("quota-webhooks"))


def _team(kube: ControlPlane, gpus: int = 2) -> str:
    """A namespace with a quota of `gpus` whole GPUs, enforced (status.hard set)."""
    namespace = kube.namespace("team")
    kube.apply([{"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "gpu", "namespace": namespace,
                              "labels": {"team": namespace}, "annotations": {"owner": "platform"}},
                 "spec": {"hard": {"requests.nvidia.com/gpu": str(gpus), **OTHER_LIMITS}}}])
    _wait_enforced(kube, namespace)
    return namespace


def _wait_enforced(kube: ControlPlane, namespace: str, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        quota = kube.get("resourcequota", "gpu", "-n", namespace)
        if quota.get("status", {}).get("hard") == quota["spec"]["hard"]:
            return
        time.sleep(0.2)
    raise AssertionError(f"quota in {namespace} not enforced:\n{kube.logs()}")


def _fill(kube: ControlPlane, pod: dict, most: int = 20) -> tuple[int, str]:
    """Create copies of `pod` until the server refuses one: how many it admitted, and why
    it refused the next."""
    for admitted in range(most):
        stored, said = create(kube, pod)
        if stored is None:
            return admitted, said
    return most, ""


def _plain(namespace: str) -> dict:
    pod = probe_pod(namespace, "none")
    pod["metadata"]["annotations"] = {}
    return pod


def _doctor(kube: ControlPlane, namespace: str, capsys) -> tuple[int, list[str]]:
    code = main(["doctor", "--kubeconfig", str(kube.kubeconfig), "-n", namespace], ENV)
    return code, [line for line in capsys.readouterr().out.splitlines() if "ResourceQuota" in line]


def test_opting_in_escapes_a_gpu_quota_that_lists_only_whole_gpus(kube, webhooks, capsys):
    route, _ = webhooks.route(ENV)
    namespace = _team(kube)
    admitted, said = _fill(kube, _plain(namespace))
    assert (admitted, "exceeded quota" in said) == (2, True)
    inference = probe_pod(namespace, route)
    inference["metadata"]["annotations"]["castops.io/workload-type"] = "inference"
    escaped, _ = _fill(kube, inference, most=12)
    assert escaped == 12  # 24 units, 3 GPUs of time-slicing past a full quota of 2
    code, lines = _doctor(kube, namespace, capsys)
    assert code == 1
    assert lines == [
        f"problem: namespace {namespace}: ResourceQuota gpu limits requests.nvidia.com/gpu to 2 "
        "but not requests.nvidia.com/gpu.shared: opted-in Pods there stay whole (the quota "
        "guard) or, without the guard, hold GPUs outside the quota (castslice quotas -n "
        f"{namespace} --shared-gpus K | kubectl apply -f -)"]


def test_the_printed_split_keeps_whole_and_converted_gpus_within_the_quota(kube, webhooks,
                                                                          capsys):
    route, _ = webhooks.route(ENV)
    namespace = _team(kube)
    assert main(["quotas", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                 "--shared-gpus", "1"], ENV) == 0
    kube.apply(capsys.readouterr().out)
    _wait_enforced(kube, namespace)
    quota = kube.get("resourcequota", "gpu", "-n", namespace)
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": "1",
                                     "requests.nvidia.com/gpu.shared": "8", **OTHER_LIMITS}
    assert (quota["metadata"]["labels"], quota["metadata"]["annotations"]["owner"]) == (
        {"team": namespace}, "platform")
    whole, _ = _fill(kube, _plain(namespace))
    inference = probe_pod(namespace, route)
    inference["metadata"]["annotations"]["castops.io/workload-type"] = "inference"
    converted, said = _fill(kube, inference)
    assert "exceeded quota" in said
    used = kube.get("resourcequota", "gpu", "-n", namespace)["status"]["used"]
    held = int(used["requests.nvidia.com/gpu"]) + int(used["requests.nvidia.com/gpu.shared"]) / 8
    assert (whole, converted, held) == (1, 4, 2.0)  # at least one of each; never past 2 GPUs
    _, lines = _doctor(kube, namespace, capsys)  # (exit 1 all the same: no Node serves units)
    assert lines == [f"ok: namespace {namespace}: ResourceQuota gpu bounds "
                     "requests.nvidia.com/gpu.shared beside requests.nvidia.com/gpu"]


def test_a_quota_kubernetes_never_counts_is_named(kube, capsys):
    """`nvidia.com/gpu` without `requests.` is accepted and never counted (no status.used)."""
    namespace = kube.namespace("bare")
    kube.apply([{"apiVersion": "v1", "kind": "ResourceQuota",
                 "metadata": {"name": "gpu", "namespace": namespace},
                 "spec": {"hard": {"nvidia.com/gpu": "2"}}}])
    code, lines = _doctor(kube, namespace, capsys)
    assert code == 1 and "which Kubernetes never counts" in lines[0], lines
    assert json.dumps(kube.get("resourcequota", "gpu", "-n", namespace).get("status", {})) \
        .find("used") == -1


MIG = {"CASTSLICE_BACKEND": "mig"}


def test_under_mig_each_profile_is_bounded_alone(kube, webhooks, capsys):
    """Each profile is its own resource, counted by quota: the split bounds each by what K
    cards hold (7 of 1g.5gb per A100), not together (the comment says how far)."""
    route, _ = webhooks.route(MIG)
    namespace = _team(kube)
    assert main(["quotas", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                 "--shared-gpus", "1"], MIG) == 0
    printed = capsys.readouterr().out
    assert "can fill up to 6 cards" in printed
    kube.apply(printed)
    _wait_enforced(kube, namespace)
    dev = probe_pod(namespace, route)
    dev["metadata"]["annotations"]["castops.io/workload-type"] = "dev"
    converted, said = _fill(kube, dev)
    assert (converted, "exceeded quota" in said) == (7, True)
    used = kube.get("resourcequota", "gpu", "-n", namespace)["status"]["used"]
    assert used["requests.nvidia.com/mig-1g.5gb"] == "7"


def test_under_dra_claims_are_counted_as_devices_of_their_class(kube, webhooks, capsys):
    """Measured: a claim from a shares template counts one device of gpu.nvidia.com,
    whatever its shares; the claim controller is refused past the quota, the Pod waits."""
    env = {"CASTSLICE_BACKEND": "dra", "CASTSLICE_DRA_DEVICES": "shares",
           "CASTSLICE_SLICES_PER_GPU": "4"}
    route, _ = webhooks.route(env)
    namespace = _team(kube)
    assert main(["dra-templates", "-n", namespace], env) == 0
    kube.apply(capsys.readouterr().out)
    assert main(["quotas", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                 "--shared-gpus", "1"], env) == 0
    kube.apply(capsys.readouterr().out)
    _wait_enforced(kube, namespace)
    for _ in range(6):
        stored, said = create(kube, probe_pod(namespace, route))
        assert stored is not None and stored["spec"].get("resourceClaims"), said
    end = time.monotonic() + 30
    while time.monotonic() < end and len(kube.get("resourceclaims", "-n", namespace)[
            "items"]) < 4:
        time.sleep(0.5)
    time.sleep(2)  # the controller retries the refused ones
    claims = kube.get("resourceclaims", "-n", namespace)["items"]
    used = kube.get("resourcequota", "gpu", "-n", namespace)["status"]["used"]
    assert (len(claims), used["gpu.nvidia.com.deviceclass.resource.k8s.io/devices"]) == (4, "4")


def test_under_dra_a_class_with_the_source_as_extended_resource_counts_every_claim(
        kube, webhooks, capsys):
    """NVIDIA's driver chart gives gpu.nvidia.com extendedResourceName nvidia.com/gpu: every
    claim of it is charged requests.nvidia.com/gpu too (DRAExtendedResource, on in 1.36), so
    a quota of whole GPUs holds: doctor says so and `quotas` leaves it alone."""
    env = {"CASTSLICE_BACKEND": "dra", "CASTSLICE_DRA_DEVICES": "shares",
           "CASTSLICE_SLICES_PER_GPU": "4"}
    gpu_class = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass",
                 "metadata": {"name": "gpu.nvidia.com"},
                 "spec": {"selectors": [{"cel": {
                     "expression": "device.driver == 'gpu.nvidia.com'"}}],
                     "extendedResourceName": "nvidia.com/gpu"}}
    kube.apply([gpu_class])
    try:
        route, _ = webhooks.route(env)
        namespace = _team(kube)
        assert main(["dra-templates", "-n", namespace], env) == 0
        kube.apply(capsys.readouterr().out)
        for _ in range(4):
            stored, said = create(kube, probe_pod(namespace, route))
            assert stored is not None and stored["spec"].get("resourceClaims"), said
        time.sleep(4)  # the claim controller makes claims; quota refuses past 2
        claims = kube.get("resourceclaims", "-n", namespace)["items"]
        used = kube.get("resourcequota", "gpu", "-n", namespace)["status"]["used"]
        assert (len(claims), used["requests.nvidia.com/gpu"]) == (2, "2")
        code = main(["doctor", "--kubeconfig", str(kube.kubeconfig), "-n", namespace], env)
        lines = [line for line in capsys.readouterr().out.splitlines() if "ResourceQuota" in line]
        assert lines == [f"ok: namespace {namespace}: ResourceQuota gpu limits "
                         "requests.nvidia.com/gpu, and claims of DeviceClass gpu.nvidia.com are "
                         "charged it too (extendedResourceName): nothing escapes"], (code, lines)
        assert main(["quotas", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                     "--shared-gpus", "1"], env) == 0
        out, err = capsys.readouterr()
        assert out == "" and "counts every claim already (DeviceClass gpu.nvidia.com" in err
    finally:
        kube.kubectl("delete", "deviceclass", "gpu.nvidia.com")
