"""`castslice verify`: the loop's last step, after a conversion (usage/verify.py)."""

import argparse
import sys
import time
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING

from castslice.cli.connecting import add_connection, connection
from castslice.cli.inputs import Failure, Register, add_env_files, environment, load_config
from castslice.offline import events

if TYPE_CHECKING:  # usage/ is imported by the command alone, never on serve's path
    from castslice.usage.verify import Verdict

EXIT_HURT = 1


def register(command: Register) -> None:
    verify_cmd = command("verify", verify, "did sharing hurt? each converted workload's SLO "
                         "before and after its conversion, and the change that takes back "
                         "only the hurt ones; exit 1 if any is hurt")
    add_connection(verify_cmd)
    verify_cmd.add_argument("--slo", required=True, metavar="PROMQL", help="series with "
                            "namespace and pod labels, lower is better: e.g. a p99 latency")
    verify_cmd.add_argument("--window", default="7d", help="how far back (default 7d)")
    verify_cmd.add_argument("--worse-by", type=float, default=20.0, metavar="PERCENT",
                            help="hurt when the SLO is worse by more than this (default 20)")
    verify_cmd.add_argument("--output", choices=("table", "json"), default="table")
    verify_cmd.add_argument("--at", type=float, metavar="UNIX_TIME",
                            help="evaluate at this time instead of now")
    add_env_files(verify_cmd, "the configuration that converted them (back-end, resources)")


def verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.usage import series
    from castslice.usage.prometheus import PrometheusError
    from castslice.usage.verify import verify as judged

    policy = load_config(environment(args.env_file, env)).policy
    if policy.backend == "dra":
        raise Failure("verify reads conversions from kube-state-metrics' resource requests; "
                      "dra claims are not among them (use extended or mig)")
    if not 0 <= args.worse_by <= 1000:
        raise Failure("--worse-by must be a percentage from 0 to 1000")
    try:
        window = series.check_window(args.window)
        found = judged(connection(args), policy, args.slo,
                       window, time.time() if args.at is None else args.at, args.worse_by)
    except (ValueError, PrometheusError) as error:
        raise Failure(str(error)) from None
    if args.output == "json":
        print(events.dumps({"window": window, "slo": args.slo, "worse_by": args.worse_by,
                            "workloads": [asdict(v) for v in found]}), end="")
    else:
        print(_table(found, args.worse_by))
    if not found:
        print(f"castslice: no workload was converted in the last {window} (no Pod asked "
              "what CastSlice converts to in kube_pod_container_resource_requests)",
              file=sys.stderr)
    return EXIT_HURT if any(v.verdict == "hurt" for v in found) else 0


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _table(found: "list[Verdict]", worse_by: float) -> str:
    lines = [f"{'NAMESPACE':16} {'WORKLOAD':32} {'CONVERTED':17} {'BEFORE':>10} {'AFTER':>10} "
             f"{'CHANGE':>8}  {'GPU% B/A':>11} {'MIB B/A':>13}  VERDICT"]
    for v in found:
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(v.converted_at))
        before = "-" if v.slo_before is None else f"{v.slo_before:.4g}"
        after = "-" if v.slo_after is None else f"{v.slo_after:.4g}"
        change = "-" if v.change_percent is None else f"{v.change_percent:+.0f}%"
        gpu = f"{_num(v.gpu_before)}/{_num(v.gpu_after)}"
        memory = f"{_num(v.memory_before_mib)}/{_num(v.memory_after_mib)}"
        lines.append(f"{v.namespace:16} {f'{v.kind}/{v.workload}'[:32]:32} {when:17} "
                     f"{before:>10} {after:>10} {change:>8}  {gpu:>11} {memory:>13}  "
                     f"{v.verdict}")
    lines.append(f"\nBEFORE, AFTER: p95 of the SLO over each side of the conversion, the "
                 f"median over the workload's Pods; hurt: worse by more than {worse_by:g} %. "
                 "GPU% B/A: p95 of its Pods' own DCGM_FI_DEV_GPU_UTIL before/after; MIB B/A: "
                 "peak DCGM_FI_DEV_FB_USED; - where the exporter has no series of them.")
    lines += [f"take back {v.namespace}/{v.workload}: {v.revert}" for v in found if v.revert]
    return "\n".join(lines)
