"""Edges of the decision core that a mutation run showed no other test pinned: each test
is named for the behaviour, and each fails on the mutant it was written against."""

import dataclasses

import pytest

from castslice.functions.admit import admit, check_review
from castslice.functions.mig import parse_ladder
from castslice.functions.policy import Policy
from castslice.functions.quantity import parse_quantity, whole_count
from castslice.functions.reviews import dry_run
from castslice.functions.rules import parse_rules
from castslice.functions.text import MAX_WARNING, short, show
from tests.kube import admitted_pod, gpu_container, pod_review

ON = {"castops.io/optimize": "true"}
DEFAULT = Policy()


def decided(review, policy=DEFAULT):
    return admit(check_review(review), policy)


@pytest.mark.parametrize("metadata", [None, "x", {"name": "p"}, {"annotations": None}])
def test_the_sliced_record_is_written_whatever_the_metadata_holds(metadata):
    review = pod_review(ON)
    policy = dataclasses.replace(Policy(), rules=parse_rules('[{"namespaces": ["ml"]}]',
                                                             {"dev": 1}, 64))
    if metadata is None:
        del review["request"]["object"]["metadata"]
    else:
        review["request"]["object"]["metadata"] = metadata
    admission = decided(review, policy)
    assert admission.decision.outcome == "mutated"
    pod = admitted_pod(review, admission.response)
    assert pod["metadata"]["annotations"]["castops.io/sliced"] == admission.decision.message


@pytest.mark.parametrize("spec", [None, "x", [], 3])
def test_a_pod_whose_spec_is_not_an_object_asks_for_no_gpu(spec):
    review = pod_review(ON)
    review["request"]["object"]["spec"] = spec
    assert decided(review).decision[:2] == ("passed", "no-gpu")


def test_a_denial_keeps_the_warning_about_an_odd_optimize_value():
    policy = dataclasses.replace(Policy(), on_invalid="deny", rules=parse_rules(
        '[{"namespaces": ["ml"]}]', {"dev": 1}, 64))
    decision = decided(pod_review({"castops.io/optimize": "yes",
                                   "castops.io/slice-ratio": "x"}), policy).decision
    assert decision.outcome == "denied"
    assert [w.kind for w in decision.warnings] == ["optimize-value"]
    assert decision.message == 'castops.io/slice-ratio="x" is not valid: use a whole number ' \
                               'from 1 to 64'


@pytest.mark.parametrize(("annotations", "containers", "policy", "reason"), [
    ({**ON, "castops.io/slice-ratio": "3"}, [gpu_container("a", "2")], Policy(), "multi-gpu"),
    ({**ON, "castops.io/slice-ratio": "3"}, [{"name": "a", "image": "i"}], Policy(), "no-gpu"),
    ({**ON, "castops.io/slice-ratio": "9"}, [gpu_container("a", "1")], Policy(backend="mig"),
     "no-mig-profile"),
])
def test_a_passed_pod_still_records_the_slices_it_resolved(annotations, containers, policy,
                                                           reason):
    decision = decided(pod_review(annotations, containers=containers), policy).decision
    assert decision.reason == reason and decision.slices == int(
        annotations["castops.io/slice-ratio"])


@pytest.mark.parametrize(("policy", "profile"), [
    (Policy(backend="mig"), "4g.20gb"), (Policy(backend="dra"), "4g.20gb"),
    (Policy(), ""), (Policy(backend="dra", dra_devices="shares", slices_per_gpu=8), ""),
])
def test_a_conversion_to_mig_devices_names_its_profile(policy, profile):
    review = pod_review({**ON, "castops.io/workload-type": "training"})
    assert decided(review, policy).decision.profile == profile


def test_the_patch_is_base64_on_one_line():
    patch = decided(pod_review(ON)).response["response"]["patch"]
    assert "\n" not in patch and patch.isascii()


@pytest.mark.parametrize("namespace", [5, None, ["ml"], {"a": 1}])
def test_a_namespace_that_is_not_text_is_no_namespace(namespace):
    review = pod_review(ON)
    review["request"]["namespace"] = namespace
    policy = dataclasses.replace(Policy(), rules=parse_rules('[{"namespaces": ["*"]}]',
                                                             {"dev": 1}, 64))
    assert decided(review, policy).decision.outcome == "mutated"


def test_a_five_digit_slice_ratio_at_the_largest_maximum_is_accepted():
    policy = dataclasses.replace(Policy(), max_slices=10_000)
    decision = decided(pod_review({**ON, "castops.io/slice-ratio": "10000"}), policy).decision
    assert decision.warnings == () and decision.granted == 10_000


def test_a_container_claims_list_that_is_not_a_list_is_left_with_a_warning():
    container = gpu_container("main", "1")
    container["resources"]["claims"] = "castslice-0"
    response = decided(pod_review(ON, containers=[container]), Policy(backend="dra")).response
    assert response["response"]["warnings"] == [
        'container "main" left unchanged: resources.claims is not a list']


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("true", False), (1, False),
                                                 (False, False), (None, False)])
def test_only_the_boolean_true_is_a_dry_run(value, expected):
    assert dry_run({"uid": "u", "dryRun": value}) is expected
    assert dry_run({"uid": "u"}) is False


def test_show_quotes_as_ascii_json_and_cuts_at_its_limit():
    assert show("é") == '"\\u00e9"'
    assert show("x" * 22) == '"' + "x" * 22 + '"'  # 24 characters: shown whole
    assert show("x" * 23) == '"' + "x" * 19 + '..."'  # 25: cut to 24
    assert show("x" * 40, 10) == '"xxxxx..."'
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    assert show(deep) == "<list nested too deep>"


def test_short_keeps_a_warning_of_the_maximum_length_and_cuts_a_longer_one():
    assert short("x" * MAX_WARNING) == "x" * MAX_WARNING
    assert short("x" * (MAX_WARNING + 1)) == "x" * (MAX_WARNING - 3) + "..."


def test_quantities_at_the_length_limit_are_read_and_past_it_refused():
    assert parse_quantity("0" * 127 + "1") == 1
    assert parse_quantity("0" * 128 + "1") is None


def test_nineteen_digit_counts_below_the_cap_are_kept():
    assert whole_count("1000000000000000000") == 10**18
    assert whole_count("9223372036854775807") == 2**63 - 1
    assert whole_count("9223372036854775808") == 2**63 - 1


def test_device_plugin_me_profiles_are_read_as_the_dra_driver_names_them():
    assert parse_ladder("1g.10gb.me,2g.20gb") == ("1g.10gb+me", "2g.20gb")
    assert parse_ladder("1g.10gb+me") == ("1g.10gb+me",)


def test_exists_reads_back_without_values():
    (rule,) = parse_rules('[{"matchExpressions": [{"key": "k", "operator": "Exists"}]}]',
                          {"dev": 1}, 64)
    assert rule.as_dict()["matchExpressions"] == [{"key": "k", "operator": "Exists"}]


def test_a_pointer_escapes_tilde_before_slash_in_every_part():
    from castslice.functions.patch import pointer

    assert pointer("metadata", "a/b", "~1", 0) == "/metadata/a~1b/~01/0"


def test_a_pod_past_the_claim_cap_passes_as_asking_no_convertible_gpu():
    review = pod_review(ON, containers=[gpu_container(f"c{i}", "1") for i in range(65)])
    decision = decided(review, Policy(backend="dra")).decision
    assert decision[:2] == ("passed", "no-gpu")
    assert [w.kind for w in decision.warnings] == ["left-unchanged"]
