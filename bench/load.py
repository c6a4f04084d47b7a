"""A load generator that behaves like the API server's webhook client.

TLS with the CA pinned, HTTP/1.1 keep-alive, `POST /mutate?timeout=10s`, JSON content
type; connections are never capped (an open-loop send with no idle connection opens a new
one, as Go's http.Transport does). Every response is verified: status 200, uid echoed,
patch decodes. Open-loop latency is measured from the intended send time, so queueing in
the client is counted, not hidden.
"""

import asyncio
import base64
import gc
import ssl
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import orjson

TIMEOUT = 10.0


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    timeouts: int = 0
    connections: int = 0


class Client:
    def __init__(self, port: int, context: ssl.SSLContext, review: dict[str, object]) -> None:
        body = orjson.dumps(review)
        self.port, self.context = port, context
        self.uid = review["request"]["uid"]  # type: ignore[index]
        self.request = (
            b"POST /mutate?timeout=10s HTTP/1.1\r\nHost: castslice.castslice.svc:443\r\n"
            b"Content-Type: application/json\r\nAccept: application/json, */*\r\n"
            b"Accept-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def connect(self, tally: Tally) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        tally.connections += 1
        return await asyncio.open_connection("127.0.0.1", self.port, ssl=self.context,
                                             server_hostname="127.0.0.1")

    async def one(self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        reader, writer = conn
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        body = await reader.readexactly(length)
        answer = orjson.loads(body)["response"]
        if not head.startswith(b"HTTP/1.1 200") or answer["uid"] != self.uid:
            raise ValueError("bad answer")
        if "patch" in answer:
            orjson.loads(base64.b64decode(answer["patch"]))

    async def closed_loop(self, connections: int, seconds: float) -> Tally:
        tally = Tally()
        end = time.perf_counter() + seconds

        async def worker() -> None:
            conn = await self.connect(tally)
            while time.perf_counter() < end:
                begin = time.perf_counter()
                try:
                    await asyncio.wait_for(self.one(conn), TIMEOUT)
                    tally.latencies.append(time.perf_counter() - begin)
                except Exception:
                    tally.errors += 1
                    conn = await self.connect(tally)
            conn[1].close()

        await asyncio.gather(*(worker() for _ in range(connections)))
        return tally

    async def open_loop(self, rate: float, seconds: float) -> Tally:
        tally = Tally()
        start = time.perf_counter()
        total = int(rate * seconds)

        async def send(intended: float) -> None:
            try:
                conn = self.idle.pop() if self.idle else await self.connect(tally)
                await asyncio.wait_for(self.one(conn), TIMEOUT)
                tally.latencies.append(time.perf_counter() - intended)
                self.idle.append(conn)
            except TimeoutError:
                tally.timeouts += 1
            except Exception:
                tally.errors += 1

        tasks = []
        for i in range(total):
            intended = start + i / rate
            delay = intended - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(intended)))
        await asyncio.gather(*tasks)
        for _, writer in self.idle:
            writer.close()
        self.idle.clear()
        return tally


@contextmanager
def no_collector_pauses() -> Iterator[None]:
    """Collect before a phase, not during it: the generator's own collector pauses (12-14 ms
    seen here) would be counted as the server's latency, since it is measured from the
    intended send time."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(tally: Tally) -> dict[str, float]:
    ms = [v * 1000 for v in tally.latencies]
    return {"ok": len(ms), "errors": tally.errors, "timeouts": tally.timeouts,
            "connections": tally.connections,
            "p50_ms": round(statistics.median(ms), 2) if ms else float("nan"),
            "p99_ms": round(percentile(ms, 0.99), 2), "p999_ms": round(percentile(ms, 0.999), 2)}
