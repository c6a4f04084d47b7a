"""Env files as kustomize and kubectl read them, and `castslice config --env-file`."""

import json
import re
import shutil
import subprocess

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from castslice.cli import main
from castslice.settings.config import Config
from castslice.settings.envfile import EnvFileError, read_env_file

TRICKY = ('# a comment\n\n   CASTSLICE_RULES=[{"namespaces": ["ml-*"], "optimize": true}]\n'
          'CASTSLICE_PRESETS=training=8,dev=1\nQUOTED="kept"\nSPACES=  a b  \n'
          'HASH=x # not a comment\nEMPTY=\n')


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_an_env_file_reads_as_kubectl_builds_the_configmap(tmp_path):
    path = tmp_path / "castslice.env"
    path.write_text(TRICKY)
    made = subprocess.run(["kubectl", "create", "configmap", "c", f"--from-env-file={path}",
                           "--dry-run=client", "-o", "json"], capture_output=True, text=True,
                          check=True)
    assert read_env_file(path) == json.loads(made.stdout)["data"]


KEYS = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)
VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b"
                               "\x0c\x1c\x1d\x1e\x85\u2028\u2029"), max_size=40)


@settings(max_examples=200)
@given(st.dictionaries(KEYS, VALUES, min_size=1, max_size=8), st.sampled_from(["", " ", "\t"]))
def test_any_variables_written_one_per_line_read_back_the_same(tmp_path_factory, variables,
                                                                indent):
    path = tmp_path_factory.mktemp("env") / "x.env"
    path.write_text("".join(f"{indent}{k}={v}\n" for k, v in variables.items()),
                    encoding="utf-8")
    assert read_env_file(path) == variables


@pytest.mark.parametrize("text,problem", [
    ("", "x.env: holds no KEY=value line"),
    ("# only a comment\n\n", "x.env: holds no KEY=value line"),
    ("A" * 5000 + "\n", "... (5,000 characters) has no '='"),
    ("CASTSLICE_BACKEND\n", "x.env:1: 'CASTSLICE_BACKEND' has no '='"),
    ("\n1BAD=x\n", "x.env:2: '1BAD' is not a variable name"),
    ("A=1\nA=2\n", "x.env:2: A is set twice in one file"),
])
def test_a_malformed_env_file_names_file_and_line(tmp_path, text, problem):
    (tmp_path / "x.env").write_text(text)
    with pytest.raises(EnvFileError, match=re.escape(problem)):
        read_env_file(tmp_path / "x.env")


def test_config_reads_env_files_in_order_and_ignores_the_process_environment(tmp_path,
                                                                             capsys):
    (tmp_path / "base.env").write_text("CASTSLICE_BACKEND=mig\nCASTSLICE_MAX_SLICES=7\n")
    (tmp_path / "prod.env").write_text("CASTSLICE_MAX_SLICES=4\n")
    process = {"CASTSLICE_BACKEND": "dra", "CASTSLICE_ON_INVALID": "deny"}
    assert main(["config", "--env-file", str(tmp_path / "base.env"), "--env-file",
                 str(tmp_path / "prod.env"), "--output", "yaml"], process) == 0
    settings_ = yaml.safe_load(capsys.readouterr().out)
    assert settings_["CASTSLICE_BACKEND"] == "mig" and settings_["CASTSLICE_MAX_SLICES"] == 4
    assert settings_["CASTSLICE_ON_INVALID"] == "warn"


def test_config_of_a_bad_env_file_exits_2_with_the_servers_lines(tmp_path, capsys):
    (tmp_path / "bad.env").write_text("CASTSLICE_BACKEND=gpu\nCASTSLICE_PRESETS=x\n")
    assert main(["config", "--env-file", str(tmp_path / "bad.env")], {}) == 2
    from_file = capsys.readouterr().err
    assert main(["serve"], {"CASTSLICE_BACKEND": "gpu", "CASTSLICE_PRESETS": "x"}) == 2
    assert capsys.readouterr().err == from_file
    assert "castslice: CASTSLICE_PRESETS='x'" in from_file and from_file.count("\n") == 2
    assert main(["config", "--env-file", str(tmp_path / "missing.env")], {}) == 2
    assert "missing.env: No such file or directory" in capsys.readouterr().err


ENVS = st.fixed_dictionaries({}, optional={
    "CASTSLICE_BACKEND": st.sampled_from(["extended", "mig", "dra"]),
    "CASTSLICE_PRESETS": st.sampled_from(["training=4,dev=1", "a=1,b-c=3"]),
    "CASTSLICE_RULES": st.sampled_from([
        '[{"namespaces": ["ml-*"], "matchLabels": {"team": "a"}, "optimize": true, '
        '"sliceRatio": 2}]',
        '[{"name": "x", "matchExpressions": [{"key": "k", "operator": "NotIn", "values": '
        '["a", "b"]}], "optimize": false}]']),
    "CASTSLICE_EXCLUDE_NAMESPACES": st.sampled_from(["kube-system,web", ""]),
    "CASTSLICE_NAMESPACE": st.sampled_from(["castslice", ""]),
    "CASTSLICE_GPU_HOURLY_COST": st.sampled_from(["2.5", "0.1", ""]),
    "CASTSLICE_CAPTURE_SAMPLE": st.sampled_from(["0.25", "1"]),
    "CASTSLICE_CAPTURE_REDACT": st.sampled_from(["args", "args,command", ""]),
    "CASTSLICE_MIG_PROFILES": st.sampled_from(["1g.10gb,2g.20gb,7g.80gb", "1g.10gb+me,7g.80gb",
                                               "1g.10gb.me,4g.40gb", ""]),
    "CASTSLICE_DRA_DEVICES": st.sampled_from(["mig", ""]),
    "CASTSLICE_SLICES_PER_GPU": st.sampled_from(["8", ""]),
    "CASTSLICE_DRAIN_SECONDS": st.sampled_from(["0.5", "5"]),
    "CASTSLICE_CAPTURE": st.sampled_from(["s3://bucket/prefix", "file:///data"]),
})


@given(ENVS)
def test_a_configuration_written_as_variables_reads_back_the_same(env):
    config = Config.from_env(env)
    assert Config.from_env(config.as_env()) == config
    assert set(config.as_env()) == set(config.describe())
