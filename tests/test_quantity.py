from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castslice.functions.quantity import parse_quantity, whole_count


@pytest.mark.parametrize(("text", "value"), [
    ("1", 1), ("2", 2), ("1e0", 1), ("1E1", 10), ("2k", 2000), ("1Ki", 1024),
    ("500m", Fraction(1, 2)),
    ("1.5", Fraction(3, 2)), (".5", Fraction(1, 2)), ("+3", 3), ("-1", -1), ("0", 0), (4, 4),
])
def test_parses_kubernetes_quantities(text, value):
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["", " 2", "2 ", "abc", "1.2.3", "1ki", "1e", "0x10", "1e999999",
                                  None, True, 1.5, [1], "\u0661"])
def test_rejects_what_is_not_a_quantity(text):
    assert parse_quantity(text) is None


@pytest.mark.parametrize(("text", "count"), [("1", 1), ("1e0", 1), ("2k", 2000), ("0", None),
                                             ("500m", None), ("-1", None), ("1.5", None)])
def test_whole_count_is_positive_integers_only(text, count):
    assert whole_count(text) == count


@given(st.integers(min_value=0, max_value=10**9))
def test_plain_integers_round_trip(n):
    assert parse_quantity(str(n)) == n


@given(st.text(max_size=12))
def test_parser_never_raises(text):
    value = parse_quantity(text)
    assert value is None or isinstance(value, Fraction)
