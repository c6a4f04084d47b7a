"""What a new user meets in the first hour (issue: no traceback, no false "all clear"): every
mistake is one line on stderr and exit 1, never a traceback or an empty success."""

import http.client
import io
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from moto.server import ThreadedMotoServer

from castslice.capture.store import FileStore
from castslice.cli import main
from castslice.cli.replaying import EXIT_CHANGED
from tests.served import free_port, serve, worker_pids
from tests.test_capture import answer, recorder, secret_review

NO_AWS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
          "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def one_line(capsys, code: int, *said: str) -> str:
    out = capsys.readouterr()
    assert code == 1, out
    assert "Traceback" not in out.err and out.err.count("\n") == 1, out.err
    for text in said:
        assert text in out.err, out.err
    return out.err


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    """An environment where boto3 finds no credentials anywhere."""
    for name in NO_AWS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def moto_s3(monkeypatch):
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield port
    server.stop()


@pytest.mark.parametrize("command", [["replay", "s3://captures/prod"],
                                     ["events", "s3://captures/prod", "--uid", "u", "--name",
                                      "x", "--dir", "."]])
def test_s3_without_credentials_is_one_line(capsys, no_credentials, command):
    one_line(capsys, main(command, {}), "s3://captures/prod: no AWS credentials")


def test_an_unreachable_s3_endpoint_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    one_line(capsys, main(["replay", "s3://captures/prod"], {}), "cannot reach http://127.0.0.1:",
             "check AWS_ENDPOINT_URL_S3")


def test_a_bucket_that_does_not_exist_is_one_line(capsys, moto_s3):
    one_line(capsys, main(["replay", "s3://nope/prod"], {}), "s3://nope/prod: no such bucket")


def test_a_capture_directory_that_does_not_exist_is_not_an_empty_replay(capsys, tmp_path):
    one_line(capsys, main(["replay", f"file://{tmp_path}/missing"], {}),
             f"{tmp_path}/missing: no such directory of captured events")


@pytest.mark.parametrize(("name", "folder", "said"), [
    ("ok-name", "missing", "--dir "), ("bad/name", ".", "--name 'bad/name': lowercase")])
def test_a_new_event_names_a_bad_name_or_folder(capsys, tmp_path, name, folder, said):
    rec = recorder(FileStore(tmp_path / "captured"))
    rec.start()
    review = secret_review("u-1")
    rec.offer(review, answer(review))
    rec.close()
    one_line(capsys, main(["events", str(tmp_path / "captured"), "--uid", "u-1", "--name", name,
                           "--dir", str(tmp_path / folder)], {}), said)


def test_a_misspelled_variable_is_named_with_the_closest_setting(capsys):
    env = {"CASTSLICE_BACKEN": "mig", "CASTSLICE_SLICE_PER_GPU": "8", "CASTSLICE_BACKEND": "dra",
           "CASTSLICE_SLICES_PER_GPU": "8"}
    assert main(["config"], env) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "warning: CASTSLICE_BACKEN is not a CastSlice setting (did you mean "
        "CASTSLICE_BACKEND?); ignored",
        "warning: CASTSLICE_SLICE_PER_GPU is not a CastSlice setting (did you mean "
        "CASTSLICE_SLICES_PER_GPU?); ignored"]


def test_the_server_names_a_misspelled_variable_at_start(tmp_path):
    with serve(tmp_path, {"CASTSLICE_ON_INVALD": "deny"}, workers=1) as served:
        assert served.stop() == 0
    assert ("castslice: warning: CASTSLICE_ON_INVALD is not a CastSlice setting (did you mean "
            "CASTSLICE_ON_INVALID?); ignored") in served.log.read_text()


@pytest.mark.parametrize(("name", "value", "lower"), [
    ("BACKEND", "MIG", "mig"), ("ON_INVALID", "Deny", "deny"), ("LOG_LEVEL", "INFO", "info")])
def test_values_are_spelled_as_the_helm_schema_spells_them(capsys, name, value, lower):
    assert main(["config"], {f"CASTSLICE_{name}": value}) == 2
    assert f"(values are lowercase: {lower})" in capsys.readouterr().err


def test_review_of_a_pod_points_at_mutate(capsys, tmp_path):
    pod = tmp_path / "pod.yaml"
    pod.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: []}\n")
    one_line(capsys, main(["review", str(pod)], {}),
             f"{pod}: a Pod, not an AdmissionReview: preview it with castslice mutate {pod}")


def test_review_of_empty_input_says_what_it_expects(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    one_line(capsys, main(["review"], {}), "-: empty; expected an AdmissionReview (JSON or YAML)")


def test_a_port_already_taken_is_one_line(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_line(capsys, main(["serve"], {"CASTSLICE_BIND": f"127.0.0.1:{port}"}),
                 f"CASTSLICE_BIND=127.0.0.1:{port}: Address already in use")


def test_workers_stop_when_their_master_is_killed(tmp_path):


    with serve(tmp_path, workers=2) as served:
        deadline = time.monotonic() + 20
        while len(workers := worker_pids(served.process.pid)) < 2:
            assert time.monotonic() < deadline, "the second worker never started"
            time.sleep(0.1)
        os.kill(served.process.pid, signal.SIGKILL)
        served.process.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], served.log.read_text()[-2000:]
    assert "the gunicorn master (pid" in served.log.read_text()


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for the reaper (this test's process adopts none)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_failed_tls_handshake_does_not_hold_the_stop(tmp_path):
    """Ctrl-C in a terminal signals the master and its workers alike."""


    with serve(tmp_path, workers=1) as served:
        plain = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        try:  # plain HTTP on the TLS port: the handshake fails
            plain.request("GET", "/readyz")
            plain.getresponse()
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(2.5)  # past the handshake's grace
        everyone = [served.process.pid, *worker_pids(served.process.pid)]
        started = time.monotonic()
        for pid in everyone:
            os.kill(pid, signal.SIGINT)
        assert served.process.wait(30) == 0
        assert time.monotonic() - started < 2.5


def test_replay_under_another_environment_goes_on_past_cases_it_cannot_start(capsys):


    golden = Path(__file__).resolve().parent.parent / "events"
    code = main(["replay", str(golden)], {"CASTSLICE_PRESETS": "training=8,inference=2,batch=2,"
                                          "dev=1"})
    out = capsys.readouterr().out
    assert code == EXIT_CHANGED
    assert "# mig-training-gets-4g-profile: its env with yours would not start: " in out
    last = out.strip().splitlines()[-1]
    assert last.startswith(f"{len(list(golden.glob('*.json')))} events, ")
    assert "changed" in last and "not replayed (their env with yours is invalid)" in last


def test_refused_requests_and_failed_handshakes_are_logged_and_counted(tmp_path):


    with serve(tmp_path, workers=1) as served:
        assert served.request("POST", "/mutate", b"{}", {"Content-Type": "text/plain"})[0] == 415
        assert served.request("POST", "/mutate", b"", {"Content-Type": "application/json"})[
            0] == 400
        assert served.request("POST", "/mutate", b"[", {"Content-Type": "application/json"})[
            0] == 400
        plain = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        try:  # plain HTTP on the TLS port: the handshake never completes
            plain.request("GET", "/readyz")
            plain.getresponse()
        except (OSError, http.client.HTTPException):
            pass
        deadline, found = time.monotonic() + 10, {}
        while found.get("tls", 0) < 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            body = served.request("GET", "/metrics")[1].decode()
            found = {m[0]: float(m[1]) for m in re.findall(
                r'^castslice_requests_refused_total\{status="([^"]+)"\} ([0-9.e+]+)$', body,
                re.M)}
        assert found == {"415": 1, "400": 2, "tls": 1}, found
    log = served.log.read_text()
    assert "refused a request with HTTP 415" in log and "refused a request with HTTP 400" in log
    assert log.count("refused a request with HTTP 400") == 1  # once a minute per status
    assert "1 TLS handshake(s) did not complete" in log


@pytest.mark.parametrize("command", [["audit", "-"], ["savings", "-", "--slices-per-gpu", "8"]])
@pytest.mark.parametrize("given", ["", '{"foo": 1}', "[1, 2]", '{"kind": "NodeList", "items": '
                                   '[{"kind": "Node", "metadata": {"name": "n"}}]}'])
def test_an_input_holding_no_pod_is_not_an_empty_report(capsys, monkeypatch, command, given):
    monkeypatch.setattr("sys.stdin", io.StringIO(given))
    one_line(capsys, main(command, {}), "the input holds no Pod: pipe `kubectl get pods -A -o "
             "json`")


def test_an_empty_pod_list_is_a_report_of_nothing(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO('{"kind": "List", "items": []}'))
    assert main(["savings", "-", "--slices-per-gpu", "8"], {}) == 0
    assert "none of the 0 Pod(s) read was converted" in capsys.readouterr().err


def test_reading_stdin_at_a_terminal_says_so(capsys, monkeypatch):
    terminal = io.StringIO("")
    terminal.isatty = lambda: True  # type: ignore[method-assign]
    monkeypatch.setattr("sys.stdin", terminal)
    main(["review"], {})
    assert "castslice: reading from stdin (end with Ctrl-D); or name a file" in (
        capsys.readouterr().err)


def test_make_run_serves_where_castslice_bind_says():
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "CASTSLICE_BIND": "127.0.0.1:9443"}
    dry = subprocess.run(["make", "-n", "run"], cwd=root, env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "CASTSLICE_BIND=127.0.0.1:9443 " in dry and "8443" not in dry


def test_sigint_to_the_master_alone_stops_at_once(tmp_path):
    """gunicorn's quick shutdown: the master sends its workers SIGQUIT."""


    with serve(tmp_path, workers=2) as served:
        started = time.monotonic()
        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(30) == 0
        assert time.monotonic() - started < 3, served.log.read_text()[-1500:]
    assert "was sent SIGKILL" not in served.log.read_text()
