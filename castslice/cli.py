"""The `castslice` command line (SPEC §5). Errors are one line on stderr, never a traceback."""

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import orjson
import yaml

from castslice import __version__, events
from castslice.config import Config, ConfigError, available_cpus
from castslice.functions.admit import InvalidReview, admit

EXIT_CHANGED, EXIT_CONFIG = 1, 2


class Failure(Exception):
    """A problem with the user's input: printed as one line, exit code 1."""


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    env = os.environ if env is None else env
    try:
        command: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.command
        return command(args, env)
    except ConfigError as error:
        for problem in error.problems:
            print(f"castslice: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except Failure as error:
        print(f"castslice: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="castslice", description=(
        "Rewrite whole-GPU requests into shared GPU slices at Pod admission."))
    parser.add_argument("--version", action="version", version=f"castslice {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Callable[..., int], text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(command=run)
        return sub

    command("serve", serve, "serve /mutate over HTTPS (or HTTP) with the environment's config")
    command("config", show_config, "validate the environment and print the effective config")
    command("review", review, "answer one AdmissionReview (JSON or YAML) as the server would"
            ).add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd = command("mutate", mutate, "preview manifests as their Pods would be admitted")
    mutate_cmd.add_argument("file", nargs="?", default="-", help="path, or - for stdin")
    mutate_cmd.add_argument("--namespace", default="default",
                            help="namespace for manifests that name none (default: default)")
    replay_cmd = command("replay", replay, "replay golden events or captured admissions; "
                         "exit 1 if any answer changed")
    replay_cmd.add_argument("dir", nargs="?", default="events", metavar="SOURCE",
                            help="golden events directory (default: events), a capture "
                            "directory, file:///dir or s3://bucket/prefix")
    replay_cmd.add_argument("--update", action="store_true",
                            help="rewrite the expected answers of golden events")
    replay_cmd.add_argument("--since", type=_day, help="first day of captures, YYYY-MM-DD")
    replay_cmd.add_argument("--until", type=_day, help="last day of captures, YYYY-MM-DD")
    replay_cmd.add_argument("--limit", type=int, default=20,
                            help="most diffs to print for captures (default 20)")
    events_cmd = command("events", new_event, "turn a captured admission into a golden case")
    events_cmd.add_argument("source", help="capture directory, file:///dir or s3://bucket/prefix")
    events_cmd.add_argument("--uid", required=True, help="the admission's request uid")
    events_cmd.add_argument("--name", required=True, help="what the case shows, e.g. "
                            "optimize-inference-two-containers")
    events_cmd.add_argument("--dir", default="events", help="where golden cases live")
    savings_cmd = command("savings", savings, "GPU sharing and dollars saved, from a Pod list")
    savings_cmd.add_argument("file", nargs="?", default="-", help="kubectl get pods -A -o json")
    savings_cmd.add_argument("--output", choices=("table", "json", "html"), default="table")
    savings_cmd.add_argument("--price", type=float, help="dollars per GPU-hour "
                             "(default: CASTSLICE_GPU_HOURLY_COST)")
    savings_cmd.add_argument("--slices-per-gpu", type=int, help="shared units one card "
                             "advertises (default: CASTSLICE_SLICES_PER_GPU)")
    command("doctor", doctor, "can the cluster run mutated Pods? reads kubectl get nodes -o "
            "json; exit 1 if not").add_argument("file", nargs="?", default="-")
    command("audit", audit, "opted-in Pods that still hold whole GPUs, and how to recreate "
            "them; exit 1 if any").add_argument("file", nargs="?", default="-",
                                                help="kubectl get pods -A -o json")
    return parser


def load_config(env: Mapping[str, str]) -> Config:
    return Config.from_env(env, available_cpus())


def serve(_args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = load_config(env)
    if config.capture and config.capture.startswith("s3://") and not _importable("boto3"):
        raise ConfigError([f"CASTSLICE_CAPTURE={config.capture!r}: s3:// capture needs boto3; "
                           "install it with: pip install 'castslice[s3]'"])
    metrics_dir = env.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(
        prefix="castslice-metrics-")
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)
    gc.disable()  # importing the stack and building the app make only long-lived objects
    from castslice.handler.server import Server

    server = Server(config, metrics_dir)
    gc.freeze()  # so the workers' collections never scan them (and their pages stay shared)
    gc.enable()
    server.run()
    return 0


def show_config(_args: argparse.Namespace, env: Mapping[str, str]) -> int:
    print(events.dumps(load_config(env).describe()), end="")
    return 0


def review(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    config = load_config(env)
    try:
        answer = admit(_read_one(args.file), config)
    except InvalidReview as error:
        raise Failure(f"{args.file}: {error}") from None
    sys.stdout.buffer.write(orjson.dumps(answer.response) + b"\n")
    return 0


def mutate(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.manifests import preview

    config = load_config(env)
    documents = [d for d in _yaml_documents(args.file) if d is not None]
    denied = 0
    output = []
    for item in preview(documents, config, args.namespace):
        for warning in item.warnings:
            print(f"castslice: {item.label}: warning: {warning}", file=sys.stderr)
        if item.denied:
            denied += 1
            print(f"castslice: {item.label}: denied: {item.denied}", file=sys.stderr)
        output.append(item.document)
    yaml.safe_dump_all(output, sys.stdout, sort_keys=False)
    return 1 if denied else 0


def replay(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    if _is_capture(args.dir):
        return replay_captured(args, env)
    directory = Path(args.dir)
    if not directory.is_dir():
        raise Failure(f"{directory}: not a directory of events")
    try:
        cases = events.load_cases(directory)
    except ValueError as error:
        raise Failure(str(error)) from None
    changed = updated = 0
    for case in cases:
        actual = _replay_one(case, env)
        difference = events.diff(case.name, case.expected, actual)
        if difference and args.update:
            events.write(case, actual)
            updated += 1
            print(f"updated {case.path}")
        elif difference:
            changed += 1
            print(difference)
    print(f"{len(cases)} events, {len(cases) - changed - updated} unchanged, "
          f"{changed} changed, {updated} updated")
    return EXIT_CHANGED if changed else 0


def _is_capture(source: str) -> bool:
    if source.startswith(("s3://", "file://")):
        return True
    directory = Path(source)
    return directory.is_dir() and not any(directory.glob("*.json")) and any(
        directory.rglob("*.jsonl.gz"))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2026-11-22") from None


def _store(source: str) -> Any:
    from castslice.capture.store import StoreError, open_store

    try:
        return open_store(source)
    except StoreError as error:
        raise Failure(str(error)) from None


def replay_captured(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from collections import Counter

    from castslice.capture import replay as captured

    if args.update:
        raise Failure("--update rewrites golden events only; captured events are a record")
    config, store = load_config(env), _store(args.dir)
    counts: Counter[str | None] = Counter()
    progress = _Progress(sys.stderr.isatty())
    try:
        for item in captured.replay(store, config, args.since, args.until):
            counts[item.change] += 1
            progress.tick()
            if item.change and counts.total() - counts[None] <= args.limit:
                progress.clear()
                print(f"# {item.change}: {item.record['namespace']} uid {item.record['uid']}")
                print(events.diff(item.record["uid"], item.before, item.after))
    except (OSError, ValueError) as error:
        raise Failure(f"{args.dir}: {error}") from None
    progress.clear()
    print(captured.summary(counts))
    return EXIT_CHANGED if counts.total() - counts[None] else 0


class _Progress:
    """Counts and rate on stderr, only when stderr is a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.count, self.started = enabled, 0, time.monotonic()

    def tick(self) -> None:
        self.count += 1
        if self.enabled and self.count % 100 == 0:
            rate = self.count / max(time.monotonic() - self.started, 1e-9)
            print(f"\rreplayed {self.count} events, {rate:,.0f}/s", end="", file=sys.stderr)

    def clear(self) -> None:
        if self.enabled and self.count >= 100:
            print("\r\033[K", end="", file=sys.stderr)


def new_event(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.capture import replay as captured

    record = next((r for r in captured.records(_store(args.source), None, None)
                   if r["uid"] == args.uid), None)
    if record is None:
        raise Failure(f"no captured admission with uid {args.uid} in {args.source}")
    request = record["request"]
    obj = request["request"].get("object")
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)  # noise for a reader, no input to CastSlice
    path = Path(args.dir) / f"{args.name}.json"
    if path.exists():
        raise Failure(f"{path} exists; choose another --name")
    case = events.Case(path, f"Captured {record['captured_at']} in {record['namespace']} "
                       f"(CastSlice {record.get('version')}).", {}, request, {})
    answer = events.answer(case, {})
    events.write(case, answer)
    print(f"wrote {path}")
    if answer != events.readable(record["response"]):
        print("note: the current code answers differently from what was recorded")
    return 0


def savings(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice import savings as report

    config = load_config(env)
    per_gpu = args.slices_per_gpu or config.slices_per_gpu
    price = args.price if args.price is not None else config.gpu_hourly_cost
    if not per_gpu or per_gpu < 1:
        raise Failure("needs --slices-per-gpu or CASTSLICE_SLICES_PER_GPU (a whole number >= 1)")
    if price is not None and price < 0:
        raise Failure("--price must not be negative")
    summary = report.summarize(_pods(args.file), config.target_resource, per_gpu, price)
    if args.output == "json":
        print(events.dumps(summary.as_dict()), end="")
    else:
        print(report.page(summary) if args.output == "html" else report.table(summary), end="")
    return 0


def doctor(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.doctor import diagnose

    result = diagnose(_documents(args.file), load_config(env))
    print("\n".join(result.lines))
    return 0 if result.ok else 1


def audit(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.audit import slipped

    config = load_config(env)
    found = slipped(_pods(args.file), config)
    if not found:
        print(f"No opted-in Pod holds {config.source_resource}.")
        return 0
    print(f"{len(found)} opted-in Pod(s) still hold {config.source_resource} "
          "(admitted while CastSlice was unreachable):")
    for pod in found:
        print(f"  {pod.namespace}/{pod.name}  (opted in by {pod.opted_in_by})")
    print("Recreate them through admission:")
    for command in dict.fromkeys(pod.command for pod in found):
        print(f"  {command}")
    return 1


def _pods(file: str) -> list[dict[str, Any]]:
    from castslice.podlist import pods_in

    return pods_in(_documents(file))


def _documents(file: str) -> list[Any]:
    """kubectl output as JSON (parsed fast) or as one or more YAML documents."""
    text = _read_text(file)
    try:
        return [orjson.loads(text)]
    except orjson.JSONDecodeError:
        return _yaml_documents(file, text)


def _replay_one(case: events.Case, env: Mapping[str, str]) -> Any:
    try:
        return events.answer(case, env)
    except ConfigError as error:
        raise Failure(f"{case.path}: env: {'; '.join(error.problems)}") from None
    except InvalidReview as error:
        raise Failure(f"{case.path}: request: {error}") from None


def _read_text(file: str) -> str:
    try:
        return sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise Failure(f"cannot read {file}: {getattr(error, 'strerror', None) or error}"
                      ) from None


def _read_one(file: str) -> Any:
    """One JSON or YAML document (JSON first: it is what the API server sends)."""
    text = _read_text(file)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise Failure(f"{file}: neither JSON nor YAML: {' '.join(str(error).split())}"
                      ) from None


def _yaml_documents(file: str, text: str | None = None) -> list[Any]:
    text = _read_text(file) if text is None else text
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as error:
        raise Failure(f"{file}: not valid YAML: {' '.join(str(error).split())}") from None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def run() -> NoReturn:
    sys.exit(main())
