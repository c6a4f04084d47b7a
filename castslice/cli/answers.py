"""Answers without a cluster: `config`, `review`, `mutate`, `policy` and `dra-templates`."""

import argparse
import re
import sys
from collections.abc import Mapping

import orjson

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
from castslice.settings.config import Config, ConfigError


def register(command: Register) -> None:
    config_cmd = command("config", show_config, "validate the configuration as the server "
                         "would at start (exit 2 if invalid) and print every effective setting")
    add_env_files(config_cmd, "the configuration")
    config_cmd.add_argument("--output", choices=("json", "yaml"), default="json")
    command("review", review, "answer one AdmissionReview (JSON or YAML) as the server would"
            ).add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd = command("mutate", mutate, "preview manifests as their Pods would be admitted")
    mutate_cmd.add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd.add_argument("-n", "--namespace", default="default",
                            help="namespace for manifests that name none (default: default)")
    policy_cmd = command("policy", print_policy, "print the admission policies that decide as "
                         "the webhook does inside the API server (Kubernetes 1.36+), for "
                         "kubectl apply -f -")
    add_env_files(policy_cmd, "the configuration")
    templates = command("dra-templates", dra_templates, "print the ResourceClaimTemplates the "
                        "dra back-end's claims name, for kubectl apply -f -")
    templates.add_argument("-n", "--namespace", action="append", required=True, metavar="NS",
                           help="a namespace whose Pods CastSlice converts (repeatable)")
    templates.add_argument("--shared", action="store_true", help=argparse.SUPPRESS)


def show_config(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    given = environment(args.env_file, env)
    settings = load_config(given).describe()
    for warning in Config.unknown(given):
        print(warning, file=sys.stderr)
    if args.output == "yaml":
        import yaml  # PyYAML is loaded by the commands that write YAML, never by serve

        yaml.safe_dump(settings, sys.stdout, sort_keys=True, allow_unicode=True)
    else:
        print(events.dumps(settings), end="")
    return 0


def print_policy(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import yaml

    from castslice.cel.errors import Unsupported
    from castslice.cel.objects import policy_objects

    given = environment(args.env_file, env)
    policy = load_config(given).policy
    for warning in Config.unknown(given):
        print(warning, file=sys.stderr)
    try:
        objects = policy_objects(policy)
    except Unsupported as error:
        raise ConfigError([str(error)]) from None
    yaml.safe_dump_all(objects, sys.stdout, sort_keys=True, width=100_000)
    return 0


def review(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    policy = load_config(env).policy
    for warning in Config.unknown(env):
        print(warning, file=sys.stderr)
    document = one_document(args.file)
    if events.is_case(document):  # a golden file: its request, under its own env on top
        policy = load_config({**env, **document.get("env", {})}).policy
        document = document["request"]
    if document is None:
        raise Failure(f"{args.file}: empty; expected an AdmissionReview (JSON or YAML)")
    if isinstance(document, dict) and document.get("kind") != "AdmissionReview" and (
            document.get("kind") in ("Pod", "Deployment", "Job", "StatefulSet", "List")
            or "spec" in document):
        raise Failure(f"{args.file}: a {document.get('kind') or 'manifest'}, not an "
                      f"AdmissionReview: preview it with castslice mutate {args.file}")
    try:
        checked = check_review(document)
    except InvalidReview as error:
        raise Failure(f"{args.file}: {error}") from None
    # the server's bytes exactly; a newline only for a reader at a terminal
    end = b"\n" if sys.stdout.isatty() else b""
    sys.stdout.buffer.write(orjson.dumps(admit(checked, policy).response) + end)
    return 0


def mutate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import yaml

    from castslice.offline.manifests import TEMPLATE_PATHS, expanded, preview

    policy = load_config(env).policy
    for warning in Config.unknown(env):
        print(warning, file=sys.stderr)
    read = documents(args.file)
    if not read:
        raise Failure(f"{args.file}: empty; expected Kubernetes manifests (YAML or JSON)")
    if not any(isinstance(d, dict) and (d.get("kind") == "Pod" or d.get("kind") in
                                        TEMPLATE_PATHS) for d in expanded(read)):
        raise Failure(f"{args.file}: holds no Pod or workload with a pod template "
                      f"({', '.join(TEMPLATE_PATHS)}, or a List of them)")
    denied = 0
    output = []
    for item in preview(read, policy, args.namespace):
        for warning in item.warnings:
            print(f"castslice: {item.label}: warning: {warning}", file=sys.stderr)
        if item.denied:
            denied += 1
            print(f"castslice: {item.label}: denied: {item.denied}", file=sys.stderr)
        output.append(item.document)
    yaml.safe_dump_all(output, sys.stdout, sort_keys=False)
    return 1 if denied else 0


def dra_templates(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    import yaml

    from castslice.cluster import dra

    policy = load_config(env).policy
    if policy.backend != "dra":
        raise Failure(f"dra-templates is for CASTSLICE_BACKEND=dra (now {policy.backend}): "
                      "only the dra back-end's claims name templates")
    bad = [n for n in args.namespace if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", n)]
    if bad:
        raise Failure(f"--namespace {bad[0]!r} is not a namespace name (a DNS-1123 label)")
    if args.shared and policy.dra_devices != "shares":
        raise Failure("--shared is now the configuration's: set CASTSLICE_DRA_DEVICES=shares "
                      "and CASTSLICE_SLICES_PER_GPU=N, as the server reads them")
    counts = dra.slice_counts(policy)
    yaml.safe_dump_all(dra.claim_templates(policy, args.namespace), sys.stdout, sort_keys=False)
    if counts.stop <= policy.max_slices:
        print(f"castslice: templates {policy.dra_template(1)} to "
              f"{policy.dra_template(counts.stop - 1)}; Pods asking more slices per GPU are "
              "admitted unchanged with a warning", file=sys.stderr)
    return 0
