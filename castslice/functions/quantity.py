"""Kubernetes resource quantities, as far as extended resources need them.

Grammar from k8s.io/apimachinery/pkg/api/resource (quantity.go):
<signedNumber><suffix>, suffix one of the binary SI (Ki..Ei), decimal SI (n, u, m, k, M..E)
or a decimal exponent (e3, E-2). Both functions here are total: any input gives a value or
None, never an exception.
"""

import re
from fractions import Fraction

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+\.?\d*|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?",
    re.ASCII,  # Arabic-Indic digits are digits to Python, not to Kubernetes
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL_EXPONENT = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_MAX_EXPONENT = 30  # far beyond any device count; refuses "1e999999" before it costs anything
_MAX_LENGTH = 128  # longer text is no quantity a person wrote; int() of it may be refused

MAX_COUNT = 2**63 - 1
"""Kubernetes caps every quantity at 2^63-1 ("Numbers larger ... will be capped",
resource.Quantity's documentation), so no count CastSlice reads or writes exceeds it."""


def parse_quantity(value: object) -> Fraction | None:
    """Exact value of a Kubernetes quantity, or None when it is not one.

    The API server sends quantities as strings, but manifests read from YAML give ints too,
    so both are accepted: parse_quantity("2k") == 2000, parse_quantity("1E") == 10**18,
    parse_quantity(1) == 1, parse_quantity("1.5") == Fraction(3, 2), parse_quantity(" 2")
    is None.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    if isinstance(value, int):
        return Fraction(value)
    match = _QUANTITY.fullmatch(value) if len(value) <= _MAX_LENGTH else None
    if match is None:
        return None
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    exponent = int(suffix[1:]) if len(suffix) > 1 else _DECIMAL_EXPONENT.get(suffix, 0)
    if abs(exponent) > _MAX_EXPONENT:
        return None
    return number * Fraction(10) ** exponent


_PLAIN = {str(n): n for n in range(1, 257)}
"""Counts as the API server sends them for nearly every GPU request: "1", "8"."""


def whole_count(value: object) -> int | None:
    """The quantity as a positive whole number capped at MAX_COUNT, or None (zero,
    negative, fraction, not a quantity).

    Plain digits ("1", "8": nearly every GPU request) skip the general parser, which costs
    more than the rest of an admission; the commonest counts are one lookup.
    """
    if type(value) is not str:
        return _general(value)
    known = _PLAIN.get(value)
    if known is not None:
        return known
    if value.isascii() and value.isdigit():
        digits = value.lstrip("0")
        if len(digits) > 19:  # at least 10^19: capped, and never handed to int()
            return MAX_COUNT
        return min(int(digits), MAX_COUNT) if digits else None
    return _general(value)


def _general(value: object) -> int | None:
    quantity = parse_quantity(value)
    if quantity is None or quantity.denominator != 1 or quantity < 1:
        return None
    return min(int(quantity), MAX_COUNT)


def scaled(count: int, slices: int) -> int:
    """count x slices, capped at MAX_COUNT as the API server would cap it: the one product
    the patch writes and the castops.io/sliced text, the log and the metrics report."""
    return min(count * slices, MAX_COUNT)
