"""In-process cost: read + decide + serialize, next to the floor: parse of the request and
serialisation of CastSlice's own answer (not of the whole request, which would flatter).
CastSlice reads the request as its server does: the decoded view of the fields it needs
(castslice/handler/view.py), the whole parse where the view cannot hold the body."""

import time
from collections.abc import Callable

import orjson

from bench.pods import BODIES
from castslice.functions.admit import admit, check_review
from castslice.handler.view import decode_view
from castslice.settings.config import Config


def per_call_us(works: list[Callable[[], object]], seconds: float) -> list[float]:
    """Fastest of 7 timed batches of each, in microseconds per call, the batches of the works
    interleaved so a machine that slows down mid-run slows them all: the least disturbed
    figure, as timeit advises."""
    batches = []
    for work in works:  # calibrate each batch to about seconds / 20
        calls, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds / 20:
            work()
            calls += 1
        batches.append(max(1, calls))
    samples: list[list[float]] = [[] for _ in works]
    for _ in range(7):
        for work, batch, times in zip(works, batches, samples, strict=True):
            begin = time.perf_counter()
            for _ in range(batch):
                work()
            times.append((time.perf_counter() - begin) / batch * 1e6)
    return [min(times) for times in samples]


def run(seconds: float) -> list[dict[str, object]]:
    config = Config()
    rows = []
    for name, make in BODIES.items():
        body = orjson.dumps(make())
        answer = admit(check_review(orjson.loads(body)), config.policy).response

        def floor(body: bytes = body, answer: object = answer) -> bytes:
            orjson.loads(body)
            return orjson.dumps(answer)

        def castslice(body: bytes = body) -> bytes:  # as the server reads: the view first
            review = decode_view(body) or orjson.loads(body)
            return orjson.dumps(admit(check_review(review), config.policy).response)

        floor_us, full_us = per_call_us([floor, castslice], seconds)
        rows.append({"body": name, "bytes": len(body), "floor_us": round(floor_us, 1),
                     "castslice_us": round(full_us, 1), "ratio": round(full_us / floor_us, 2)})
    return rows
