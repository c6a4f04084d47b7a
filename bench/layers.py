"""The layers under CastSlice, served the same way, so each one's cost shows on its own:

- `bare`: an ASGI callable that reads the body, parses it with orjson and answers
  CastSlice's own answer for the typical Pod (a fixed dict) with orjson.dumps;
- `minimal_falcon`: the same in a Falcon ASGI app with one resource.

Both run under gunicorn with `Worker` (uvicorn's worker, uvloop, httptools, no access log:
what CastSlice's worker uses) over the same TLS, pinned the same way.
"""

from typing import Any, ClassVar

import falcon
import falcon.asgi
import orjson
from uvicorn_worker import UvicornWorker

from bench.pods import typical
from castslice.functions.admit import admit, check_review
from castslice.functions.policy import Policy

ANSWER: dict[str, Any] = dict(admit(check_review(typical()), Policy()).response)
"""What CastSlice answers for the typical Pod: the fixed answer both layers send."""


class Worker(UvicornWorker):  # type: ignore[misc]
    CONFIG_KWARGS: ClassVar[dict[str, Any]] = {
        "loop": "uvloop", "http": "httptools", "access_log": False, "server_header": False,
        "proxy_headers": False}


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
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
        data = orjson.dumps(ANSWER)
    else:
        data = b"ok"
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"), (b"content-length", b"%d" % len(data))]})
    await send({"type": "http.response.body", "body": data})


class _Mutate:
    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        orjson.loads(await req.stream.read())
        resp.data = orjson.dumps(ANSWER)
        resp.content_type = falcon.MEDIA_JSON


class _Ready:
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = b"ok"


minimal_falcon = falcon.asgi.App()
minimal_falcon.add_route("/mutate", _Mutate())
minimal_falcon.add_route("/readyz", _Ready())
