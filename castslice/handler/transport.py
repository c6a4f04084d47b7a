"""HTTP-level checks, answered before any logic (SPEC §3): type, size, JSON, shape."""

import falcon
import falcon.asgi
import orjson

from castslice.functions.admit import InvalidReview, check_review
from castslice.functions.reviews import AdmissionReview
from castslice.handler.view import decode_view

JSON = "application/json"


async def read_review(req: falcon.asgi.Request, max_bytes: int,
                      full: bool = False) -> tuple[AdmissionReview, int]:
    """The request's AdmissionReview, checked once, here, and its size in bytes; or an
    HTTPError whose JSON body says what is wrong. Only the fields the decision reads are
    decoded (view.py), unless `full` (a capture records the whole review) or the view
    cannot hold the body."""
    content_type = req.content_type
    if content_type != JSON and (content_type or "").split(";", 1)[0].strip().lower() != JSON:
        raise falcon.HTTPUnsupportedMediaType(
            description=f"Content-Type must be {JSON}, got {content_type or 'none'!r}")
    length = req.content_length
    if length is not None and length > max_bytes:
        raise _too_large(max_bytes)
    # With a Content-Length (the API server always sends one) Falcon's bounded stream
    # reads exactly that many bytes in one call; iterating it chunk by chunk cost ~15 µs
    # per admission served (bench/README.md). A chunked body has no length to check up
    # front, so it is read chunk by chunk and cut at the limit.
    body = await req.stream.read() if length is not None else await _bounded(req, max_bytes)
    if not body:
        raise falcon.HTTPBadRequest(description="empty body: expected an AdmissionReview")
    try:
        view = None if full else decode_view(body)
        return check_review(orjson.loads(body) if view is None else view), len(body)
    except orjson.JSONDecodeError as error:
        raise falcon.HTTPBadRequest(description=f"malformed JSON: {error}") from None
    except InvalidReview as error:
        raise falcon.HTTPBadRequest(description=str(error)) from None


async def _bounded(req: falcon.asgi.Request, max_bytes: int) -> bytearray:
    body = bytearray()
    async for chunk in req.stream:
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    return body


def _too_large(max_bytes: int) -> falcon.HTTPContentTooLarge:
    return falcon.HTTPContentTooLarge(
        description=f"body larger than CASTSLICE_MAX_BODY_BYTES ({max_bytes} bytes)")
