"""`make fuzz`: many hostile bodies through a real server over TLS and keep-alive.

Prints bodies sent, answers by kind (HTTP status, decided, fallback), connection failures,
and the worker's pid and memory before and after. Exit 1 if any invariant failed.
Usage: python -m tests.fuzz [--bodies N] [--seed S]
"""

import argparse
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from tests.hostile import check_answer, hostile_body
from tests.served import serve, worker_pids, worker_rss_kib

JSON = {"Content-Type": "application/json"}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz")
    parser.add_argument("--bodies", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds: Counter[str] = Counter(fallback=0)  # printed even at 0: the figure to watch
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp, serve(Path(tmp), workers=1) as served:
        (pid,) = worker_pids(served.process.pid)
        before = worker_rss_kib(pid)
        conn = served.connect()
        started = time.monotonic()
        for _ in range(args.bodies):
            body = hostile_body(rng)
            try:
                status, payload = served.request("POST", "/mutate", body, JSON, conn=conn)
                kinds[check_answer(body, status, payload, "nvidia.com/gpu-shared")] += 1
            except AssertionError as error:
                failures.append(str(error)[:300])
            except OSError as error:
                kinds[f"connection {type(error).__name__}"] += 1
                conn.close()
        seconds = time.monotonic() - started
        after, pids = worker_rss_kib(pid), worker_pids(served.process.pid)
    print(f"bodies sent           {args.bodies} in {seconds:.1f} s "
          f"({args.bodies / seconds:,.0f}/s), seed {args.seed}")
    for kind, count in sorted(kinds.items()):
        print(f"  {kind:20} {count:>8}")
    print(f"invariant failures    {len(failures)}")
    print(f"worker                pid {pid} -> {pids} (same worker: {pids == [pid]})")
    print(f"worker RSS            {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB")
    for failure in failures[:5]:
        print(f"  {failure}")
    return 1 if failures or pids != [pid] else 0


if __name__ == "__main__":
    sys.exit(main())
