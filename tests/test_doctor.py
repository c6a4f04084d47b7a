"""`castslice doctor` on node lists shaped like `kubectl get nodes -o json`."""

import json

from castslice.cli import main


def node(name, allocatable, strategy=None):
    labels = {"kubernetes.io/hostname": name}
    if strategy:
        labels["nvidia.com/gpu.sharing-strategy"] = strategy
    return {"metadata": {"name": name, "labels": labels},
            "status": {"allocatable": {"cpu": "32", "memory": "256Gi", **allocatable}}}


def run(tmp_path, nodes, env, capsys):
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": nodes}))
    code = main(["doctor", str(path)], env)
    return code, capsys.readouterr().out


def test_cluster_without_the_target_resource_fails_with_the_reason(tmp_path, capsys):
    code, out = run(tmp_path, [node("gpu-1", {"nvidia.com/gpu": "8"})], {}, capsys)
    assert code == 1
    assert ("problem: no node advertises nvidia.com/gpu-shared in its allocatable; every Pod "
            "CastSlice mutates would stay Pending") in out


def test_stock_plugin_rename_gets_a_hint(tmp_path, capsys):
    code, out = run(tmp_path, [node("gpu-1", {"nvidia.com/gpu.shared": "32"})], {}, capsys)
    assert code == 1
    assert "set CASTSLICE_TARGET_RESOURCE=nvidia.com/gpu.shared" in out


def test_time_slicing_node_with_the_target_is_ok(tmp_path, capsys):
    env = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared"}
    code, out = run(tmp_path, [node("gpu-1", {"nvidia.com/gpu.shared": "32"}, "time-slicing"),
                               node("cpu-1", {})], env, capsys)
    assert code == 0
    assert out == "ok: node gpu-1 advertises 32 nvidia.com/gpu.shared\n"


def test_mps_nodes_are_flagged_when_grants_can_exceed_one(tmp_path, capsys):
    env = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared"}
    code, out = run(tmp_path, [node("mps-1", {"nvidia.com/gpu.shared": "8"}, "mps")], env,
                    capsys)
    assert code == 0
    assert "warning: node mps-1 shares by MPS" in out and "up to 64 per GPU" in out


def test_mps_is_fine_when_every_grant_is_one(tmp_path, capsys):
    env = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared", "CASTSLICE_MAX_SLICES": "1",
           "CASTSLICE_PRESETS": "training=1,inference=1,batch=1,dev=1"}
    code, out = run(tmp_path, [node("mps-1", {"nvidia.com/gpu.shared": "8"}, "mps")], env,
                    capsys)
    assert code == 0 and "warning" not in out


def test_input_without_nodes_is_a_problem(tmp_path, capsys):
    code, out = run(tmp_path, [], {}, capsys)
    assert code == 1 and "no Node objects" in out


def gfd_node(name, gpus, replicas=8):
    """A time-slicing node as GPU feature discovery labels it."""
    made = node(name, {"nvidia.com/gpu.shared": str(gpus * replicas)}, "time-slicing")
    made["metadata"]["labels"] |= {"nvidia.com/gpu.count": str(gpus),
                                   "nvidia.com/gpu.replicas": str(replicas)}
    return made


SHARED = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared"}


def test_nodes_with_several_gpus_are_warned_when_a_container_can_get_several_units(tmp_path,
                                                                                   capsys):
    code, out = run(tmp_path, [gfd_node("dgx-1", 8), gfd_node("t4-1", 1)], SHARED, capsys)
    assert code == 0  # the Pods schedule; what they see is the warning's subject
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert warnings == [
        "warning: node dgx-1 has 8 GPUs (nvidia.com/gpu.count) and CastSlice may grant up to 64 "
        "nvidia.com/gpu.shared to one container: the device plugin's default `distributed` "
        "policy takes them from different GPUs, so the container may see up to 8; set "
        "flags.plugin.sharedDevicesAllocationPolicy: packed (device plugin v0.20+, "
        "deploy/examples), keep presets and CASTSLICE_MAX_SLICES at 1, or use the mig or dra "
        "back-end"]


def test_several_gpus_are_fine_when_every_grant_is_one_unit(tmp_path, capsys):
    env = SHARED | {"CASTSLICE_MAX_SLICES": "1", "CASTSLICE_PRESETS": "training=1,dev=1"}
    code, out = run(tmp_path, [gfd_node("dgx-1", 8)], env, capsys)
    assert code == 0 and "warning" not in out
