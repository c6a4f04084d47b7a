"""Hostile input and unlucky stops, through a real server over real TLS (issue: never a 500,
never a lost admission)."""

import copy
import json
import logging
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castslice.capture.recorder import Recorder
from castslice.capture.replay import captured
from castslice.capture.store import FileStore
from castslice.handler.metrics import Metrics
from castslice.settings.config import Config
from tests.goclient import GoLikeClient
from tests.hostile import check_answer, hostile_body
from tests.served import serve, worker_pids, worker_rss_kib

ROOT = Path(__file__).parent.parent
JSON = {"Content-Type": "application/json"}
TRAINING = orjson.loads((ROOT / "events" / "optimize-training-four-slices.json").read_bytes())
TARGET = "nvidia.com/gpu-shared"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("hostile"), workers=1) as served:
        yield served


def training_with_count(count):
    review = copy.deepcopy(TRAINING["request"])
    for section in ("limits", "requests"):
        review["request"]["object"]["spec"]["containers"][0]["resources"][section][
            "nvidia.com/gpu"] = count
    return review


@pytest.mark.parametrize(("count", "read"), [("99999999999999999999", 2**63 - 1),
                                             ("9" * 400, 2**63 - 1), ("1E", 10**18),
                                             ("2E", 2 * 10**18)])
def test_huge_gpu_counts_leave_the_pod_unchanged_as_a_multi_gpu_ask(server, count, read):
    review = training_with_count(count)
    status, payload = server.request("POST", "/mutate", orjson.dumps(review), JSON)
    assert status == 200, payload
    response = orjson.loads(payload)["response"]
    assert "patch" not in response
    assert response["warnings"][-1] == (f"a container asks for {read} nvidia.com/gpu: "
                                        "time-sliced units are not distinct GPUs; Pod left "
                                        "unchanged")


@pytest.mark.parametrize(("field", "depth"), [("operation", 300), ("namespace", 1000),
                                              ("name", 1000)])
def test_deep_nesting_in_any_field_gets_an_answer(server, field, depth):
    review = copy.deepcopy(TRAINING["request"])
    review["request"][field] = "DEEP"
    body = orjson.dumps(review).replace(b'"DEEP"', b"[" * depth + b"]" * depth)
    status, payload = server.request("POST", "/mutate", body, JSON)
    assert status == 200, payload
    assert orjson.loads(payload)["response"]["uid"] == TRAINING["request"]["request"]["uid"]


@pytest.fixture(scope="module")
def keepalive(server):
    conn = server.connect()
    yield conn
    conn.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(rng=st.randoms(use_true_random=False))
def test_hostile_bodies_never_get_a_5xx_and_every_patch_applies(server, keepalive, rng):
    body = hostile_body(rng)
    status, payload = server.request("POST", "/mutate", body, JSON, conn=keepalive)
    check_answer(body, status, payload, TARGET)


def test_fuzz_leaves_the_worker_alive_and_its_memory_bounded(server):
    import random

    rng = random.Random(7)
    (pid,) = worker_pids(server.process.pid)
    conn = server.connect()
    for _ in range(300):  # warm up: first allocations are not growth
        server.request("POST", "/mutate", hostile_body(rng), JSON, conn=conn)
    before = worker_rss_kib(pid)
    for _ in range(2000):
        server.request("POST", "/mutate", hostile_body(rng), JSON, conn=conn)
    assert worker_pids(server.process.pid) == [pid]
    assert worker_rss_kib(pid) - before < 20 * 1024, "more than 20 MiB grown over 2000 bodies"
    assert b"Worker exiting" not in server.log.read_bytes()


def test_an_odd_pod_is_skipped_and_counted_and_capture_goes_on(tmp_path):
    store = FileStore(tmp_path)
    metrics = Metrics(Config())
    recorder = Recorder(lambda: store, queue_size=100, sample=1.0, redact_fields=frozenset(),
                        redact_annotations=(), stamp={}, counters=metrics,
                        logger=logging.getLogger("castslice-test"))
    recorder.start()
    odd = copy.deepcopy(TRAINING["request"])
    odd["request"]["uid"] = "odd"
    odd["request"]["object"]["spec"]["containers"][0]["env"] = 5
    odd["request"]["object"]["spec"]["initContainers"] = 7
    deep = copy.deepcopy(TRAINING["request"])
    deep["request"]["uid"] = "deep"
    deep["request"]["object"]["metadata"]["labels"] = json.loads("[" * 300 + "]" * 300)
    later = copy.deepcopy(TRAINING["request"])
    later["request"]["uid"] = "later"
    for review in (odd, deep, later):
        recorder.offer(review, {"response": {}})
    recorder.close()
    written = [event.record["uid"] for event in captured(store, None, None)]
    assert written == ["odd", "later"]
    assert metrics.counts[("capture_failed", "encode")] == 1
    assert metrics.counts[("capture_written",)] == 2
    assert b'castslice_capture_writer_alive 0.0' in metrics.render()


def test_capture_writer_health_is_exported_while_it_runs(tmp_path):
    metrics = Metrics(Config())
    recorder = Recorder(lambda: FileStore(tmp_path), queue_size=10, sample=1.0,
                        redact_fields=frozenset(), redact_annotations=(), stamp={},
                        counters=metrics, logger=logging.getLogger("castslice-test"))
    recorder.start()
    try:
        assert b"castslice_capture_writer_alive 1.0" in metrics.render()
    finally:
        recorder.close()
    assert b"castslice_capture_writer_alive 0.0" in metrics.render()


def _load(served, clients, period, until):
    """Each client posts the training admission every `period` seconds until `until()`."""
    body = orjson.dumps(TRAINING["request"])

    def run(client):
        while not until():
            started = time.monotonic()
            client.post(body)
            time.sleep(max(0.0, period - (time.monotonic() - started)))

    threads = [threading.Thread(target=run, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    return threads


def test_a_stop_under_load_loses_no_admission(tmp_path):
    with serve(tmp_path, {"CASTSLICE_DRAIN_SECONDS": "1.5"}, workers=1) as served:
        clients = [GoLikeClient(served.port, served.client_context()) for _ in range(6)]
        stopped = threading.Event()
        threads = _load(served, clients, 0.04, stopped.is_set)  # about 150 admissions/s
        time.sleep(1.0)
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        code = served.process.wait(30)
        exited = time.monotonic() - signalled
        time.sleep(0.3)
        stopped.set()
        for thread in threads:
            thread.join(10)
    outcomes = sum((c.outcomes for c in clients), Counter())
    assert code == 0
    assert outcomes["lost"] == 0, outcomes
    assert outcomes["answered"] > 200, outcomes
    assert exited < 1.5 + 5, exited  # the drain and the in-flight answers, no kill


def test_connections_that_finish_their_handshake_late_are_closed_after_one_answer(tmp_path):
    with serve(tmp_path, {"CASTSLICE_DRAIN_SECONDS": "2"}, workers=1) as served:
        served.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        time.sleep(1.95)
        clients = []
        for _ in range(150):
            clients.append(GoLikeClient(served.port, served.client_context()))
            time.sleep(0.002)
        threads = _load(served, clients, 0.2, lambda: served.process.poll() is not None)
        code = served.process.wait(30)
        exited = time.monotonic() - signalled
        for thread in threads:
            thread.join(10)
    outcomes = sum((c.outcomes for c in clients), Counter())
    assert code == 0 and exited < 2 + 8, exited  # gunicorn's kill would come at 22 s
    assert outcomes["lost"] == 0, outcomes
    assert b"Finished server process" in served.log.read_bytes()


def test_the_worker_waits_for_a_connection_still_in_its_tls_handshake(tmp_path):
    """A TCP connection accepted while the listener was open, its TLS handshake not begun
    when the stop comes, and no other connection open: the worker must not exit under it
    (uvicorn hears of a TLS connection only once its handshake is done)."""
    with serve(tmp_path, {"CASTSLICE_DRAIN_SECONDS": "0.3"}, workers=1) as served:
        raw = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        time.sleep(0.3)  # accepted by the worker
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.3 + 0.7)  # the drain is over, the listener closed, nothing else open
        still_serving = served.process.poll() is None
        raw.close()
        assert served.process.wait(30) == 0
    assert still_serving
