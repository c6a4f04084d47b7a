"""CEL literals for values the configuration fixes, and namespace globs as RE2 patterns."""

import json
import re
from collections.abc import Mapping, Sequence

from castslice.cel.errors import Unsupported


def literal(value: object) -> str:
    """`value` as CEL source: literal("a'b") == '"a\\'b"', literal([1]) == "[1]".

    Strings are JSON-quoted (CEL accepts JSON's escapes), non-ASCII kept as is, since JSON's
    surrogate pairs are no CEL escape.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Sequence):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no CEL literal for {type(value).__name__}")


def pick(index: str, values: list[str], otherwise: str) -> str:
    """CEL for values[index] (a list literal of one type), `otherwise` when index is -1."""
    return f"{index} >= 0 ? [{', '.join(values)}][{index}] : {otherwise}" if values else otherwise


def first(tests: list[str]) -> str:
    """CEL for the index of the first true test, -1 when none is (no nesting, so any
    number of tests stays within CEL's parser depth)."""
    if not tests:
        return "-1"
    return (f"[[{', '.join(tests)}]].map(b, [lists.range(size(b)).filter(i, b[i])].map(f, "
            "size(f) > 0 ? f[0] : -1)[0])[0]")


_CLASS = re.compile(r"\[(!?)([A-Za-z0-9-]+)\]")


def glob_pattern(glob: str, setting: str = "CASTSLICE_RULES") -> str:
    """A namespace glob (fnmatch: *, ?, [abc], [a-z], [!abc]) as an anchored RE2 pattern
    that matches exactly the names fnmatch.fnmatchcase matches."""
    parts, position = [], 0
    while position < len(glob):
        char = glob[position]
        found = _CLASS.match(glob, position)
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif found:
            negate, body = found.groups()
            if "-" in body.strip("-") and not _ordered_ranges(body):
                raise Unsupported(setting, f"namespace pattern {glob!r}: a reversed range")
            parts.append(f"[{'^' if negate else ''}{body}]")
            position = found.end()
            continue
        elif char in "[]\\":
            raise Unsupported(setting, f"namespace pattern {glob!r}: only *, ? and classes "
                                       "of letters, digits and '-' such as [a-z] compile")
        else:
            parts.append(re.escape(char))
        position += 1
    return "^(?s:" + "".join(parts) + ")$"


def _ordered_ranges(body: str) -> bool:
    """Whether every a-z range in a class runs upward (fnmatch and RE2 differ otherwise)."""
    return all(low <= high for low, high in re.findall(r"(.)-(.)", body))
