import dataclasses

import pytest

from castslice.cli import main
from castslice.settings.config import Config, ConfigError


def problems(env):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    return caught.value.problems


def test_defaults_match_the_spec():
    config = Config.from_env({})
    assert config == Config()
    policy = config.policy
    assert (policy.source_resource, policy.target_resource) == ("nvidia.com/gpu",
                                                                 "nvidia.com/gpu-shared")
    assert dict(policy.presets) == {"training": 4, "inference": 2, "batch": 2, "dev": 1}
    assert policy.exclude_namespaces == {"kube-system"}
    assert (policy.default_slices, policy.max_slices, policy.on_invalid) == (1, 64, "warn")
    assert config.max_body_bytes == 6291456 and config.bind == "0.0.0.0:8443"


def test_own_namespace_is_always_excluded():
    config = Config.from_env({"CASTSLICE_NAMESPACE": "castslice",
                              "CASTSLICE_EXCLUDE_NAMESPACES": "batch-system, monitoring"})
    assert config.policy.exclude_namespaces == {"castslice", "batch-system", "monitoring"}


def test_knative_port_is_honoured_unless_bind_is_set():
    assert Config.from_env({"PORT": "8080"}).bind == "0.0.0.0:8080"
    assert Config.from_env({"PORT": "8080", "CASTSLICE_BIND": "127.0.0.1:9000"}).bind == (
        "127.0.0.1:9000")


def test_presets_replace_the_whole_table():
    config = Config.from_env({"CASTSLICE_PRESETS": "notebook=8, training=2"})
    assert dict(config.policy.presets) == {"notebook": 8, "training": 2}


def test_config_is_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().policy.max_slices = 3  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().bind = "0.0.0.0:1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        Config().policy.presets["training"] = 9  # type: ignore[index]


@pytest.mark.parametrize(("name", "value", "allowed"), [
    ("CASTSLICE_MAX_SLICES", "abc", "a whole number from 1 to 10000"),
    ("CASTSLICE_MAX_SLICES", "0", "a whole number from 1 to 10000"),
    ("CASTSLICE_MAX_SLICES", "²", "a whole number"),
    ("CASTSLICE_DEFAULT_SLICES", "65", "a whole number from 1 to 64"),
    ("CASTSLICE_DEFAULT_SLICES", "-1", "a whole number"),
    ("CASTSLICE_PRESETS", "training:4", "is not name=count"),
    ("CASTSLICE_PRESETS", "training=0", "is not name=count"),
    ("CASTSLICE_PRESETS", ",", "needs at least one"),
    ("CASTSLICE_ON_INVALID", "reject", "allowed: warn, deny"),
    ("CASTSLICE_SOURCE_RESOURCE", "gpu", "an extended resource name"),
    ("CASTSLICE_TARGET_RESOURCE", "nvidia.com/gpu", "must differ"),
    ("CASTSLICE_EXCLUDE_NAMESPACES", "Kube_System", "is not a namespace name"),
    ("CASTSLICE_RULES", "[{", "not valid YAML or JSON"),
    ("CASTSLICE_MAX_BODY_BYTES", "10", "from 1024"),
    ("CASTSLICE_BIND", "8443", "HOST:PORT"),
    ("CASTSLICE_BIND", "0.0.0.0:99999", "HOST:PORT"),
    ("CASTSLICE_WORKERS", "0", "from 1 to 256"),
    ("CASTSLICE_LOG_LEVEL", "verbose", "debug, info, warning, error, critical"),
    ("CASTSLICE_CAPTURE", "ftp://x", "file:///absolute/dir or s3://bucket/prefix"),
    ("CASTSLICE_GPU_HOURLY_COST", "cheap", "dollars per GPU-hour"),
    ("CASTSLICE_GPU_HOURLY_COST", "-2", "dollars per GPU-hour"),
    ("CASTSLICE_SLICES_PER_GPU", "1.5", "a whole number"),
    ("CASTSLICE_DRAIN_SECONDS", "forever", "seconds from 0 to 600"),
    ("CASTSLICE_DRAIN_SECONDS", "nan", "seconds from 0 to 600"),
    ("CASTSLICE_GPU_HOURLY_COST", "0", "a number above 0"),
    ("CASTSLICE_CAPTURE_SAMPLE", "2", "a share of events from 0 to 1"),
    ("CASTSLICE_CAPTURE_SAMPLE", "half", "a share of events from 0 to 1"),
    ("CASTSLICE_CAPTURE_REDACT", "env", "comma-separated args, command"),
    ("CASTSLICE_CAPTURE_QUEUE", "0", "from 1 to 1000000"),
])
def test_each_bad_variable_is_one_line_naming_variable_value_and_rule(name, value, allowed):
    (problem,) = problems({name: value})
    assert problem.startswith(f"{name}={value!r}: ")
    assert allowed in problem


def test_tls_needs_both_files():
    (problem,) = problems({"CASTSLICE_TLS_KEY_FILE": "pyproject.toml"})
    assert problem.startswith("CASTSLICE_TLS_CERT_FILE='': set both")


def test_unreadable_tls_files_are_named(tmp_path):
    found = problems({"CASTSLICE_TLS_CERT_FILE": str(tmp_path / "tls.crt"),
                      "CASTSLICE_TLS_KEY_FILE": str(tmp_path / "tls.key")})
    assert len(found) == 2 and all("must be a readable file" in p for p in found)


def test_all_problems_are_reported_together():
    found = problems({"CASTSLICE_MAX_SLICES": "x", "CASTSLICE_ON_INVALID": "x",
                      "CASTSLICE_LOG_LEVEL": "x"})
    assert len(found) == 3


@pytest.mark.parametrize("command", [["config"], ["serve"], ["review", "-"]])
def test_bad_config_stops_commands_with_exit_2(command, capsys):
    assert main(command, {"CASTSLICE_ON_INVALID": "sometimes", "CASTSLICE_MAX_SLICES": "x"}) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "castslice: CASTSLICE_MAX_SLICES='x': allowed: a whole number from 1 to 10000",
        "castslice: CASTSLICE_ON_INVALID='sometimes': allowed: warn, deny",
    ]


def test_blank_variables_count_as_unset():
    assert Config.from_env({"CASTSLICE_BIND": "", "CASTSLICE_PRESETS": " ",
                            "CASTSLICE_MAX_SLICES": ""}) == Config()


def test_presets_above_max_slices_are_named():
    (problem,) = problems({"CASTSLICE_MAX_SLICES": "2"})
    assert problem == ("CASTSLICE_PRESETS='training=4,inference=2,batch=2,dev=1': "
                       "training=4 above CASTSLICE_MAX_SLICES=2")
