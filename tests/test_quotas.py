"""`castslice quotas` on what `kubectl get resourcequotas -A -o json` prints: the split
printed whole, every other limit kept, and each refusal one line."""

import json

import pytest
import yaml

from castslice.cli import main

SHARED = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared", "CASTSLICE_SLICES_PER_GPU": "8"}


def quota(namespace, hard, name="gpu", **metadata):
    return {"apiVersion": "v1", "kind": "ResourceQuota",
            "metadata": {"name": name, "namespace": namespace, "uid": "u-1",
                         "resourceVersion": "42", **metadata},
            "spec": {"hard": hard}, "status": {"hard": hard, "used": {}}}


def run(tmp_path, items, env, capsys, *flags):
    path = tmp_path / "quotas.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
    code = main(["quotas", str(path), *flags], env)
    out, err = capsys.readouterr()
    return code, out, err


def test_the_split_moves_k_gpus_and_keeps_everything_else(tmp_path, capsys):
    items = [quota("team-a", {"requests.nvidia.com/gpu": "4", "pods": "50"},
                   labels={"team": "a"}, annotations={"owner": "platform"}),
             quota("team-b", {"pods": "5"}, name="pods")]
    code, out, _ = run(tmp_path, items, SHARED, capsys, "--shared-fraction", "0.5")
    assert code == 0
    (printed,) = yaml.safe_load_all(out)
    assert printed == {"apiVersion": "v1", "kind": "ResourceQuota",
                       "metadata": {"name": "gpu", "namespace": "team-a",
                                    "labels": {"team": "a"}, "annotations": {"owner": "platform"}},
                       "spec": {"hard": {"pods": "50", "requests.nvidia.com/gpu": "2",
                                         "requests.nvidia.com/gpu.shared": "16"}}}
    assert "# whole GPUs + units/8 <= 4, exactly" in out


def test_a_quota_already_split_is_left_out(tmp_path, capsys):
    items = [quota("team-a", {"requests.nvidia.com/gpu": "1",
                              "requests.nvidia.com/gpu.shared": "8"})]
    code, out, err = run(tmp_path, items, SHARED, capsys, "--shared-gpus", "1")
    assert (code, out) == (0, "")
    assert err == "castslice: ResourceQuota team-a/gpu is split already; left out\n"


@pytest.mark.parametrize(("items", "env", "flags", "said"), [
    ([quota("a", {"requests.nvidia.com/gpu": "2"})], SHARED, ("--shared-gpus", "3"),
     "--shared-gpus 3 is more than the 2 GPUs ResourceQuota a/gpu allows"),
    ([quota("a", {"requests.nvidia.com/gpu": "2"})], {}, ("--shared-gpus", "1"),
     "needs CASTSLICE_SLICES_PER_GPU: the units one GPU is, which the split counts in"),
    ([], SHARED, ("--shared-gpus", "1"),
     "the input holds no ResourceQuota (kubectl get resourcequotas -A -o json)"),
    ([quota("a", {"pods": "3"})], SHARED, ("--shared-gpus", "1"),
     "no ResourceQuota in the input limits nvidia.com/gpu"),
    ([quota("a", {"requests.nvidia.com/gpu": "2"})], SHARED, ("--shared-fraction", "1.5"),
     "--shared-fraction 1.5 must be above 0 and at most 1"),
    ([quota("a", {"requests.nvidia.com/gpu": "2"})], SHARED, ("--shared-gpus", "-1"),
     "--shared-gpus -1 must be 0 or more"),
])
def test_refusals_are_one_line(tmp_path, capsys, items, env, flags, said):
    code, out, err = run(tmp_path, items, env, capsys, *flags)
    assert (code, out, err) == (1, "", f"castslice: {said}\n")


def test_mig_prints_the_tightest_quota_and_says_how_far_it_can_exceed(tmp_path, capsys):
    items = [quota("a", {"requests.nvidia.com/gpu": "2"})]
    code, out, _ = run(tmp_path, items, {"CASTSLICE_BACKEND": "mig"}, capsys,
                       "--shared-gpus", "1")
    assert code == 0
    (printed,) = yaml.safe_load_all(out)
    assert printed["spec"]["hard"] == {
        "requests.nvidia.com/gpu": "1", "requests.nvidia.com/mig-1g.5gb": "7",
        "requests.nvidia.com/mig-2g.10gb": "3", "requests.nvidia.com/mig-3g.20gb": "2",
        "requests.nvidia.com/mig-4g.20gb": "1", "requests.nvidia.com/mig-7g.40gb": "1"}
    assert "can fill up to 6 cards (each limit alone stays within 1)" in out


def test_mig_counts_instances_a_card_holds_by_memory_as_well_as_compute(tmp_path, capsys):
    """A card holds 4 of 1g.20gb (mig-parted config-default.yaml all-1g.20gb: 4), not 7."""
    env = {"CASTSLICE_BACKEND": "mig",
           "CASTSLICE_MIG_PROFILES": "1g.20gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb"}
    items = [quota("a", {"requests.nvidia.com/gpu": "2"})]
    code, out, _ = run(tmp_path, items, env, capsys, "--shared-gpus", "1")
    (printed,) = yaml.safe_load_all(out)
    assert code == 0 and printed["spec"]["hard"]["requests.nvidia.com/mig-1g.20gb"] == "4"


def test_doctor_names_an_open_quota_and_is_quiet_once_split(tmp_path, capsys):
    from tests.test_doctor import node

    serving = node("n1", {"nvidia.com/gpu.shared": "8"}, "time-slicing")
    open_quota = quota("team-a", {"requests.nvidia.com/gpu": "2"})
    path = tmp_path / "in.json"
    path.write_text(json.dumps({"kind": "List", "items": [serving, open_quota]}))
    assert main(["doctor", str(path)], SHARED) == 1
    assert "ResourceQuota gpu limits requests.nvidia.com/gpu to 2 but not " \
           "requests.nvidia.com/gpu.shared" in capsys.readouterr().out
    split = quota("team-a", {"requests.nvidia.com/gpu": "1", "requests.nvidia.com/gpu.shared": "8"})
    path.write_text(json.dumps({"kind": "List", "items": [serving, split]}))
    assert main(["doctor", str(path)], SHARED) == 0
    assert "ok: namespace team-a: ResourceQuota gpu bounds" in capsys.readouterr().out


def test_the_chart_renders_the_quotas_castslice_prints_for_it(tmp_path, capsys):
    from tests.test_helm import HELM, render

    if not HELM.exists():
        pytest.skip("helm is fetched by `make test`")
    items = [quota("team-a", {"requests.nvidia.com/gpu": "2", "pods": "9"}, labels={"t": "a"})]
    code, values, _ = run(tmp_path, items, SHARED, capsys, "--shared-gpus", "1",
                          "--output", "values")
    assert code == 0
    (tmp_path / "values.yaml").write_text(values)
    code, printed, _ = run(tmp_path, items, SHARED, capsys, "--shared-gpus", "1")
    (expected,) = yaml.safe_load_all(printed)
    (rendered,) = [d for d in render("-f", str(tmp_path / "values.yaml"))
                   if d["kind"] == "ResourceQuota"]
    assert rendered["spec"] == expected["spec"]
    assert rendered["metadata"]["labels"]["t"] == "a"
    assert rendered["metadata"]["namespace"] == "team-a"
