"""The capture recorder: the admission path only enqueues; a thread batches to storage.

A full queue drops the event and counts it (castslice_capture_dropped_total): an admission
never waits on storage. dryRun requests are not recorded. Redaction happens on the writer
thread, before anything leaves the process. Shutdown flushes what is queued.
"""

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from castslice.capture.redact import redact
from castslice.capture.store import Store

BATCH_SIZE = 200
BATCH_SECONDS = 1.0


class Recorder:
    def __init__(self, open_store: Callable[[], Store], *, queue_size: int, sample: float,
                 redact_fields: frozenset[str], redact_annotations: tuple[str, ...],
                 stamp: dict[str, str], counters: Any, logger: logging.Logger) -> None:
        self.open_store, self.sample, self.stamp = open_store, sample, stamp
        self.redact_fields, self.redact_annotations = redact_fields, redact_annotations
        self.counters, self.logger = counters, logger
        self.queue: queue.Queue[tuple[float, Any, Any]] = queue.Queue(queue_size)
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def offer(self, review: Any, response: Any) -> None:
        """Enqueue without waiting; neither dict is changed afterwards by the caller."""
        if review["request"].get("dryRun") or (self.sample < 1 and random.random() >= self.sample):
            return
        try:
            self.queue.put_nowait((time.time(), review, response))
        except queue.Full:
            self.counters.add(("capture_dropped",))

    def start(self) -> None:
        store = self.open_store()
        self.thread = threading.Thread(target=self._run, args=(store,), name="capture",
                                       daemon=True)
        self.thread.start()

    def close(self, timeout: float = 30) -> None:
        """Flush everything queued, then stop the writer."""
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout)

    def _run(self, store: Store) -> None:
        while not (self.stopping.is_set() and self.queue.empty()):
            batch = self._batch()
            if batch:
                self._write(store, batch)

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
        records = [self._record(*item) for item in batch]
        try:
            store.write(records)
            self.counters.add(("capture_written",), len(records))
        except Exception:
            self.counters.add(("capture_failed",), len(records))
            self.logger.exception("capture: writing a batch failed",
                                  extra={"decision": {"events": len(records)}})
        self.counters.flush()

    def _record(self, at: float, review: Any, response: Any) -> dict[str, Any]:
        request = review["request"]
        return {"captured_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds"),
                "uid": request["uid"], "namespace": request.get("namespace"), **self.stamp,
                "request": redact(review, self.redact_fields, self.redact_annotations),
                "response": response}

