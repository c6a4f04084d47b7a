"""A newcomer's second hour: their own mistakes after the README's commands. Each kind is one
clear line (at most three) and a non-zero exit, or the right thing; never a traceback."""

import gzip
import json
import os
import socket
import threading
from pathlib import Path

import pytest
import trustme

from castslice.cli import main

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {
    "name": "p", "annotations": {"castops.io/optimize": "true"}},
    "spec": {"containers": [{"name": "c", "image": "x",
                             "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}


def said(capsys, code: int, expected_code: int, *texts: str) -> str:
    out = capsys.readouterr()
    assert code == expected_code, out
    assert "Traceback" not in out.err and out.err.count("\n") <= 3, out.err
    for text in texts:
        assert text in out.err, out.err
    return out.err


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """TLS files a newcomer mixes up: two pairs, a CA, random bytes, a directory."""
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    for name, issued in (("one", ca.issue_cert("a.example")), ("two", ca.issue_cert("b"))):
        issued.cert_chain_pems[0].write_to_path(str(folder / f"{name}.crt"))
        issued.private_key_pem.write_to_path(str(folder / f"{name}.key"))
    ca.cert_pem.write_to_path(str(folder / "ca.crt"))
    (folder / "random.pem").write_bytes(bytes(range(256)) * 4)
    (folder / "dir").mkdir()
    return folder


@pytest.mark.parametrize(("cert", "key", "says"), [
    ("one.crt", "two.key", "the key does not belong to the certificate"),
    ("one.key", "one.crt", "not a PEM certificate and its private key"),
    ("ca.crt", "one.key", "the key does not belong to the certificate"),
    ("random.pem", "one.key", "not a PEM certificate and its private key"),
    ("dir", "one.key", "is a directory, not a PEM file"),
])
@pytest.mark.parametrize("command", ["config", "serve"])
def test_a_tls_pair_that_does_not_pair_stops_config_and_serve_alike(capsys, pairs, cert, key,
                                                                   says, command):
    env = {"CASTSLICE_TLS_CERT_FILE": str(pairs / cert),
           "CASTSLICE_TLS_KEY_FILE": str(pairs / key)}
    said(capsys, main([command], env), 2, "CASTSLICE_TLS_CERT_FILE", says)


@pytest.mark.parametrize("timeout", ["-1", "nan", "inf", "1e10", "0", "soon"])
def test_a_probe_timeout_outside_a_number_of_seconds_is_refused(capsys, timeout):
    with pytest.raises(SystemExit) as exit_:
        main(["probe", "https://127.0.0.1:1/mutate", "--timeout", timeout])
    assert exit_.value.code == 2
    assert "seconds above 0, at most 300" in capsys.readouterr().err


class _Answers(threading.Thread):
    """A loopback HTTP server that answers every request with `body`, or never answers."""

    def __init__(self, body: bytes | None) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.body, self.url = body, f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(65536)
            if self.body is None:
                self.held.append(conn)  # accepted, never answered
                continue
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                         % (len(self.body), self.body))
            conn.close()


@pytest.mark.parametrize("value", ['["x", "not a number"]', '[1]', '"7"', '{"a": 1}'])
def test_a_prometheus_answer_whose_values_are_not_numbers_is_one_line(capsys, value):
    body = (f'{{"status": "success", "data": {{"resultType": "vector", "result": '
            f'[{{"metric": {{}}, "value": {value}}}]}}}}').encode()
    server = _Answers(body)
    server.start()
    code = main(["recommend", "--prometheus", server.url], {"CASTSLICE_SLICES_PER_GPU": "8"})
    said(capsys, code, 1, "is not [time, \"number\"]")


def test_a_prometheus_that_never_answers_is_one_line_after_the_timeout(capsys):
    server = _Answers(None)
    server.start()
    code = main(["recommend", "--prometheus", server.url, "--timeout", "1"],
                {"CASTSLICE_SLICES_PER_GPU": "8"})
    said(capsys, code, 1, "no answer in 1 s (--timeout)")


def test_an_empty_prometheus_url_is_named(capsys):
    with pytest.raises(SystemExit):
        main(["recommend", "--prometheus", ""])
    assert "an http:// or https:// URL" in capsys.readouterr().err


def test_mutate_reads_a_list_as_kubectl_prints_it(capsys, tmp_path):
    listed = tmp_path / "pods.json"
    listed.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": [POD]}))
    assert main(["mutate", str(listed)], {}) == 0
    assert "nvidia.com/gpu-shared" in capsys.readouterr().out


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty; expected Kubernetes manifests"),
    ("- a\n- b\n", "holds no Pod or workload with a pod template"),
    ("kind: ConfigMap\nmetadata: {name: x}\n", "holds no Pod or workload"),
])
def test_mutate_of_nothing_it_can_preview_is_one_line(capsys, tmp_path, text, says):
    given = tmp_path / "in.yaml"
    given.write_text(text)
    said(capsys, main(["mutate", str(given)], {}), 1, says)


def test_annotations_on_a_deployments_own_metadata_are_named(capsys, tmp_path):
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "d", "annotations": {"castops.io/optimize": "true"}},
        "spec": {"template": {"spec": POD["spec"]}}}
    given = tmp_path / "d.json"
    given.write_text(json.dumps(deployment))
    assert main(["mutate", "-n", "ml", str(given)], {}) == 0
    assert "move them to spec.template.metadata.annotations" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["mutate"], ["review"], ["replay", "events"]])
def test_a_misspelled_variable_is_named_by_every_preview(capsys, tmp_path, command):
    given = tmp_path / "in.json"
    given.write_text(json.dumps(POD) if command == ["mutate"] else Path(
        "events/optimize-training-four-slices.json").read_text())
    args = [*command, str(given)] if command != ["replay", "events"] else command
    main(args, {"CASTSLICE_BACKEN": "mig"})
    assert "CASTSLICE_BACKEN is not a CastSlice setting (did you mean CASTSLICE_BACKEND?)" in (
        capsys.readouterr().err)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("EXCLUDE_NAMESPACES", ",,,", "names no namespace"),
    ("PRESETS", "training=4,training=8", "'training' is given twice"),
    ("MAX_SLICES", "9" * 100_000, "(100,000 characters)"),
])
def test_settings_that_would_quietly_mean_something_else_are_refused(capsys, name, value, says):
    err = said(capsys, main(["config"], {f"CASTSLICE_{name}": value}), 2, says)
    assert len(err) < 300


def test_an_empty_env_file_is_named(capsys, tmp_path):
    (tmp_path / "proposed.env").write_text("")
    said(capsys, main(["config", "--env-file", str(tmp_path / "proposed.env")], {}), 2,
         "holds no KEY=value line")


@pytest.mark.parametrize(("args", "says"), [
    (["replay", "EMPTY"], "no events"),
    (["replay", "events", "--since", "2026-12-02", "--until", "2026-12-01"], "is after --until"),
    (["replay", "http://example.com/captures"], "http://example.com/captures: replay reads a "
                                                "directory, file:///dir or s3://bucket/prefix"),
    (["replay", "s3://"], "'' is not an S3 bucket name"),
])
def test_replay_of_nothing_or_a_wrong_place_is_one_line(capsys, tmp_path, args, says):
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    said(capsys, main(args, {}), 1, says)


def test_a_corrupt_batch_in_a_capture_is_named(capsys, tmp_path):
    day = tmp_path / "2026" / "12" / "01"
    day.mkdir(parents=True)
    (day / "000000-1-000001.jsonl.gz").write_bytes(gzip.compress(b'{"ok": 1}\n')[:20])
    said(capsys, main(["replay", str(tmp_path)], {}), 1,
         "2026/12/01/000000-1-000001.jsonl.gz: not a gzip batch of JSON lines")


def test_savings_says_why_it_counted_nothing(capsys, tmp_path):
    finished = json.loads(json.dumps(POD))
    finished["metadata"]["annotations"]["castops.io/sliced"] = "x"
    finished["status"] = {"phase": "Succeeded"}
    whole = json.loads(json.dumps(POD)) | {"status": {"phase": "Running"}}
    listed = tmp_path / "pods.json"
    listed.write_text(json.dumps({"apiVersion": "v1", "kind": "List",
                                  "items": [finished, whole]}))
    assert main(["savings", str(listed), "--slices-per-gpu", "4"], {}) == 0
    err = capsys.readouterr().err
    assert "1 converted Pod(s) have finished" in err and "1 running Pod(s) hold whole" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind any port (CI runs as root)")
def test_serve_on_a_privileged_port_says_why(capsys):
    said(capsys, main(["serve"], {"CASTSLICE_BIND": "127.0.0.1:80"}), 1,
         "a port below 1024 needs root")
