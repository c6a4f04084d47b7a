"""How long `castslice recommend` takes against a real Prometheus holding a week of
dcgm-exporter series for many Pods at 30 s resolution (the queries aggregate on the server).

    python bench/recommend.py                  # 1,000 Pods x 7 days at 30 s
    python bench/recommend.py --pods 100 --days 1

The series are written as OpenMetrics (one file per 2 h block), backfilled with `promtool
tsdb create-blocks-from openmetrics`, and served by Debian's `prometheus`; the command runs
as its own process, as a user runs it, and its wall time is the figure (median of --rounds).
"""

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.prometheus import CARD_MIB, _wait_ready  # noqa: E402
from tests.served import free_port  # noqa: E402

STEP = 30
"""Seconds between samples: a 30 s scrape, twice the exporter chart's (the figure kept from
before the chart's 15 s became the default reading)."""
BLOCK = 2 * 3600
"""promtool's block length: it reads its whole input once per 2 h block, so the week is
written as one file per block and each file backfilled on its own (one pass in all)."""


def write(directory: Path, pods: int, days: int, end: int) -> tuple[list[Path], int]:
    """Every sample of every series, one OpenMetrics file per 2 h block, family by family;
    returns the files and the number of samples."""
    count = days * 86400 // STEP
    start = end - (count - 1) * STEP
    labels = [(f'UUID="GPU-{p:05d}",modelName="NVIDIA A100-SXM4-40GB",namespace="team-{p % 20}",'
               f'pod="svc-{p // 4:04d}-7d9f8c6b5-{p:05d}",container="main"', p)
              for p in range(pods)]
    owners = [(f'namespace="team-{p % 20}",pod="svc-{p // 4:04d}-7d9f8c6b5-{p:05d}",'
               f'owner_kind="ReplicaSet",owner_name="svc-{p // 4:04d}-7d9f8c6b5",'
               'owner_is_controller="true"') for p in range(pods)]
    families = (("DCGM_FI_DEV_GPU_UTIL", lambda p, i: (p * 7 + i) % 50),
                ("DCGM_FI_DEV_FB_USED", lambda p, i: 1000 + (p * 31 + i * 13) % 5000),
                ("DCGM_FI_DEV_FB_FREE", lambda p, i: CARD_MIB - 1000 - (p * 31 + i * 13) % 5000))
    files, written = [], 0
    first = start // BLOCK * BLOCK
    for block in range(first, end + 1, BLOCK):
        steps = [i for i in range(count) if block <= start + i * STEP < block + BLOCK]
        if not steps:
            continue
        path = directory / f"block-{block}.om"
        with path.open("w") as out:
            for name, value in families:
                out.write(f"# TYPE {name} gauge\n")
                for series, p in labels:
                    head = f"{name}{{{series}}} "
                    out.write("".join(f"{head}{value(p, i)} {start + i * STEP}\n"
                                      for i in steps))
                    written += len(steps)
            out.write("# TYPE kube_pod_owner gauge\n")
            for owner in owners:
                out.write("".join(f"kube_pod_owner{{{owner}}} 1 {start + i * STEP}\n"
                                  for i in steps if i % 10 == 0))
            out.write("# EOF\n")
        files.append(path)
    return files, written


def backfill(files: list[Path], data: Path) -> None:
    """promtool on each block's file, two at a time (this machine's cores)."""
    running: list[subprocess.Popen[bytes]] = []
    for path in files:
        if len(running) == 2:
            running.pop(0).wait()
        running.append(subprocess.Popen(
            ["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q", str(path),
             str(data)], stdout=subprocess.DEVNULL))
    for process in running:
        if process.wait() != 0:
            raise RuntimeError("promtool failed")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python bench/recommend.py")
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    end = int(time.time()) // STEP * STEP
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "tsdb"
        began = time.monotonic()
        files, samples = write(Path(tmp), args.pods, args.days, end)
        wrote = time.monotonic() - began
        size = sum(f.stat().st_size for f in files)
        began = time.monotonic()
        backfill(files, data)
        backfilled = time.monotonic() - began
        for path in files:
            path.unlink()
        (Path(tmp) / "prometheus.yml").write_text("global: {scrape_interval: 30s}\n")
        port = free_port()
        server = subprocess.Popen(
            ["prometheus", f"--config.file={tmp}/prometheus.yml", f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=3650d"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, server)
            seconds = []
            for _ in range(args.rounds):
                began = time.monotonic()
                run = subprocess.run(
                    [sys.executable, "-m", "castslice", "recommend", "--prometheus", url,
                     "--at", str(end), "--window", f"{args.days}d", "--output", "json"],
                    capture_output=True, text=True,
                    env={"CASTSLICE_SLICES_PER_GPU": "8", "PATH": "/usr/bin:/bin"})
                seconds.append(time.monotonic() - began)
                if run.returncode != 0:
                    print(run.stderr, file=sys.stderr)
                    return 1
        finally:
            server.terminate()
            server.wait(timeout=60)
    workloads = run.stdout.count('"fit"')
    print(f"series          {args.pods} Pods x 3 dcgm-exporter series, {args.days} d at {STEP} s: "
          f"{samples:,} samples ({size / 2**30:.1f} GiB OpenMetrics, written in {wrote:.0f} s)")
    print(f"backfill        promtool tsdb create-blocks-from openmetrics, {len(files)} blocks: "
          f"{backfilled:.0f} s")
    print(f"recommend       {statistics.median(seconds):.2f} s median of {args.rounds} "
          f"(each {', '.join(f'{s:.2f}' for s in seconds)} s), {workloads} workloads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
