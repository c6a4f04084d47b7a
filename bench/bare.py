"""The bare serving stack: gunicorn with uvicorn's worker (uvloop, httptools, no access log:
what CastSlice's worker uses) and an ASGI callable that reads the body, parses it with
orjson and dumps a fixed answer. No Falcon, no CastSlice: imported alone (`bench.bare:app`),
it is the floor of a cold start served this way; `bench/layers.py` sends CastSlice's own
answer through it.
"""

from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import orjson
from uvicorn_worker import UvicornWorker

Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class Worker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop", "http": "httptools", "access_log": False, "server_header": False,
        "proxy_headers": False}


def answering(answer: dict[str, Any]) -> Asgi:
    """An ASGI app that answers `answer`, dumped per request, on /mutate; "ok" elsewhere."""
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["path"] == "/mutate":
            orjson.loads(body)
            data = orjson.dumps(answer)
        else:
            data = b"ok"
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]})
        await send({"type": "http.response.body", "body": data})
    return app


app = answering({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                 "response": {"uid": "", "allowed": True}})
