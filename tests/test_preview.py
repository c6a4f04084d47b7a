"""`castslice replay SOURCE --env-file proposed.env`: real admissions captured by a real
server under one configuration, decided again under it and under a proposed one."""

import json
import os

import boto3
import pytest
from moto.server import ThreadedMotoServer

from castslice.cli import main
from tests.kube import gpu_container, pod_review
from tests.served import free_port, serve

# The server runs with training=3: the report's "before" must come from what was recorded,
# not from the replaying process (which has no CASTSLICE_* variable at all).
SERVED = {"CASTSLICE_PRESETS": "training=3,inference=2,batch=2,dev=1"}
PROPOSED = ('CASTSLICE_PRESETS=training=8,inference=2,batch=2,dev=1\n'
            '# research opts in by namespace\n'
            'CASTSLICE_RULES=[{"name": "research", "namespaces": ["research"], '
            '"optimize": true, "workloadType": "dev"}]\n')
ON = {"castops.io/optimize": "true"}
PODS = [  # (namespace, generateName, annotations, GPUs)
    ("ml-training", "trainer-", ON | {"castops.io/workload-type": "training"}, "1"),
    ("ml-inference", "server-", ON | {"castops.io/workload-type": "inference"}, "1"),
    ("research", "notebook-", {}, "1"),
    ("research", "opted-out-", {"castops.io/optimize": "false"}, "1"),
    ("web", "api-", {}, "1"),
]


def send(served):
    conn = served.connect()
    for round_ in range(2):
        for i, (namespace, prefix, annotations, gpus) in enumerate(PODS):
            review = pod_review(annotations, namespace=namespace,
                                containers=[gpu_container("main", gpus)])
            review["request"]["uid"] = f"uid-{round_}-{i}"
            review["request"]["object"]["metadata"]["generateName"] = prefix
            served.admit(review, conn)


def preview(source, tmp_path, capsys, *extra):
    proposed = tmp_path / "proposed.env"
    proposed.write_text(PROPOSED)
    code = main(["replay", source, "--env-file", str(proposed), *extra], {})
    return code, capsys.readouterr()


def check_report(code, out):
    assert code == 1
    report = json.loads(out)
    assert report["events"] == 10 and report["changed"] == 4 and report["unrecorded"] == 0
    assert report["changes"] == [
        {"namespace": "ml-training", "kind": "slices changed", "events": 2, "gpus_before": 2,
         "gpus_after": 2, "slices_before": 6, "slices_after": 16, "profiles": {}},
        {"namespace": "research", "kind": "newly converted", "events": 2, "gpus_before": 0,
         "gpus_after": 2, "slices_before": 0, "slices_after": 2, "profiles": {}}]
    named = {kind: {(e["namespace"], e["pod"]) for e in found}
             for kind, found in report["examples"].items()}
    assert named == {"slices changed": {("ml-training", "trainer-*")},
                     "newly converted": {("research", "notebook-*")}}
    example = report["examples"]["slices changed"][0]
    assert example["before"].startswith("nvidia.com/gpu x1 -> nvidia.com/gpu-shared x3 (3 per")
    assert example["after"].startswith("nvidia.com/gpu x1 -> nvidia.com/gpu-shared x8 (8 per")
    assert report["examples"]["newly converted"][0]["before"] == "passed: not-opted-in"


def test_a_proposed_configuration_names_exactly_the_pods_it_changes(tmp_path, capsys):
    target = tmp_path / "captured"
    with serve(tmp_path, SERVED | {"CASTSLICE_CAPTURE": f"file://{target}"}, workers=2) as served:
        send(served)
        assert served.stop() == 0
    code, out = preview(f"file://{target}", tmp_path, capsys, "--output", "json")
    check_report(code, out.out)
    code, table = preview(f"file://{target}", tmp_path, capsys)
    lines = table.out.splitlines()
    assert code == 1
    assert lines[1].split() == ["ml-training", "slices", "changed", "2", "2->2", "6->16"]
    assert lines[-1].startswith("10 events, 4 would change (") and "events/s)" in lines[-1]


@pytest.fixture
def moto_s3(monkeypatch, capsys):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    capsys.readouterr()  # moto's greeting on stdout
    aws = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in aws.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL_S3"]).create_bucket(Bucket="captures")
    yield aws
    server.stop()


def test_the_same_preview_streams_from_s3_captures(tmp_path, capsys, moto_s3):
    with serve(tmp_path, SERVED | moto_s3 | {"CASTSLICE_CAPTURE": "s3://captures/prod"},
               workers=1) as served:
        send(served)
        assert served.stop() == 0
    code, out = preview("s3://captures/prod", tmp_path, capsys, "--output", "json")
    check_report(code, out.out)


def test_a_broken_proposed_env_file_stops_with_the_servers_message(tmp_path, capsys):
    target = tmp_path / "captured"
    target.mkdir()
    (target / "x.jsonl.gz").write_bytes(b"")
    bad = tmp_path / "bad.env"
    bad.write_text("CASTSLICE_MAX_SLICES=0\n")
    assert main(["replay", f"file://{target}", "--env-file", str(bad)], {}) == 2
    assert capsys.readouterr().err == (
        "castslice: CASTSLICE_MAX_SLICES='0': allowed: a whole number from 1 to 10000\n")


def test_replay_memory_stays_flat_from_2000_to_20000_captured_events(moto_s3):
    from bench.replay import fill, measure

    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTSLICE_")}
    peaks = []
    for events in (2_000, 20_000):
        fill("captures", f"n{events}", events)
        result = measure(f"s3://captures/n{events}", env)
        assert (result["events"], result["exit"]) == (events, 1)
        peaks.append(result["peak_rss_mib"])
    assert peaks[1] - peaks[0] < 6, peaks  # one batch in memory at a time, not the capture


@pytest.mark.parametrize("lines", [
    [b'{"configuration": ["not", "a", "map"]}'],
    [b'{"configuration": {"CASTSLICE_MAX_SLICES": 8}}'],
    [b'{"configuration": {}}', b'[1, 2]'],
    [b'{"configuration": {}}', b'{"uid": "u", "request": {"request": {}}}'],
    [b'{"configuration": {"CASTSLICE_BACKEND": "gpu"}}',
     b'{"uid": "u", "request": {}, "response": {"response": {}}}'],
], ids=["configuration-list", "configuration-int", "not-an-object", "no-response",
        "refused-configuration"])
@pytest.mark.parametrize("extra", [[], ["--current-env"], ["--env-file", "PROPOSED"]])
def test_a_malformed_capture_is_one_line_of_error(tmp_path, capsys, lines, extra):
    from castslice.capture.store import FileStore

    FileStore(tmp_path / "captured").write([line + b"\n" for line in lines])
    proposed = tmp_path / "proposed.env"
    proposed.write_text(PROPOSED)
    args = [str(proposed) if a == "PROPOSED" else a for a in extra]
    assert main(["replay", f"file://{tmp_path / 'captured'}", *args], {}) == 1
    err = capsys.readouterr().err
    assert err.startswith("castslice: file://") and err.count("\n") == 1, err


def what_if(before_env, after_env, annotations):
    """One Pod decided under two configurations, as the preview adds a captured event."""
    from castslice.capture.preview import Preview
    from castslice.functions.admit import admit, check_review
    from castslice.settings.config import Config

    review = pod_review(annotations, containers=[gpu_container("main", "1")])
    preview = Preview()
    kind = preview.add({"namespace": "ml", "uid": "u", "request": review},
                       admit(check_review(review), Config.from_env(before_env).policy),
                       admit(check_review(review), Config.from_env(after_env).policy))
    return kind, preview


MIG = {"CASTSLICE_BACKEND": "mig"}
TRAINING = ON | {"castops.io/workload-type": "training"}


def test_a_what_if_names_a_new_mig_profile_and_shows_it():
    kind, preview = what_if(MIG, MIG | {"CASTSLICE_PRESETS": "training=5"}, TRAINING)
    assert kind == "profile changed"
    assert preview.table(1.0).splitlines()[1].split() == [
        "ml", "profile", "changed", "1", "1->1", "4g.20gb->7g.40gb"]


@pytest.mark.parametrize("backend", ["mig", "dra"])
def test_a_what_if_with_the_same_profile_changes_nothing(backend):
    env = {"CASTSLICE_BACKEND": backend, "CASTSLICE_PRESETS": "training=5"}
    kind, preview = what_if(env, env | {"CASTSLICE_PRESETS": "training=6"}, TRAINING)
    assert kind is None and preview.changed == 0  # castslice-gpu-5 and -6 both claim 7g.40gb


def test_a_what_if_gives_conversions_that_no_longer_fit_their_own_row():
    a30 = MIG | {"CASTSLICE_MIG_PROFILES": "1g.6gb,2g.12gb,4g.24gb"}
    kind, _ = what_if(MIG, a30, ON | {"castops.io/slice-ratio": "7"})
    assert kind == "no longer fits"


def test_current_env_and_a_proposed_env_file_are_refused_together(tmp_path, capsys):
    (tmp_path / "proposed.env").write_text("CASTSLICE_DEFAULT_SLICES=2\n")
    code = main(["replay", f"file://{tmp_path}", "--env-file", str(tmp_path / "proposed.env"),
                 "--current-env"], {})
    assert code == 1
    assert "give one of them" in capsys.readouterr().err
