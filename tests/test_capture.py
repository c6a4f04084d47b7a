"""Capture and replay: redaction, a queue that never waits, S3 through moto, real servers."""

import base64
import gzip
import logging
import threading
from datetime import UTC, datetime

import boto3
import orjson
from moto import mock_aws
from moto.server import ThreadedMotoServer

from castslice.capture.recorder import Recorder
from castslice.capture.redact import REDACTED, redact
from castslice.capture.replay import captured
from castslice.capture.store import CONFIGURATION, FileStore, S3Store, decode
from castslice.cli import main
from castslice.handler.metrics import Metrics
from castslice.settings.config import Config
from tests.kube import answer, pod_review
from tests.served import free_port, serve

SECRET = "planted-secret-9c2e"
ON = {"castops.io/optimize": "true", "castops.io/workload-type": "training"}


def secret_review(uid="u-1", annotations=ON):
    review = pod_review({**annotations, "vault.example/token": SECRET})
    review["request"]["uid"] = uid
    container = review["request"]["object"]["spec"]["containers"][0]
    container["env"] = [{"name": "TOKEN", "value": SECRET},
                        {"name": "FROM", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    container["args"] = ["--password", "args-kept-unless-asked"]
    return review


def recorder(store, queue_size=100, **changes):
    config = Config(**changes)
    return Recorder(lambda: store, queue_size=queue_size, sample=config.capture_sample,
                    redact_fields=config.capture_redact,
                    redact_annotations=config.capture_redact_annotations,
                    stamp={"version": "test", "config": config.fingerprint()},
                    counters=Metrics(config), logger=logging.getLogger("castslice-test"),
                    configuration=config.as_env())


def test_redaction_removes_secrets_and_keeps_the_decision():
    review = secret_review()
    cleaned = redact(review, {"args"}, Config().capture_redact_annotations)
    assert SECRET not in orjson.dumps(cleaned).decode()
    container = cleaned["request"]["object"]["spec"]["containers"][0]
    assert container["env"][0]["value"] == REDACTED and "valueFrom" in container["env"][1]
    assert cleaned["request"]["object"]["metadata"]["annotations"]["castops.io/optimize"] == "true"
    assert answer(cleaned) == answer(review)
    assert SECRET in orjson.dumps(review).decode(), "the caller's review is not changed"


def test_args_are_kept_unless_asked():
    kept = redact(secret_review(), set(), ())["request"]["object"]["spec"]["containers"][0]
    gone = redact(secret_review(), {"args"}, ())["request"]["object"]["spec"]["containers"][0]
    assert kept["args"] == ["--password", "args-kept-unless-asked"]
    assert gone["args"] == [REDACTED, REDACTED]


class BlockingStore(FileStore):
    """A store whose writes wait until released: storage made slow on purpose."""

    def __init__(self, root):
        super().__init__(root)
        self.entered, self.release = threading.Event(), threading.Event()

    def write(self, records):
        self.entered.set()
        self.release.wait(30)
        return super().write(records)


def test_full_queue_drops_and_counts_without_waiting_on_storage(tmp_path):
    store = BlockingStore(tmp_path)
    rec = recorder(store, queue_size=5)
    rec.start()
    rec.offer(secret_review("first"), {"response": {"uid": "first"}})
    assert store.entered.wait(10)  # the writer now holds one batch and is stuck in storage
    for i in range(50):  # would hang here (pytest-timeout) if offer waited on storage
        rec.offer(secret_review(f"u-{i}"), {"response": {"uid": f"u-{i}"}})
    assert rec.counters.totals()[("capture_dropped",)] == 45
    store.release.set()
    rec.close()
    uids = [e.record["uid"] for e in captured(store, None, None)]
    assert uids == ["first", "u-0", "u-1", "u-2", "u-3", "u-4"]
    assert rec.counters.totals()[("capture_written",)] == 6


def test_dry_run_and_sampling_are_not_recorded(tmp_path):
    store = FileStore(tmp_path)
    rec = recorder(store, capture_sample=0.0)
    dry = secret_review("dry")
    dry["request"]["dryRun"] = True
    rec.offer(dry, {})
    rec.offer(secret_review("sampled-out"), {})
    assert rec.queue.empty()


def test_s3_store_writes_lists_by_day_and_replays(capsys):
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="castslice-events")
        store = S3Store("castslice-events", "prod/cluster-a")
        rec = recorder(store)
        rec.start()
        for i in range(3):
            review = secret_review(f"s3-{i}")
            rec.offer(review, answer(review))
        rec.close()
        today = datetime.now(UTC).date()
        keys = list(store.keys(today, today))
        blob = store.read(keys[0])
        assert len(keys) == 1 and keys[0].startswith(today.strftime("%Y/%m/%d/"))
        assert SECRET.encode() not in gzip.decompress(blob)
        header, *events = decode(blob)
        assert header[CONFIGURATION] == Config().as_env() and header["version"]
        assert [r["uid"] for r in events] == ["s3-0", "s3-1", "s3-2"]
        assert main(["replay", "s3://castslice-events/prod/cluster-a"], {}) == 0
        env = {"CASTSLICE_PRESETS": "training=8,inference=2,batch=2,dev=1"}
        # decided again under the recorded configuration: the environment does not matter
        assert main(["replay", "s3://castslice-events/prod/cluster-a"], env) == 0
        assert main(["replay", "s3://castslice-events/prod/cluster-a", "--limit", "1",
                     "--current-env"], env) == 1
    out = capsys.readouterr().out
    assert out.count("# slices changed:") == 1  # --limit 1
    assert ["slices", "changed", "3"] in [line.split() for line in out.splitlines()]


def test_s3_capture_without_boto3_stops_the_server(monkeypatch, capsys):
    monkeypatch.setattr("castslice.cli.serving.boto3_installed", lambda: False)
    assert main(["serve"], {"CASTSLICE_CAPTURE": "s3://bucket/prefix"}) == 2
    assert "s3:// capture needs boto3" in capsys.readouterr().err


def send_all(served, count):
    conn = served.connect()
    uids = []
    for i in range(count):
        review = secret_review(f"e2e-{i}", ON if i % 2 else {"app": "web"})
        served.admit(review, conn)
        uids.append(f"e2e-{i}")
    dry = secret_review("e2e-dry")
    dry["request"]["dryRun"] = True
    served.admit(dry, conn)
    return uids


def test_server_captures_every_admission_to_a_directory_and_flushes_on_sigterm(tmp_path,
                                                                                   capsys):
    target = tmp_path / "captured"
    with serve(tmp_path, {"CASTSLICE_CAPTURE": f"file://{target}"}, workers=2) as served:
        uids = send_all(served, 40)
        assert served.stop() == 0
    store = FileStore(target)
    records = [e.record for e in captured(store, None, None)]
    assert sorted(r["uid"] for r in records) == sorted(uids)  # none lost, none twice, no dryRun
    assert SECRET not in "".join(p.read_bytes().decode("latin-1") for p in target.rglob("*.gz"))
    assert all(r["version"] and len(r["config"]) == 16 for r in records)
    assert main(["replay", str(target)], {}) == 0
    assert ["unchanged", "40"] in [line.split() for line in capsys.readouterr().out.splitlines()]


def test_server_captures_to_s3_compatible_storage(tmp_path):
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    try:
        aws = {"AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        client = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL_S3"],
                              aws_access_key_id="test", aws_secret_access_key="test",
                              region_name="us-east-1")
        client.create_bucket(Bucket="captures")
        with serve(tmp_path, {"CASTSLICE_CAPTURE": "s3://captures/cluster-a", **aws},
                   workers=1) as served:
            uids = send_all(served, 10)
            assert served.stop() == 0
        listed = client.list_objects_v2(Bucket="captures", Prefix="cluster-a/")["Contents"]
        written = [r["uid"] for item in listed for r in decode(
            client.get_object(Bucket="captures", Key=item["Key"])["Body"].read())
            if CONFIGURATION not in r]
        assert sorted(written) == sorted(uids)
    finally:
        moto.stop()


def test_a_captured_event_becomes_a_golden_case(tmp_path, capsys):
    store = FileStore(tmp_path / "captured")
    rec = recorder(store)
    rec.start()
    review = secret_review("odd-one")
    rec.offer(review, answer(review))
    rec.close()
    golden = tmp_path / "events"
    golden.mkdir()
    assert main(["events", str(tmp_path / "captured"), "--uid", "odd-one", "--name",
                 "captured-training-pod", "--dir", str(golden)], {}) == 0
    assert main(["replay", str(golden)], {}) == 0
    case = orjson.loads((golden / "captured-training-pod.json").read_bytes())
    assert case["request"]["request"]["uid"] == "odd-one" and case["expected"]["response"]["patch"]
    assert main(["events", str(tmp_path / "captured"), "--uid", "nope", "--name", "x",
                 "--dir", str(golden)], {}) == 1
    assert "no captured admission with uid nope" in capsys.readouterr().err


def test_replay_of_captures_refuses_update(tmp_path, capsys):
    store = FileStore(tmp_path)
    store.write([])
    assert main(["replay", f"file://{tmp_path}", "--update"], {}) == 1
    assert "captured events are a record" in capsys.readouterr().err



def test_change_kinds_name_what_changed():
    from castslice.capture.replay import change

    def patch(*values):
        ops = [{"op": "add", "path": f"/p{i}", "value": v} for i, v in enumerate(values)]
        return base64.b64encode(orjson.dumps(ops)).decode()
    plain = {"allowed": True}
    assert change(plain, plain) is None
    assert change(plain, {"allowed": True, "patch": patch("1")}) == "newly converted"
    assert change({"allowed": True, "patch": patch("1")}, plain) == "no longer converted"
    assert change({"allowed": True, "patch": patch("2")},
                  {"allowed": True, "patch": patch("4")}) == "slices changed"
    assert change({"allowed": True, "patch": patch("2")},
                  {"allowed": True, "patch": patch("2", "2")}) == "patch changed"
    assert change(plain, {"allowed": True, "warnings": ["x"]}) == "warnings changed"
    assert change(plain, {"allowed": False}) == "now denied"
    assert change({"allowed": False}, plain) == "no longer denied"
