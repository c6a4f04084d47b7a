"""One JSON line per admission decision (SPEC §3); never env values or secrets.

Only fields chosen here reach the log: identifiers, the outcome and its reason, counts and
the warnings CastSlice itself wrote. The Pod's spec is never logged.
"""

import logging
import os
import sys
import time
from typing import Any

import orjson

from castslice.functions.admit import Admission
from castslice.functions.reviews import mapping, metadata_of

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
    """Writes decision lines straight to a file descriptor, one write() each.

    On the path of every Pod creation the stdlib logging machinery (records, handlers,
    locks) cost about 6% of a worker's CPU in a profile (bench/README.md); the level is
    checked once here, at start, instead of per line.
    """

    def __init__(self, level: str, fd: int = 2) -> None:
        self.enabled = logging.getLevelName(level.upper()) <= logging.INFO
        self.fd = fd

    def write(self, fields: dict[str, Any]) -> None:
        line = {"time": round(time.time(), 3), "level": "info", "msg": "admission", **fields}
        os.write(self.fd, orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))


def decision_fields(review: Any, admission: Admission | None, seconds: float) -> dict[str, Any]:
    """What one log line says about one admission."""
    request = review.get("request", {})
    metadata = metadata_of(mapping(request.get("object")))
    fields: dict[str, Any] = {
        "uid": request.get("uid"),
        "namespace": request.get("namespace"),
        "name": metadata.get("name") or request.get("name") or metadata.get("generateName"),
        "operation": request.get("operation"),
        "dry_run": bool(request.get("dryRun")),
        "latency_ms": round(seconds * 1000, 3),
    }
    if admission is None:
        return fields | {"outcome": "error", "reason": "internal-error"}
    decision = admission.decision
    return fields | {"outcome": decision.outcome, "reason": decision.reason,
                     "slices": decision.slices, "gpus": decision.gpus,
                     "warnings": [w.text for w in decision.warnings]}
