"""In-process cost: parse + decide + serialize, next to the JSON floor (parse + serialize)."""

import time
from collections.abc import Callable

import orjson

from bench.pods import BODIES
from castslice.config import Config
from castslice.functions.admit import admit


def per_call_us(work: Callable[[], object], seconds: float) -> float:
    """Fastest of 5 timed batches, in microseconds per call: the least disturbed by the rest
    of the machine, as timeit advises."""
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds / 10:  # calibrate the batch size
        work()
        calls += 1
    batch = max(1, calls * 2)
    samples = []
    for _ in range(5):
        begin = time.perf_counter()
        for _ in range(batch):
            work()
        samples.append((time.perf_counter() - begin) / batch * 1e6)
    return min(samples)


def run(seconds: float) -> list[dict[str, object]]:
    config = Config()
    rows = []
    for name, make in BODIES.items():
        body = orjson.dumps(make())

        def floor(body: bytes = body) -> bytes:
            return orjson.dumps(orjson.loads(body))

        def castslice(body: bytes = body) -> bytes:
            return orjson.dumps(admit(orjson.loads(body), config).response)

        floor_us, full_us = per_call_us(floor, seconds), per_call_us(castslice, seconds)
        rows.append({"body": name, "bytes": len(body), "floor_us": round(floor_us, 1),
                     "castslice_us": round(full_us, 1), "ratio": round(full_us / floor_us, 2)})
    return rows
