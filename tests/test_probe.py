"""`castslice probe` (what `helm test` runs) against a real `castslice serve`, and against
answers the API server would refuse."""

import http.server
import subprocess
import threading

import pytest

from tests.served import CASTSLICE, serve


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    with serve(tmp, workers=1) as running:
        running.ca.cert_pem.write_to_path(str(tmp / "ca.crt"))
        yield running, tmp / "ca.crt"


def probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CASTSLICE, "probe", *args], capture_output=True, text=True,
                          timeout=60, check=False)


def test_probe_sees_a_converted_pod_over_the_ca_the_webhook_trusts(served):
    running, ca = served
    result = probe(f"https://localhost:{running.port}/mutate", "--ca-file", str(ca),
                   "--expect-patch")
    assert result.returncode == 0, result.stderr
    assert "allowed, converted in 3 patch operations: nvidia.com/gpu x1 -> " in result.stdout


def test_probe_refuses_a_server_its_ca_does_not_trust(served):
    running, _ = served
    result = probe(f"https://localhost:{running.port}/mutate")
    assert result.returncode == 1 and "certificate verify failed" in result.stderr.lower()
    assert "pass --ca-file with the CA the webhook configuration trusts" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_a_ca_file_that_does_not_exist_is_named(served):
    running, _ = served
    result = probe(f"https://localhost:{running.port}/mutate", "--ca-file", "/missing/ca.crt")
    assert result.returncode == 1
    assert result.stderr == "castslice: --ca-file /missing/ca.crt: no such readable file\n"


def test_a_probe_left_unchanged_says_where_the_reason_is(served):
    running, ca = served
    result = probe(f"https://localhost:{running.port}/mutate", "--ca-file", str(ca),
                   "--namespace", "kube-system")
    assert result.returncode == 0
    assert "allowed, unchanged (warnings: none); an answer carries no reason: the namespace " \
        "may be excluded (CASTSLICE_EXCLUDE_NAMESPACES" in result.stdout
    failed = probe(f"https://localhost:{running.port}/mutate", "--ca-file", str(ca),
                   "--namespace", "kube-system", "--expect-patch")
    assert failed.returncode == 1 and "the server logs why, under uid " in failed.stderr


def test_probe_fails_an_unchanged_pod_only_when_a_patch_is_expected(served):
    running, ca = served
    url = f"https://localhost:{running.port}/mutate"
    unchanged = probe(url, "--ca-file", str(ca), "--namespace", "kube-system")
    assert unchanged.returncode == 0 and "allowed, unchanged" in unchanged.stdout
    expected = probe(url, "--ca-file", str(ca), "--namespace", "kube-system", "--expect-patch")
    assert expected.returncode == 1 and "left unchanged" in expected.stderr


@pytest.mark.parametrize(("status", "body", "says"), [
    (200, b"<html>hello</html>", "not an AdmissionReview"),
    (200, b'{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",'
          b'"response":{"uid":"other","allowed":true}}', "is not the request's"),
    (500, b"boom", "answered HTTP 500"),
])
def test_probe_names_what_is_wrong_with_an_answer(status, body, says):
    class Answer(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with http.server.HTTPServer(("127.0.0.1", 0), Answer) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        result = probe(f"http://127.0.0.1:{server.server_address[1]}/mutate")
        server.shutdown()
    assert result.returncode == 1 and says in result.stderr, result.stderr


def test_probe_refuses_a_url_that_is_not_http():
    result = probe("castslice.castslice.svc/mutate")
    assert result.returncode == 1 and "not an http(s) URL" in result.stderr
