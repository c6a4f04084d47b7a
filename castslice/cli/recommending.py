"""`castslice recommend`: measured GPU use -> a configuration, as a table, JSON or env file."""

import argparse
import sys
from collections.abc import Mapping

from castslice.cli.connecting import add_connection, connection
from castslice.cli.inputs import Failure, Register, add_env_files, environment, load_config
from castslice.offline import events


def register(command: Register) -> None:
    recommend_cmd = command("recommend", recommend, "from dcgm-exporter's series in "
                            "Prometheus, how many Pods of each workload fit on one GPU, as "
                            "the configuration that packs them (needs "
                            "CASTSLICE_SLICES_PER_GPU unless the back-end is mig)")
    add_connection(recommend_cmd)
    recommend_cmd.add_argument("--window", default="7d", help="how far back (default 7d)")
    recommend_cmd.add_argument("--output", choices=("table", "json", "env"), default="table")
    recommend_cmd.add_argument("--target-util", type=float, default=80.0, metavar="PERCENT",
                               help="compute a card may reach (p95, default 80)")
    recommend_cmd.add_argument("--min-hours", type=float, default=24.0,
                               help="hours of samples a workload needs (default 24)")
    recommend_cmd.add_argument("--memory-headroom", type=float, default=20.0, metavar="PERCENT",
                               help="memory asks are the peak plus this much (default 20)")
    recommend_cmd.add_argument("--time-slicing-derate", type=float, default=24.0,
                               metavar="PERCENT", help="under extended, what context switches "
                               "cost a time-sliced card (default 24: NVIDIA's A100 measure, "
                               "0.76 of MIG's requests/s)")
    recommend_cmd.add_argument("--rules", choices=("grant", "memory"), default="grant",
                               help="what the env file's rules set: the grant (workloadType or "
                               "sliceRatio, default) or gpuMemory, the memory ask")
    recommend_cmd.add_argument("--scrape-interval", type=float, metavar="SECONDS",
                               help="dcgm-exporter's scrape interval, to turn sample counts "
                               "into hours (default: read from the data, else 15)")
    recommend_cmd.add_argument("--at", type=float, metavar="UNIX_TIME",
                               help="evaluate at this time instead of now")
    add_env_files(recommend_cmd, "the current configuration (back-end, presets, ladder, "
                  "CASTSLICE_SLICES_PER_GPU)")


def recommend(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.usage import advice, report, series
    from castslice.usage.prometheus import PrometheusError

    config = load_config(environment(args.env_file, env))
    policy = config.policy
    if not policy.mig_devices and not policy.card_units():
        raise Failure("needs CASTSLICE_SLICES_PER_GPU (the units one GPU advertises) to turn "
                      "Pods per card into a grant")
    if not 0 < args.target_util <= 100:
        raise Failure("--target-util must be a percentage above 0, at most 100")
    if not 0 <= args.memory_headroom <= 1000:
        raise Failure("--memory-headroom must be a percentage from 0 to 1000")
    if not 0 <= args.time_slicing_derate < 100:
        raise Failure("--time-slicing-derate must be a percentage from 0 to below 100")
    if args.scrape_interval is not None and not args.scrape_interval > 0:
        raise Failure("--scrape-interval must be a number of seconds above 0")
    try:
        window = series.check_window(args.window)
        measured = series.measure(connection(args), window, args.at, args.scrape_interval)
    except ValueError as error:
        raise Failure(str(error)) from None
    except PrometheusError as error:
        raise Failure(str(error)) from None
    if not measured.usage and not measured.unheld:
        raise Failure(f"no {series.ENGINE} or {series.UTIL} series over the last {window} at "
                      f"{args.prometheus}: "
                      "is dcgm-exporter scraped by this Prometheus?")
    found = advice.recommend(measured, policy, target=args.target_util,
                             min_hours=args.min_hours, price=config.gpu_hourly_cost,
                             headroom=args.memory_headroom,
                             derate=args.time_slicing_derate)
    if args.output == "json":
        print(events.dumps(report.as_dict(found, measured, window, policy, args.rules)), end="")
    elif args.output == "env":
        print(report.env_file(found, config, measured, window, args.rules), end="")
    else:
        print(report.table(found, measured, window, args.memory_headroom), end="")
    if not found.advice:
        print("castslice: no workload has enough data for a recommendation", file=sys.stderr)
        return 1
    return 0

