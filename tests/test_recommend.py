"""`castslice recommend` against a real Prometheus holding a week of dcgm-exporter and
kube-state-metrics series; expected figures are computed here from the samples written."""

import json
import math
import os
import shutil
import time

import pytest

from castslice.cli import main
from tests.kube import gpu_container, pod_review
from tests.prometheus import STEP, Gpu, prometheus, prometheus_quantile
from tests.served import serve

END = int(time.time()) // STEP * STEP
R, PRICE, TARGET = 8, 2.5, 80
ENV = {"CASTSLICE_SLICES_PER_GPU": str(R), "CASTSLICE_GPU_HOURLY_COST": str(PRICE)}
CHAT = [f"chat-7d9f8c6b5-{i}" for i in ("abcde", "fghij", "klmno")]


def exported(namespace, pod, container):
    """Attributed as dcgm-exporter is when scraped without honorLabels."""
    return {"exported_namespace": namespace, "exported_pod": pod,
            "exported_container": container, "namespace": "gpu-operator",
            "pod": "dcgm-exporter-x7k2p", "container": "exporter"}


def plain(namespace, pod, container):
    return {"namespace": namespace, "pod": pod, "container": container}


GPUS = [
    *[Gpu(f"GPU-chat-{n}", [exported("inference", pod, "server")],
          util=lambda i, n=n: math.nan if i % 1000 == 17 else 3 + (i * 7 + n) % 10,
          used=lambda i: 2000 + (i * 13) % 2000) for n, pod in enumerate(CHAT)],
    Gpu("GPU-train-1", [plain("training", "trainer-0", "main")],
        util=lambda i: 85 + i % 15, used=lambda i: 30000),
    Gpu("GPU-nb-1", [plain("research", "jupyter-alice", "notebook")],
        util=lambda i: 10 + i % 5, used=lambda i: 15000 + i % 1000),
    Gpu("GPU-over-1", [plain("batch", "batch-sim-6c8d9f7b4-aaaaa", "sim"),
                       plain("batch", "batch-sim-6c8d9f7b4-bbbbb", "sim")],
        util=lambda i: 96 + i % 4, used=lambda i: 39500),
    Gpu("GPU-anon-1", [], util=lambda i: 1, used=lambda i: 100),
    Gpu("GPU-nan-1", [plain("training", "broken-0", "main")], util=lambda i: math.nan,
        used=lambda i: 500),
    Gpu("GPU-new-1", [plain("inference", "fresh-5f6d7c8b9-zzzzz", "server")],
        util=lambda i: 5, used=lambda i: 1000, seconds=2 * 3600),
]
OWNERS = [
    *[{"namespace": "inference", "pod": pod, "owner_kind": "ReplicaSet",
       "owner_name": "chat-7d9f8c6b5", "owner_is_controller": "true"} for pod in CHAT],
    {"namespace": "training", "pod": "trainer-0", "owner_kind": "StatefulSet",
     "owner_name": "trainer", "owner_is_controller": "true"},
    {"namespace": "research", "pod": "jupyter-alice", "owner_kind": "<none>",
     "owner_name": "<none>", "owner_is_controller": "<none>"},
    {"namespace": "inference", "pod": "fresh-5f6d7c8b9-zzzzz", "owner_kind": "ReplicaSet",
     "owner_name": "fresh-5f6d7c8b9", "owner_is_controller": "true"},
]


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    if not (shutil.which("prometheus") and shutil.which("promtool")) and not os.environ.get("CI"):
        pytest.skip("needs Debian's prometheus package (.ci/run installs it: apt-get install "
                    "prometheus); CI fails instead of skipping")
    with prometheus(tmp_path_factory.mktemp("prometheus"), GPUS, OWNERS, END) as found:
        yield found


def run(capsys, url, *args, env=ENV):
    code = main(["recommend", "--prometheus", url, "--at", str(END), *args], env)
    out = capsys.readouterr()
    return code, out.out, out.err


def expected(gpus, presets=(1, 2, 4)):
    """Pods per card by compute and memory, and the grant that packs them, from the samples."""
    p95 = max(prometheus_quantile(0.95, g.values["util"]) for g in gpus)
    peak = max(max(g.values["used"]) for g in gpus)
    fit = max(1, min(int(TARGET // p95), int(40960 // peak), R))
    if fit == 1:
        return p95, peak, 1, None
    units = next(p for p in presets if p >= R // (fit + 1) + 1)
    return p95, peak, R // units, units


def test_recommendations_follow_the_measured_week(capsys, url):
    code, out, err = run(capsys, url, "--output", "json")
    assert code == 0, err
    report = json.loads(out)
    found = {(w["namespace"], w["kind"], w["name"]): w for w in report["workloads"]}
    chat = found[("inference", "Deployment", "chat")]
    p95, peak, fit, units = expected(GPUS[:3])
    assert (chat["p95"], chat["peak_mib"], chat["fit"], chat["units"]) == (
        pytest.approx(p95), peak, fit, units)
    assert chat["grant"] == "workloadType=inference" and units == 2 and chat["running"] == 3
    assert chat["saved_per_hour"] == pytest.approx(3 * (1 - units / R) * PRICE)
    notebook = found[("research", "Pod", "jupyter-alice")]
    p95, peak, fit, units = expected([GPUS[4]])
    assert (notebook["fit"], notebook["units"], notebook["limited_by"]) == (fit, units, "memory")
    assert notebook["grant"] == "workloadType=training"
    trainer = found[("training", "StatefulSet", "trainer")]
    assert (trainer["fit"], trainer["grant"]) == (1, "whole GPU")
    assert ("batch", "Deployment", "batch-sim") not in found  # shared GPUs are no baseline
    (over,) = report["over_packed"]
    assert over["uuid"] == "GPU-over-1" and over["workloads"] == ["batch/Deployment/batch-sim"]
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert skipped["Deployment/fresh"].startswith("too little data: 2.0 h")
    assert "without Pod labels" in skipped["GPU-anon-1"]
    assert skipped["training/broken-0/main"].startswith("only NaN samples")
    assert report["rules"] == [
        {"name": "recommended-inference", "namespaces": ["inference"], "optimize": True,
         "workloadType": "inference"},
        {"name": "recommended-research", "namespaces": ["research"], "optimize": True,
         "workloadType": "training"}]
    assert "DCGM_FI_DEV_GPU_UTIL[7d]" in report["source"]["p95"]


def test_the_table_says_where_each_figure_comes_from(capsys, url):
    code, out, _ = run(capsys, url)
    assert code == 0
    assert "quantile_over_time(0.95, DCGM_FI_DEV_GPU_UTIL[7d])" in out
    assert "over-packed: GPU GPU-over-1" in out and "skipped: inference/Deployment/fresh" in out
    assert "Saved: $" in out


def test_recommend_config_replay_is_one_loop(capsys, url, tmp_path):
    code, out, _ = run(capsys, url, "--output", "env")
    assert code == 0
    proposed = tmp_path / "proposed.env"
    proposed.write_text(out)
    assert main(["config", "--env-file", str(proposed)], {}) == 0
    capsys.readouterr()
    target = tmp_path / "captured"
    with serve(tmp_path, {"CASTSLICE_CAPTURE": f"file://{target}"}, workers=1) as served:
        for i, pod in enumerate(CHAT):
            review = pod_review({}, namespace="inference", containers=[gpu_container("s", "1")])
            review["request"]["uid"] = f"uid-{i}"
            review["request"]["object"]["metadata"]["generateName"] = pod[:-5]
            served.admit(review)
        assert served.stop() == 0
    code = main(["replay", f"file://{target}", "--env-file", str(proposed), "--output",
                 "json"], {})
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["changed"] == 3
    assert report["changes"][0]["kind"] == "newly converted"
    assert report["changes"][0]["slices_after"] == 3 * 2


@pytest.mark.parametrize(("args", "env", "message"), [
    (["--window", "a week"], ENV, "use a duration such as 7d"),
    (["--target-util", "0"], ENV, "--target-util must be a percentage"),
    ([], {}, "needs CASTSLICE_SLICES_PER_GPU"),
    (["--user", "me"], ENV, "--user needs --password-file"),
    (["--bearer-token-file", "/nonexistent"], ENV, "cannot read /nonexistent"),
])
def test_bad_input_is_one_line(capsys, url, args, env, message):
    code, _, err = run(capsys, url, *args, env=env)
    assert code == 1 and message in err and err.count("\n") == 1


def test_an_unreachable_prometheus_is_one_line(capsys):
    from tests.served import free_port

    code, _, err = run(capsys, f"http://127.0.0.1:{free_port()}")
    assert code == 1 and "unreachable" in err and err.count("\n") == 1


def test_a_query_prometheus_refuses_is_one_line(url):
    from castslice.usage.prometheus import Prometheus, PrometheusError

    with pytest.raises(PrometheusError) as refused:
        Prometheus(url).query("sum(DCGM_FI_DEV_GPU_UTIL")
    assert "HTTP 400" in str(refused.value) and "\n" not in str(refused.value)


def test_a_window_with_no_dcgm_series_is_named(capsys, url):
    code, _, err = run(capsys, url, "--at", str(END - 30 * 86400), "--window", "1d")
    assert code == 1
    assert "no DCGM_FI_DEV_GPU_UTIL series over the last 1d" in err


def test_mig_recommends_the_smallest_profile_that_holds_compute_and_memory(capsys, url):
    code, out, _ = run(capsys, url, "--output", "json", env={"CASTSLICE_BACKEND": "mig"})
    assert code == 0
    found = {w["name"]: w for w in json.loads(out)["workloads"]}
    # chat: p95 ~12 % of 7 slices / 80 % -> 1.05 slices, 4 GB peak: 2g.10gb (inference)
    assert (found["chat"]["profile"], found["chat"]["grant"]) == ("2g.10gb",
                                                                  "workloadType=inference")
    assert found["jupyter-alice"]["profile"] == "4g.20gb"  # 15.6 GB peak needs 20 GB


def test_an_a30_ladder_on_a100_cards_is_a_named_skip(capsys, url):
    env = {"CASTSLICE_BACKEND": "mig", "CASTSLICE_MIG_PROFILES": "1g.6gb,2g.12gb,4g.24gb"}
    code, out, _ = run(capsys, url, "--output", "json", env=env)
    assert code == 1
    reasons = [s["reason"] for s in json.loads(out)["skipped"]]
    assert any("set CASTSLICE_MIG_PROFILES for this card" in r for r in reasons)
