"""Property tests for the parsers: any input gives a value or a clear error, never a crash."""

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from castslice.functions.rules import parse_rules
from castslice.settings.config import PREFIX, Config, ConfigError

NAMES = ["SOURCE_RESOURCE", "TARGET_RESOURCE", "DEFAULT_SLICES", "MAX_SLICES", "PRESETS",
         "ON_INVALID", "EXCLUDE_NAMESPACES", "NAMESPACE", "RULES", "MAX_BODY_BYTES", "BIND",
         "WORKERS", "LOG_LEVEL", "CAPTURE", "GPU_HOURLY_COST", "SLICES_PER_GPU",
         "DRAIN_SECONDS", "GPU_MEMORY", "MIG_MEMORY", "BACKEND"]
VALUES = st.text(max_size=30) | st.sampled_from(["0", "1", "64", "-1", "1e3", "x=1", "true",
                                                 "[]", "[{}]", "- a", "0.0.0.0:1", "nan",
                                                 "80Gi", "1e99", "2g.10gb=9Gi", "mig",
                                                 '[{"gpuMemory": "30Gi"}]'])
YAMLISH = st.text(alphabet=st.sampled_from(list('[]{}:,-"\' \nabcXYZ019*?.')), max_size=60)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(NAMES), VALUES, max_size=6))
def test_any_environment_gives_a_config_or_one_line_problems(env):
    try:
        config = Config.from_env({PREFIX + k: v for k, v in env.items()})
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:
            assert "\n" not in problem and problem.startswith(PREFIX)
    else:
        assert 1 <= config.policy.default_slices <= config.policy.max_slices


@settings(max_examples=400, deadline=None)
@given(YAMLISH | st.text(max_size=60))
def test_any_rules_text_parses_or_raises_value_error(text):
    try:
        rules = parse_rules(text, {"training": 4}, 64)
    except ValueError as error:
        assert str(error)
    else:
        assert all(isinstance(rule.optimize, bool) for rule in rules)


KEYS = st.sampled_from(["app", "tier", "team"])
VALUES_ = st.sampled_from(["a", "b", "c"])
EXPRESSIONS = st.one_of(
    st.builds(lambda k, op, vs: {"key": k, "operator": op, "values": vs}, KEYS,
              st.sampled_from(["In", "NotIn"]), st.lists(VALUES_, min_size=1, max_size=3)),
    st.builds(lambda k, op: {"key": k, "operator": op}, KEYS,
              st.sampled_from(["Exists", "DoesNotExist"])))
RULES = st.fixed_dictionaries({}, optional={
    "namespaces": st.lists(st.sampled_from(["ml", "ml-*", "team-?", "prod"]), max_size=2),
    "matchLabels": st.dictionaries(KEYS, VALUES_, max_size=2),
    "matchExpressions": st.lists(EXPRESSIONS, max_size=3), "optimize": st.booleans(),
    "name": st.sampled_from(["shares", "research"])})
WITH_SLICES = st.tuples(RULES, st.sampled_from([{}, {"workloadType": "training"}])
                        | st.builds(lambda n: {"sliceRatio": n}, st.integers(1, 64))).map(
    lambda pair: pair[0] | pair[1])


def selects(rule: dict, namespace: str, labels: dict) -> bool:
    """Kubernetes' label-selector table, written out apart from the implementation: every
    requirement must hold; NotIn and DoesNotExist hold for a missing key."""
    patterns = rule.get("namespaces") or []
    if patterns and not any(re.fullmatch(glob_regex(p), namespace) for p in patterns):
        return False
    for key, value in rule.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in rule.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        holds = {"In": key in labels and labels[key] in expression.get("values", []),
                 "NotIn": key not in labels or labels[key] not in expression.get("values", []),
                 "Exists": key in labels, "DoesNotExist": key not in labels}[operator]
        if not holds:
            return False
    return True


def glob_regex(pattern: str) -> str:
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)


@given(RULES, st.sampled_from(["ml", "ml-serving", "team-a", "team-ab", "prod", "dev"]),
       st.dictionaries(KEYS, VALUES_, max_size=3))
def test_a_rule_selects_exactly_as_kubernetes_label_selectors_do(rule, namespace, labels):
    (parsed,) = parse_rules(json.dumps([rule]), {"training": 4}, 64)
    assert parsed.matches(namespace, labels) == selects(rule, namespace, labels)


@given(st.lists(WITH_SLICES, max_size=3))
def test_described_rules_read_back_to_the_same_rules(rules):
    parsed = parse_rules(json.dumps(rules), {"training": 4}, 64)
    assert parse_rules(json.dumps([r.as_dict() for r in parsed]), {"training": 4}, 64) == parsed
