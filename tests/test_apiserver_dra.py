"""`dra-templates` and `doctor` on objects as a real API server stores them (the envtest
tier): defaults filled in, and, with DRAConsumableCapacity off as Kubernetes 1.34-1.35 ship
it, the shares a template asks dropped."""

import json
import subprocess
import sys

import pytest

from castslice.cli import main
from tests.envtest import ControlPlane
from tests.test_dra_objects import resource_slice, shares_slice

MIG = {"CASTSLICE_BACKEND": "dra"}
SHARES = MIG | {"CASTSLICE_DRA_DEVICES": "shares", "CASTSLICE_SLICES_PER_GPU": "4"}
LADDER = ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]


def castslice(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command line as a user runs it, with only the given settings."""
    return subprocess.run([sys.executable, "-m", "castslice", *args], capture_output=True,
                          text=True, timeout=120, env={"PATH": "/usr/bin:/bin", **env})


def applied_templates(kube: ControlPlane, namespace: str, env: dict[str, str]) -> None:
    """`castslice dra-templates -n NS | kubectl apply -f -`, exactly as printed."""
    printed = castslice("dra-templates", "-n", namespace, env=env)
    assert printed.returncode == 0, printed.stderr
    kube.apply(printed.stdout)


def doctor(kube: ControlPlane, namespace: str, env: dict[str, str],
           capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["doctor", "--kubeconfig", str(kube.kubeconfig), "-n", namespace], env)
    return code, capsys.readouterr().out.splitlines()


@pytest.fixture(scope="module")
def devices(kube: ControlPlane) -> ControlPlane:
    """What NVIDIA's DRA driver publishes on two nodes: MIG devices of every profile of the
    ladder, and whole GPUs announcing 4 shares each."""
    kube.apply([resource_slice("mig-node", LADDER), shares_slice("shares-node", 4)])
    return kube


@pytest.mark.parametrize("env", [MIG, SHARES], ids=["mig", "shares"])
def test_doctor_is_clean_for_the_templates_dra_templates_printed(devices, capsys, env):
    namespace = devices.namespace("dra")
    applied_templates(devices, namespace, env)
    stored = devices.get("resourceclaimtemplates", "-n", namespace)["items"]
    request = stored[0]["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert (request["allocationMode"], request["count"]) == ("ExactCount", 1)  # server defaults
    code, lines = doctor(devices, namespace, env, capsys)
    assert code == 0, lines
    assert f"ok: namespace {namespace} has every template" in "\n".join(lines)


def test_doctor_names_a_template_really_edited_on_the_server(devices, capsys):
    namespace = devices.namespace("dra")
    applied_templates(devices, namespace, MIG)
    edited = devices.get("resourceclaimtemplate", "castslice-gpu-2", "-n", namespace)
    edited["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] = 2
    devices.kubectl("replace", "--force", "-f", "-", stdin=json.dumps(edited))  # immutable spec
    code, lines = doctor(devices, namespace, MIG, capsys)
    assert code == 1
    assert (f"problem: namespace {namespace}: ResourceClaimTemplate castslice-gpu-2 differ "
            "from what the configuration claims") in "\n".join(lines)


def test_shares_on_a_server_without_consumable_capacity_are_named_whole_gpus(kube_1_35,
                                                                             capsys):
    kube_1_35.apply([shares_slice("shares-node", 4)])
    namespace = kube_1_35.namespace("dra")
    code, lines = doctor(kube_1_35, namespace, SHARES, capsys)  # before any template exists
    assert code == 1
    assert any("drops the shares a claim asks" in line and "DRAConsumableCapacity" in line
               for line in lines), lines
    applied_templates(kube_1_35, namespace, SHARES)
    stored = kube_1_35.get("resourceclaimtemplates", "-n", namespace)["items"]
    assert all("capacity" not in t["spec"]["spec"]["devices"]["requests"][0]["exactly"]
               for t in stored)  # what the server did with exactly what was printed
    code, lines = doctor(kube_1_35, namespace, SHARES, capsys)
    assert code == 1
    assert [line for line in lines if line.startswith("problem:")] == [
        "problem: the API server drops the shares a claim asks (exactly.capacity): every claim "
        "takes a whole GPU, exclusively; it needs the DRAConsumableCapacity feature gate (alpha "
        "and off in Kubernetes 1.34 and 1.35, beta and on in 1.36) on the API server, scheduler "
        "and kubelet, or CASTSLICE_DRA_DEVICES=mig"]


def test_a_server_that_keeps_capacity_passes_the_dry_run(devices, capsys):
    namespace = devices.namespace("dra")
    code, lines = doctor(devices, namespace, SHARES, capsys)
    assert "ok: the API server keeps the shares a claim asks (a dry run of " \
           "castslice-capacity-probe)" in lines
    assert code == 1  # the templates are still missing
    assert devices.get("resourceclaimtemplates", "-n", namespace)["items"] == []


def test_doctor_reads_mig_memory_as_the_server_stores_the_drivers_slices(devices, capsys):
    namespace = devices.namespace("dra")
    applied_templates(devices, namespace, MIG)
    code, lines = doctor(devices, namespace, MIG, capsys)
    assert code == 0, lines
    assert ("ok: memory asks: MIG devices hold at least what they are granted for (1g.5gb "
            "4.75Gi, 2g.10gb 9.62Gi, 3g.20gb 19.5Gi, 4g.20gb 19.5Gi, 7g.40gb 39.25Gi)") in lines
    smaller = resource_slice("mig-node-2", ["2g.10gb"], memory={"2g.10gb": 9728})
    devices.apply([smaller])
    try:
        code, lines = doctor(devices, namespace, MIG, capsys)
        assert code == 1
        assert ("problem: MIG devices of 2g.10gb hold 9.5Gi, less than the 9.62Gi memory asks "
                "are granted it for; set CASTSLICE_MIG_MEMORY=2g.10gb=9728Mi") in lines
        measured = MIG | {"CASTSLICE_MIG_MEMORY": "2g.10gb=9728Mi"}
        code, lines = doctor(devices, namespace, measured, capsys)
        assert code == 0, lines
    finally:
        devices.kubectl("delete", "resourceslice", smaller["metadata"]["name"])
