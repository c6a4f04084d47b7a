"""Reports from `kubectl get ... -o json`: `savings`, `doctor` and `audit`, reading a file,
stdin, or the cluster through kubectl (`kubectl.py`)."""

import argparse
from collections.abc import Mapping
from typing import Any

from castslice.cli import kubectl
from castslice.cli.inputs import Failure, Register, load_config
from castslice.offline import events

DOCTOR_READS = {"extended": ("nodes",), "mig": ("nodes", "resourceslices", "deviceclasses"),
                "dra": ("resourceslices", "resourceclaimtemplates", "namespaces", "pods")}
"""What each back-end's doctor reads from the cluster."""


def register(command: Register) -> None:
    savings_cmd = command("savings", savings, "GPU sharing and dollars saved, from a Pod list")
    kubectl.add_source(savings_cmd, "kubectl get pods -A -o json")
    savings_cmd.add_argument("--output", choices=("table", "json", "html"), default="table")
    savings_cmd.add_argument("--price", type=float, help="dollars per GPU-hour "
                             "(default: CASTSLICE_GPU_HOURLY_COST)")
    savings_cmd.add_argument("--slices-per-gpu", type=int, help="shared units one card "
                             "advertises (default: CASTSLICE_SLICES_PER_GPU)")
    kubectl.add_source(command("doctor", doctor, "can the cluster run mutated Pods? exit 1 if "
                               "not"), "what kubectl get -o json printed for the back-end")
    kubectl.add_source(command("audit", audit, "opted-in Pods that still hold whole GPUs, and "
                               "how to recreate them; exit 1 if any"),
                       "kubectl get pods -A -o json")


def savings(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.cluster import savings as report

    config = load_config(env)
    per_gpu = (None if config.policy.mig_devices else args.slices_per_gpu) or (
        config.units_per_card)  # a MIG card is its ladder's compute slices, whatever the flag
    price = args.price if args.price is not None else config.gpu_hourly_cost
    if not per_gpu or per_gpu < 1:
        raise Failure("needs --slices-per-gpu or CASTSLICE_SLICES_PER_GPU (a whole number >= 1)")
    if price is not None and price < 0:
        raise Failure("--price must not be negative")
    summary = report.summarize(_pods(args), config.policy, per_gpu, price)
    if args.output == "json":
        print(events.dumps(summary.as_dict()), end="")
    else:
        print(report.page(summary) if args.output == "html" else report.table(summary), end="")
    return 0


def doctor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.cluster import dra
    from castslice.cluster.doctor import diagnose

    policy = load_config(env).policy
    found = kubectl.read(args, DOCTOR_READS[policy.backend])
    if policy.backend == "dra" and policy.dra_devices == "shares" and kubectl.asks_cluster(args):
        found.append(kubectl.dry_run(args, dra.capacity_probe(policy, args.namespace or
                                                              "default")))
    result = diagnose(found, policy)
    print("\n".join(result.lines))
    return 0 if result.ok else 1


def audit(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.cluster.audit import slipped

    policy = load_config(env).policy
    found = slipped(_pods(args), policy)
    if not found:
        print(f"No opted-in Pod holds {policy.source_resource}.")
        return 0
    print(f"{len(found)} opted-in Pod(s) still hold {policy.source_resource} "
          "(admitted while CastSlice was unreachable):")
    for pod in found:
        print(f"  {pod.namespace}/{pod.name}  (opted in by {pod.opted_in_by})")
    print("Recreate them through admission:")
    for command in dict.fromkeys(pod.command for pod in found):
        print(f"  {command}")
    return 1


def _pods(args: argparse.Namespace) -> list[dict[str, Any]]:
    from castslice.cluster.objects import pods_in

    return pods_in(kubectl.read(args, ("pods",)))
