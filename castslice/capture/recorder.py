"""The capture recorder: the admission path only enqueues; a thread batches to storage.

A full queue drops the event and counts it (castslice_capture_dropped_total): an admission
never waits on storage. dryRun requests are not recorded. Redaction happens on the writer
thread, before anything leaves the process. Shutdown flushes what is queued.

The writer cannot be stopped by one event: an event that cannot be redacted or encoded is
skipped and counted (castslice_capture_failed_total{stage}), a batch storage refuses is
counted the same way, and castslice_capture_writer_alive says the thread is running.
"""

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from castslice.capture.redact import redact
from castslice.capture.store import CONFIGURATION, Store, line
from castslice.functions.reviews import dry_run

BATCH_SIZE = 200
BATCH_SECONDS = 1.0


class Counters(Protocol):
    def add(self, key: tuple[str, ...], amount: float = 1.0) -> None: ...
    def set(self, key: tuple[str, ...], value: float) -> None: ...
    def flush(self) -> None: ...


class Recorder:
    def __init__(self, open_store: Callable[[], Store], *, queue_size: int, sample: float,
                 redact_fields: frozenset[str], redact_annotations: tuple[str, ...],
                 stamp: dict[str, Any], counters: Counters, logger: logging.Logger,
                 configuration: dict[str, str] | None = None) -> None:
        self.open_store, self.sample, self.stamp = open_store, sample, stamp
        self.header = line({CONFIGURATION: configuration or {}, **stamp})
        self.redact_fields, self.redact_annotations = redact_fields, redact_annotations
        self.counters, self.logger = counters, logger
        self.queue: queue.Queue[tuple[float, Any, Any]] = queue.Queue(queue_size)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def offer(self, review: Any, response: Any) -> None:
        """Enqueue without waiting; neither dict is changed afterwards by the caller."""
        if dry_run(review["request"]):
            return
        if self.sample < 1 and random.random() >= self.sample:
            return
        try:
            self.queue.put_nowait((time.time(), review, response))
        except queue.Full:
            self.counters.add(("capture_dropped",))

    def start(self) -> None:
        store = self.open_store()
        self.thread = threading.Thread(target=self._run, args=(store,), name="capture",
                                       daemon=True)
        self.counters.set(("capture_writer_alive",), 1.0)
        self.thread.start()

    def close(self, timeout: float = 10) -> None:
        """Flush everything queued, then stop the writer (within `timeout` seconds)."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, store: Store) -> None:
        try:
            while not (self.stopping.is_set() and self.queue.empty()):
                batch = self._batch()
                if batch:
                    self._write(store, batch)
        finally:
            self.counters.set(("capture_writer_alive",), 0.0)
            self.counters.flush()

    def _batch(self) -> list[tuple[float, Any, Any]]:
        batch: list[tuple[float, Any, Any]] = []
        deadline = time.monotonic() + BATCH_SECONDS
        while len(batch) < BATCH_SIZE:
            try:
                wait = 0.05 if self.stopping.is_set() else max(0.0, deadline - time.monotonic())
                batch.append(self.queue.get(timeout=wait))
            except queue.Empty:
                break
        return batch

    def _write(self, store: Store, batch: list[tuple[float, Any, Any]]) -> None:
        lines = [encoded for item in batch if (encoded := self._line(*item)) is not None]
        try:
            if lines:
                store.write([self.header, *lines])
                self.counters.add(("capture_written",), len(lines))
        except Exception:
            self._failed("store", len(lines), "capture: storage refused a batch")
        self.counters.flush()

    def _line(self, at: float, review: Any, response: Any) -> bytes | None:
        """One event as a redacted JSON line, or None (counted) when it cannot be one."""
        try:
            record = self._record(at, review, response)
        except Exception:
            self._failed("redact", 1, "capture: an event could not be redacted; skipped")
            return None
        try:
            return line(record)
        except Exception:
            self._failed("encode", 1, "capture: an event could not be encoded; skipped")
            return None

    def _failed(self, stage: str, events: int, message: str) -> None:
        self.counters.add(("capture_failed", stage), events)
        self.logger.exception(message, extra={"decision": {"events": events, "stage": stage}})

    def _record(self, at: float, review: Any, response: Any) -> dict[str, Any]:
        request = review["request"]
        namespace = request.get("namespace")
        return {"captured_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                "uid": request["uid"],
                "namespace": namespace if isinstance(namespace, str) else None, **self.stamp,
                "request": redact(review, self.redact_fields, self.redact_annotations),
                "response": response}
