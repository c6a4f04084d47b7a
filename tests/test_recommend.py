"""`castslice recommend` against a real Prometheus holding a week of dcgm-exporter and
kube-state-metrics series; expected figures are computed here from the samples written."""

import json
import math
import os
import shutil
import time

import pytest

from castslice.cli import main
from castslice.functions.memory import quantity_text
from tests.kube import gpu_container, pod_review
from tests.prometheus import EXPORTER, SPAN, STEP, Gpu, Holder, prometheus, prometheus_quantile
from tests.served import serve

END = int(time.time()) // STEP * STEP
R, PRICE, TARGET = 8, 2.5, 80
DERATE = 24
"""--time-slicing-derate's default: time-sliced co-tenants are fitted within 80 x 0.76."""
ENV = {"CASTSLICE_SLICES_PER_GPU": str(R), "CASTSLICE_GPU_HOURLY_COST": str(PRICE)}
CHAT = [f"chat-7d9f8c6b5-{i}" for i in ("abcde", "fghij", "klmno")]
COUNT = SPAN // STEP
QUARTER = COUNT // 4
JOB_PODS = [f"train-job-{i}" for i in ("q2x7m", "z8k4p", "c3v9n", "m5t1r")]
WINDOW = ("--window", f"{SPAN // 3600}h")


def pod(namespace, name, container):
    """Pod attributes as dcgm-exporter writes them (`transformation/const.go`)."""
    return {"namespace": namespace, "pod": name, "container": container}


def held(namespace, name, container, util, used, **when):
    return Holder(pod(namespace, name, container), util, used, **when)


GPUS = [
    # honorLabels false (the exporter chart's default): workloads under exported_*
    *[Gpu(f"GPU-chat-{n}", [held(
        "inference", name, "server",
        lambda i, n=n: math.nan if i % 1000 == 17 else 3 + (i * 7 + n) % 10,
        lambda i: 2000 + (i * 13) % 2000)])
      for n, name in enumerate(CHAT)],
    Gpu("GPU-train-1", [held("training", "trainer-0", "main", lambda i: 85 + i % 15,
                             lambda i: 30000)]),
    Gpu("GPU-nb-1", [held("research", "jupyter-alice", "notebook", lambda i: 10 + i % 5,
                          lambda i: 15000 + i % 1000)]),
    # shared at once, each Pod's series under KUBERNETES_VIRTUAL_GPUS: over-packed
    Gpu("GPU-over-1", [held("batch", "batch-sim-6c8d9f7b4-aaaaa", "sim", lambda i: 50 + i % 4,
                            lambda i: 19750, vgpu="0"),
                       held("batch", "batch-sim-6c8d9f7b4-bbbbb", "sim", lambda i: 46 + i % 4,
                            lambda i: 19750, vgpu="1")], virtual=True),
    # no workload all window, and one idle for three quarters of it
    Gpu("GPU-idle-1", []),
    Gpu("GPU-late-1", [held("vision", "detector-0", "main", lambda i: 20 + i % 5,
                            lambda i: 6000, start=QUARTER)]),
    # a Job's Pods one after another on one GPU
    Gpu("GPU-job-1", [held("training", name, "main", lambda i: 30 + i % 10, lambda i: 8000,
                           start=k * QUARTER, end=(k + 1) * QUARTER)
                      for k, name in enumerate(JOB_PODS)]),
    Gpu("GPU-nan-1", [held("training", "broken-0", "main", lambda i: math.nan,
                           lambda i: 500)]),
    Gpu("GPU-new-1", [held("inference", "fresh-5f6d7c8b9-zzzzz", "server", lambda i: 5,
                           lambda i: 1000)], seconds=2 * 3600),
    # two MIG instances of one A100: engine activity only, no GPU_UTIL
    Gpu("GPU-mig-1", [held("search", "embed-8c7d6f5e4-aaaaa", "embed", lambda i: 20 + i % 5,
                           lambda i: 3000)], profile="3g.20gb", instance="1",
        memory_mib=19968),
    Gpu("GPU-mig-1", [held("search", "rank-0", "rank", lambda i: 90 + i % 5,
                           lambda i: 15000)], profile="3g.20gb", instance="2",
        memory_mib=19968),
    # a node scraped with honorLabels true: the workload under the plain names, an idle GPU
    # under the exporter's own Pod
    Gpu("GPU-honor-1", [held("audio", "whisper-6b5c4d3e2-ccccc", "asr", lambda i: 4 + i % 3,
                             lambda i: 3000)], honor_labels=True),
    Gpu("GPU-honor-idle", [], honor_labels=True),
]


def owned(namespace, name, kind, owner):
    return {"namespace": namespace, "pod": name, "owner_kind": kind, "owner_name": owner,
            "owner_is_controller": "true"}


OWNERS = [
    *[owned("inference", name, "ReplicaSet", "chat-7d9f8c6b5") for name in CHAT],
    owned("training", "trainer-0", "StatefulSet", "trainer"),
    # kube-state-metrics >= 2.8: a Pod with no owner has empty owner labels
    {"namespace": "research", "pod": "jupyter-alice", "owner_kind": "", "owner_name": "",
     "owner_is_controller": ""},
    owned("inference", "fresh-5f6d7c8b9-zzzzz", "ReplicaSet", "fresh-5f6d7c8b9"),
    *[owned("training", name, "Job", "train-job") for name in JOB_PODS],
    owned("vision", "detector-0", "StatefulSet", "detector"),
    owned("search", "rank-0", "StatefulSet", "rank"),
    owned("gpu-operator", EXPORTER["pod"], "DaemonSet", "nvidia-dcgm-exporter"),
]
"""embed-… and whisper-… have no owner series: their names are guessed."""


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    if not (shutil.which("prometheus") and shutil.which("promtool")) and not os.environ.get("CI"):
        pytest.skip("needs Debian's prometheus package (.ci/run installs it: apt-get install "
                    "prometheus); CI fails instead of skipping")
    with prometheus(tmp_path_factory.mktemp("prometheus"), GPUS, OWNERS, END) as found:
        yield found


def run(capsys, url, *args, env=ENV):
    code = main(["recommend", "--prometheus", url, "--at", str(END), *WINDOW, *args], env)
    out = capsys.readouterr()
    return code, out.out, out.err


def expected(values, presets=(1, 2, 4)):
    """Pods per card by compute and memory, and the grant that packs them, from the samples."""
    p95 = max(prometheus_quantile(0.95, v["util"]) for v in values)
    peak = max(max(v["used"]) for v in values)
    fit = max(1, min(int(TARGET * (1 - DERATE / 100) // p95), int(40960 // peak), R))
    if fit == 1:
        return p95, peak, 1, R  # a whole card is all its R units
    units = next(p for p in presets if p >= R // (fit + 1) + 1)
    return p95, peak, R // units, units


def own_values(gpu, holder):
    """The samples of one holder while it held the GPU."""
    count = gpu.count()
    held_at = [i for i in range(count) if holder.holds(i, count)]
    return {"util": [holder.util(i) for i in held_at], "used": [holder.used(i) for i in held_at]}


def _json(capsys, url, env=ENV):
    code, out, err = run(capsys, url, "--output", "json", env=env)
    assert code in (0, 1) and out, err
    found = json.loads(out)
    return found, {(w["namespace"], w["kind"], w["name"]): w for w in found["workloads"]}


def test_recommendations_follow_the_measured_days(capsys, url):
    report, found = _json(capsys, url)
    chat = found[("inference", "Deployment", "chat")]
    p95, peak, fit, units = expected([g.values for g in GPUS[:3]])
    assert (chat["p95"], chat["peak_mib"], chat["fit"], chat["units"]) == (
        pytest.approx(p95), peak, fit, units)
    assert chat["grant"] == "workloadType=inference" and units == 2 and chat["running"] == 3
    assert chat["metric"] == "DCGM_FI_PROF_GR_ENGINE_ACTIVE" and not chat["guessed"]
    assert chat["saved_per_hour"] == pytest.approx(3 * (1 - units / R) * PRICE)
    trainer = found[("training", "StatefulSet", "trainer")]
    assert (trainer["fit"], trainer["grant"]) == (1, "whole GPU")
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert skipped["Deployment/fresh"].startswith("too little data: 2.0 h")
    assert skipped["training/broken-0/main"].startswith("only NaN samples")
    assert report["scrape_interval_seconds"] == STEP


def test_no_advice_names_the_exporter_and_idle_gpus_are_counted(capsys, url):
    report, found = _json(capsys, url)
    assert not [k for k in found if k[0] == EXPORTER["namespace"] or k[1] == "DaemonSet"]
    assert report["unheld_devices"] == ["GPU-honor-idle", "GPU-idle-1"]
    late = found[("vision", "StatefulSet", "detector")]  # idle a quarter of the window first
    p95, peak, fit, units = expected([own_values(GPUS[7], GPUS[7].holders[0])])
    assert (late["p95"], late["peak_mib"], late["fit"], late["units"]) == (
        pytest.approx(p95), peak, fit, units)
    assert late["hours"] == pytest.approx(36, abs=0.1)


def test_a_bare_pod_is_its_own_workload(capsys, url):
    _, found = _json(capsys, url)
    notebook = found[("research", "Pod", "jupyter-alice")]
    p95, peak, fit, units = expected([GPUS[4].values])
    assert (notebook["p95"], notebook["peak_mib"]) == (pytest.approx(p95), peak)
    assert (notebook["fit"], notebook["units"], notebook["limited_by"]) == (fit, units, "memory")
    assert notebook["grant"] == "workloadType=training" and not notebook["guessed"]
    assert ("research", "ReplicaSet", "jupyter") not in found


def test_pods_one_after_another_are_one_workloads_history(capsys, url):
    _, found = _json(capsys, url)
    job = found[("training", "Job", "train-job")]
    gpu = GPUS[8]
    p95, peak, fit, units = expected([own_values(gpu, h) for h in gpu.holders])
    assert (job["p95"], job["peak_mib"], job["fit"], job["units"], job["pods"]) == (
        pytest.approx(p95), peak, fit, units, sorted(JOB_PODS))
    assert job["hours"] == pytest.approx(SPAN / 3600, abs=0.1)


def test_only_pods_that_held_a_gpu_at_once_are_over_packed(capsys, url):
    report, found = _json(capsys, url)
    (over,) = report["over_packed"]
    assert over["uuid"] == "GPU-over-1" and over["workloads"] == ["batch/Deployment/batch-sim"]
    assert over["peak_mib"] == 39500 and over["card_mib"] == 40960
    # each sharing Pod's own (per-process) GPU_UTIL: the converted workload stays in view
    sim = found[("batch", "Deployment", "batch-sim")]
    assert sim["guessed"] and sim["metric"] == "DCGM_FI_DEV_GPU_UTIL"
    gpu = GPUS[5]
    assert sim["p95"] == pytest.approx(max(
        prometheus_quantile(0.95, own_values(gpu, h)["util"]) for h in gpu.holders))


def test_guessed_names_and_the_metric_are_marked_in_the_table(capsys, url):
    code, out, _ = run(capsys, url)
    assert code == 0
    assert "Deployment/whisper?" in out and "Deployment/batch-sim?*" in out
    assert f"quantile_over_time(0.95, DCGM_FI_PROF_GR_ENGINE_ACTIVE[{WINDOW[1]}]) x 100" in out
    assert "2 device(s) no workload held all window" in out
    assert "over-packed: GPU GPU-over-1" in out and "skipped: inference/Deployment/fresh" in out
    assert "Saved: $" in out and "samples 15 s apart" in out


def test_mig_instances_are_workloads_of_their_own(capsys, url):
    report, _ = _json(capsys, url)
    skipped = {s["name"]: s["reason"] for s in report["skipped"]}
    assert skipped["Deployment/embed"].startswith("ran on MIG instances (3g.20gb)")
    _, found = _json(capsys, url, env={"CASTSLICE_BACKEND": "mig"})
    embed, rank = found[("search", "Deployment", "embed")], found[("search", "StatefulSet", "rank")]
    # embed: p95 ~24 % of a 3g instance = ~10 % of the card, 3 GB: 1g.5gb
    assert (embed["profile"], embed["profiles"]) == ("1g.5gb", ["3g.20gb"])
    # rank: ~94 % of 3 of 7 slices at an 80 % target needs ~3.5 slices: 4g.20gb
    assert rank["profile"] == "4g.20gb"
    assert embed["metric"] == "DCGM_FI_PROF_GR_ENGINE_ACTIVE"


def test_the_scrape_interval_can_be_given(capsys, url):
    code, out, _ = run(capsys, url, "--output", "json", "--scrape-interval", "30")
    found = {w["name"]: w for w in json.loads(out)["workloads"]}
    assert code == 0 and found["train-job"]["hours"] == pytest.approx(2 * SPAN / 3600, abs=0.1)


def replayed(capsys, tmp_path, env_file, pods):
    """The env file `castslice config` accepts, then the chat Pods `pods` captured by a real
    server and replayed under it: (exit code, the what-if report)."""
    proposed = tmp_path / "proposed.env"
    proposed.write_text(env_file)
    assert main(["config", "--env-file", str(proposed)], {}) == 0
    capsys.readouterr()
    target = tmp_path / "captured"
    with serve(tmp_path, {"CASTSLICE_CAPTURE": f"file://{target}"}, workers=1) as served:
        for i, pod in enumerate(pods):
            review = pod_review({}, namespace="inference", containers=[gpu_container("s", "1")])
            review["request"]["uid"] = f"uid-{i}"
            review["request"]["object"]["metadata"]["generateName"] = pod[:-5]
            served.admit(review)
        assert served.stop() == 0
    code = main(["replay", f"file://{target}", "--env-file", str(proposed), "--output",
                 "json"], {})
    return code, json.loads(capsys.readouterr().out)


def test_recommend_config_replay_is_one_loop(capsys, url, tmp_path):
    code, out, _ = run(capsys, url, "--output", "env")
    assert code == 0
    code, report = replayed(capsys, tmp_path, out, CHAT)
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
    assert "no DCGM_FI_PROF_GR_ENGINE_ACTIVE or DCGM_FI_DEV_GPU_UTIL series over the last 1d" in err


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


def test_each_workload_gets_a_memory_ask_of_its_peak_plus_the_headroom(capsys, url):
    _, found = _json(capsys, url)
    chat = found[("inference", "Deployment", "chat")]
    assert chat["memory_ask"] == -(-chat["peak_mib"] * 1.2 // 256) * 256 * 2**20
    code, out, _ = run(capsys, url, "--output", "json", "--memory-headroom", "50")
    chat_50 = {w["name"]: w for w in json.loads(out)["workloads"]}["chat"]
    assert chat_50["memory_ask"] == -(-chat["peak_mib"] * 1.5 // 256) * 256 * 2**20
    code, out, _ = run(capsys, url, "--output", "table")
    assert code == 0 and "MEMORY ASK" in out.splitlines()[0]
    assert "PEAK + 20 % (--memory-headroom)" in out


def test_memory_rules_carry_the_ask_and_the_measured_card_through_config_and_replay(
        capsys, url, tmp_path):
    code, out, _ = run(capsys, url, "--output", "env", "--rules", "memory")
    assert code == 0
    settings = dict(line.split("=", 1) for line in out.splitlines() if not line.startswith("#"))
    assert settings["CASTSLICE_GPU_MEMORY"] == str(40960 * 2**20)  # FB_USED+FREE+RESERVED
    rules = json.loads(settings["CASTSLICE_RULES"])
    inference = next(r for r in rules if r["namespaces"] == ["inference"])
    _, found = _json(capsys, url)
    asks = [w["memory_ask"] for (ns, _, _), w in found.items() if ns == "inference"]
    assert inference["gpuMemory"] == quantity_text(max(asks))
    code, report = replayed(capsys, tmp_path, out, CHAT[:1])
    assert code == 1 and report["changes"][0]["kind"] == "newly converted"
    units = -(-max(asks) * R // (40960 * 2**20))
    assert report["changes"][0]["slices_after"] == units
    assert (f"by rule recommended-inference gpuMemory={quantity_text(max(asks))}"
            in report["examples"]["newly converted"][0]["after"])


def test_a_memory_ask_no_profile_holds_falls_back_to_the_grant(capsys, url):
    mig = {"CASTSLICE_BACKEND": "mig"}
    code, out, _ = run(capsys, url, "--output", "json", "--rules", "memory", env=mig)
    assert code == 0 and any("gpuMemory" in r for r in json.loads(out)["rules"])
    # chat's 4 GB peak + 1000 % is more than 7g.40gb holds: its namespace keeps the grant
    code, out, _ = run(capsys, url, "--output", "json", "--rules", "memory",
                       "--memory-headroom", "1000", env=mig)
    rules = {r["name"]: r for r in json.loads(out)["rules"]}
    assert rules["recommended-inference"] == {
        "name": "recommended-inference", "namespaces": ["inference"], "optimize": True,
        "workloadType": "inference"}
