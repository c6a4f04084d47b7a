"""Run the CastSlice benchmark and print its figures. No thresholds: figures, not verdicts.

    python bench/run.py            # full: 5 s per phase, open loop at 500 and 1000 req/s
    python bench/run.py --short    # CI: about 10 s in all
"""

import argparse
import json
import socket
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import inprocess, served


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a quick run, for CI")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args()
    seconds = 1.0 if args.short else 5.0
    rows = inprocess.run(0.2 if args.short else 2.0)
    result = served.run(seconds, [500, 1000], free_port(), rounds=1 if args.short else 3)
    rounds = result.pop("each_round")
    cold = served.cold_starts(free_port(), 3 if args.short else 9)
    if args.json:
        print(json.dumps({"in_process": rows, "served": result, "served_rounds": rounds,
                          "cold_start_ms": cold}, indent=2))
        return
    print("In-process, per admission (orjson parse + admit + orjson dump vs parse + dump):")
    print(f"  {'body':8} {'bytes':>7} {'floor µs':>9} {'castslice µs':>13} {'ratio':>6}")
    for row in rows:
        print(f"  {row['body']:8} {row['bytes']:>7} {row['floor_us']:>9} "
              f"{row['castslice_us']:>13} {row['ratio']:>6}")
    for name, figures in result.items():
        print_served(name, figures)
    if "go" in result:
        ratios = sorted(c["closed_8_conns"]["req_per_s"] / g["closed_8_conns"]["req_per_s"]
                        for c, g in zip(rounds["castslice"], rounds["go"], strict=True))
        each = ", ".join(f"{r:.2f}" for r in ratios)
        print(f"\nClosed-loop throughput, CastSlice / Go peer (same core, interleaved rounds): "
              f"median {statistics.median(ratios):.2f} (rounds: {each})")
    else:
        print("\nNo Go toolchain on PATH: no Go peer measured (see bench/README.md).")
    print(f"\nCold start, exec to first admission answered (plain HTTP on $PORT, as under "
          f"Knative), {len(cold)} starts: median {cold[len(cold) // 2]} ms, max {cold[-1]} ms")


def print_served(name: str, figures: dict[str, Any]) -> None:
    pinned = " pinned to CPU 0" if figures["pinned"] else ""
    print(f"\n{name}: served over TLS, keep-alive, 1 process{pinned}, median of "
          f"{figures['rounds']} round(s):")
    print(f"  start to ready     {figures['start_to_ready_ms']} ms")
    print(f"  RSS                {figures['rss_mib_per_worker']} MiB at start, "
          f"{figures['rss_mib_per_worker_after']} MiB after load")
    closed = figures["closed_8_conns"]
    print(f"  closed loop, 8 connections: {closed['req_per_s']} req/s, server CPU "
          f"{closed['server_cpu_us_per_req']} µs/req, p50 {closed['p50_ms']} ms, "
          f"errors {closed['errors']}")
    for key, value in figures.items():
        if key.startswith("open_"):
            rate = key.split("_")[1]
            print(f"  open loop {rate:>5} req/s: p50 {value['p50_ms']} ms, "
                  f"p99 {value['p99_ms']} ms, "
                  f"p99.9 {value['p999_ms']} ms, ok {value['ok']}, errors {value['errors']}, "
                  f"timeouts {value['timeouts']}, connections opened {value['connections']}")

if __name__ == "__main__":
    main()
