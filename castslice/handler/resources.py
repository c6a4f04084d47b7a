"""Falcon resources: each only translates between HTTP and the logic."""

import logging
from time import monotonic, perf_counter
from typing import TYPE_CHECKING

import falcon
import falcon.asgi
import orjson

from castslice.functions.admit import Admission, admit
from castslice.functions.reviews import AdmissionReview, dry_run
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.logs import DecisionLog, bounded, decision_fields
from castslice.handler.metrics import CONTENT_TYPE, Metrics
from castslice.handler.transport import read_review
from castslice.settings.config import Config

if TYPE_CHECKING:  # the recorder is imported only when capture is on
    from castslice.capture.recorder import Recorder


REFUSED_LOG_SECONDS = 60.0


class Mutate:
    """POST /mutate: read the review, decide, answer, observe."""

    def __init__(self, config: Config, metrics: Metrics, logger: logging.Logger,
                 lifecycle: Lifecycle, recorder: "Recorder | None" = None) -> None:
        self.policy, self.max_body_bytes = config.policy, config.max_body_bytes
        self.metrics, self.logger = metrics, logger
        self.lifecycle, self.recorder = lifecycle, recorder
        self.decisions = DecisionLog(config.log_level, failed=self._log_failed)
        self.refused_logged: dict[str, float] = {}

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        try:
            review, size = await read_review(req, self.max_body_bytes,
                                             full=self.recorder is not None)
        except falcon.HTTPError as error:
            self._refused(str(error.status_code), error.description or error.title)
            raise
        started = perf_counter()
        admission = admit(review, self.policy)
        resp.data = orjson.dumps(admission.response)  # sent as Falcon's default, JSON
        if self.lifecycle.draining:  # clients leave for other replicas between requests
            resp.set_header("Connection", "close")
        self._observe(review, admission, perf_counter() - started, size)

    def _observe(self, review: AdmissionReview, admission: Admission, seconds: float,
                 body_bytes: int) -> None:
        """Log, count and capture one answered admission. The answer is already made: a
        failure here is logged once and counted, and never reaches the API server."""
        request = review["request"]
        try:
            if admission.decision.error is not None:
                self.logger.error("decision failed; admitted unchanged",
                                  exc_info=admission.decision.error,
                                  extra={"decision": decision_fields(review, admission, seconds)})
            self.metrics.record(admission.decision, dry_run(request), seconds,
                                body_bytes, request.get("namespace"))
            if self.decisions.enabled:
                self.decisions.write(decision_fields(review, admission, seconds))
            if self.recorder:
                self.recorder.offer(review, admission.response)
        except Exception:
            self.metrics.add(("observe_failed",))
            self.logger.exception("logging, counting or capturing an admission failed",
                                  extra={"decision": {"uid": bounded(request["uid"])}})


    def _refused(self, status: str, why: str) -> None:
        """Counted always; logged once per REFUSED_LOG_SECONDS and status, so a scanner or
        a misconfigured client is seen without flooding the log."""
        self.metrics.add(("requests_refused", status))
        now = monotonic()
        if now - self.refused_logged.get(status, -REFUSED_LOG_SECONDS) >= REFUSED_LOG_SECONDS:
            self.refused_logged[status] = now
            self.logger.warning(f"refused a request with HTTP {status}: {why} (counted in "
                                "castslice_requests_refused_total; logged once a minute)")

    def _log_failed(self, error: OSError) -> None:
        self.metrics.add(("observe_failed",))
        self.logger.error("writing decision lines failed", exc_info=error)


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
