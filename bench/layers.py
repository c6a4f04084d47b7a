"""The layers under CastSlice, served the same way, so each one's cost shows on its own:

- `bare`: an ASGI callable that reads the body, parses it with orjson and answers
  CastSlice's own answer for the typical Pod (a fixed dict) with orjson.dumps;
- `minimal_falcon`: the same in a Falcon ASGI app with one resource.

Both run under gunicorn with `bench.bare.Worker` (uvicorn's worker as CastSlice's uses it)
over the same TLS, pinned the same way.
"""

from typing import Any

import falcon
import falcon.asgi
import orjson

from bench.bare import answering
from bench.pods import typical
from castslice.functions.admit import admit, check_review
from castslice.functions.policy import Policy

ANSWER: dict[str, Any] = dict(admit(check_review(typical()), Policy()).response)
"""What CastSlice answers for the typical Pod: the fixed answer both layers send."""


bare = answering(ANSWER)


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
