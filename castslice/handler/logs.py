"""One JSON line per admission decision (SPEC §3); never env values or secrets.

Only fields chosen here reach the log: identifiers, the outcome and its reason, counts and
the warnings CastSlice itself wrote. The Pod's spec is never logged.
"""

import asyncio
import logging
import os
import select
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from castslice.functions.admit import Admission
from castslice.functions.reviews import AdmissionReview, dry_run, mapping, metadata_of

LOGGER = "castslice"


class JsonFormatter(logging.Formatter):
    """Every record as one JSON object; decision fields come from `extra={"decision": ...}`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": round(record.created, 3), "level": record.levelname.lower(),
                                "msg": record.getMessage()}
        line.update(getattr(record, "decision", {}))
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def setup(level: str) -> logging.Logger:
    """The castslice logger, writing JSON lines to stderr at `level`."""
    logger = logging.getLogger(LOGGER)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
    return logger


class DecisionLog:
    """Decision lines, written straight to a file descriptor once per event-loop iteration.

    On the path of every Pod creation the stdlib logging machinery (records, handlers,
    locks) cost about 6% of a worker's CPU in a profile, so the level is checked once here,
    at start. The lines of one iteration go out together (a write() per admission cost ~3 µs
    of CPU per admission served, bench/README.md), in writes of at most PIPE_BUF bytes, so
    that on a pipe shared by several workers no line is ever cut by another's.
    """

    def __init__(self, level: str, fd: int = 2,
                 failed: Callable[[OSError], None] | None = None) -> None:
        self.enabled = logging.getLevelName(level.upper()) <= logging.INFO
        self.fd, self.failed = fd, failed
        self.pending: list[bytes] = []

    def write(self, fields: dict[str, Any]) -> None:
        """Queue one line; the first of an iteration schedules the flush."""
        if not self.pending:
            asyncio.get_running_loop().call_soon(self.flush)
        line = {"time": _millis(time.time()), "level": "info", "msg": "admission", **fields}
        self.pending.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))

    def flush(self) -> None:
        lines, self.pending = self.pending, []
        try:
            for chunk in pipe_chunks(lines):
                os.write(self.fd, chunk)
        except OSError as error:
            if self.failed:
                self.failed(error)


def _millis(value: float) -> float:
    """`value` to three decimals: round(value, 3) formats digits and costs ~0.3 µs."""
    return round(value * 1000) / 1000


def pipe_chunks(lines: list[bytes]) -> Iterator[bytes]:
    """Whole lines joined into chunks of at most PIPE_BUF bytes (which a pipe writes
    atomically); a longer line is a chunk of its own."""
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        if size + len(line) > select.PIPE_BUF and chunk:
            yield b"".join(chunk)
            chunk, size = [], 0
        chunk.append(line)
        size += len(line)
    if chunk:
        yield b"".join(chunk)


MAX_FIELD = 253
"""The longest name Kubernetes allows (a DNS subdomain); longer values are cut."""


def bounded(value: object) -> str | None:
    """A request field fit for a log line: a string cut to MAX_FIELD, else None. The
    fields come from the request, which may hold any JSON at any depth."""
    return value[:MAX_FIELD] if isinstance(value, str) else None


def decision_fields(review: AdmissionReview, admission: Admission,
                    seconds: float) -> dict[str, Any]:
    """What one log line says about one admission: only bounded strings, small integers
    and CastSlice's own words."""
    request = review["request"]
    metadata = metadata_of(mapping(request.get("object")))
    decision = admission.decision
    return {
        "uid": bounded(request["uid"]),
        "namespace": bounded(request.get("namespace")),
        "name": bounded(metadata.get("name") or request.get("name")
                        or metadata.get("generateName")),
        "operation": bounded(request.get("operation")),
        "dry_run": dry_run(request),
        "latency_ms": _millis(seconds * 1000),
        "outcome": decision.outcome,
        "reason": decision.reason,
        "slices": decision.slices,
        "gpus": decision.gpus,
        "gpu_memory": decision.memory or None,
        "warnings": [w.text for w in decision.warnings],
    }
