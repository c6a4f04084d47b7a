"""`castslice replay` and `castslice events`: recorded admissions through the current code."""

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from castslice.cli.inputs import Failure, Register, add_env_files, environment, load_config
from castslice.functions.admit import InvalidReview, admit, check_review
from castslice.offline import events
from castslice.settings.config import Config, ConfigError, policy_from_env

EXIT_CHANGED = 1


NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
"""A golden event's file name, without .json."""


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
    add_env_files(replay_cmd, "a proposed configuration: captures are decided under the one "
                  "recorded with them and under this one, and what would change is reported; "
                  "golden events take it as their base environment")
    replay_cmd.add_argument("--current-env", action="store_true", help="captures: compare "
                            "the recorded answers with this environment's, not with the "
                            "recorded configuration's")
    replay_cmd.add_argument("--output", choices=("table", "json"), default="table",
                            help="report format with --env-file")
    events_cmd = command("events", new_event, "turn a captured admission into a golden case")
    events_cmd.add_argument("source", help="capture directory, file:///dir or s3://bucket/prefix")
    events_cmd.add_argument("--uid", required=True, help="the admission's request uid")
    events_cmd.add_argument("--name", required=True, help="what the case shows, e.g. "
                            "optimize-inference-two-containers")
    events_cmd.add_argument("--dir", default="events", help="where golden cases live")


def replay(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    for warning in Config.unknown(env):
        print(warning, file=sys.stderr)
    if "://" in args.dir and not args.dir.startswith(("s3://", "file://")):
        raise Failure(f"{args.dir}: replay reads a directory, file:///dir or s3://bucket/prefix"
                      f" (not {args.dir.split('://')[0]}://)")
    if args.since and args.until and args.since > args.until:
        raise Failure(f"--since {args.since} is after --until {args.until}: no day is both")
    if _is_capture(args.dir):
        if args.update:
            raise Failure("--update rewrites golden events only; captured events are a record")
        if args.env_file and args.current_env:
            raise Failure("--current-env compares with this environment, --env-file with a "
                          "proposed one: give one of them")
        if args.env_file:
            return preview_change(args, env)
        return replay_captured(args, env)
    env = environment(args.env_file, env)
    directory = Path(args.dir)
    if not directory.is_dir():
        raise Failure(f"{directory}: not a directory of events")
    try:
        cases = events.load_cases(directory)
    except ValueError as error:
        raise Failure(str(error)) from None
    if not cases:
        raise Failure(f"{directory}: no events (*.json golden events, or a capture's "
                      "*.jsonl.gz files)")
    changed = updated = refused = 0
    for case in cases:
        try:
            actual = _replay_one(case, env)
        except ConfigError as error:  # this environment under the case's own: no server
            refused += 1
            print(f"# {case.name}: its env with yours would not start: "
                  f"{'; '.join(error.problems)}")
            continue
        difference = events.diff(case.name, case.expected, actual)
        if difference and args.update:
            events.write(case, actual)
            updated += 1
            print(f"updated {case.path}")
        elif difference:
            changed += 1
            print(difference)
    print(f"{len(cases)} events, {len(cases) - changed - updated - refused} unchanged, "
          f"{changed} changed, {updated} updated"
          + (f", {refused} not replayed (their env with yours is invalid)" if refused else ""))
    return EXIT_CHANGED if changed or refused else 0


def _replay_one(case: events.Case, env: Mapping[str, str]) -> Any:
    """The case's answer now; ConfigError when its env with `env` would not start."""
    try:
        return events.answer(case, env)
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
    """Recorded answers against the current code, under each event's recorded configuration
    (so what differs is the code's doing), or with --current-env under this environment."""
    from castslice.capture import replay as captured

    current = load_config(env).policy
    policies = captured.RecordedPolicies(current)
    counts: Counter[str | None] = Counter()
    progress = _Progress(sys.stderr.isatty())
    with _reading(args.dir):
        for event in captured.captured(_store(args.dir), args.since, args.until):
            policy = current if args.current_env else policies.of(event)
            before = event.record["response"]
            after = admit(check_review(event.record["request"]), policy).response
            kind = captured.change(before["response"], after["response"])
            counts[kind] += 1
            progress.tick()
            if kind and counts.total() - counts[None] <= args.limit:
                progress.clear()
                uid = str(event.record.get("uid"))
                print(f"# {kind}: {event.record.get('namespace')} uid {uid}")
                print(events.diff(uid, events.readable(before),
                                  events.readable(after)))
    progress.clear()
    if not counts.total():
        raise Failure(f"{args.dir}: no captured event"
                      + (" in the days asked (--since/--until)" if args.since or args.until
                         else ""))
    print(captured.summary(counts))
    print(progress.rate(), file=sys.stderr)
    if policies.unrecorded and not args.current_env:
        print(f"note: {policies.unrecorded} events were captured without their configuration "
              "and were decided under this environment", file=sys.stderr)
    return EXIT_CHANGED if counts.total() - counts[None] else 0


def preview_change(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    """Each captured event decided under its recorded configuration and under the proposed
    one (--env-file): what the change would do, per namespace and kind."""
    from castslice.capture import replay as captured
    from castslice.capture.preview import Preview

    proposed = policy_from_env(environment(args.env_file, env))
    policies = captured.RecordedPolicies(load_config(env).policy)
    preview = Preview()
    progress = _Progress(sys.stderr.isatty())
    with _reading(args.dir):
        for event in captured.captured(_store(args.dir), args.since, args.until):
            review = check_review(event.record["request"])
            preview.add(event.record, admit(review, policies.of(event)), admit(review, proposed))
            progress.tick()
    progress.clear()
    seconds = progress.seconds()
    if args.output == "json":
        print(events.dumps(preview.as_dict(seconds) | {"unrecorded": policies.unrecorded}),
              end="")
    else:
        print(preview.table(seconds), end="")
    if policies.unrecorded:
        print(f"note: {policies.unrecorded} events were captured without their configuration; "
              "their \"before\" is this environment's", file=sys.stderr)
    return EXIT_CHANGED if preview.changed else 0


@contextmanager
def _reading(source: str) -> Iterator[None]:
    """A capture that cannot be read, or an event in it that is not a review, is one line."""
    from castslice.capture.store import StoreError

    try:
        yield
    except StoreError as error:
        raise Failure(str(error)) from None
    except InvalidReview as error:
        raise Failure(f"{source}: a captured request is not a review: {error}") from None
    except (OSError, ValueError) as error:
        raise Failure(f"{source}: {error}") from None


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

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> str:
        seconds = self.seconds()
        per_second = self.count / max(seconds, 1e-9)
        return f"replayed {self.count} events in {seconds:.1f} s ({per_second:,.0f} events/s)"


def new_event(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from castslice.capture import replay as captured

    with _reading(args.source):
        record = next((e.record for e in captured.captured(_store(args.source), None, None)
                       if e.record.get("uid") == args.uid), None)
    if record is None:
        raise Failure(f"no captured admission with uid {args.uid} in {args.source}")
    request = record["request"]
    obj = request["request"].get("object")
    if isinstance(obj, dict) and isinstance(obj.get("metadata"), dict):
        obj["metadata"].pop("managedFields", None)  # noise for a reader, no input to CastSlice
    if not NAME.fullmatch(args.name):
        raise Failure(f"--name {args.name!r}: lowercase letters, digits and dashes, named for "
                      "what the case shows (optimize-inference-two-containers)")
    if not Path(args.dir).is_dir():
        raise Failure(f"--dir {args.dir}: no such directory")
    path = Path(args.dir) / f"{args.name}.json"
    if path.exists():
        raise Failure(f"{path} exists; choose another --name")
    case = events.Case(path, f"Captured {record.get('captured_at')} in {record.get('namespace')} "
                       f"(CastSlice {record.get('version')}).", {}, request, {})
    answer = events.answer(case, {})
    events.write(case, answer)
    print(f"wrote {path}")
    if answer != events.readable(record["response"]):
        print("note: the current code answers differently from what was recorded")
    return 0
