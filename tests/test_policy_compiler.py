"""The policy engine's compiler, without a cluster: what depends only on the configuration is
computed by the webhook's own functions (checked here against them), globs compile to the
names fnmatch matches, unsupported settings are refused naming the setting, and `castslice
policy` prints a stable, hashed set. Equivalence itself is proven on a real API server
(tests/test_apiserver_policy.py)."""

import json
import re
from fnmatch import fnmatchcase

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from castslice.cel.errors import Unsupported
from castslice.cel.literals import glob_pattern, literal
from castslice.cel.objects import HASH, policy_objects
from castslice.cel.slices import memory_steps
from castslice.cli import main
from castslice.functions.policy import Policy
from castslice.settings.config import Config
from tests.test_memory import ASKS, POLICIES

NAMES = st.text(alphabet="abcz-09", min_size=0, max_size=8)
GLOBS = st.lists(st.sampled_from(["a", "b", "z", "-", "0", "*", "?", "[a-c]", "[!ab]", "[-0]"]),
                 max_size=6).map("".join)


@given(GLOBS, NAMES)
def test_a_namespace_glob_matches_the_names_fnmatch_matches(glob, name):
    assert bool(re.search(glob_pattern(glob), name)) == fnmatchcase(name, glob)


@pytest.mark.parametrize("glob", ["team-[", "a]b", "x\\y", "[z-a]", "[a.]"])
def test_a_glob_the_cel_cannot_match_alike_is_refused_naming_the_setting(glob):
    with pytest.raises(Unsupported, match=r"^CASTSLICE_RULES: namespace pattern"):
        glob_pattern(glob)


@given(POLICIES, ASKS)
def test_the_memory_step_an_ask_falls_in_is_the_webhooks_grant(policy, ask):
    steps = memory_steps(policy)
    step = next(s for s in steps if s.upto is None or ask <= s.upto)
    grant = policy.memory_grant(ask)
    assert (step.slices, step.unfit) == (grant.slices or 1, grant.unfit)


def test_without_card_memory_every_ask_is_one_unfit_step():
    assert [(s.upto, s.unfit) for s in memory_steps(Policy(slices_per_gpu=8))] == [
        (None, "set CASTSLICE_GPU_MEMORY and CASTSLICE_SLICES_PER_GPU")]


@given(st.text(max_size=20))
def test_a_string_literal_reads_back_as_the_string(text):
    assert json.loads(literal(text)) == text


def test_policy_prints_a_mutation_a_warnings_and_an_audit_policy_with_their_bindings(capsys):
    assert main(["policy"], {}) == 0
    objects = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("MutatingAdmissionPolicy", "castslice"), ("MutatingAdmissionPolicyBinding", "castslice"),
        ("ValidatingAdmissionPolicy", "castslice-warnings"),
        ("ValidatingAdmissionPolicyBinding", "castslice-warnings"),
        ("ValidatingAdmissionPolicy", "castslice-audit"),
        ("ValidatingAdmissionPolicyBinding", "castslice-audit"),
        ("MutatingAdmissionPolicy", "castslice-quota-guard"),
        ("MutatingAdmissionPolicyBinding", "castslice-quota-guard"),
        ("ValidatingAdmissionPolicy", "castslice-quota-backstop"),
        ("ValidatingAdmissionPolicyBinding", "castslice-quota-backstop")]
    assert objects[3]["spec"]["validationActions"] == ["Warn"]
    assert objects[5]["spec"]["validationActions"] == ["Audit"]
    assert len({o["metadata"]["annotations"][HASH] for o in objects}) == 1


def test_deny_adds_a_refusing_policy():
    objects = policy_objects(Config.from_env({"CASTSLICE_ON_INVALID": "deny"}).policy)
    refusals = [o for o in objects if o["metadata"]["name"] == "castslice-refusals"]
    assert [o["kind"] for o in refusals] == ["ValidatingAdmissionPolicy",
                                             "ValidatingAdmissionPolicyBinding"]
    assert refusals[1]["spec"]["validationActions"] == ["Deny"]


def test_the_printed_set_is_stable_and_its_hash_follows_the_configuration():
    one = policy_objects(Config.from_env({}).policy)
    assert one == policy_objects(Config.from_env({}).policy)
    other = policy_objects(Config.from_env({"CASTSLICE_DEFAULT_SLICES": "2"}).policy)
    assert one[0]["metadata"]["annotations"][HASH] != other[0]["metadata"]["annotations"][HASH]


def test_policy_refuses_a_rule_it_cannot_compile_with_exit_2(capsys):
    rules = '[{"name": "odd", "namespaces": ["team-[ab"]}]'
    assert main(["policy"], {"CASTSLICE_RULES": rules}) == 2
    err = capsys.readouterr().err
    assert err.startswith("castslice: CASTSLICE_RULES: namespace pattern 'team-[ab'")
    assert "run the webhook for this configuration" in err


def test_policy_validates_the_configuration_as_serve_does(capsys):
    assert main(["policy"], {"CASTSLICE_BACKEND": "gpu"}) == 2
    assert "CASTSLICE_BACKEND" in capsys.readouterr().err


def test_policy_names_a_misspelled_variable(capsys):
    assert main(["policy"], {"CASTSLICE_BACKEN": "mig"}) == 0
    assert "CASTSLICE_BACKEN is not a CastSlice setting (did you mean CASTSLICE_BACKEND?)" in (
        capsys.readouterr().err)
