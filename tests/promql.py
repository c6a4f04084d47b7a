"""What series a dashboard query returns over a metrics sample, by labels (values aside).

Prometheus itself does not run here, so queries are parsed by promql-parser (a port of
Prometheus' grammar) and their selectors and label matching evaluated over the sample's
series: a metric or label the sample does not carry, a matcher no series meets, or a
join on labels the two sides do not share gives no series, and the check fails.
"""

import re
from typing import Any

import promql_parser as pp

Labels = dict[str, str]


def returns(query: str, series: list[tuple[str, Labels]]) -> list[Labels]:
    """The label sets `query` returns over `series` ((name, labels) pairs)."""
    return _eval(pp.parse(query), series)


def _eval(node: Any, series: list[tuple[str, Labels]]) -> list[Labels]:
    if isinstance(node, pp.VectorSelector):
        return [labels for name, labels in series if name == node.name
                and all(_meets(m, labels.get(m.name, "")) for m in node.matchers.matchers)]
    if isinstance(node, pp.MatrixSelector):
        return _eval(node.vector_selector, series)
    if isinstance(node, pp.ParenExpr):
        return _eval(node.expr, series)
    if isinstance(node, pp.NumberLiteral):
        return [{}]
    if isinstance(node, pp.Call):
        return [{}] if node.func.name == "vector" else _eval(node.args[0], series)
    if isinstance(node, pp.AggregateExpr):
        return _aggregate(node, _eval(node.expr, series))
    if isinstance(node, pp.BinaryExpr):
        return _binary(node, series)
    raise AssertionError(f"no evaluation for {type(node).__name__}: {node}")


def _meets(matcher: Any, value: str) -> bool:
    op = str(matcher.op).rsplit(".", 1)[-1]
    if op in ("Equal", "NotEqual"):
        return (value == matcher.value) == (op == "Equal")
    return bool(re.fullmatch(matcher.value, value)) == (op == "Re")


def _aggregate(node: Any, found: list[Labels]) -> list[Labels]:
    if not found:
        return []
    if node.modifier is None:
        return [{}]
    labels = list(node.modifier.labels)
    missing = [label for label in labels if not any(label in s for s in found)]
    assert not missing, f"{node.op} by {missing}: no series under it has these labels"
    groups = {tuple((k, s.get(k, "")) for k in labels) for s in found}
    return [dict(group) for group in groups]


def _binary(node: Any, series: list[tuple[str, Labels]]) -> list[Labels]:
    left, right = _eval(node.lhs, series), _eval(node.rhs, series)
    if isinstance(node.rhs, pp.NumberLiteral) or isinstance(node.lhs, pp.NumberLiteral):
        return left or right  # a filter or arithmetic with a number: labels unchanged
    if str(node.op) == "or":
        return left + [r for r in right if r not in left]
    matching = node.modifier.matching if node.modifier else None
    if matching is not None:
        on = list(matching.labels)
        for side, found in (("left", left), ("right", right)):
            missing = [label for label in on if not any(label in s for s in found)]
            assert not missing, f"on {missing}: the {side} side has no such labels"

        def key(labels: Labels) -> tuple[str, ...]:
            return tuple(labels.get(label, "") for label in on)
    else:
        def key(labels: Labels) -> tuple[str, ...]:
            return tuple(sorted(labels.items()))
    keys = {key(r) for r in right}
    return [labels for labels in left if key(labels) in keys]
