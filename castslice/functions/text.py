"""Short, safe human text for warnings and annotations."""

import json

MAX_WARNING = 120
"""The API server may cut longer warnings (k8s.io/apiserver/pkg/warning)."""


def show(value: object, limit: int = 24) -> str:
    """A user-supplied value quoted as JSON (control characters escaped), cut to `limit`.
    A value nested past what the encoder walks is shown by its type alone."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__} nested too deep>"
    return text if len(text) <= limit else text[: limit - 4] + '..."'


def short(text: str) -> str:
    """`text` cut to what a warning may hold."""
    return text if len(text) <= MAX_WARNING else text[: MAX_WARNING - 3] + "..."


def text_or_empty(value: object) -> str:
    """`value` if it is a string, else "": a user's field may be any JSON, even a list
    nested a thousand deep, which str() would recurse into."""
    return value if isinstance(value, str) else ""
