"""Opt-in rules that need no annotation: namespaces and label selectors (SPEC §4).

Label selectors follow Kubernetes semantics:
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#resource-based-requirements
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from castslice.functions.memory import memory_ask, quantity_text

_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
_RULE_KEYS = ("name", "namespaces", "matchLabels", "matchExpressions", "optimize",
              "workloadType", "sliceRatio", "gpuMemory")
_GRANTS = ("workloadType", "sliceRatio", "gpuMemory")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "Exists":
            return present
        if self.operator == "DoesNotExist":
            return not present
        inside = present and labels[self.key] in self.values
        return inside if self.operator == "In" else not inside

    def as_dict(self) -> dict[str, Any]:
        """The matchExpressions entry this requirement reads back from."""
        found: dict[str, Any] = {"key": self.key, "operator": self.operator}
        return found | {"values": sorted(self.values)} if self.values else found


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    namespaces: tuple[str, ...]
    requirements: tuple[Requirement, ...]
    optimize: bool
    workload_type: str | None = None
    slice_ratio: int | None = None
    gpu_memory: int | None = None
    """Bytes of GPU memory each GPU must hold (gpuMemory), rounded up to a whole byte."""

    def matches(self, namespace: str, labels: Mapping[str, str]) -> bool:
        """True when the Pod's namespace and labels both satisfy this rule."""
        if self.namespaces and not any(fnmatchcase(namespace, p) for p in self.namespaces):
            return False
        return all(r.matches(labels) for r in self.requirements)

    def as_dict(self) -> dict[str, Any]:
        """The rule's whole content in the form parse_rules() reads back (matchLabels as
        the In expressions they mean), so describe() and fingerprints tell any two rule
        sets apart."""
        found: dict[str, Any] = {"name": self.name, "namespaces": list(self.namespaces),
                                 "matchExpressions": [r.as_dict() for r in self.requirements],
                                 "optimize": self.optimize}
        if self.workload_type is not None:
            found["workloadType"] = self.workload_type
        if self.slice_ratio is not None:
            found["sliceRatio"] = self.slice_ratio
        if self.gpu_memory is not None:
            found["gpuMemory"] = quantity_text(self.gpu_memory)
        return found


def first_match(rules: Sequence[Rule], namespace: str, labels: Mapping[str, str]) -> Rule | None:
    """The first rule that matches: order in CASTSLICE_RULES is priority."""
    for rule in rules:
        if rule.matches(namespace, labels):
            return rule
    return None


def _yaml(text: str) -> Any:
    """PyYAML is imported only for rules written in YAML: JSON rules, or none, keep it off
    a cold start's path (11-15 ms). Its errors are ValueErrors here, as json's are."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(str(error)) from None


def parse_rules(text: str, presets: Mapping[str, int], max_slices: int) -> tuple[Rule, ...]:
    """Rules from YAML or JSON text; ValueError lists every problem found.

    JSON is YAML, but a JSON error message is clearer for text that starts with '['.
    """
    if not text.strip():
        return ()
    try:
        data = json.loads(text) if text.lstrip().startswith("[") else _yaml(text)
    except ValueError as error:
        raise ValueError(f"not valid YAML or JSON ({_one_line(error)})") from None
    except RecursionError:
        raise ValueError("nested too deeply to be a list of rules") from None
    if not isinstance(data, list):
        raise ValueError("must be a list of rules")
    problems: list[str] = []
    rules = [_parse_rule(i, item, presets, max_slices, problems) for i, item in enumerate(data)]
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(r for r in rules if r is not None)


def _parse_rule(index: int, item: Any, presets: Mapping[str, int], max_slices: int,
                problems: list[str]) -> Rule | None:
    where = f"rule #{index + 1}"
    if not isinstance(item, dict):
        problems.append(f"{where}: must be a mapping")
        return None
    before = len(problems)
    unknown = sorted(set(map(str, item)) - set(_RULE_KEYS))
    if unknown:
        problems.append(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(_RULE_KEYS)}")
    name = item.get("name", where)
    if not isinstance(name, str):
        problems.append(f"{where}.name: {name!r} is not a string")
    namespaces = _strings(item.get("namespaces", []), f"{where}.namespaces", problems)
    requirements = _requirements(item, where, problems)
    optimize = item.get("optimize", True)
    if not isinstance(optimize, bool):
        problems.append(f"{where}.optimize: {optimize!r} is not true or false")
    workload_type, slice_ratio = item.get("workloadType"), item.get("sliceRatio")
    memory = item.get("gpuMemory")
    if sum(item.get(key) is not None for key in _GRANTS) > 1:
        problems.append(f"{where}: set one of workloadType, sliceRatio or gpuMemory")
    if workload_type is not None and (not isinstance(workload_type, str)
                                      or workload_type not in presets):
        problems.append(f"{where}.workloadType: {workload_type!r} is not one of "
                        f"{', '.join(presets)}")
    if slice_ratio is not None and not (
        type(slice_ratio) is int and 1 <= slice_ratio <= max_slices
    ):
        problems.append(f"{where}.sliceRatio: {slice_ratio!r} is not a whole number "
                        f"from 1 to {max_slices}")
    ask = None if memory is None else memory_ask(memory)
    if memory is not None and ask is None:
        problems.append(f"{where}.gpuMemory: {memory!r} is not a memory quantity above 0, "
                        "e.g. 10Gi or 512Mi")
    if len(problems) > before:
        return None
    return Rule(name, tuple(namespaces), requirements, optimize,
                workload_type, slice_ratio, ask)


def _requirements(item: dict[str, Any], where: str,
                  problems: list[str]) -> tuple[Requirement, ...]:
    labels = item.get("matchLabels", {})
    expressions = item.get("matchExpressions", [])
    found: list[Requirement] = []
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        problems.append(f"{where}.matchLabels: must map label names to string values")
    else:
        found += [Requirement(k, "In", frozenset([v])) for k, v in labels.items()]
    if not isinstance(expressions, list):
        problems.append(f"{where}.matchExpressions: must be a list")
        return tuple(found)
    for i, expression in enumerate(expressions):
        requirement = _requirement(expression, f"{where}.matchExpressions[{i}]", problems)
        if requirement is not None:
            found.append(requirement)
    return tuple(found)


def _requirement(expression: Any, where: str, problems: list[str]) -> Requirement | None:
    if not isinstance(expression, dict) or not isinstance(expression.get("key"), str):
        problems.append(f"{where}: needs a string 'key'")
        return None
    operator = expression.get("operator")
    if operator not in _OPERATORS:
        problems.append(f"{where}.operator: {operator!r} is not one of {', '.join(_OPERATORS)}")
        return None
    before = len(problems)
    values = _strings(expression.get("values", []), f"{where}.values", problems)
    if operator in ("In", "NotIn") and not values and len(problems) == before:
        problems.append(f"{where}: operator {operator} needs a non-empty 'values' list")
    if operator in ("Exists", "DoesNotExist") and values:
        problems.append(f"{where}: operator {operator} takes no 'values'")
    return Requirement(expression["key"], operator, frozenset(values))


def _strings(value: Any, where: str, problems: list[str]) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    problems.append(f"{where}: must be a list of strings")
    return []


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
