"""One worker process's life: ready once built, draining once shutdown begins, and what
starts and stops with it."""

import asyncio
from typing import TYPE_CHECKING, Any

from castslice.handler.metrics import Metrics

if TYPE_CHECKING:  # the recorder is imported only when capture is on
    from castslice.capture.recorder import Recorder


class Lifecycle:
    """Read by /readyz; written by the app factory and the worker's SIGTERM handler."""

    def __init__(self) -> None:
        self.ready = False
        self.draining = False

    def serving(self) -> bool:
        return self.ready and not self.draining


class WorkerLifespan:
    """Falcon middleware, run in each worker: start the capture writer; at shutdown flush
    what it holds, then write this worker's final metric counts."""

    def __init__(self, metrics: Metrics, recorder: "Recorder | None") -> None:
        self.metrics, self.recorder = metrics, recorder

    async def process_startup(self, scope: Any, event: Any) -> None:
        if self.recorder:
            self.recorder.start()

    async def process_shutdown(self, scope: Any, event: Any) -> None:
        if self.recorder:
            await asyncio.to_thread(self.recorder.close)
        self.metrics.flush()
