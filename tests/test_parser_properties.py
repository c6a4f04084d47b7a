"""Property tests for the parsers: any input gives a value or a clear error, never a crash."""

from hypothesis import given, settings
from hypothesis import strategies as st

from castslice.config import PREFIX, Config, ConfigError
from castslice.functions.rules import parse_rules

NAMES = ["SOURCE_RESOURCE", "TARGET_RESOURCE", "DEFAULT_SLICES", "MAX_SLICES", "PRESETS",
         "ON_INVALID", "EXCLUDE_NAMESPACES", "NAMESPACE", "RULES", "MAX_BODY_BYTES", "BIND",
         "WORKERS", "LOG_LEVEL", "CAPTURE", "GPU_HOURLY_COST", "SLICES_PER_GPU",
         "DRAIN_SECONDS"]
VALUES = st.text(max_size=30) | st.sampled_from(["0", "1", "64", "-1", "1e3", "x=1", "true",
                                                 "[]", "[{}]", "- a", "0.0.0.0:1", "nan"])
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
        for rule in rules:
            assert rule.matches("ns", {}) in (True, False)
