from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castslice.functions.quantity import parse_quantity, whole_count
from tests.kube import ORACLE, SUFFIX_VALUE, kube_quantity


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


@pytest.mark.parametrize(("text", "count"), [("1E", 10**18), ("2E", 2 * 10**18),
                                             ("1Ei", 2**60), ("1E3", 1000), ("8", 8)])
def test_exa_and_decimal_exponents_are_whole_counts(text, count):
    assert whole_count(text) == count


@pytest.mark.parametrize("text", ["9" * 20, "9" * 400, "9" * 5000, "1E30", "10Ei"])
def test_counts_beyond_int64_are_capped_as_kubernetes_caps_them(text):
    assert whole_count(text) == 2**63 - 1


QUANTITY_TEXT = st.from_regex(ORACLE, fullmatch=True).filter(lambda t: len(t) <= 40)


@given(QUANTITY_TEXT)
def test_parser_agrees_with_the_oracle_on_every_quantity(text):
    suffix = ORACLE.fullmatch(text).group(3) or ""
    if suffix not in SUFFIX_VALUE and abs(int(suffix[1:])) > 30:
        assert parse_quantity(text) is None  # refused before it costs anything
        return
    expected = kube_quantity(text)
    value = parse_quantity(text)
    assert value == Fraction(expected), text


@given(st.text(max_size=60) | st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
def test_any_text_gives_a_value_or_none_never_an_exception(text):
    value = parse_quantity(text)
    count = whole_count(text)
    assert value is None or isinstance(value, Fraction)
    assert count is None or 1 <= count <= 2**63 - 1
    if kube_quantity(text) is None:
        assert value is None and count is None


@pytest.mark.parametrize(("text", "count"), [("300", 300), ("0300", 300), ("1000", 1000),
                                             ("0001", 1), ("257", 257)])
def test_counts_past_the_lookup_table_keep_their_trailing_zeros(text, count):
    assert whole_count(text) == count
