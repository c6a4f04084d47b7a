"""HTTP-level checks, answered before any logic (SPEC §3): type, size, JSON, shape."""

import falcon
import falcon.asgi
import orjson

from castslice.functions.admit import InvalidReview, check_review
from castslice.functions.reviews import AdmissionReview

JSON = "application/json"


async def read_review(req: falcon.asgi.Request, max_bytes: int) -> AdmissionReview:
    """The request's AdmissionReview, checked once, here; or an HTTPError whose JSON body
    says what is wrong."""
    media_type = (req.content_type or "").split(";", 1)[0].strip().lower()
    if media_type != JSON:
        raise falcon.HTTPUnsupportedMediaType(
            description=f"Content-Type must be {JSON}, got {req.content_type or 'none'!r}")
    if req.content_length is not None and req.content_length > max_bytes:
        raise _too_large(max_bytes)
    body = bytearray()
    async for chunk in req.stream:  # a chunked body has no length to check up front
        body += chunk
        if len(body) > max_bytes:
            raise _too_large(max_bytes)
    if not body:
        raise falcon.HTTPBadRequest(description="empty body: expected an AdmissionReview")
    try:
        return check_review(orjson.loads(body))
    except orjson.JSONDecodeError as error:
        raise falcon.HTTPBadRequest(description=f"malformed JSON: {error}") from None
    except InvalidReview as error:
        raise falcon.HTTPBadRequest(description=str(error)) from None


def _too_large(max_bytes: int) -> falcon.HTTPContentTooLarge:
    return falcon.HTTPContentTooLarge(
        description=f"body larger than CASTSLICE_MAX_BODY_BYTES ({max_bytes} bytes)")
