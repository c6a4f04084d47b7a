"""A real `castslice serve` process (gunicorn), and a client that talks like the API server."""

import http.client
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import trustme

CASTSLICE = [sys.executable, "-m", "castslice"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A running server; `connect()` opens a keep-alive connection with the CA pinned."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, ca: trustme.CA | None,
                 log: Path) -> None:
        self.process, self.port, self.ca, self.log = process, port, ca, log

    def client_context(self) -> ssl.SSLContext:
        assert self.ca is not None
        context = ssl.create_default_context()
        self.ca.configure_trust(context)
        return context

    def connect(self, timeout: float = 10) -> http.client.HTTPConnection:
        if self.ca is None:
            return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout,
                                           context=self.client_context())

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None,
                conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        own = conn is None
        conn = conn or self.connect()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            if own:
                conn.close()

    def admit(self, review: Any, conn: http.client.HTTPConnection | None = None) -> Any:
        status, body = self.request("POST", "/mutate?timeout=10s", orjson.dumps(review),
                                    {"Content-Type": "application/json"}, conn)
        assert status == 200, body
        return orjson.loads(body)

    def wait_ready(self, deadline: float = 20) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited: {self.log.read_text()}")
            try:
                if self.request("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"server not ready: {self.log.read_text()}")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def make_cert(ca: trustme.CA, directory: Path) -> tuple[Path, Path]:
    """A fresh serving certificate for 127.0.0.1 from `ca`, written as tls.crt and tls.key."""
    cert = ca.issue_cert("127.0.0.1", "localhost")
    directory.mkdir(parents=True, exist_ok=True)
    crt, key = directory / "tls.crt", directory / "tls.key"
    cert.private_key_pem.write_to_path(str(key))
    cert.cert_chain_pems[0].write_to_path(str(crt))
    return crt, key


@contextmanager
def serve(tmp: Path, env: dict[str, str] | None = None, tls: bool = True,
          workers: int = 2) -> Iterator[Served]:
    """Start `castslice serve`, wait for /readyz, and stop it (SIGTERM) afterwards."""
    port = int((env or {}).get("PORT") or free_port())
    ca = trustme.CA() if tls else None
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CASTSLICE_")}
    full_env |= {"CASTSLICE_BIND": f"127.0.0.1:{port}", "CASTSLICE_WORKERS": str(workers),
                 "CASTSLICE_DRAIN_SECONDS": "0.5", "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prom")}
    if ca is not None:
        crt, key = make_cert(ca, tmp / "tls")
        full_env |= {"CASTSLICE_TLS_CERT_FILE": str(crt), "CASTSLICE_TLS_KEY_FILE": str(key)}
    full_env |= env or {}
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*CASTSLICE, "serve"], env=full_env, stdout=out,
                                   stderr=subprocess.STDOUT)
    served = Served(process, port, ca, log)
    try:
        served.wait_ready()
        yield served
    finally:
        try:
            served.stop()
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def worker_pids(master: int) -> list[int]:
    """The gunicorn master's worker processes, from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{master}/task").iterdir():
        found += [int(pid) for pid in (task / "children").read_text().split()]
    return sorted(found)


def worker_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
