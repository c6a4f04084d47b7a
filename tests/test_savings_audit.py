"""`castslice savings` and `castslice audit` on a Pod list shaped like kubectl's output.

Expected figures are computed by hand from tests/data/pods.json (4 slices per card, $2.50):
  ml-inference/inference  2 Pods, 2+2 slices, 1+1 GPUs asked  -> 4 slices = 1.0 card
  ml-training/training    1 Pod (another Succeeded, not counted), max(8, init 4) = 8 slices,
                          2 GPUs asked                         -> 2.0 cards
  research/dev            1 Pod, 1 slice, 1 GPU asked          -> 0.25 card
  without sharing 5 cards; with sharing 1.0 + 2.0 + 0.25 = 3.25 cards' worth (each Pod
  frees gpus x (1 - s/R), castslice.cluster.cards); saved 1.75 x $2.50 = $4.375/h, shown
  $4.38, x 730 h = $3,193.75/month.
"""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from castslice.cli import main
from castslice.settings.config import Config
from tests.kube import admitted_pod, answer, gpu_container, pod_review

PODS = Path(__file__).parent / "data" / "pods.json"


def run(argv, env=None, capsys=None):
    code = main(argv, env or {})
    out, err = capsys.readouterr()
    return code, out, err


def test_savings_json_has_the_hand_computed_figures(capsys):
    code, out, _ = run(["savings", str(PODS), "--output", "json", "--price", "2.5",
                        "--slices-per-gpu", "4"], capsys=capsys)
    report = json.loads(out)
    assert code == 0
    assert report["gpus_without_sharing"] == 5 and report["gpus_with_sharing"] == 3.25
    assert report["saved_dollars_per_hour"] == 4.38
    assert report["saved_dollars_per_month"] == 3193.75
    assert report["groups"] == [
        {"namespace": "ml-inference", "workload_type": "inference", "pods": 2, "slices": 4,
         "gpus_without_sharing": 2, "gpus_with_sharing": 1.0},
        {"namespace": "ml-training", "workload_type": "training", "pods": 1, "slices": 8,
         "gpus_without_sharing": 2, "gpus_with_sharing": 2.0},
        {"namespace": "research", "workload_type": "dev", "pods": 1, "slices": 1,
         "gpus_without_sharing": 1, "gpus_with_sharing": 0.25},
    ]


def test_savings_table_reads_price_and_card_size_from_the_environment(capsys):
    env = {"CASTSLICE_GPU_HOURLY_COST": "2.5", "CASTSLICE_SLICES_PER_GPU": "4"}
    code, out, _ = run(["savings", str(PODS)], env, capsys)
    assert code == 0
    assert "ml-training          training         1       8             2        2.0" in out
    assert "Cards needed: 5 without sharing, 3.25 with sharing (4 slices per card)." in out
    assert "Saved: $4.38 per hour, $3,193.75 per month at $2.5/GPU-hour" in out


def test_savings_without_card_size_is_a_one_line_error(capsys):
    code, _, err = run(["savings", str(PODS)], capsys=capsys)
    assert code == 1
    assert err == ("castslice: needs --slices-per-gpu or CASTSLICE_SLICES_PER_GPU "
                   "(a whole number >= 1)\n")


def test_savings_without_price_reports_cards_only(capsys):
    code, out, _ = run(["savings", str(PODS), "--slices-per-gpu", "4", "--output", "json"],
                       capsys=capsys)
    assert code == 0 and json.loads(out)["saved_dollars_per_hour"] is None


def test_audit_lists_opted_in_pods_that_slipped_through(capsys):
    code, out, _ = run(["audit", str(PODS)], capsys=capsys)
    assert code == 1
    assert out == (
        "2 opted-in Pod(s) still hold nvidia.com/gpu (admitted while CastSlice was "
        "unreachable):\n"
        "  ml-inference/llm-server-7d9f8b6c5d-slip1  (opted in by castops.io/optimize=true)\n"
        "  batch/nightly-28391-x7z  (opted in by castops.io/optimize=true)\n"
        "Recreate them through admission:\n"
        "  kubectl -n ml-inference rollout restart deployment/llm-server\n"
        "  kubectl -n batch delete pod nightly-28391-x7z  # Job/nightly-28391 creates it again\n")


def test_audit_follows_rules_and_exclusions(capsys):
    env = {"CASTSLICE_RULES": '[{"namespaces": ["default", "research"]}]',
           "CASTSLICE_EXCLUDE_NAMESPACES": "kube-system,batch"}
    code, out, _ = run(["audit", str(PODS)], env, capsys)
    assert code == 1
    assert "batch/" not in out and "whole-gpu-on-purpose" not in out
    assert "llm-server-7d9f8b6c5d-slip1" in out


def test_audit_of_a_clean_cluster_exits_zero(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"apiVersion": "v1", "kind": "List", '
                                                  '"items": []}'))
    assert run(["audit", "-"], capsys=capsys)[:2] == (0, "No opted-in Pod holds nvidia.com/gpu.\n")


def test_savings_page_renders_in_chromium_with_the_chart(tmp_path, capsys):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    code, out, _ = run(["savings", str(PODS), "--output", "html", "--price", "2.5",
                        "--slices-per-gpu", "4"], capsys=capsys)
    page = tmp_path / "savings.html"
    page.write_text(out)
    shot = Path("test-artifacts") / "savings.png"
    shot.parent.mkdir(exist_ok=True)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    subprocess.run([chromium, *flags, f"--screenshot={shot.resolve()}",
                    "--window-size=800,600", page.as_uri()], capture_output=True, timeout=60,
                   check=True)
    assert code == 0
    assert dom.count('class="without"') == 3 and dom.count('class="with"') == 3
    assert "Saved: <b>$4.38</b> per hour" in dom
    assert shot.stat().st_size > 5000


def admitted(policy_env, namespace, annotations, *gpus):
    """A running Pod as the back-end in `policy_env` admitted it."""
    review = pod_review(annotations, namespace=namespace,
                        containers=[gpu_container(f"c{i}", str(n)) for i, n in enumerate(gpus)])
    pod = admitted_pod(review, answer(review, Config.from_env(policy_env).policy))
    return pod | {"status": {"phase": "Running"}}


def savings_of(tmp_path, pods, env, capsys, *flags):
    path = tmp_path / "pods.json"
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": pods}))
    code, out, _ = run(["savings", str(path), "--output", "json", *flags], env, capsys)
    assert code == 0
    return json.loads(out)


def test_savings_counts_mig_devices_as_their_share_of_seven(tmp_path, capsys):
    # 4g x1 + 3g x2 + 1g x1 = 11/7 cards for 4 GPUs asked; saved (4 - 11/7) x $2 = $4.86/h
    env = {"CASTSLICE_BACKEND": "mig"}
    on = {"castops.io/optimize": "true"}
    pods = [admitted(env, "ml", on | {"castops.io/workload-type": "training"}, 1),
            admitted(env, "ml", on | {"castops.io/slice-ratio": "3"}, 1, 1),
            admitted(env, "dev", on | {"castops.io/workload-type": "dev"}, 1)]
    report = savings_of(tmp_path, pods, env, capsys, "--price", "2", "--slices-per-gpu", "99")
    assert report["slices_per_gpu"] == 7  # a MIG card is 7 compute slices, whatever the flag
    assert report["gpus_without_sharing"] == 4 and report["gpus_with_sharing"] == 1.57
    assert report["saved_dollars_per_hour"] == 4.86
    assert [(g["namespace"], g["slices"], g["gpus_without_sharing"]) for g in report["groups"]] == [
        ("dev", 1, 1), ("ml", 4, 1), ("ml", 6, 2)]


A30 = {"CASTSLICE_BACKEND": "mig", "CASTSLICE_MIG_PROFILES": "1g.6gb,2g.12gb,4g.24gb"}


def test_savings_on_a30_count_a_card_as_four_compute_slices(tmp_path, capsys):
    # training -> 4g.24gb: the whole A30, saves nothing; inference -> 2g.12gb: half a card
    on = {"castops.io/optimize": "true"}
    training = admitted(A30, "ml", on | {"castops.io/workload-type": "training"}, 1)
    assert training["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-4g.24gb"]
    report = savings_of(tmp_path, [training], A30, capsys, "--price", "2")
    assert report["slices_per_gpu"] == 4
    assert report["gpus_with_sharing"] == 1.0 and report["saved_dollars_per_hour"] == 0.0
    inference = admitted(A30, "ml", on | {"castops.io/workload-type": "inference"}, 1)
    report = savings_of(tmp_path, [training, inference], A30, capsys, "--price", "2")
    assert report["gpus_with_sharing"] == 1.5 and report["saved_dollars_per_hour"] == 1.0


def test_savings_charges_a_dra_mig_claim_by_its_real_profile(tmp_path, capsys):
    # inference: 3 claims of 2g (6/7), training: 4g (4/7), slice-ratio 5: 7g.40gb, a whole card
    env = {"CASTSLICE_BACKEND": "dra"}
    on = {"castops.io/optimize": "true"}
    pods = [admitted(env, "ml", on | {"castops.io/workload-type": "inference"}, 1, 1, 1),
            admitted(env, "ml", on | {"castops.io/workload-type": "training"}, 1),
            admitted(env, "ml", on | {"castops.io/slice-ratio": "5"}, 1),
            admitted({}, "ml", on, 1)]  # admitted by extended: not CastSlice's claims
    report = savings_of(tmp_path, pods, env, capsys, "--price", "7")
    assert report["slices_per_gpu"] == 7
    assert report["gpus_without_sharing"] == 5 and report["gpus_with_sharing"] == 2.43
    assert report["saved_dollars_per_hour"] == 18.0  # (5 - 17/7) x $7; the 7g claim saves 0
    assert [(g["workload_type"], g["pods"], g["slices"]) for g in report["groups"]] == [
        ("inference", 1, 6), ("training", 1, 4), ("unspecified", 1, 7)]


def test_savings_counts_each_shares_claim_as_its_shares_of_n(tmp_path, capsys):
    # castslice-gpu-2 x3 and castslice-gpu-4 x1 on cards of 4 shares: 1.5 + 1 = 2.5 cards
    env = {"CASTSLICE_BACKEND": "dra", "CASTSLICE_DRA_DEVICES": "shares",
           "CASTSLICE_SLICES_PER_GPU": "4", "CASTSLICE_PRESETS": "inference=2,training=4"}
    on = {"castops.io/optimize": "true"}
    pods = [admitted(env, "ml", on | {"castops.io/workload-type": "inference"}, 1, 1, 1),
            admitted(env, "ml", on | {"castops.io/workload-type": "training"}, 1)]
    report = savings_of(tmp_path, pods, env, capsys)
    assert report["gpus_without_sharing"] == 4 and report["gpus_with_sharing"] == 2.5
    assert [(g["workload_type"], g["pods"], g["slices"]) for g in report["groups"]] == [
        ("inference", 1, 6), ("training", 1, 4)]


def test_savings_groups_memory_asks_and_counts_their_grant(tmp_path, capsys):
    # 40Gi cards of 8 units: 9Gi is 2 units, a quarter card; 3Gi is 1 unit. Saved (2 - 3/8) x $2
    env = {"CASTSLICE_GPU_MEMORY": "40Gi", "CASTSLICE_SLICES_PER_GPU": "8",
           "CASTSLICE_MAX_SLICES": "8"}
    on = {"castops.io/optimize": "true"}
    pods = [admitted(env, "ml", {**on, "castops.io/gpu-memory": "9Gi"}, 1),
            admitted(env, "ml", {**on, "castops.io/gpu-memory": "3Gi",
                                 "castops.io/workload-type": "training"}, 1)]
    report = savings_of(tmp_path, pods, env, capsys, "--price", "2")
    assert report["groups"] == [
        {"namespace": "ml", "workload_type": "memory 3Gi", "pods": 1, "slices": 1,
         "gpus_without_sharing": 1, "gpus_with_sharing": 0.125},
        {"namespace": "ml", "workload_type": "memory 9Gi", "pods": 1, "slices": 2,
         "gpus_without_sharing": 1, "gpus_with_sharing": 0.25}]
    assert report["saved_dollars_per_hour"] == round((2 - 3 / 8) * 2, 2)
