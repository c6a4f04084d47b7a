"""The command line: same answers as the server, clear one-line errors, honest exit codes."""

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml
from falcon import testing

from castslice.cli import main
from castslice.handler.app import create_app
from castslice.settings.config import Config
from tests.kube import assert_valid_pod, pod_review

ON = {"castops.io/optimize": "true"}


def run(argv, stdin="", env=None, capsys=None, monkeypatch=None):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv, env or {})
    out, err = capsys.readouterr()
    return code, out, err


def test_review_prints_exactly_what_the_server_sends(capsys, monkeypatch):
    review = pod_review({**ON, "castops.io/workload-type": "inference"})
    code, out, _ = run(["review", "-"], orjson.dumps(review).decode(), capsys=capsys,
                       monkeypatch=monkeypatch)
    served = testing.TestClient(create_app(Config())).simulate_post(
        "/mutate", body=orjson.dumps(review), headers={"Content-Type": "application/json"})
    assert code == 0 and out.encode() == served.content  # a newline only at a terminal


def test_review_reads_yaml_too(capsys, monkeypatch):
    code, out, _ = run(["review", "-"], yaml.safe_dump(pod_review(ON)), capsys=capsys,
                       monkeypatch=monkeypatch)
    assert code == 0 and json.loads(out)["response"]["patchType"] == "JSONPatch"


@pytest.mark.parametrize(("stdin", "says"), [
    ("", "empty; expected an AdmissionReview (JSON or YAML)"),
    ("{: nope", "neither JSON nor YAML"),
    ('{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
     "request.uid"),
])
def test_review_errors_are_one_line(stdin, says, capsys, monkeypatch):
    code, out, err = run(["review", "-"], stdin, capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and out == "" and says in err and len(err.splitlines()) == 1


def test_missing_file_is_one_line(capsys, monkeypatch):
    code, _, err = run(["review", "/nonexistent.json"], capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert err == "castslice: cannot read /nonexistent.json: No such file or directory\n"


MANIFESTS = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: ollama-inference, namespace: ml}
spec:
  selector: {matchLabels: {app: ollama}}
  template:
    metadata:
      labels: {app: ollama}
      annotations: {castops.io/optimize: "true", castops.io/workload-type: inference}
    spec:
      containers:
      - name: ollama
        image: ollama/ollama
        resources: {limits: {nvidia.com/gpu: 1}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 2 * * *"
  jobTemplate:
    spec:
      template:
        metadata: {annotations: {castops.io/optimize: "true", castops.io/slice-ratio: "3"}}
        spec:
          restartPolicy: Never
          containers:
          - name: train
            image: trainer:1
            resources: {limits: {nvidia.com/gpu: "1"}, requests: {nvidia.com/gpu: "1"}}
---
apiVersion: v1
kind: Pod
metadata: {name: notebook, annotations: {castops.io/optimize: "yes"}}
spec:
  containers:
  - {name: lab, image: jupyter:1, resources: {limits: {nvidia.com/gpu: 1}}}
---
apiVersion: v1
kind: Service
metadata: {name: ollama}
spec: {ports: [{port: 80}]}
"""


def test_mutate_previews_workloads_and_pods(capsys, monkeypatch):
    code, out, err = run(["mutate", "-"], MANIFESTS, capsys=capsys, monkeypatch=monkeypatch)
    deployment, cronjob, pod, service = yaml.safe_load_all(out)
    assert code == 0
    limits = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"nvidia.com/gpu-shared": "2"}
    assert "castops.io/sliced" in deployment["spec"]["template"]["metadata"]["annotations"]
    job_pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]
    assert job_pod["spec"]["containers"][0]["resources"]["requests"] == {
        "nvidia.com/gpu-shared": "3"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": 1}
    assert 'Pod/notebook: warning: castops.io/optimize="yes" ignored' in err
    assert service == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ollama"},
                       "spec": {"ports": [{"port": 80}]}}
    assert_valid_pod({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"},
                      **{k: v for k, v in job_pod.items() if k != "metadata"}})


def test_mutate_reports_denials_with_exit_1(capsys, monkeypatch):
    manifest = MANIFESTS.replace('castops.io/slice-ratio: "3"', 'castops.io/slice-ratio: "x"')
    code, _, err = run(["mutate", "-"], manifest, env={"CASTSLICE_ON_INVALID": "deny"},
                       capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1
    assert 'CronJob/nightly: denied: castops.io/slice-ratio="x" is not valid' in err


def test_mutate_rejects_broken_yaml_in_one_line(capsys, monkeypatch):
    code, _, err = run(["mutate", "-"], "a: [", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and err.startswith("castslice: -: neither JSON nor YAML")
    assert err.count("\n") == 1


@pytest.fixture
def events_copy(tmp_path):
    shutil.copytree("events", tmp_path / "events")
    return tmp_path / "events"


def test_replay_of_the_golden_events_is_clean(events_copy, capsys, monkeypatch):
    code, out, _ = run(["replay", str(events_copy)], capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and out.endswith("0 changed, 0 updated\n")


def test_replay_shows_a_diff_and_exits_1_when_config_changes_answers(events_copy, capsys,
                                                                     monkeypatch):
    env = {"CASTSLICE_PRESETS": "training=6,inference=2,batch=2,dev=1"}
    code, out, _ = run(["replay", str(events_copy)], env=env, capsys=capsys,
                       monkeypatch=monkeypatch)
    assert code == 1
    assert "--- optimize-training-four-slices expected" in out
    assert '-        "value": "4"' in out and '+        "value": "6"' in out
    changed = {line.split()[1] for line in out.splitlines() if line.startswith("--- ")}
    assert changed == {"optimize-training-four-slices", "mig-training-gets-4g-profile",
                       "dra-keeps-pod-own-claims",  # every case using the training preset
                       "invalid-gpu-memory-warns"}
    total = len(list(events_copy.glob("*.json")))
    assert out.splitlines()[-1] == f"{total} events, {total - 4} unchanged, 4 changed, 0 updated"


def test_replay_update_rewrites_expectations(events_copy, capsys, monkeypatch):
    env = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared"}
    assert run(["replay", str(events_copy), "--update"], env=env, capsys=capsys,
               monkeypatch=monkeypatch)[0] == 0
    assert run(["replay", str(events_copy)], env=env, capsys=capsys,
               monkeypatch=monkeypatch)[0] == 0
    assert run(["replay", str(events_copy)], capsys=capsys, monkeypatch=monkeypatch)[0] == 1


def test_replay_of_a_missing_directory_is_one_line(capsys, monkeypatch):
    code, _, err = run(["replay", "/nonexistent"], capsys=capsys, monkeypatch=monkeypatch)
    assert code == 1 and err == "castslice: /nonexistent: not a directory of events\n"


def test_config_prints_the_effective_configuration(capsys, monkeypatch):
    code, out, _ = run(["config"], env={"CASTSLICE_NAMESPACE": "castslice"}, capsys=capsys,
                       monkeypatch=monkeypatch)
    shown = json.loads(out)
    assert code == 0
    assert shown["CASTSLICE_EXCLUDE_NAMESPACES"] == ["castslice", "kube-system"]
    assert shown["CASTSLICE_TARGET_RESOURCE"] == "nvidia.com/gpu-shared"


def test_module_entry_point_runs_as_a_process():
    result = subprocess.run([sys.executable, "-m", "castslice", "review", "-"], input="[]",
                            capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert result.stderr == "castslice: -: body must be a JSON object (an AdmissionReview)\n"


@pytest.mark.parametrize("case", ["mig-training-gets-4g-profile", "optimize-training-four-slices",
                                  "dra-two-gpu-container-left-unchanged"])
def test_review_answers_a_golden_file_as_it_is_under_its_own_env(case, capsys):
    from castslice.offline.events import load_cases, readable

    (golden,) = [c for c in load_cases(Path("events")) if c.name == case]
    assert main(["review", f"events/{case}.json"], {}) == 0
    assert readable(json.loads(capsys.readouterr().out)) == golden.expected
