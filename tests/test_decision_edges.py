"""Edges of the decision core that a mutation run showed no other test pinned: each test
is named for the behaviour, and each fails on the mutant it was written against."""

import dataclasses

import pytest

from castslice.functions.admit import admit, check_review
from castslice.functions.mig import instances_per_card, memory_gb, parse_ladder
from castslice.functions.policy import Policy
from castslice.functions.quantity import parse_quantity, whole_count
from castslice.functions.reviews import dry_run
from castslice.functions.rules import parse_rules
from castslice.functions.text import MAX_WARNING, short, show
from tests.kube import admitted_pod, gpu_container, patch_of, pod_review

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


def _env_policy(env):
    from castslice.settings.decision import policy_from_env

    return policy_from_env(env)


def test_a_ratio_past_a_one_profile_ladder_is_named_not_an_internal_error():
    """decide._rewrite: a slice count past the only profile passes with its own warning."""
    policy = _env_policy({"CASTSLICE_BACKEND": "mig", "CASTSLICE_MIG_PROFILES": "7g.40gb"})
    admission = decided(pod_review(ON | {"castops.io/slice-ratio": "8"}), policy)
    decision = admission.decision
    assert (decision.outcome, decision.reason, decision.error) == ("passed", "no-mig-profile",
                                                                   None)
    assert [w.kind for w in decision.warnings] == ["no-mig-profile"]
    assert "is more than the largest MIG profile 7g.40gb" in admission.response["response"][
        "warnings"][0]


def test_json_rules_indented_with_a_tab_are_read_as_json():
    """rules.parse_rules: PyYAML refuses tabs in indentation; JSON allows them."""
    (rule,) = parse_rules('[\n\t{"name": "ml", "namespaces": ["ml"]}\n]', {"dev": 1}, 64)
    assert rule.name == "ml" and rule.namespaces == ("ml",)


def test_json_rules_followed_by_a_comment_are_refused_as_json():
    """rules.parse_rules: text that starts with '[' is JSON, where '#' starts no comment."""
    with pytest.raises(ValueError, match=r"not valid YAML or JSON .*line 1 column"):
        parse_rules('[{"name": "ml", "namespaces": ["ml"]}] # x', {"dev": 1}, 64)


def test_the_rules_error_names_the_line_and_column():
    with pytest.raises(ValueError) as refused:
        parse_rules('[{"name": "ml",\n  "namespaces": ["ml"],,}]', {"dev": 1}, 64)
    assert "line 2 column 24" in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(ValueError) as refused_yaml:
        parse_rules("- name: ml\n  namespaces: [ml\n", {"dev": 1}, 64)
    assert "not valid YAML or JSON (" in str(refused_yaml.value)
    assert "line 3, column 1" in str(refused_yaml.value) and "(None)" not in str(
        refused_yaml.value)


def test_a_dra_container_asking_for_many_gpus_is_multi_gpu_not_no_gpu():
    """claims.rewrite_claims: 65 GPUs pass the claim cap test as multi-gpu."""
    policy = _env_policy({"CASTSLICE_BACKEND": "dra"})
    decision = decided(pod_review(ON, containers=[gpu_container("big", "65")]), policy).decision
    assert (decision.outcome, decision.reason) == ("passed", "multi-gpu")


@pytest.mark.parametrize("claim_name", [5, ["x"], None])
def test_a_pod_claim_whose_name_is_not_text_leaves_the_names_castslice_uses(claim_name):
    """claims._name: a claim entry of any JSON is ignored for naming, never a TypeError."""
    policy = _env_policy({"CASTSLICE_BACKEND": "dra"})
    review = pod_review(ON, resourceClaims=[{"name": claim_name,
                                             "resourceClaimTemplateName": "other"}])
    admission = decided(review, policy)
    assert admission.decision.error is None and admission.decision.outcome == "mutated"
    made = [op["value"] for op in patch_of(admission.response)
            if op["path"] in ("/spec/resourceClaims", "/spec/resourceClaims/-")]
    names = [v["name"] for value in made for v in (value if isinstance(value, list) else [value])]
    assert names == ["castslice-0"]


def test_a_claim_name_a_container_already_references_is_never_reused():
    """claims._fresh_names: a container referencing castslice-0 (defined nowhere) beside a
    GPU container: CastSlice's claim gets another name, so no container gets another's GPU."""
    policy = _env_policy({"CASTSLICE_BACKEND": "dra"})
    sidecar = {"name": "side", "image": "registry.example/side:1",
               "resources": {"claims": [{"name": "castslice-0"}]}}
    review = pod_review(ON, containers=[gpu_container("main", "1"), sidecar])
    admission = decided(review, policy)
    assert admission.decision.outcome == "mutated"
    pod = admitted_pod(review, admission.response)
    claims = [c["name"] for c in pod["spec"]["resourceClaims"]]
    assert claims == ["castslice-1"]
    assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": "castslice-1"}]
    assert pod["spec"]["containers"][1]["resources"]["claims"] == [{"name": "castslice-0"}]


def test_a_request_with_no_namespace_matches_no_rule_that_needs_one():
    """decide._namespace: no namespace is "", which "?*" (one character at least) does not
    match."""
    policy = dataclasses.replace(Policy(), rules=parse_rules(
        '[{"name": "any", "namespaces": ["?*"]}]', {"dev": 1}, 64))
    review = pod_review(None)
    del review["request"]["namespace"]
    assert decided(review, policy).decision.reason == "not-opted-in"
    assert decided(pod_review(None), policy).decision.outcome == "mutated"


def test_requests_holding_both_the_source_and_the_target_are_left_alone():
    """patch.resource_held: with no limits, requests holding the target already mark the
    container converted, whatever else they hold."""
    container = {"name": "main", "image": "registry.example/trainer:1",
                 "resources": {"requests": {"nvidia.com/gpu": "1", "nvidia.com/gpu-shared": "2"}}}
    admission = decided(pod_review(ON, containers=[container]))
    assert admission.decision.outcome == "passed" and "patch" not in admission.response[
        "response"]


def test_a_bad_ladder_names_the_bad_profile():
    with pytest.raises(ValueError, match=r"'8g\.5gb'"):
        parse_ladder("1g.5gb,8g.5gb")


def test_the_deny_message_names_every_reason_apart():
    policy = dataclasses.replace(Policy(), on_invalid="deny")
    review = pod_review(ON | {"castops.io/slice-ratio": "x", "castops.io/workload-type": "nope"})
    status = decided(review, policy).response["response"]["status"]
    assert status["code"] == 400
    assert "castops.io/slice-ratio" in status["message"] and "; " in status["message"]


@pytest.mark.parametrize(("backend", "devices", "mig"), [
    ("mig", "shares", True), ("dra", "mig", True), ("dra", "shares", False),
    ("extended", "mig", False)])
def test_mig_devices_are_what_mig_and_dra_with_mig_templates_convert_to(backend, devices, mig):
    """Policy.mig_devices, a property mutmut does not mutate (hand mutants: each operand)."""
    policy = dataclasses.replace(Policy(), backend=backend, dra_devices=devices)
    assert policy.mig_devices is mig


def test_the_units_granted_are_the_gpus_times_the_slices():
    """Decision.granted, a property mutmut does not mutate: what the audit line counts."""
    decision = decided(pod_review(ON | {"castops.io/slice-ratio": "3"},
                                  containers=[gpu_container("a", "1"), gpu_container("b", "1")])
                       ).decision
    assert (decision.gpus, decision.slices, decision.granted) == (2, 3, 6)
    assert "nvidia.com/gpu x2 -> nvidia.com/gpu-shared x6" in decision.message


# Messages a user reads (kubectl warnings, the API server's log of a 400, the start-up error):
# pinned word for word, so a change to them is a choice made in a diff.
LONG = "c" * 60
NAME = '"' + "c" * 35 + '..."'


@pytest.mark.parametrize(("document", "message"), [
    ([], "body must be a JSON object (an AdmissionReview)"),
    ({"apiVersion": "v2", "kind": "AdmissionReview"},
     "apiVersion must be one of admission.k8s.io/v1, admission.k8s.io/v1beta1"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "Review"}, "kind must be AdmissionReview"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"},
     "request is missing or not an object"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}},
     "request.uid is missing or not a non-empty string"),
])
def test_a_review_that_is_not_one_is_refused_word_for_word(document, message):
    from castslice.functions.admit import InvalidReview

    with pytest.raises(InvalidReview) as refused:
        check_review(document)
    assert str(refused.value) == message


def test_the_deny_message_reads_word_for_word():
    policy = dataclasses.replace(Policy(), on_invalid="deny")
    review = pod_review(ON | {"castops.io/slice-ratio": "x", "castops.io/workload-type": "nope"})
    assert decided(review, policy).response["response"]["status"]["message"] == (
        'castops.io/slice-ratio="x" is not valid: use a whole number from 1 to 64; '
        'castops.io/workload-type="nope" is not valid: use one of training, inference, batch, '
        'dev')


@pytest.mark.parametrize(("resources", "warning"), [
    ({"limits": {"nvidia.com/gpu": "1", "nvidia.com/gpu-shared": "1"}},
     f"container {NAME} has both nvidia.com/gpu and nvidia.com/gpu-shared in limits; left ..."),
    ({"limits": {"nvidia.com/gpu": "x"}, "requests": {"nvidia.com/gpu": "x"}},
     f'container {NAME} limits nvidia.com/gpu="x" is not a whole number; left unchanged'),
])
def test_a_long_container_name_is_cut_in_the_warning(resources, warning):
    container = {"name": LONG, "image": "registry.example/x:1", "resources": resources}
    response = decided(pod_review(ON, containers=[container])).response["response"]
    assert response["warnings"] == [warning]


@pytest.mark.parametrize(("where", "warning"), [
    ("ephemeral", f"ephemeral container {NAME} may not hold resource claims; left unchanged"),
    ("claims", f"container {NAME} left unchanged: resources.claims is not a list")])
def test_a_container_dra_cannot_give_claims_is_named_cut(where, warning):
    policy = _env_policy({"CASTSLICE_BACKEND": "dra"})
    review = pod_review(ON)
    container = gpu_container(LONG, "1")
    if where == "ephemeral":
        review["request"]["object"]["spec"]["ephemeralContainers"] = [container]
    else:
        container["resources"]["claims"] = "x"
        review["request"]["object"]["spec"]["containers"] = [container]
    assert warning in decided(review, policy).response["response"]["warnings"]


def test_rules_errors_read_word_for_word():
    for text, message in [
            ("[" * 2000 + "]" * 2000, "nested too deeply to be a list of rules"),
            ('{"a": 1}', "must be a list of rules"),
            ('[{"name": "a", "bogus": 1}, {"name": "b", "matchExpressions": [{"key": "k", '
             '"operator": "Near"}]}]',
             "rule #1: unknown key(s) ['bogus']; allowed: name, namespaces, matchLabels, "
             "matchExpressions, optimize, workloadType, sliceRatio, gpuMemory; rule "
             "#2.matchExpressions[0].operator: 'Near' is not one of In, NotIn, Exists, "
             "DoesNotExist")]:
        with pytest.raises(ValueError) as refused:
            parse_rules(text, {"dev": 1}, 64)
        assert str(refused.value) == message


def test_json_rules_after_blank_lines_are_still_read_as_json():
    """parse_rules: leading whitespace before '[' keeps the JSON reader (PyYAML refuses
    the tab)."""
    (rule,) = parse_rules('\n  [\n\t{"name": "ml", "namespaces": ["ml"]}\n]', {"dev": 1}, 64)
    assert rule.name == "ml"


def test_ladder_errors_read_word_for_word():
    for text, message in [
            ("1g.5gb,9g.5gb", "'9g.5gb' is not a MIG profile such as 1g.5gb, 1g.10gb+me, "
             "1g.24gb+gfx or 2g.48gb-me (<compute 1-7>g.<memory>gb, one of +me, +me.all, +gfx, "
             "-me); example: 1g.5gb,2g.10gb,3g.20gb,4g.20gb,7g.40gb"),
            ("2g.10gb,1g.5gb", "1g.5gb after 2g.10gb: profiles must increase in compute slices, "
             "one per compute size")]:
        with pytest.raises(ValueError) as refused:
            parse_ladder(text)
        assert str(refused.value) == message


def test_claim_names_the_pod_already_defines_are_never_reused():
    """claims._fresh_names: the Pod's own claims, and those its containers reference, are
    both taken."""
    policy = _env_policy({"CASTSLICE_BACKEND": "dra"})
    sidecar = {"name": "side", "image": "registry.example/side:1",
               "resources": {"claims": [{"name": "user-claim"}]}}
    review = pod_review(ON, containers=[gpu_container("main", "1"), sidecar], resourceClaims=[
        {"name": "castslice-0", "resourceClaimTemplateName": "user-template"},
        {"name": "user-claim", "resourceClaimTemplateName": "user-template"}])
    pod = admitted_pod(review, decided(review, policy).response)
    assert [c["name"] for c in pod["spec"]["resourceClaims"]] == [
        "castslice-0", "user-claim", "castslice-1"]
    assert pod["spec"]["containers"][0]["resources"]["claims"] == [{"name": "castslice-1"}]


def test_a_resource_named_like_the_target_is_not_the_target():
    """patch.resource_held: under extended the target is one name, not a prefix: a container
    also asking for nvidia.com/gpu-shared-nic is converted, not taken as converted."""
    container = gpu_container("main", "1")
    container["resources"]["limits"]["nvidia.com/gpu-shared-nic"] = "1"
    container["resources"]["requests"]["nvidia.com/gpu-shared-nic"] = "1"
    decision = decided(pod_review(ON, containers=[container])).decision
    assert decision.outcome == "mutated"


def test_a_pod_past_the_claim_cap_that_already_holds_a_castslice_claim_is_already_sliced():
    """The reason a log line and the admissions metric carry: a Pod converted before (a claim
    from castslice-gpu-1 in one container) whose 65 other containers would need more claims
    than CastSlice writes is already-sliced, not no-gpu (claims.rewrite_claims keeps
    already_sliced when it gives up on the cap)."""
    claimed = {"name": "held", "image": "registry.example/trainer:1",
               "resources": {"claims": [{"name": "c0"}]}}
    review = pod_review(ON, containers=[claimed, *(gpu_container(f"c{i}", "1")
                                                   for i in range(65))],
                        resourceClaims=[{"name": "c0", "resourceClaimTemplateName":
                                         "castslice-gpu-1"}])
    decision = decided(review, Policy(backend="dra")).decision
    assert (decision.outcome, decision.reason) == ("passed", "already-sliced")
    assert decision.warnings[-1].text == ("65 GPUs would need more than 64 claims; Pod left "
                                          "unchanged")


@pytest.mark.parametrize(("ladder", "instances"), [
    # NVIDIA mig-parted config-default.yaml (all-<profile>: N) and `nvidia-smi mig -lgip`
    ("1g.5gb,2g.10gb,3g.20gb,4g.20gb,7g.40gb", [7, 3, 2, 1, 1]),
    ("1g.10gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb", [7, 3, 2, 1, 1]),
    ("1g.20gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb", [4, 3, 2, 1, 1]),
    ("1g.24gb,2g.24gb,3g.47gb,4g.47gb,7g.94gb", [4, 3, 2, 1, 1]),
    ("1g.35gb,2g.35gb,3g.71gb,4g.71gb,7g.141gb", [4, 3, 2, 1, 1]),
    ("1g.6gb,2g.12gb,4g.24gb", [4, 2, 1]),
    ("1g.24gb,2g.48gb,4g.96gb", [4, 2, 1]),
])
def test_a_card_holds_as_many_instances_as_its_compute_and_memory_slices_allow(ladder,
                                                                              instances):
    profiles = parse_ladder(ladder)
    assert [instances_per_card(p, profiles) for p in profiles] == instances
    assert [memory_gb(p) for p in profiles] == [int(p.split(".")[1][:-2]) for p in profiles]


def test_a_card_holds_a_whole_number_of_instances():
    ladder = parse_ladder("1g.20gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb")
    assert all(type(instances_per_card(p, ladder)) is int for p in ladder)


def test_a_pod_whose_spec_is_no_object_has_no_gpu_under_dra():
    review = pod_review(ON)
    review["request"]["object"]["spec"] = "x"
    assert decided(review, Policy(backend="dra")).decision.reason == "no-gpu"


def test_a_four_slice_card_has_four_memory_slices():
    """A30 and RTX PRO 6000: 4 compute and 4 memory slices, so a profile of about a third of
    the card's memory takes one of them (not 3 of 8)."""
    ladder = parse_ladder("1g.7gb,4g.20gb")
    assert instances_per_card("1g.7gb", ladder) == 4
