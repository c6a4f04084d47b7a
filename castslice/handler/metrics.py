"""Prometheus metrics (SPEC §8): counted per worker in a plain dict, summed at scrape.

Why not prometheus_client's metric objects: in its multiprocess mode every increment takes
a lock, a getpid() and a write into a memory-mapped file, and the eight increments of an
admission cost 10-20% of a worker's CPU on the served path (bench/README.md). Here an
admission adds to a dict. A worker writes its counts to its own file in the metrics
directory a second after a change, when it answers a scrape, and when it stops; a scrape
sums every worker's file, so counts of a worker that exited still add up. prometheus_client
still renders the text format.
"""

import asyncio
import os
import platform
import threading
import time
from bisect import bisect_left
from pathlib import Path

import orjson

from castslice import __version__
from castslice.cluster.cards import cards_freed
from castslice.functions.decide import Decision
from castslice.handler.families import BODY_BUCKETS, LATENCY_BUCKETS, Key
from castslice.settings.config import Config

CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"
"""prometheus_client's CONTENT_TYPE_LATEST, written here so that serving imports
prometheus_client at the first scrape, not at start (10-15 ms of a cold start); a test holds
the two equal."""
FLUSH_SECONDS = 1.0
MAX_LABEL = 63
"""A namespace name is at most 63 characters; anything else is not one and is labelled
"invalid", so a hostile request cannot make a label of any size or depth."""

class Metrics:
    """One worker's counts, and the scrape that sums all workers'.

    Each key is written by one thread only (admissions on the event loop, capture counts on
    the capture writer), and a dict's copy() is atomic, so no lock is taken per admission.
    """

    def __init__(self, config: Config, directory: str | None = None) -> None:
        self.directory = Path(directory) if directory else None
        self.counts: dict[Key, float] = {}
        self.savings_rate = _savings_rate(config)
        self.info = {"build_info": ({"version": __version__,
                                     "python": platform.python_version()},
                                    "Always 1; labels name the version running."),
                     "config_info": ({"source_resource": config.policy.source_resource,
                                      "target_resource": config.policy.target_resource,
                                      "on_invalid": config.policy.on_invalid,
                                      "backend": config.policy.backend,
                                      "default_slices": str(config.policy.default_slices)},
                                     "Always 1; labels name the effective configuration.")}
        self.flush_due = False
        self.flush_lock = threading.Lock()
        self.file: tuple[int, Path] | None = None

    def add(self, key: Key, amount: float = 1.0) -> None:
        counts = self.counts
        counts[key] = counts.get(key, 0.0) + amount

    def set(self, key: Key, value: float) -> None:
        self.counts[key] = value

    def record(self, decision: Decision, dry_run: bool, seconds: float, body_bytes: int,
               namespace: object) -> None:
        """Count one answered review.

        dryRun admissions and re-invocations of a converted Pod (outcome passed) convert
        nothing, so they add to no conversion or savings figure.
        """
        add = self.add
        add(("admission_duration_seconds", bisect_left(LATENCY_BUCKETS, seconds)))
        add(("admission_duration_seconds", "sum"), seconds)
        add(("request_body_bytes", bisect_left(BODY_BUCKETS, body_bytes)))
        add(("request_body_bytes", "sum"), body_bytes)
        add(("admissions", decision.outcome, decision.reason))
        for warning in decision.warnings:
            add(("warnings", warning.kind))
        if decision.memory:
            add(("memory_asks", decision.outcome, decision.reason))
        if decision.outcome == "mutated" and not dry_run and decision.slices:
            self._count_conversion(decision, namespace)
        if self.directory and not self.flush_due:
            self.flush_due = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def _count_conversion(self, decision: Decision, namespace: object) -> None:
        add, slices = self.add, decision.slices or 0
        add(("gpus_converted",), decision.gpus)
        add(("pods_mutated", label(namespace)))
        add(("slices_granted",), decision.granted)
        if self.savings_rate is not None:
            price, per_card = self.savings_rate
            add(("savings_dollars_per_hour",), cards_freed(decision.gpus, slices, per_card) * price)

    def flush(self) -> None:
        """Write this worker's counts to its file (new name per process, so a worker that
        reuses a dead one's pid does not overwrite its counts); atomic by rename."""
        if self.directory is None:
            return
        with self.flush_lock:
            self.flush_due = False
            pid = os.getpid()
            if self.file is None or self.file[0] != pid:
                self.file = pid, self.directory / f"castslice-{pid}-{time.time_ns()}.json"
            path = self.file[1]
            partial = path.with_suffix(".partial")
            partial.write_bytes(orjson.dumps([[*key, value]
                                              for key, value in self.counts.copy().items()]))
            partial.replace(path)

    def render(self) -> bytes:
        """The text exposition: this worker's counts, or every worker's summed."""
        from castslice.handler.exposition import text  # prometheus_client: see CONTENT_TYPE

        return text(self.totals(), self.info)

    def totals(self) -> dict[Key, float]:
        if self.directory is None:
            return self.counts.copy()
        self.flush()
        totals: dict[Key, float] = {}
        for path in self.directory.glob("castslice-*.json"):
            for *key, value in orjson.loads(path.read_bytes()):
                totals[tuple(key)] = totals.get(tuple(key), 0.0) + value
        return totals


def _savings_rate(config: Config) -> tuple[float, int] | None:
    """(dollars per GPU-hour, R) when both savings variables are set."""
    if config.gpu_hourly_cost is None or config.units_per_card is None:
        return None
    return config.gpu_hourly_cost, config.units_per_card


def label(namespace: object) -> str:
    """A namespace as a metric label: the name, or "invalid" for anything that is not one."""
    if isinstance(namespace, str) and len(namespace) <= MAX_LABEL:
        return namespace
    return "invalid"
