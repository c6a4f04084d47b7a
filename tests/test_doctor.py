"""`castslice doctor` on node lists shaped like `kubectl get nodes -o json`."""

import json

import yaml

from castslice.cli import main
from tests.webhooks import ROOT, shipped_webhook


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


def test_nodes_where_a_container_can_spill_onto_a_second_gpu_are_a_problem(tmp_path, capsys):
    """packed is no best fit: a grant of several units spills when the fullest GPU has too
    few left (k8s-device-plugin internal/rm/allocate.go), so any grant above 1 can."""
    env = SHARED | {"CASTSLICE_RULES": '[{"name": "research", "namespaces": ["research"], '
                                       '"sliceRatio": 3}]'}
    code, out = run(tmp_path, [gfd_node("dgx-1", 8), gfd_node("t4-1", 1)], env, capsys)
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith("problem:")]
    assert problems == [
        "problem: node dgx-1 has 8 GPUs (nvidia.com/gpu.count) and CastSlice may grant up to 64 "
        "nvidia.com/gpu.shared to one container (CASTSLICE_MAX_SLICES=64; presets training=4, "
        "inference=2, batch=2; rules research): such a container can see up to 8 GPUs "
        "(`distributed` spreads its units, `packed` spills what the fullest GPU cannot hold); "
        "grant 1 everywhere (CASTSLICE_MAX_SLICES=1, every preset 1) with "
        "failRequestsGreaterThanOne: true and density from the plugin's replicas "
        "(deploy/examples/device-plugin-time-slicing.yaml), or use the mig or dra back-end"]


def test_several_gpus_are_fine_when_every_grant_is_one_unit(tmp_path, capsys):
    env = SHARED | {"CASTSLICE_MAX_SLICES": "1", "CASTSLICE_PRESETS": "training=1,dev=1"}
    code, out = run(tmp_path, [gfd_node("dgx-1", 8)], env, capsys)
    assert code == 0 and "warning" not in out


SERVING = node("gpu-1", {"nvidia.com/gpu-shared": "8"})


def _shipped_webhook(**changes):
    configuration = shipped_webhook()
    configuration["webhooks"][0].update(changes)
    return configuration


def test_the_shipped_webhook_sends_only_gpu_pods(tmp_path, capsys):
    code, out = run(tmp_path, [SERVING, _shipped_webhook()], {}, capsys)
    assert code == 0
    assert ("ok: MutatingWebhookConfiguration castslice sends only Pods asking for "
            "nvidia.com/gpu") in out


def test_a_webhook_without_match_conditions_is_named_every_pod_is_sent(tmp_path, capsys):
    configuration = _shipped_webhook()
    del configuration["webhooks"][0]["matchConditions"]
    code, out = run(tmp_path, [SERVING, configuration], {}, capsys)
    assert code == 0
    assert ("warning: MutatingWebhookConfiguration castslice has no matchConditions: every "
            "Pod creation is sent to CastSlice") in out


def test_match_conditions_for_another_resource_are_a_problem(tmp_path, capsys):
    env = {"CASTSLICE_SOURCE_RESOURCE": "example.com/gpu"}
    code, out = run(tmp_path, [SERVING, _shipped_webhook()], env, capsys)
    assert code == 1
    assert ("problem: MutatingWebhookConfiguration castslice's matchConditions send Pods "
            "asking for nvidia.com/gpu, but CastSlice converts example.com/gpu") in out


def test_match_conditions_of_someone_elses_shape_are_a_problem(tmp_path, capsys):
    configuration = _shipped_webhook(matchConditions=[{"name": "all", "expression": "true"}])
    code, out = run(tmp_path, [SERVING, configuration], {}, capsys)
    assert code == 1
    assert "send Pods asking for no resource CastSlice's manifests test" in out


def test_other_webhooks_are_not_read(tmp_path, capsys):
    configuration = _shipped_webhook(name="other.example.com")
    del configuration["webhooks"][0]["matchConditions"]
    code, out = run(tmp_path, [SERVING, configuration], {}, capsys)
    assert code == 0 and "MutatingWebhookConfiguration" not in out


CURRENT = "nvcr.io/nvidia/k8s/dcgm-exporter:4.5.3-4.8.2-distroless"


def _exporter(env=None, image=CURRENT, host_pid=True):
    """dcgm-exporter's DaemonSet as its chart renders it (NVIDIA/dcgm-exporter
    deployment/templates/daemonset.yaml at d5e5f51: `hostPID: {{ .Values.hostPID | default
    false }}`, env DCGM_EXPORTER_KUBERNETES and DCGM_EXPORTER_LISTEN, then extraEnv), with the
    GPU Operator's name; its image, hostPID and extra env as given."""
    container = {"name": "nvidia-dcgm-exporter", "image": image,
                 "env": [{"name": "DCGM_EXPORTER_KUBERNETES", "value": "true"},
                         {"name": "DCGM_EXPORTER_LISTEN", "value": ":9400"}, *(env or [])]}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "nvidia-dcgm-exporter", "namespace": "gpu-operator"},
            "spec": {"template": {"spec": {"hostPID": host_pid, "containers": [container]}}}}


WHERE = "dcgm-exporter DaemonSet gpu-operator/nvidia-dcgm-exporter"
SHARED_ENV = [{"name": "NVIDIA_RESOURCE_NAMES", "value": "nvidia.com/gpu-shared"},
              {"name": "KUBERNETES_VIRTUAL_GPUS", "value": "true"}]


def test_an_exporter_before_per_process_values_charges_each_pod_the_whole_gpu(tmp_path,
                                                                              capsys):
    exporter = _exporter(SHARED_ENV, "nvcr.io/nvidia/k8s/dcgm-exporter:4.5.2-4.8.1-ubuntu22.04")
    code, out = run(tmp_path, [SERVING, exporter], {}, capsys)
    assert code == 1
    assert (f"problem: {WHERE}: 4.5.2-4.8.1-ubuntu22.04 copies a shared GPU's value to every "
            "Pod on it (per-process values start at 4.5.3-4.8.2)") in out


def test_an_exporter_without_host_pid_writes_zero_for_converted_pods(tmp_path, capsys):
    code, out = run(tmp_path, [SERVING, _exporter(SHARED_ENV, host_pid=False)], {}, capsys)
    assert code == 1
    assert f"problem: {WHERE}: hostPID is not true" in out and "writes 0" in out


def test_an_exporter_of_unknown_version_is_named(tmp_path, capsys):
    exporter = _exporter(SHARED_ENV, "registry.example/dcgm-exporter:latest")
    _, out = run(tmp_path, [SERVING, exporter], {}, capsys)
    assert f"problem: {WHERE}: cannot tell the version of dcgm-exporter:latest" in out


def test_the_shipped_exporter_chart_values_attribute_converted_pods(tmp_path, capsys):
    values = yaml.safe_load((ROOT / "deploy" / "observability" /
                             "dcgm-exporter-values.yaml").read_text())
    exporter = _exporter(values["extraEnv"], f"nvcr.io/nvidia/k8s/dcgm-exporter:"
                         f"{values['image']['tag']}", values["hostPID"])
    code, out = run(tmp_path, [SERVING, exporter], {}, capsys)
    assert code == 0 and f"ok: {WHERE} attributes the Pods CastSlice converts" in out


def test_an_exporter_without_settings_is_named_what_to_set(tmp_path, capsys):
    code, out = run(tmp_path, [SERVING, _exporter()], {}, capsys)
    assert code == 0
    assert ("warning: dcgm-exporter DaemonSet gpu-operator/nvidia-dcgm-exporter does not "
            "attribute converted Pods: set NVIDIA_RESOURCE_NAMES=nvidia.com/gpu-shared, "
            "KUBERNETES_VIRTUAL_GPUS=true") in out


def test_the_shipped_gpu_operator_values_attribute_converted_pods(tmp_path, capsys):
    values = yaml.safe_load((ROOT / "deploy" / "observability" /
                             "gpu-operator-dcgm-exporter-values.yaml").read_text())
    image = f"nvcr.io/nvidia/k8s/dcgm-exporter:{values['dcgmExporter']['version']}"
    code, out = run(tmp_path, [SERVING, _exporter(values["dcgmExporter"]["env"], image)], {},
                    capsys)
    assert code == 0
    assert "ok: dcgm-exporter DaemonSet gpu-operator/nvidia-dcgm-exporter attributes" in out


def test_an_exporter_keeps_the_names_it_has_and_adds_the_target(tmp_path, capsys):
    env = [{"name": "NVIDIA_RESOURCE_NAMES", "value": "nvidia.com/a100"},
           {"name": "KUBERNETES_VIRTUAL_GPUS", "value": "1"}]
    code, out = run(tmp_path, [SERVING, _exporter(env)], {}, capsys)
    assert code == 0
    assert "set NVIDIA_RESOURCE_NAMES=nvidia.com/a100,nvidia.com/gpu-shared (" in out


def test_under_dra_the_exporter_is_never_ok_and_under_mig_needs_nothing(tmp_path, capsys):
    _, out = run(tmp_path, [_exporter()], {"CASTSLICE_BACKEND": "dra"}, capsys)
    assert "does not attribute converted Pods: set KUBERNETES_ENABLE_DRA=true " in out
    assert (f"problem: {WHERE}: its DRA mapping watches resource.k8s.io/v1beta1 "
            "ResourceSlices") in out and "never attributes DRA MIG devices" in out
    _, out = run(tmp_path, [_exporter(host_pid=False)], {"CASTSLICE_BACKEND": "mig"}, capsys)
    assert f"ok: {WHERE} attributes" in out


def test_other_daemonsets_are_not_read(tmp_path, capsys):
    code, out = run(tmp_path, [SERVING, _exporter(image="registry.k8s.io/kube-proxy:v1.36.2")],
                    {}, capsys)
    assert code == 0 and "dcgm-exporter" not in out
