"""The resource.k8s.io/v1 objects the back-ends need: shipped DeviceClasses, generated
ResourceClaimTemplates, and `doctor` reading them from realistic `kubectl ... -o json` Lists."""

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from castslice.cli import main
from castslice.cluster.dra import device_classes
from castslice.functions.policy import Policy
from tests.kube import K8S_VERSION
from tests.test_doctor import run as doctor

ROOT = Path(__file__).parent.parent
DRA = {"CASTSLICE_BACKEND": "dra"}
MIG = {"CASTSLICE_BACKEND": "mig"}


def valid(document):
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    return document


def test_shipped_device_classes_are_valid_and_serve_each_default_profile():
    shipped = [d for d in yaml.safe_load_all((ROOT / "deploy/dra/deviceclasses.yaml").read_text())]
    assert shipped == device_classes(Policy())
    assert [valid(d)["spec"]["extendedResourceName"] for d in shipped] == [
        "nvidia.com/mig-1g.5gb", "nvidia.com/mig-2g.10gb", "nvidia.com/mig-3g.20gb",
        "nvidia.com/mig-4g.20gb", "nvidia.com/mig-7g.40gb"]
    assert "device.attributes['gpu.nvidia.com'].profile == '3g.20gb'" in (
        shipped[2]["spec"]["selectors"][0]["cel"]["expression"])


def templates(args, env, capsys):
    assert main(["dra-templates", *args], env) == 0
    out = capsys.readouterr()
    return [valid(d) for d in yaml.safe_load_all(out.out)], out.err


def test_mig_templates_cover_every_count_the_ladder_can_hold(capsys):
    made, err = templates(["--namespace", "ml", "--namespace", "research"], DRA, capsys)
    assert [(t["metadata"]["namespace"], t["metadata"]["name"]) for t in made] == [
        (ns, f"castslice-gpu-{s}") for ns in ("ml", "research") for s in range(1, 8)]
    five = made[4]["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert five["deviceClassName"] == "mig.nvidia.com"
    assert five["selectors"][0]["cel"]["expression"].endswith("profile == '7g.40gb'")
    assert "no MIG profile holds 8..64 slices" in err and "CASTSLICE_MAX_SLICES=7" in err


def test_shared_templates_ask_shares_of_a_whole_gpu(capsys):
    made, err = templates(["--namespace", "ml", "--shared"], DRA | {"CASTSLICE_MAX_SLICES": "8"},
                          capsys)
    assert err == "" and len(made) == 8
    request = made[3]["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert request == {"deviceClassName": "gpu.nvidia.com",
                       "capacity": {"requests": {"shares": "4"}}}


def test_dra_templates_refuse_a_namespace_that_is_no_name(capsys):
    assert main(["dra-templates", "--namespace", "ML_team"], DRA) == 1
    assert "is not a namespace name" in capsys.readouterr().err


# --- doctor, from `kubectl get nodes,resourceslices,deviceclasses,... -A -o json` ---

def node(name, allocatable):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "64", "memory": "512Gi", **allocatable}}}


def resource_slice(node_name, profiles):
    """A ResourceSlice as the NVIDIA DRA driver publishes MIG devices (driver docs' shape)."""
    devices = [{"name": f"gpu-0-mig-{p.replace('.', '')}-{i}",
                "attributes": {"type": {"string": "mig"}, "profile": {"string": p},
                               "productName": {"string": "NVIDIA A100-SXM4-40GB"},
                               "driverVersion": {"version": "580.65.6"}},
                "capacity": {"memory": {"value": "4864Mi"}, "multiprocessors": {"value": "14"}}}
               for i, p in enumerate(profiles)]
    return valid({"apiVersion": "resource.k8s.io/v1", "kind": "ResourceSlice",
                  "metadata": {"name": f"{node_name}-gpu.nvidia.com-x7k2p"},
                  "spec": {"driver": "gpu.nvidia.com", "nodeName": node_name,
                           "pool": {"name": node_name, "generation": 1,
                                    "resourceSliceCount": 1},
                           "devices": devices}})


def test_doctor_names_the_mig_profiles_no_node_offers(tmp_path, capsys):
    plugin = node("a100-1", {"nvidia.com/mig-1g.5gb": "7", "nvidia.com/mig-3g.20gb": "2"})
    code, out = doctor(tmp_path, [plugin], MIG, capsys)
    assert code == 1
    assert "ok: 1g.5gb: node a100-1 advertises 7 nvidia.com/mig-1g.5gb (device plugin)" in out
    missing = [line for line in out.splitlines() if line.startswith("problem:")]
    assert missing == [f"problem: no node or ResourceSlice offers MIG profile {p} "
                       f"(nvidia.com/mig-{p}); Pods granted it stay Pending"
                       for p in ("2g.10gb", "4g.20gb", "7g.40gb")]


def test_doctor_accepts_mig_profiles_from_dra_with_their_device_classes(tmp_path, capsys):
    items = [node("a100-1", {}), resource_slice("a100-1", ["1g.5gb", "2g.10gb", "3g.20gb"]),
             resource_slice("a100-2", ["4g.20gb", "7g.40gb"]), *device_classes(Policy())]
    code, out = doctor(tmp_path, items, MIG, capsys)
    assert code == 0, out
    assert ("ok: 4g.20gb: 1 MIG device(s) in ResourceSlices, served as nvidia.com/mig-4g.20gb "
            "by DeviceClass castslice-mig-4g.20gb") in out


def test_doctor_finds_dra_mig_devices_without_their_device_class(tmp_path, capsys):
    items = [resource_slice("a100-1", ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]),
             *device_classes(Policy())[1:]]
    code, out = doctor(tmp_path, items, MIG, capsys)
    assert code == 1
    assert ("problem: 1g.5gb: ResourceSlices hold 1 MIG device(s) but no DeviceClass has "
            "extendedResourceName nvidia.com/mig-1g.5gb") in out


def claim_template(namespace, name):
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaimTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"spec": {"devices": {"requests": [
                {"name": "gpu", "exactly": {"deviceClassName": "mig.nvidia.com"}}]}}}}


def opted_pod(namespace):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "trainer-0", "namespace": namespace,
                         "annotations": {"castops.io/optimize": "true"}},
            "spec": {"containers": [{"name": "main", "image": "img:1"}]}}


def test_doctor_lists_each_namespace_and_template_the_claims_would_miss(tmp_path, capsys):
    env = DRA | {"CASTSLICE_MAX_SLICES": "7",
                 "CASTSLICE_RULES": '[{"namespaces": ["research", "team-*"], "optimize": true}]'}
    have = [claim_template("ml", f"castslice-gpu-{s}") for s in (1, 2, 4, 5, 6, 7)]
    have += [claim_template("research", f"castslice-gpu-{s}") for s in range(1, 8)]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                  for n in ("team-a", "web")]
    code, out = doctor(tmp_path, [*have, *namespaces, opted_pod("ml"), opted_pod("kube-system")],
                       env, capsys)
    assert code == 1
    assert out.splitlines() == [
        "problem: namespace ml lacks ResourceClaimTemplate castslice-gpu-3: Pods converted there "
        "stay Pending (castslice dra-templates --namespace ml | kubectl apply -f -)",
        "ok: namespace research has every template (castslice-gpu-1 to castslice-gpu-7)",
        "problem: namespace team-a lacks ResourceClaimTemplate castslice-gpu-1 to castslice-gpu-7: "
        "Pods converted there stay Pending (castslice dra-templates --namespace team-a | "
        "kubectl apply -f -)"]


def test_doctor_passes_when_every_namespace_has_its_templates(tmp_path, capsys):
    items = [claim_template("ml", f"castslice-gpu-{s}") for s in range(1, 5)] + [opted_pod("ml")]
    code, out = doctor(tmp_path, items, DRA | {"CASTSLICE_MAX_SLICES": "4"}, capsys)
    assert (code, out) == (0, "ok: namespace ml has every template (castslice-gpu-1 to "
                              "castslice-gpu-4)\n")


@pytest.mark.parametrize("items", [[], [node("a", {})]])
def test_doctor_with_nothing_to_check_for_dra_says_so(tmp_path, capsys, items):
    code, out = doctor(tmp_path, items, DRA, capsys)
    assert code == 1 and "no namespace to check" in out


JUNK = [None, 1, "x", [], {}, [1], {"a": 1}, [[1]], {"x": [1]}]


@pytest.mark.parametrize("backend", ["mig", "dra"])
@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_doctor_reads_lists_with_any_value_anywhere_without_failing(tmp_path, capsys, backend,
                                                                    junk):
    items = [{"kind": "ResourceSlice", "spec": {"driver": junk, "devices": junk}},
             {"kind": "ResourceSlice", "spec": {"driver": "gpu.nvidia.com", "devices": [
                 junk, {"attributes": junk}, {"attributes": {"profile": junk}}, {"basic": junk}]}},
             {"kind": "DeviceClass", "metadata": {"name": junk},
              "spec": {"extendedResourceName": junk}},
             {"kind": "DeviceClass", "metadata": junk, "spec": junk},
             {"kind": "ResourceClaimTemplate", "metadata": {"namespace": junk, "name": junk}},
             {"kind": "Namespace", "metadata": {"name": junk}},
             {"kind": "Pod", "metadata": {"namespace": junk, "annotations": junk}, "spec": junk},
             {"kind": "Node", "metadata": {"name": junk}, "status": {"allocatable": junk}}, junk]
    code, out = doctor(tmp_path, items, {"CASTSLICE_BACKEND": backend}, capsys)
    assert code == 1 and "problem:" in out  # nothing usable in it: said, not a traceback
