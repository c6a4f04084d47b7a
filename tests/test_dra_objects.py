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
    assert err == ("castslice: templates castslice-gpu-1 to castslice-gpu-7; Pods asking more "
                   "slices per GPU are admitted unchanged with a warning\n")


SHARES = DRA | {"CASTSLICE_DRA_DEVICES": "shares", "CASTSLICE_SLICES_PER_GPU": "8"}


def test_shares_templates_ask_shares_of_a_whole_gpu_up_to_n(capsys):
    made, err = templates(["--namespace", "ml"], SHARES, capsys)
    assert len(made) == 8 and "castslice-gpu-8; Pods asking more" in err
    request = made[3]["spec"]["spec"]["devices"]["requests"][0]["exactly"]
    assert request == {"deviceClassName": "gpu.nvidia.com",
                       "capacity": {"requests": {"shares": "4"}}}


def test_templates_stop_at_the_maximum_slice_count_when_it_is_lower(capsys):
    made, err = templates(["--namespace", "ml"], SHARES | {"CASTSLICE_MAX_SLICES": "4"}, capsys)
    assert [t["metadata"]["name"] for t in made] == [f"castslice-gpu-{s}" for s in range(1, 5)]
    assert err == ""


def test_the_old_shared_flag_names_the_setting_that_replaced_it(capsys):
    assert main(["dra-templates", "--namespace", "ml", "--shared"], DRA) == 1
    assert "set CASTSLICE_DRA_DEVICES=shares" in capsys.readouterr().err


def test_every_template_printed_is_one_the_decision_may_name_and_no_other():
    from castslice.cluster.dra import claim_templates
    from castslice.functions.admit import admit, check_review
    from castslice.settings.config import Config
    from tests.kube import pod_review

    for env in (DRA, SHARES, DRA | {"CASTSLICE_MIG_PROFILES": "1g.6gb,2g.12gb,4g.24gb"}):
        policy = Config.from_env(env).policy
        printed = {t["metadata"]["name"] for t in claim_templates(policy, ["ml"])}
        named = set()
        for slices in range(1, policy.max_slices + 1):
            review = pod_review({"castops.io/optimize": "true",
                                 "castops.io/slice-ratio": str(slices)})
            response = admit(check_review(review), policy).response["response"]
            if "patch" in response:
                named.add(response["auditAnnotations"]["sliced"].split("template ")[1].split()[0])
        assert named == printed, env


def test_me_profiles_are_named_as_the_device_plugin_and_the_dra_driver_name_them():
    policy = Policy(mig_profiles=("1g.10gb+me", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"))
    (me, *_) = device_classes(policy)
    assert valid(me)["metadata"]["name"] == "castslice-mig-1g.10gb.me"
    assert me["spec"]["extendedResourceName"] == "nvidia.com/mig-1g.10gb.me"
    assert me["spec"]["selectors"][0]["cel"]["expression"].endswith("profile == '1g.10gb+me'")


def test_dra_templates_refuse_a_namespace_that_is_no_name(capsys):
    assert main(["dra-templates", "--namespace", "ML_team"], DRA) == 1
    assert "is not a namespace name" in capsys.readouterr().err


# --- doctor, from `kubectl get nodes,resourceslices,deviceclasses,... -A -o json` ---

def node(name, allocatable):
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name},
            "status": {"allocatable": {"cpu": "64", "memory": "512Gi", **allocatable}}}


A100_40GB_MIB = {"1g.5gb": 4864, "1g.10gb": 9856, "2g.10gb": 9856, "3g.20gb": 19968,
                 "4g.20gb": 19968, "7g.40gb": 40192}
"""NVML's memorySizeMB of each A100-40GB profile (go-nvml pkg/nvml/mock/gpus/a100.go, the
mock NVIDIA's DRA driver is tested with); the driver publishes it x 2^20 as the device's
`memory` capacity (cmd/gpu-kubelet-plugin/mig.go, resource.NewQuantity(..., BinarySI))."""


def resource_slice(node_name, profiles, memory=None):
    """A ResourceSlice as the NVIDIA DRA driver publishes MIG devices (driver docs' shape);
    `memory` maps a profile to its devices' MiB where they differ from the A100-40GB's."""
    sizes = A100_40GB_MIB | (memory or {})
    devices = [{"name": f"gpu-0-mig-{p.replace('.', '').replace('+', '')}-{i}",
                "attributes": {"type": {"string": "mig"}, "profile": {"string": p},
                               "productName": {"string": "NVIDIA A100-SXM4-40GB"},
                               "driverVersion": {"version": "580.65.6"}},
                "capacity": {"memory": {"value": f"{sizes[p]}Mi"},
                             "multiprocessors": {"value": "14"}}}
               for i, p in enumerate(profiles)]
    return published(node_name, devices)


def published(node_name, devices):
    """The ResourceSlice of one node's pool, as the NVIDIA DRA driver writes it."""
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


def claim_template(namespace, name, env=DRA):
    """The template as `castslice dra-templates` prints it under `env`."""
    from castslice.cluster.dra import claim_templates
    from castslice.settings.config import Config

    (made,) = [t for t in claim_templates(Config.from_env(env).policy, [namespace])
               if t["metadata"]["name"] == name]
    return made


def opted_pod(namespace):
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "trainer-0", "namespace": namespace,
                         "annotations": {"castops.io/optimize": "true"}},
            "spec": {"containers": [{"name": "main", "image": "img:1"}]}}


A100_SLICE = resource_slice("a100-1", ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"])


def test_doctor_lists_each_namespace_and_template_the_claims_would_miss(tmp_path, capsys):
    env = DRA | {"CASTSLICE_RULES": '[{"namespaces": ["research", "team-*"], "optimize": true}]'}
    have = [claim_template("ml", f"castslice-gpu-{s}") for s in (1, 2, 4, 5, 6, 7)]
    have += [claim_template("research", f"castslice-gpu-{s}") for s in range(1, 8)]
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}}
                  for n in ("team-a", "web")]
    code, out = doctor(tmp_path, [A100_SLICE, *have, *namespaces, opted_pod("ml"),
                                  opted_pod("kube-system")], env, capsys)
    assert code == 1
    assert out.splitlines() == [
        "ok: 1g.5gb: 1 MIG device(s) in ResourceSlices (castslice-gpu-1)",
        "ok: 2g.10gb: 1 MIG device(s) in ResourceSlices (castslice-gpu-2)",
        "ok: 3g.20gb: 1 MIG device(s) in ResourceSlices (castslice-gpu-3)",
        "ok: 4g.20gb: 1 MIG device(s) in ResourceSlices (castslice-gpu-4)",
        "ok: 7g.40gb: 1 MIG device(s) in ResourceSlices (castslice-gpu-5 to castslice-gpu-7)",
        "problem: namespace ml lacks ResourceClaimTemplate castslice-gpu-3: Pods converted there "
        "stay Pending (castslice dra-templates --namespace ml | kubectl apply -f -)",
        "ok: namespace research has every template (castslice-gpu-1 to castslice-gpu-7)",
        "problem: namespace team-a lacks ResourceClaimTemplate castslice-gpu-1 to castslice-gpu-7: "
        "Pods converted there stay Pending (castslice dra-templates --namespace team-a | "
        "kubectl apply -f -)",
        "ok: memory asks: MIG devices hold at least what they are granted for (1g.5gb 4.75Gi, "
        "2g.10gb 9.62Gi, 3g.20gb 19.5Gi, 4g.20gb 19.5Gi, 7g.40gb 39.25Gi)"]


def test_doctor_passes_when_every_namespace_has_its_templates(tmp_path, capsys):
    env = DRA | {"CASTSLICE_MAX_SLICES": "4"}
    items = [claim_template("ml", f"castslice-gpu-{s}", env) for s in range(1, 5)]
    items += [resource_slice("a100-1", ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb"]),
              opted_pod("ml")]
    code, out = doctor(tmp_path, items, env, capsys)
    assert (code, out.splitlines()[-2:]) == (0, [
        "ok: namespace ml has every template (castslice-gpu-1 to castslice-gpu-4)",
        "ok: memory asks: MIG devices hold at least what they are granted for (1g.5gb 4.75Gi, "
        "2g.10gb 9.62Gi, 3g.20gb 19.5Gi, 4g.20gb 19.5Gi)"])


def test_doctor_for_dra_fails_when_no_device_backs_the_templates(tmp_path, capsys):
    items = [claim_template("ml", f"castslice-gpu-{s}") for s in range(1, 8)] + [opted_pod("ml")]
    code, out = doctor(tmp_path, items, DRA, capsys)
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert problems[0] == ("problem: no ResourceSlice holds a MIG device of profile 1g.5gb: "
                           "claims from castslice-gpu-1 stay Pending")
    assert len(problems) == 5


def shares_slice(node_name, shares, gpus=2):
    """GPUs as the NVIDIA DRA driver announces them with --consumable-shares=N."""
    return published(node_name, [
        {"name": f"gpu-{i}", "allowMultipleAllocations": True,
         "attributes": {"type": {"string": "gpu"}},
         "capacity": {"memory": {"value": "40Gi"}, "shares": {
             "value": str(shares), "requestPolicy": {"default": "1", "validRange": {
                 "min": "1", "max": str(shares), "step": "1"}}}}}
        for i in range(gpus)])


SHARED_8 = DRA | {"CASTSLICE_DRA_DEVICES": "shares", "CASTSLICE_SLICES_PER_GPU": "8"}


@pytest.mark.parametrize(("items", "code", "line"), [
    ([shares_slice("n1", 8)], 0, "ok: 2 GPU(s) announce shares (up to 8 per claim)"),
    ([shares_slice("n1", 4)], 1, "problem: GPUs announce at most 4 shares: claims from "
     "castslice-gpu-5 to castslice-gpu-8 can never be allocated; set "
     "CASTSLICE_SLICES_PER_GPU=4"),
    ([A100_SLICE], 1, "problem: no GPU in ResourceSlices announces shares capacity: claims from "
     "castslice-gpu-1 to castslice-gpu-8 stay Pending (the NVIDIA DRA driver needs "
     "--consumable-shares=N and its ConsumableShares gate; add resourceslices to the kubectl "
     "get)"),
])
def test_doctor_checks_that_gpus_announce_the_shares_the_templates_ask(tmp_path, capsys, items,
                                                                       code, line):
    have = [claim_template("ml", f"castslice-gpu-{s}", SHARED_8) for s in range(1, 9)]
    got, out = doctor(tmp_path, [*items, *have, opted_pod("ml")], SHARED_8, capsys)
    assert (got, out.splitlines()[0]) == (code, line)


def test_doctor_names_stale_and_unused_templates(tmp_path, capsys):
    env = DRA | {"CASTSLICE_MAX_SLICES": "4"}
    have = [claim_template("ml", f"castslice-gpu-{s}", SHARED_8) for s in range(1, 9)]
    code, out = doctor(tmp_path, [resource_slice("n", ["1g.5gb", "2g.10gb", "3g.20gb",
                                                      "4g.20gb"]), *have], env, capsys)
    assert code == 1
    assert out.splitlines()[-3:-1] == [
        "problem: namespace ml: ResourceClaimTemplate castslice-gpu-1 to castslice-gpu-4 differ "
        "from what the configuration claims (castslice dra-templates --namespace ml | kubectl "
        "apply -f -)",
        "note: namespace ml: castslice-gpu-5, castslice-gpu-6, castslice-gpu-7, castslice-gpu-8 "
        "no longer named by any claim"]
    assert out.splitlines()[-1].startswith("ok: memory asks: MIG devices hold at least")


@pytest.mark.parametrize("items", [[], [node("a", {})]])
def test_doctor_with_nothing_to_check_for_dra_says_so(tmp_path, capsys, items):
    code, out = doctor(tmp_path, items, DRA, capsys)
    assert code == 1 and "no namespace to check" in out


JUNK = [None, 1, "x", [], {}, [1], {"a": 1}, [[1]], {"x": [1]}]


@pytest.mark.parametrize("backend", [MIG, DRA, SHARED_8])
@pytest.mark.parametrize("junk", JUNK, ids=repr)
def test_doctor_reads_lists_with_any_value_anywhere_without_failing(tmp_path, capsys, backend,
                                                                    junk):
    items = [{"kind": "ResourceSlice", "spec": {"driver": junk, "devices": junk}},
             {"kind": "ResourceSlice", "spec": {"driver": "gpu.nvidia.com", "devices": [
                 junk, {"attributes": junk}, {"attributes": {"profile": junk}}, {"basic": junk},
                 {"capacity": junk}, {"capacity": {"shares": junk}},
                 {"capacity": {"shares": {"requestPolicy": {"validRange": junk}}}}]}},
             {"kind": "DeviceClass", "metadata": {"name": junk},
              "spec": {"extendedResourceName": junk}},
             {"kind": "DeviceClass", "metadata": junk, "spec": junk},
             {"kind": "ResourceClaimTemplate", "metadata": {"namespace": junk, "name": junk}},
             {"kind": "Namespace", "metadata": {"name": junk}},
             {"kind": "Pod", "metadata": {"namespace": junk, "annotations": junk}, "spec": junk},
             {"kind": "Node", "metadata": {"name": junk}, "status": {"allocatable": junk}}, junk]
    code, out = doctor(tmp_path, items, backend, capsys)
    assert code == 1 and "problem:" in out  # nothing usable in it: said, not a traceback


def test_shares_on_mig_devices_are_not_counted_for_the_gpu_class(tmp_path, capsys):
    """The driver announces shares on static MIG devices too; the templates' DeviceClass
    selects type == 'gpu' only, so a cluster of MIG-partitioned GPUs has no device for them."""
    mig_with_shares = published("n1", [
        {"name": f"gpu-0-mig-{i}", "allowMultipleAllocations": True,
         "attributes": {"type": {"string": "mig"}, "profile": {"string": "1g.5gb"}},
         "capacity": {"shares": {"value": "8", "requestPolicy": {"default": "1", "validRange": {
             "min": "1", "max": "8", "step": "1"}}}}} for i in range(2)])
    have = [claim_template("ml", f"castslice-gpu-{s}", SHARED_8) for s in range(1, 9)]
    code, out = doctor(tmp_path, [mig_with_shares, *have, opted_pod("ml")], SHARED_8, capsys)
    assert code == 1
    assert out.startswith("problem: no GPU in ResourceSlices announces shares capacity")


@pytest.mark.parametrize("flag", ["-n", "--namespace"])
def test_dra_templates_takes_n_like_every_cluster_command(capsys, flag):
    assert main(["dra-templates", flag, "ml"], DRA) == 0
    assert "namespace: ml" in capsys.readouterr().out


@pytest.mark.parametrize("backend", ["extended", "mig"])
def test_dra_templates_refuses_a_back_end_that_names_no_template(capsys, backend):
    assert main(["dra-templates", "-n", "ml"], {"CASTSLICE_BACKEND": backend}) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"castslice: dra-templates is for CASTSLICE_BACKEND=dra (now {backend}): "
                   "only the dra back-end's claims name templates\n")


def test_a_pod_whose_namespace_is_null_names_no_namespace(tmp_path, capsys):
    """text_or_empty: a field that is not text is no namespace, never one named otherwise."""
    pod = {"kind": "Pod", "metadata": {"name": "p", "namespace": None,
                                       "annotations": {"castops.io/optimize": "true"}},
           "spec": {"containers": [{"name": "c",
                                    "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}
    code, out = doctor(tmp_path, [pod], DRA, capsys)
    assert code == 1 and "problem: no namespace to check" in out
    assert "lacks ResourceClaimTemplate" not in out


def test_doctor_names_mig_devices_holding_less_than_memory_asks_are_granted_for(tmp_path,
                                                                               capsys):
    smaller = resource_slice("a100-1", ["1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"],
                             memory={"2g.10gb": 9728})
    code, out = doctor(tmp_path, [smaller], MIG, capsys)
    assert code == 1
    assert ("problem: MIG devices of 2g.10gb hold 9.5Gi, less than the 9.62Gi memory asks are "
            "granted it for; set CASTSLICE_MIG_MEMORY=2g.10gb=9728Mi") in out.splitlines()
    measured = MIG | {"CASTSLICE_MIG_MEMORY": "2g.10gb=9728Mi"}
    code, out = doctor(tmp_path, [smaller], measured, capsys)
    assert "2g.10gb 9.5Gi" in out.splitlines()[-1]
    assert all(not line.startswith("problem: MIG devices") for line in out.splitlines())


def test_doctor_says_what_to_set_for_a_profile_of_unknown_memory(tmp_path, capsys):
    rtx = {"CASTSLICE_BACKEND": "mig", "CASTSLICE_MAX_SLICES": "4",
           "CASTSLICE_MIG_PROFILES": "1g.24gb,2g.48gb,4g.96gb"}
    devices = resource_slice("rtx-1", ["1g.24gb", "2g.48gb", "4g.96gb"],
                             memory={"1g.24gb": 24192, "2g.48gb": 48512, "4g.96gb": 97152})
    code, out = doctor(tmp_path, [devices], rtx, capsys)
    assert code == 1  # no DeviceClass serves the profiles: a problem of its own
    assert ("note: memory asks never get 4g.96gb: its memory is unknown (its devices hold "
            "94.87Gi); set CASTSLICE_MIG_MEMORY=4g.96gb=97152Mi") in out.splitlines()


@pytest.mark.parametrize(("env", "code", "line"), [
    ({}, 0, "note: memory asks (castops.io/gpu-memory) pass unchanged until CASTSLICE_GPU_MEMORY "
     "is set; the smallest GPU here holds 40Gi"),
    ({"CASTSLICE_GPU_MEMORY": "40Gi"}, 0, "ok: memory asks: every GPU holds at least "
     "CASTSLICE_GPU_MEMORY=40Gi"),
    ({"CASTSLICE_GPU_MEMORY": "80Gi"}, 1, "problem: a GPU holds 40Gi, less than "
     "CASTSLICE_GPU_MEMORY=80Gi: memory asks may be granted too few units; set "
     "CASTSLICE_GPU_MEMORY=40960Mi"),
])
def test_doctor_checks_the_card_memory_against_the_gpus_for_shares(tmp_path, capsys, env, code,
                                                                   line):
    have = [claim_template("ml", f"castslice-gpu-{s}", SHARED_8) for s in range(1, 9)]
    got, out = doctor(tmp_path, [shares_slice("n1", 8), *have, opted_pod("ml")],
                      SHARED_8 | env, capsys)
    assert (got, line in out.splitlines()) == (code, True)
