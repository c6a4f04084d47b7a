"""The served path: a real `castslice serve` over TLS, pinned to its own core."""

import asyncio
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import trustme

from bench.load import Client, no_collector_pauses, summary
from bench.pods import typical

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / TICKS


def rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE / 2**20


def children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


GO_PEER = Path(__file__).parent / "gopeer" / "main.go"
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None
"""Memory-backed, as the deployments' /tmp (an emptyDir in memory) and the Knative
Service's TMPDIR, where metric files go: a worker writes its counts there once a second,
0.27 ms on tmpfs vs 0.67 ms on disk here."""


def castslice_env(**settings: str) -> dict[str, str]:
    """This environment without any CASTSLICE_ setting of the caller's, plus `settings`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CASTSLICE_")} | settings


def castslice_command(tmp: Path, port: int) -> tuple[list[str], dict[str, str]]:
    env = castslice_env(
        CASTSLICE_BIND=f"127.0.0.1:{port}", CASTSLICE_WORKERS="1",
        CASTSLICE_TLS_CERT_FILE=str(tmp / "tls.crt"), CASTSLICE_TLS_KEY_FILE=str(tmp / "tls.key"),
        CASTSLICE_DRAIN_SECONDS="0", PROMETHEUS_MULTIPROC_DIR=str(tmp / "prom"))
    return [sys.executable, "-m", "castslice", "serve"], env


def go_command(tmp: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The Go peer, built from bench/gopeer/main.go (needs a Go toolchain on PATH)."""
    binary = tmp / "gopeer"
    subprocess.run(["go", "build", "-o", str(binary), str(GO_PEER)], check=True,
                   env=os.environ | {"GOCACHE": str(tmp / "gocache"), "GO111MODULE": "off"})
    return [str(binary), f"127.0.0.1:{port}", str(tmp / "tls.crt"), str(tmp / "tls.key")], dict(
        os.environ)


def start(tmp: Path, port: int, ca: trustme.CA, pin: bool,
          make_command: Any) -> tuple[subprocess.Popen[bytes], float]:
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(str(tmp / "tls.key"))
    cert.cert_chain_pems[0].write_to_path(str(tmp / "tls.crt"))
    command, env = make_command(tmp, port)
    if pin and shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    context = ssl.create_default_context()
    ca.configure_trust(context)
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=(tmp / "server.log").open("wb"))
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context,
                                        timeout=1) as response:
                if response.status == 200:
                    return process, time.perf_counter() - began
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((tmp / "server.log").read_text()) from None
            time.sleep(0.005)


def first_admission_ms(port: int, body: bytes) -> float:
    """From exec to the first admission answered, plain HTTP on $PORT as under Knative: what
    a Pod created while CastSlice is scaled to zero waits for, beyond Knative's own work."""
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:  # TMPDIR, /dev/shm under Knative
        env = castslice_env(PORT=str(port), CASTSLICE_WORKERS="1", TMPDIR=tmp)
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        request = urllib.request.Request(f"http://127.0.0.1:{port}/mutate", data=body,
                                         headers={"Content-Type": "application/json"})
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, "-m", "castslice", "serve"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            while True:
                try:
                    with urllib.request.urlopen(request, timeout=1) as response:
                        if response.status == 200 and b'"allowed":true' in response.read():
                            return (time.perf_counter() - began) * 1000
                except OSError:
                    if process.poll() is not None:
                        raise RuntimeError("castslice serve exited") from None
                    time.sleep(0.002)
        finally:
            process.terminate()
            process.wait(30)


def cold_starts(port: int, count: int) -> list[int]:
    body = orjson.dumps(typical())
    return sorted(round(first_admission_ms(port, body)) for _ in range(count))


def run(seconds: float, rates: list[int], port: int, rounds: int) -> dict[str, Any]:
    """CastSlice's figures, and the Go peer's where Go is installed: `rounds` interleaved
    rounds (CastSlice, Go, CastSlice, Go, ...), so a machine that speeds up or slows down
    during the run moves both; each figure is the median over the rounds."""
    pin = len(os.sched_getaffinity(0)) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    servers = {"castslice": castslice_command}
    if shutil.which("go"):
        servers["go"] = go_command
    measured: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
    for _ in range(rounds):
        for name, make in servers.items():
            measured[name].append(measure(make, seconds, rates, port, pin))
    return {name: median_figures(figures) | {"rounds": rounds}
            for name, figures in measured.items()} | {"each_round": measured}


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number the median of its rounds; anything else as the first round has it."""
    first = rounds[0]
    return {key: median_figures([r[key] for r in rounds]) if isinstance(value, dict)
            else statistics.median(r[key] for r in rounds)
            if isinstance(value, int | float) and not isinstance(value, bool) else value
            for key, value in first.items()}


def measure(make_command: Any, seconds: float, rates: list[int], port: int,
            pin: bool) -> dict[str, Any]:
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        process, ready = start(Path(tmp), port, ca, pin, make_command)
        try:
            pids = [process.pid, *children(process.pid)]
            client = Client(port, context, typical())
            asyncio.run(client.closed_loop(2, min(seconds, 1.0)))  # warm-up
            with no_collector_pauses():
                cpu_before = cpu_seconds(pids)
                closed = asyncio.run(client.closed_loop(8, seconds))
                cpu_per_request = (cpu_seconds(pids) - cpu_before) / max(1, len(closed.latencies))
            result: dict[str, Any] = {
                "pinned": pin, "start_to_ready_ms": round(ready * 1000),
                "rss_mib_per_worker": round(rss_mib(pids[-1]), 1),
                "closed_8_conns": summary(closed) | {
                    "req_per_s": round(len(closed.latencies) / seconds),
                    "server_cpu_us_per_req": round(cpu_per_request * 1e6)},
            }
            for rate in rates:
                with no_collector_pauses():
                    open_loop = asyncio.run(client.open_loop(rate, seconds))
                result[f"open_{rate}_per_s"] = summary(open_loop)
            result["rss_mib_per_worker_after"] = round(rss_mib(pids[-1]), 1)
            return result
        finally:
            process.terminate()
            process.wait(30)
