"""`castslice replay` and `castslice events`: recorded admissions through the current code."""

import argparse
import sys
import time
from collections import Counter
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from castslice import events
from castslice.cli.inputs import Failure, Register, load_config
from castslice.config import ConfigError
from castslice.functions.admit import InvalidReview

EXIT_CHANGED = 1


def register(command: Register) -> None:
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


def _replay_one(case: events.Case, env: Mapping[str, str]) -> Any:
    try:
        return events.answer(case, env)
    except ConfigError as error:
        raise Failure(f"{case.path}: env: {'; '.join(error.problems)}") from None
    except InvalidReview as error:
        raise Failure(f"{case.path}: request: {error}") from None


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
    from castslice.capture import replay as captured

    if args.update:
        raise Failure("--update rewrites golden events only; captured events are a record")
    policy, store = load_config(env).policy, _store(args.dir)
    counts: Counter[str | None] = Counter()
    progress = _Progress(sys.stderr.isatty())
    try:
        for item in captured.replay(store, policy, args.since, args.until):
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
