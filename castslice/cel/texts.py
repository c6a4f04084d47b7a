"""The webhook's short texts (functions/text.py) as CEL: `show` quotes a user's value and
cuts it, `short` cuts a warning to what the API server keeps.

strings.quote escapes as JSON does for printable ASCII, which every value the decision
quotes in a stored annotation is (a quantity, a preset name); a warning that quotes other
characters may spell them differently, never a different decision.
"""

from castslice.functions.text import MAX_WARNING


def show(value: str, limit: int = 24) -> str:
    """text.show: the value quoted, cut to `limit` characters with '..."'."""
    quoted = f"strings.quote({value})"
    return (f"[{quoted}].map(q, size(q) <= {limit} ? q : "
            f"q.substring(0, {limit - 4}) + '...\"')[0]")


def short(text: str) -> str:
    """text.short: cut to MAX_WARNING characters with '...'."""
    return (f"[{text}].map(t, size(t) <= {MAX_WARNING} ? t : "
            f"t.substring(0, {MAX_WARNING - 3}) + '...')[0]")
