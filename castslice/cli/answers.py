"""Answers without a cluster: `config`, `review` and `mutate`."""

import argparse
import sys
from collections.abc import Mapping

import orjson
import yaml

from castslice import events
from castslice.cli.inputs import Failure, Register, documents, load_config, one_document
from castslice.functions.admit import InvalidReview, admit, check_review


def register(command: Register) -> None:
    command("config", show_config, "validate the environment and print the effective config")
    command("review", review, "answer one AdmissionReview (JSON or YAML) as the server would"
            ).add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd = command("mutate", mutate, "preview manifests as their Pods would be admitted")
    mutate_cmd.add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd.add_argument("--namespace", default="default",
                            help="namespace for manifests that name none (default: default)")


def show_config(_args: argparse.Namespace, env: Mapping[str, str]) -> int:
    print(events.dumps(load_config(env).describe()), end="")
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
    from castslice.manifests import preview

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
