"""End to end: a real gunicorn process over real TLS, called like the API server calls it."""

import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest
import yaml
from cryptography import x509

from castslice.handler.metrics import Metrics
from castslice.settings.config import Config
from tests.kube import admitted_pod, assert_valid_pod, pod_review
from tests.served import make_cert, serve

ROOT = Path(__file__).parent.parent
ON = {"castops.io/optimize": "true", "castops.io/workload-type": "training"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with serve(tmp_path_factory.mktemp("server")) as served:
        yield served


def test_admissions_reuse_one_tls_connection(server):
    conn = server.connect()
    answers = [server.admit(pod_review(ON), conn) for _ in range(5)]
    first_socket = conn.sock
    answers.append(server.admit(pod_review(ON), conn))
    assert conn.sock is first_socket
    assert conn.sock.version() in ("TLSv1.3", "TLSv1.2")
    conn.close()
    for answer in answers:
        pod = admitted_pod(pod_review(ON), answer)
        assert_valid_pod(pod)
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu-shared"] == "4"


def test_server_offers_only_http1_in_alpn(server):
    context = server.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", server.port)) as raw, \
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        assert tls.selected_alpn_protocol() == "http/1.1"


@pytest.mark.parametrize(("method", "path", "body", "headers", "status", "says"), [
    ("POST", "/mutate", b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type must be"),
    ("POST", "/mutate", b"{}", {}, 415, "Content-Type must be"),
    ("POST", "/mutate", b'{"apiVersion": ', JSON, 400, "malformed JSON"),
    ("POST", "/mutate", b"", JSON, 400, "empty body"),
    ("POST", "/mutate", b"[]", JSON, 400, "must be a JSON object"),
    ("POST", "/mutate", b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}', JSON,
     400, "request is missing"),
    ("POST", "/mutate", b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
     b'"request":{}}', JSON, 400, "request.uid"),
    ("POST", "/mutate", b"\xff\xfe\x00", JSON, 400, "malformed JSON"),
    ("POST", "/mutate", b"x" * (7 * 1024 * 1024), JSON, 413, "CASTSLICE_MAX_BODY_BYTES"),
    ("GET", "/mutate", None, {}, 405, "405"),
    ("POST", "/nowhere", b"{}", JSON, 404, "404"),
])
def test_bad_requests_get_a_clear_json_error(server, method, path, body, headers, status, says):
    got, payload = server.request(method, path, body, headers)
    assert got == status
    assert says in str(orjson.loads(payload))


def test_odd_pods_never_get_a_500_and_workers_survive(server):
    review = pod_review(ON)
    review["request"]["object"] = {"metadata": {"annotations": ON}, "spec": {"containers": 7}}
    conn = server.connect()
    for _ in range(20):
        assert server.admit(review, conn)["response"]["allowed"] is True
    status, _ = server.request("POST", "/mutate", b"{" * 100_000, JSON, conn=conn)
    assert status == 400
    assert server.admit(pod_review(ON), conn)["response"]["uid"]
    assert b"Worker exiting" not in server.log.read_bytes()


def test_idle_connections_do_not_starve_admissions(server):
    """The API server's client leaves spare connections open and idle; they cost no thread."""
    context = server.client_context()
    idle = []
    for _ in range(300):
        raw = socket.create_connection(("127.0.0.1", server.port))
        idle.append(context.wrap_socket(raw, server_hostname="127.0.0.1"))
    try:
        started = time.monotonic()
        conn = server.connect(timeout=5)
        for _ in range(50):
            assert "patch" in server.admit(pod_review(ON), conn)["response"]
        assert time.monotonic() - started < 5
    finally:
        for sock in idle:
            sock.close()


MUTATED = 'castslice_admissions_total{outcome="mutated",reason="mutated"}'


def scrape_when(served, ready, seconds=5.0):
    """The /metrics samples once `ready` holds: a worker writes its counts a second after
    they change, so the other workers' reach a scrape within about a second."""
    deadline = time.monotonic() + seconds
    while True:
        text = served.request("GET", "/metrics")[1].decode()
        values = dict(line.rsplit(" ", 1) for line in text.splitlines()
                      if not line.startswith("#"))
        if ready(values) or time.monotonic() > deadline:
            return values
        time.sleep(0.1)


def test_metrics_sum_over_workers(tmp_path):
    with serve(tmp_path, workers=2) as served:
        def send(count):
            conn = served.connect()
            for _ in range(count):
                served.admit(pod_review(ON), conn)
                served.admit(pod_review({"app": "web"}), conn)
        threads = [threading.Thread(target=send, args=(10,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pids = {line.split(b"pid: ")[1].strip() for line in served.log.read_bytes().splitlines()
                if b"Booting worker with pid" in line}
        values = scrape_when(served, lambda v: v.get(MUTATED) == "40.0")
    assert len(pids) == 2
    assert float(values[MUTATED]) == 40
    assert float(values['castslice_admissions_total{outcome="passed",reason="not-opted-in"}']) == 40
    assert float(values["castslice_gpus_converted_total"]) == 40
    assert float(values["castslice_slices_granted_total"]) == 160
    assert float(values["castslice_admission_duration_seconds_count"]) == 80
    assert float(values["castslice_request_body_bytes_count"]) == 80
    assert float(values['castslice_pods_mutated_total{namespace="ml"}']) == 40
    assert [k for k in values if k.startswith("castslice_build_info")] == [
        next(k for k in values if k.startswith("castslice_build_info{python="))]
    assert float(values['castslice_config_info{backend="extended",default_slices="1",'
                        'on_invalid="warn",source_resource="nvidia.com/gpu",'
                        'target_resource="nvidia.com/gpu-shared"}']) == 1


def test_counts_of_the_last_moment_before_a_stop_are_kept(tmp_path):
    with serve(tmp_path, workers=1) as served:
        served.admit(pod_review(ON))
        served.stop()  # SIGTERM well within the second after which a worker writes its counts
    totals = Metrics(Config(), str(tmp_path / "prom")).totals()
    assert totals[("admissions", "mutated", "mutated")] == 1


def test_sigterm_drains_then_closes_idle_connections_and_exits_zero(tmp_path):
    with serve(tmp_path, {"CASTSLICE_DRAIN_SECONDS": "2"}, workers=1) as served:
        busy, idle = served.connect(), served.connect()
        served.admit(pod_review(ON), busy)
        served.admit(pod_review(ON), idle)
        served.process.send_signal(signal.SIGTERM)
        stopping = time.monotonic()
        time.sleep(0.5)
        assert served.request("GET", "/readyz")[0] == 503
        busy.request("POST", "/mutate", orjson.dumps(pod_review(ON)), JSON)
        answer = busy.getresponse()
        assert answer.getheader("Connection") == "close"  # the client leaves between requests
        assert "patch" in orjson.loads(answer.read())["response"]
        idle.sock.settimeout(15)
        assert idle.sock.recv(1) == b""  # closed once drained, as the API server's client sees it
        closed = time.monotonic() - stopping
        busy.close()
        idle.close()
        assert served.process.wait(30) == 0
    assert 2 <= closed < 5  # the drain, not gunicorn's 20 s grace on top


def test_serves_plain_http_on_port_as_the_knative_service_declares_it(tmp_path):
    from tests.served import free_port

    service = yaml.safe_load((ROOT / "deploy" / "knative" / "knative-service.yaml").read_text())
    (container,) = service["spec"]["template"]["spec"]["containers"]
    declared = {e["name"]: e["value"] for e in container["env"]}
    port = free_port()
    env = declared | {"PORT": str(port), "CASTSLICE_BIND": "", "PROMETHEUS_MULTIPROC_DIR": "",
                      "TMPDIR": str(tmp_path)}  # /dev/shm in the Pod
    with serve(tmp_path, env, tls=False) as served:
        status, body = served.request(
            "POST", "/mutate?timeout=10s", orjson.dumps(pod_review(ON)),
            {"Content-Type": "application/json",
             "Host": "castslice-admit.castslice.svc.cluster.local"})
        assert status == 200 and "patch" in orjson.loads(body)["response"]
        assert served.request("GET", container["livenessProbe"]["httpGet"]["path"])[0] == 200
    assert b"0.0.0.0:%d" % port in served.log.read_bytes()
    assert any(p.is_dir() for p in tmp_path.iterdir() if p.name != "prom"), (
        "metrics files go under TMPDIR when PROMETHEUS_MULTIPROC_DIR is unset")


def test_rotated_certificate_reaches_new_connections_without_dropping_requests(tmp_path):
    with serve(tmp_path, workers=1) as served:
        def serial():
            with socket.create_connection(("127.0.0.1", served.port)) as raw, \
                    served.client_context().wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                der = tls.getpeercert(binary_form=True)
                return x509.load_der_x509_certificate(der).serial_number
        before = serial()
        kept = served.connect()
        served.admit(pod_review(ON), kept)
        replacement = tmp_path / "new"
        make_cert(served.ca, replacement)
        for name in ("tls.crt", "tls.key"):  # an atomic swap, as the kubelet does it
            (replacement / name).replace(tmp_path / "tls" / name)
        assert serial() != before
        assert "patch" in served.admit(pod_review(ON), kept)["response"]
        assert "patch" in served.admit(pod_review(ON))["response"]
        kept.close()


def test_logs_are_json_lines_without_env_values(tmp_path):
    review = pod_review(ON)
    review["request"]["object"]["spec"]["containers"][0]["env"] = [
        {"name": "TOKEN", "value": "planted-secret-4f1c"}]
    with serve(tmp_path, workers=1) as served:
        served.admit(review)
    lines = served.log.read_text().splitlines()
    records = [orjson.loads(line) for line in lines]  # every line, gunicorn's too, is JSON
    assert any(r.get("outcome") == "mutated" and r["slices"] == 4 for r in records)
    assert any(r["msg"].startswith("Starting gunicorn") for r in records)
    assert all({"time", "level", "msg"} <= set(r) for r in records)
    assert "planted-secret-4f1c" not in served.log.read_text()


def test_one_admission_writes_one_log_line_and_no_access_line(tmp_path):
    with serve(tmp_path, workers=1) as served:
        conn = served.connect()
        for _ in range(3):
            served.admit(pod_review(ON), conn)
        conn.close()
    records = [orjson.loads(line) for line in served.log.read_text().splitlines()]
    assert [r["msg"] for r in records].count("admission") == 3
    assert not [r for r in records if "/mutate" in r["msg"] or "/readyz" in r["msg"]]


def test_tls_rejects_clients_that_do_not_trust_the_ca(server):
    context = ssl.create_default_context()
    with socket.create_connection(("127.0.0.1", server.port)) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="127.0.0.1")


def test_a_chunked_body_over_the_limit_is_413(tmp_path):
    with serve(tmp_path, {"CASTSLICE_MAX_BODY_BYTES": "4096"}, workers=1) as served:
        conn = served.connect()
        chunks = iter([b"{" + b" " * 1023] * 8)  # 8 KiB with no Content-Length
        conn.request("POST", "/mutate", body=chunks, headers=JSON, encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413
        assert "CASTSLICE_MAX_BODY_BYTES" in response.read().decode()


COLD_PATH = """
import asyncio, sys, tempfile
from castslice.cli import parser
from castslice.handler.server import Server
from castslice.settings.config import Config

parser()
server = Server(Config.from_env({"CASTSLICE_RULES": sys.argv[1]}), tempfile.mkdtemp())
body = sys.stdin.buffer.read()
sent = []

async def receive():
    return {"type": "http.request", "body": body, "more_body": False}

async def send(message):
    sent.append(message)

scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
         "scheme": "http", "path": "/mutate", "raw_path": b"/mutate", "query_string": b"",
         "root_path": "", "headers": [(b"content-type", b"application/json")],
         "server": ("127.0.0.1", 8443), "client": ("127.0.0.1", 1)}
asyncio.run(server.app(scope, receive, send))
assert b'"allowed":true' in sent[-1]["body"], sent
print(" ".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize("rules", ["", '[{"namespaces": ["ml-*"], "optimize": true}]'])
def test_a_cold_replica_answers_without_yaml_prometheus_or_capture_loaded(rules):
    """What a scale-from-zero replica imports before its first answer: the libraries that
    only other commands, YAML rules, the first scrape or capture need stay unloaded."""
    loaded = subprocess.run([sys.executable, "-c", COLD_PATH, rules], input=orjson.dumps(
        pod_review(ON)), capture_output=True, check=True).stdout.decode().split()
    assert "castslice.handler.app" in loaded and "falcon" in loaded
    for heavy in ("yaml", "prometheus_client", "boto3", "castslice.capture.recorder",
                  "castslice.capture.store", "castslice.handler.exposition"):
        assert heavy not in loaded
