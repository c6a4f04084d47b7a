"""Falcon resources: each only translates between HTTP and the logic."""

import logging
from time import perf_counter
from typing import Any

import falcon
import falcon.asgi
import orjson

from castslice.capture.recorder import Recorder
from castslice.config import Config
from castslice.functions.admit import Admission, admit
from castslice.functions.decide import AdmissionWarning, Decision
from castslice.functions.response import build_response
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.logs import DecisionLog, decision_fields
from castslice.handler.metrics import CONTENT_TYPE, Metrics
from castslice.handler.transport import JSON, read_review

FAILED = Decision("skip", "internal-error", warnings=(AdmissionWarning(
    "internal-error", "CastSlice could not process this Pod; admitted unchanged"),))


class Mutate:
    """POST /mutate: read the review, decide, answer, observe."""

    def __init__(self, config: Config, metrics: Metrics, logger: logging.Logger,
                 recorder: Recorder | None = None) -> None:
        self.config, self.metrics, self.logger, self.recorder = config, metrics, logger, recorder
        self.decisions = DecisionLog(config.log_level)

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        review = await read_review(req, self.config.max_body_bytes)
        started = perf_counter()
        admission = self._admit(review)
        answer = admission.response if admission else _fallback(review)
        resp.data = orjson.dumps(answer)
        resp.content_type = JSON
        if self.recorder:
            self.recorder.offer(review, answer)
        self._observe(review, admission, perf_counter() - started, req.content_length or 0)

    def _admit(self, review: Any) -> Admission | None:
        """The decision, or None when it raised: the Pod is then admitted unchanged."""
        try:
            return admit(review, self.config)
        except Exception:
            self.logger.exception("admission failed", extra={"decision": {
                "uid": review["request"]["uid"]}})
            return None

    def _observe(self, review: Any, admission: Admission | None, seconds: float,
                 body_bytes: int) -> None:
        request = review["request"]
        self.metrics.record(admission, bool(request.get("dryRun")), seconds, body_bytes,
                            str(request.get("namespace", "")))
        if self.decisions.enabled:
            self.decisions.write(decision_fields(review, admission, seconds))


def _fallback(review: Any) -> Any:
    return build_response(api_version=review["apiVersion"], uid=review["request"]["uid"],
                          decision=FAILED)


class Health:
    """GET /healthz: the process answers."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.media = {"status": "ok"}


class Ready:
    """GET /readyz: 200 once built, 503 once draining, so traffic leaves before we do."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        self.lifecycle = lifecycle

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        serving = self.lifecycle.serving()
        resp.status = falcon.HTTP_200 if serving else falcon.HTTP_503
        resp.media = {"status": "ready" if serving else "draining"}


class MetricsPage:
    """GET /metrics: Prometheus text format, summed over workers."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = self.metrics.render()
        resp.content_type = CONTENT_TYPE
