import pytest

from castslice.functions.rules import first_match, parse_rules

PRESETS = {"training": 4, "inference": 2}


def rules(text):
    return parse_rules(text, PRESETS, 64)


def test_namespace_glob_matches():
    (rule,) = rules('[{"namespaces": ["team-*", "research"]}]')
    assert rule.matches("team-a", {}) and rule.matches("research", {})
    assert not rule.matches("teams", {})


@pytest.mark.parametrize(("operator", "values", "labels", "expected"), [
    ("In", ["a", "b"], {"k": "a"}, True),
    ("In", ["a"], {"k": "z"}, False),
    ("In", ["a"], {}, False),
    ("NotIn", ["a"], {"k": "z"}, True),
    ("NotIn", ["a"], {}, True),
    ("NotIn", ["a"], {"k": "a"}, False),
    ("Exists", [], {"k": ""}, True),
    ("Exists", [], {}, False),
    ("DoesNotExist", [], {}, True),
    ("DoesNotExist", [], {"k": "x"}, False),
])
def test_match_expressions_follow_kubernetes_semantics(operator, values, labels, expected):
    expression = {"key": "k", "operator": operator}
    if values:
        expression["values"] = values
    (rule,) = rules([{"matchExpressions": [expression]}].__repr__().replace("'", '"'))
    assert rule.matches("ns", labels) is expected


def test_match_labels_need_every_label():
    (rule,) = rules("- matchLabels: {team: vision, tier: online}")
    assert rule.matches("x", {"team": "vision", "tier": "online", "other": "1"})
    assert not rule.matches("x", {"team": "vision"})


def test_first_match_wins():
    parsed = rules('[{"name": "a", "namespaces": ["ml"], "optimize": false}, {"name": "b"}]')
    assert first_match(parsed, "ml", {}).name == "a"
    assert first_match(parsed, "web", {}).name == "b"


def test_yaml_and_json_give_the_same_rules():
    assert rules('[{"namespaces": ["a"], "sliceRatio": 2}]') == rules(
        "- namespaces: [a]\n  sliceRatio: 2\n")


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not valid YAML or JSON"),
    ("[1", "not valid YAML or JSON"),
    ("a: 1", "must be a list"),
    ("[3]", "rule #1: must be a mapping"),
    ('[{"namespace": ["a"]}]', "unknown key(s) ['namespace']"),
    ('[{"optimize": "yes"}]', "rule #1.optimize: 'yes' is not true or false"),
    ('[{"workloadType": "gaming"}]', "'gaming' is not one of training, inference"),
    ('[{"sliceRatio": 0}]', "sliceRatio: 0 is not a whole number from 1 to 64"),
    ('[{"sliceRatio": "2"}]', "sliceRatio: '2' is not a whole number"),
    ('[{"sliceRatio": 2, "workloadType": "training"}]',
     "rule #1: set one of workloadType, sliceRatio or gpuMemory"),
    ('[{"gpuMemory": "10Gi", "sliceRatio": 2}]',
     "rule #1: set one of workloadType, sliceRatio or gpuMemory"),
    ('[{"gpuMemory": "0"}]', "rule #1.gpuMemory: '0' is not a memory quantity above 0, "
     "e.g. 10Gi or 512Mi"),
    ('[{"gpuMemory": "ten gigs"}]', "rule #1.gpuMemory: 'ten gigs' is not a memory quantity"),
    ('[{"gpuMemory": 1.5e10}]', "rule #1.gpuMemory: 15000000000.0 is not a memory quantity"),
    ('[{"gpuMemory": true}]', "rule #1.gpuMemory: True is not a memory quantity"),
    ('[{"matchExpressions": [{"key": "k", "operator": "Equals"}]}]', "'Equals' is not one of"),
    ('[{"matchExpressions": [{"key": "k", "operator": "In"}]}]', "needs a non-empty 'values'"),
    ('[{"matchExpressions": [{"key": "k", "operator": "Exists", "values": ["x"]}]}]',
     "takes no 'values'"),
    ('[{"matchLabels": {"k": 1}}]', "matchLabels: must map label names to string values"),
    ('[{"namespaces": "ml"}]', "namespaces: must be a list of strings"),
])
def test_malformed_rules_name_the_problem(text, message):
    with pytest.raises(ValueError, match=None) as caught:
        rules(text)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as caught:
        rules('[{"sliceRatio": 0}, {"optimize": 1}]')
    assert "rule #1" in str(caught.value) and "rule #2" in str(caught.value)


def test_a_rule_slice_ratio_equal_to_the_maximum_is_accepted():
    (rule,) = parse_rules('[{"sliceRatio": 7}]', PRESETS, 7)
    assert rule.slice_ratio == 7
    with pytest.raises(ValueError, match="sliceRatio: 8 is not a whole number from 1 to 7"):
        parse_rules('[{"sliceRatio": 8}]', PRESETS, 7)


@pytest.mark.parametrize("operator", ["In", "NotIn"])
@pytest.mark.parametrize("values", ["", ', "values": []'])
def test_in_and_not_in_without_values_are_refused_as_kubernetes_refuses_them(operator, values):
    text = f'[{{"matchExpressions": [{{"key": "k", "operator": "{operator}"{values}}}]}}]'
    with pytest.raises(ValueError, match=f"operator {operator} needs a non-empty 'values'"):
        rules(text)


@pytest.mark.parametrize("operator", ["Exists", "DoesNotExist"])
def test_exists_and_does_not_exist_with_values_are_refused(operator):
    with pytest.raises(ValueError, match=f"operator {operator} takes no 'values'"):
        rules(f'[{{"matchExpressions": [{{"key": "k", "operator": "{operator}", '
              '"values": ["x"]}]}]')


@pytest.mark.parametrize(("text", "message"), [
    ('[{"matchExpressions": {"key": "k"}}]', "rule #1.matchExpressions: must be a list"),
    ('[{"matchExpressions": [{"key": 1, "operator": "Exists"}]}]', "needs a string 'key'"),
    ('[{"matchExpressions": [{"key": ["k"], "operator": "Exists"}]}]', "needs a string 'key'"),
    ('[{"matchExpressions": [{"key": "k", "operator": "In", "values": "tier"}]}]',
     "rule #1.matchExpressions[0].values: must be a list of strings"),
    ('[{"matchExpressions": [{"key": "k", "operator": ["In"]}]}]', "is not one of In"),
    ('[{"workloadType": ["training"]}]', "workloadType: ['training'] is not one of"),
    ('[{"workloadType": {"a": 1}}]', "workloadType: {'a': 1} is not one of"),
    ('[{"name": ["x"]}]', "rule #1.name: ['x'] is not a string"),
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ("- " * 3000 + "a", "nested too deeply"),
])
def test_malformed_rules_are_one_problem_line_never_a_crash(text, message):
    with pytest.raises(ValueError) as caught:
        rules(text)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_values_that_are_not_a_list_give_one_problem_not_two():
    with pytest.raises(ValueError) as caught:
        rules('[{"matchExpressions": [{"key": "k", "operator": "In", "values": "tier"}]}]')
    assert "non-empty" not in str(caught.value)
