"""Kubernetes resource quantities, as far as extended resources need them.

Grammar from k8s.io/apimachinery/pkg/api/resource (quantity.go):
<signedNumber><suffix>, suffix one of the binary SI (Ki..Ei), decimal SI (n, u, m, k, M..E)
or a decimal exponent (e3, E-2).
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


def parse_quantity(value: object) -> Fraction | None:
    """Exact value of a Kubernetes quantity, or None when it is not one.

    The API server sends quantities as strings, but manifests read from YAML give ints too,
    so both are accepted: parse_quantity("2k") == 2000, parse_quantity(1) == 1,
    parse_quantity("1.5") == Fraction(3, 2), parse_quantity(" 2") is None.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    match = _QUANTITY.fullmatch(str(value))
    if match is None:
        return None
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    exponent = int(suffix[1:]) if suffix[:1] in ("e", "E") else _DECIMAL_EXPONENT.get(suffix, 0)
    if abs(exponent) > _MAX_EXPONENT:
        return None
    return number * Fraction(10) ** exponent


def whole_count(value: object) -> int | None:
    """The quantity as a positive whole number, or None (zero, fraction, not a quantity).

    Plain digits ("1", "8": nearly every GPU request) skip the general parser, which costs
    more than the rest of an admission.
    """
    if type(value) is str and value.isascii() and value.isdigit():
        return int(value) or None
    if type(value) is int:
        return value if value >= 1 else None
    quantity = parse_quantity(value)
    if quantity is None or quantity.denominator != 1 or quantity < 1:
        return None
    return int(quantity)
