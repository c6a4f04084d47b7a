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

from bench import inprocess, sent, served


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="a quick run, for CI")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--compare", metavar="REV", action="append", default=[],
                        help="also serve CastSlice as of this git revision in the same "
                        "interleaved rounds (before/after pairs); may be repeated")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, 1 short)")
    args = parser.parse_args()
    seconds = 1.0 if args.short else 5.0
    rows = inprocess.run(0.2 if args.short else 2.0)
    result = served.run(seconds, [500, 1000], free_port(),
                        rounds=args.rounds or (1 if args.short else 3), compare=args.compare)
    rounds = result.pop("each_round")
    cold = served.cold_starts(free_port(), 3 if args.short else 9)
    skipped = sent.run(50 if args.short else 300)
    if args.json:
        print(json.dumps({"in_process": rows, "served": result, "served_rounds": rounds,
                          "cold_start_ms": cold, "sent": skipped}, indent=2))
        return
    print_sent(skipped, result["castslice"]["closed_8_conns"]["server_cpu_us_per_req"])
    print("In-process, per admission: the server's read (decoded view) + admit + orjson dump, "
          "against the floor (parse of the request + dump of CastSlice's own answer):")
    print(f"  {'body':8} {'bytes':>7} {'floor µs':>9} {'castslice µs':>13} {'ratio':>6}")
    for row in rows:
        print(f"  {row['body']:8} {row['bytes']:>7} {row['floor_us']:>9} "
              f"{row['castslice_us']:>13} {row['ratio']:>6}")
    print(f"\nServed over TLS, typical Pod, one process pinned to CPU 0, the load generator "
          f"({result['castslice']['load_generator']}) on CPU 1; Go: {served.go_version()}; "
          f"median of {result['castslice']['rounds']} interleaved round(s):")
    print(layer_table(result))
    for name, figures in result.items():
        print_served(name, figures)
    if "go" in result:
        print("\n" + go_ratios(result, rounds))
    else:
        print("\nNo Go toolchain (pip install '.[bench]' brings one): no Go peer measured.")
    print("\nCold start, exec to first admission answered (plain HTTP on $PORT, as under "
          "Knative), interleaved starts:")
    for name, starts in cold.items():
        print(f"  {name:11} median {starts[len(starts) // 2]} ms, "
              f"range {starts[0]}-{starts[-1]} ms over {len(starts)}")


def print_sent(found: dict[str, Any] | None, cpu_us: float) -> None:
    if found is None:
        print("No kube-apiserver/etcd (scripts/envtest-assets): what the API server sends "
              "CastSlice is not measured.\n")
        return
    print("What the API server sends CastSlice: kube-apiserver v1.36 on loopback, "
          f"{found['none']['pods']} dry-run Pod creations per row, interleaved; CastSlice CPU at "
          f"its {cpu_us:.0f} µs per admission below, as a share of one core:")
    print(sent.table(found, cpu_us) + "\n")


def layer_table(result: dict[str, Any]) -> str:
    """One row per server: what each layer costs on top of the one below it."""
    lines = [f"  {'server':16} {'req/s':>8} {'CPU µs/adm':>11} {'p99 @1000/s':>12} "
             f"{'errors':>7} {'loadgen CPU µs/req':>19}"]
    for name, figures in result.items():
        closed, fast = figures["closed_8_conns"], figures.get("open_1000_per_s", {})
        errors = closed["errors"] + fast.get("errors", 0) + fast.get("timeouts", 0)
        lines.append(f"  {name:16} {closed['req_per_s']:>8.0f} "
                     f"{closed['server_cpu_us_per_req']:>11.1f} {_figure(fast, 'p99_ms', 2):>12} "
                     f"{errors:>7.0f} {_figure(closed, 'client_cpu_us_per_req', 1):>19}")
    return "\n".join(lines)


def _figure(figures: dict[str, Any], key: str, digits: int) -> str:
    return f"{figures[key]:.{digits}f}" if key in figures else "-"


def go_ratios(result: dict[str, Any], rounds: dict[str, list[dict[str, Any]]]) -> str:
    ours, go = result["castslice"], result["go"]
    ratios = sorted(c["closed_8_conns"]["req_per_s"] / g["closed_8_conns"]["req_per_s"]
                    for c, g in zip(rounds["castslice"], rounds["go"], strict=True))
    cpu = ours["closed_8_conns"]["server_cpu_us_per_req"] / go["closed_8_conns"][
        "server_cpu_us_per_req"]
    p99 = ours["open_1000_per_s"]["p99_ms"] / go["open_1000_per_s"]["p99_ms"] if (
        "open_1000_per_s" in ours) else float("nan")
    each = ", ".join(f"{r:.2f}" for r in ratios)
    return (f"CastSlice / Go peer: server CPU per admission {cpu:.2f}x, closed-loop "
            f"throughput median {statistics.median(ratios):.2f}x (rounds: {each}), open-loop "
            f"p99 at 1000 req/s {p99:.2f}x")


def print_served(name: str, figures: dict[str, Any]) -> None:
    print(f"\n{name}:")
    print(f"  start to ready     {figures['start_to_ready_ms']} ms")
    print(f"  RSS                {figures['rss_mib_per_worker']} MiB at start, "
          f"{figures['rss_mib_per_worker_after']} MiB after load")
    for key, value in figures.items():
        if key.startswith(("open_", "closed_")):
            print(f"  {key:16} {value['req_per_s']:.0f} req/s, p50 {value['p50_ms']:.2f} ms, "
                  f"p99 {value['p99_ms']:.2f} ms, p99.9 {value['p999_ms']:.2f} ms, "
                  f"ok {value['ok']:.0f}, errors {value['errors']:.0f}, timeouts "
                  f"{value['timeouts']:.0f}, connections {value['connections']:.0f}" + (
                      f", load generator CPU {value['client_cpu_us_per_req']:.1f} µs/req "
                      f"({value['client_cpu_share']:.0%} of its core)"
                      if "client_cpu_us_per_req" in value else ""))


if __name__ == "__main__":
    main()
