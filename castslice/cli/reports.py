"""Reports from `kubectl get ... -o json`: `savings`, `doctor` and `audit`, reading a file,
stdin, or the cluster through kubectl (`kubectl.py`)."""

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from castslice.cli import kubectl
from castslice.cli.inputs import Failure, Register, load_config
from castslice.offline import events

DOCTOR_READS = {"extended": ("nodes",), "mig": ("nodes", "resourceslices", "deviceclasses"),
                "dra": ("resourceslices", "resourceclaimtemplates", "namespaces", "pods",
                        "deviceclasses")}
"""What each back-end's doctor reads from the cluster, beside COMMON."""
COMMON = ("resourcequotas", "mutatingwebhookconfigurations", "daemonsets")
ENGINES = ("mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
           "validatingadmissionpolicies")
"""The policy engine's objects: read where the cluster serves them (1.34+ with the gate)."""


def register(command: Register) -> None:
    savings_cmd = command("savings", savings, "GPU sharing and dollars saved, from a Pod list "
                          "(needs CASTSLICE_SLICES_PER_GPU or --slices-per-gpu)")
    kubectl.add_source(savings_cmd, "kubectl get pods -A -o json")
    savings_cmd.add_argument("--output", choices=("table", "json", "html"), default="table")
    savings_cmd.add_argument("--price", type=float, help="dollars per GPU-hour "
                             "(default: CASTSLICE_GPU_HOURLY_COST)")
    savings_cmd.add_argument("--slices-per-gpu", type=int, help="shared units one card "
                             "advertises (default: CASTSLICE_SLICES_PER_GPU)")
    kubectl.add_source(command("doctor", doctor, "can the cluster run mutated Pods? exit 1 if "
                               "not"), "what kubectl get -o json printed for the back-end")
    quotas_cmd = command("quotas", quotas, "the cluster's GPU ResourceQuotas with K GPUs moved "
                         "to what the back-end converts to, for kubectl apply -f -")
    kubectl.add_source(quotas_cmd, "kubectl get resourcequotas -A -o json")
    share = quotas_cmd.add_mutually_exclusive_group(required=True)
    share.add_argument("--shared-gpus", type=int, metavar="K", help="GPUs of each quota "
                       "that opted-in Pods may hold converted")
    share.add_argument("--shared-fraction", type=float, metavar="F", help="the share of each "
                       "quota's GPUs they may hold, rounded down (0 < F <= 1)")
    quotas_cmd.add_argument("--output", choices=("yaml", "values"), default="yaml",
                            help="yaml: for kubectl apply -f - or a kustomization; values: "
                            "the Helm chart's quotas value")
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
    pods = _pods(args)
    summary = report.summarize(pods, config.policy, per_gpu, price)
    if not summary.groups:
        print(f"castslice: {report.why_none(pods, config.policy)}", file=sys.stderr)
    if args.output == "json":
        print(events.dumps(summary.as_dict()), end="")
    else:
        print(report.page(summary) if args.output == "html" else report.table(summary), end="")
    return 0


def doctor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.cluster import dra
    from castslice.cluster.doctor import diagnose

    policy = load_config(env).policy
    found = kubectl.read(args, (*DOCTOR_READS[policy.backend], *COMMON), optional=ENGINES)
    if policy.backend == "dra" and policy.dra_devices == "shares" and kubectl.asks_cluster(args):
        found.append(kubectl.dry_run(args, dra.capacity_probe(policy, args.namespace or
                                                              "default")))
    result = diagnose(found, policy)
    print("\n".join(result.lines))
    return 0 if result.ok else 1


def quotas(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import yaml

    from castslice.cluster import quotas as split
    from castslice.cluster.objects import objects_of

    policy = load_config(env).policy
    if args.shared_fraction is not None and not 0 < args.shared_fraction <= 1:
        raise Failure(f"--shared-fraction {args.shared_fraction} must be above 0 and at most 1")
    if args.shared_gpus is not None and args.shared_gpus < 0:
        raise Failure(f"--shared-gpus {args.shared_gpus} must be 0 or more")
    if split.counts_units(policy) and not policy.slices_per_gpu:
        raise Failure("needs CASTSLICE_SLICES_PER_GPU: the units one GPU is, which the "
                      "split counts in")
    documents = kubectl.read(args, ("resourcequotas",), optional=(
        ("deviceclasses",) if policy.backend == "dra" else ()))
    listed = objects_of(documents, "ResourceQuota")
    charged = split.charged_as_source(policy, objects_of(documents, "DeviceClass"))
    if not listed:
        raise Failure("the input holds no ResourceQuota (kubectl get resourcequotas -A -o json)")
    found = split.gpu_quotas(listed, policy)
    if not found:
        raise Failure(f"no ResourceQuota in the input limits {policy.source_resource}")
    out = []
    for quota in found:
        shared = (args.shared_gpus if args.shared_gpus is not None
                  else int(quota.gpus * args.shared_fraction))
        where = f"ResourceQuota {quota.namespace}/{quota.name}"
        if shared > quota.gpus:
            raise Failure(f"--shared-gpus {shared} is more than the {quota.gpus} GPUs {where} "
                          "allows")
        if quota.counted and split.bounds_converted(quota, policy):
            print(f"castslice: {where} is split already; left out", file=sys.stderr)
            continue
        if quota.counted and charged:
            print(f"castslice: {where} counts every claim already (DeviceClass {charged} "
                  f"charges it as {policy.source_resource}); left out", file=sys.stderr)
            continue
        out.append((split.promise(quota, policy, shared), split.split(quota, policy, shared)))
    if args.output == "values":
        print("".join(c for c, _ in out) + yaml.safe_dump({"quotas": [q for _, q in out]},
                                                          sort_keys=False), end="")
    else:
        print("---\n".join(c + yaml.safe_dump(q, sort_keys=False) for c, q in out), end="")
    return 0


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
    """The Pods of the input; an input that is no Pod list at all (empty, another kind, a
    failed kubectl's nothing) is an error, never an empty report."""
    from castslice.cluster.objects import listed_empty, pods_in

    found = kubectl.read(args, ("pods",))
    pods = pods_in(found)
    if not pods and not listed_empty(found, "Pod"):
        raise Failure("the input holds no Pod: pipe `kubectl get pods -A -o json` (or give "
                      "--context/-n to ask the cluster)")
    return pods
