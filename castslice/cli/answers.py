"""Answers without a cluster: `config`, `review`, `mutate` and `dra-templates`."""

import argparse
import re
import sys
from collections.abc import Mapping

import orjson
import yaml

from castslice.cli.inputs import (
    Failure,
    Register,
    add_env_files,
    documents,
    environment,
    load_config,
    one_document,
)
from castslice.functions.admit import InvalidReview, admit, check_review
from castslice.offline import events


def register(command: Register) -> None:
    config_cmd = command("config", show_config, "validate the configuration as the server "
                         "would at start (exit 2 if invalid) and print every effective setting")
    add_env_files(config_cmd, "the configuration")
    config_cmd.add_argument("--output", choices=("json", "yaml"), default="json")
    command("review", review, "answer one AdmissionReview (JSON or YAML) as the server would"
            ).add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd = command("mutate", mutate, "preview manifests as their Pods would be admitted")
    mutate_cmd.add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd.add_argument("--namespace", default="default",
                            help="namespace for manifests that name none (default: default)")
    templates = command("dra-templates", dra_templates, "print the ResourceClaimTemplates the "
                        "dra back-end's claims name, for kubectl apply -f -")
    templates.add_argument("--namespace", action="append", required=True, metavar="NS",
                           help="a namespace whose Pods CastSlice converts (repeatable)")
    templates.add_argument("--shared", action="store_true", help="share whole GPUs by "
                           "consumable capacity (NVIDIA DRA driver --consumable-shares) "
                           "instead of MIG devices")


def show_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    settings = load_config(environment(args.env_file, env)).describe()
    if args.output == "yaml":
        yaml.safe_dump(settings, sys.stdout, sort_keys=True, allow_unicode=True)
    else:
        print(events.dumps(settings), end="")
    return 0


def review(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    policy = load_config(env).policy
    try:
        checked = check_review(one_document(args.file))
    except InvalidReview as error:
        raise Failure(f"{args.file}: {error}") from None
    sys.stdout.buffer.write(orjson.dumps(admit(checked, policy).response) + b"\n")
    return 0


def mutate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.offline.manifests import preview

    policy = load_config(env).policy
    denied = 0
    output = []
    for item in preview(documents(args.file), policy, args.namespace):
        for warning in item.warnings:
            print(f"castslice: {item.label}: warning: {warning}", file=sys.stderr)
        if item.denied:
            denied += 1
            print(f"castslice: {item.label}: denied: {item.denied}", file=sys.stderr)
        output.append(item.document)
    yaml.safe_dump_all(output, sys.stdout, sort_keys=False)
    return 1 if denied else 0


def dra_templates(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.cluster import dra

    policy = load_config(env).policy
    bad = [n for n in args.namespace if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", n)]
    if bad:
        raise Failure(f"--namespace {bad[0]!r} is not a namespace name (a DNS-1123 label)")
    if not args.shared and (past := dra.templates_missing_mig(policy)):
        print(f"castslice: no MIG profile holds {past[0]}..{past[-1]} slices (largest "
              f"{policy.mig_profiles[-1]}): Pods granted that many would stay Pending; set "
              f"CASTSLICE_MAX_SLICES={past[0] - 1} or use --shared", file=sys.stderr)
    yaml.safe_dump_all(dra.claim_templates(policy, args.namespace, args.shared), sys.stdout,
                       sort_keys=False)
    return 0
