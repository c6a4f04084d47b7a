"""Memory asks (`castops.io/gpu-memory`, a rule's `gpuMemory`): the smallest grant whose real
memory holds the ask, on every back-end, and nothing granted when nothing holds it."""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from castslice.functions.decide import decide
from castslice.functions.memory import (
    PROFILE_MEMORY,
    GiB,
    MiB,
    base,
    gib,
    memory_ask,
    quantity_text,
)
from castslice.functions.mig import parse_ladder
from castslice.functions.policy import Policy
from castslice.functions.rules import parse_rules
from castslice.settings.config import Config, ConfigError
from tests.kube import admitted_pod, answer, assert_valid_pod, gpu_container, pod_review

ON = {"castops.io/optimize": "true"}
MIG = Policy(backend="mig")
A100_80 = parse_ladder("1g.10gb,2g.20gb,3g.40gb,4g.40gb,7g.80gb")
H200 = parse_ladder("1g.18gb,2g.35gb,3g.71gb,4g.71gb,7g.141gb")
A30 = parse_ladder("1g.6gb,2g.12gb,4g.24gb")
RTX = parse_ladder("1g.24gb+gfx,2g.48gb-me,4g.96gb")
EXTENDED = Policy(gpu_memory=40 * GiB, slices_per_gpu=8, max_slices=8)
SHARES = Policy(backend="dra", dra_devices="shares", slices_per_gpu=8, gpu_memory=80 * GiB)


def decided(annotations, policy=MIG, **review):
    return decide(pod_review({**ON, **annotations}, **review)["request"], policy)


def limits(annotations, policy=MIG):
    review = pod_review({**ON, **annotations})
    pod = admitted_pod(review, answer(review, policy))
    assert_valid_pod(pod)
    return pod["spec"]["containers"][0]["resources"]["limits"]


def test_ten_gi_gets_3g_20gb_because_2g_10gb_really_holds_less():
    assert limits({"castops.io/gpu-memory": "10Gi"}) == {"cpu": "1", "nvidia.com/mig-3g.20gb": "1"}


def test_an_ask_of_exactly_a_profiles_real_memory_gets_that_profile():
    assert "nvidia.com/mig-2g.10gb" in limits({"castops.io/gpu-memory": "9856Mi"})
    assert "nvidia.com/mig-3g.20gb" in limits({"castops.io/gpu-memory": "9857Mi"})


def test_gpu_memory_beats_workload_type():
    decision = decided({"castops.io/gpu-memory": "4Gi", "castops.io/workload-type": "training"})
    assert (decision.slices, decision.profile) == (1, "1g.5gb")


def test_slice_ratio_beats_gpu_memory():
    decision = decided({"castops.io/gpu-memory": "30Gi", "castops.io/slice-ratio": "2"})
    assert (decision.slices, decision.profile, decision.memory) == (2, "2g.10gb", 0)


def test_the_sliced_record_says_what_the_grant_holds():
    decision = decided({"castops.io/gpu-memory": "10Gi"})
    assert decision.message == ("nvidia.com/gpu x1 -> nvidia.com/mig-3g.20gb x1 (3 per GPU by "
                                "castops.io/gpu-memory=10Gi (holds 19.5Gi); opted in by "
                                "castops.io/optimize=true)")
    assert decision.memory == 10 * GiB


def test_an_ask_past_the_largest_profile_passes_unchanged_with_its_own_warning():
    decision = decided({"castops.io/gpu-memory": "40Gi"})
    assert (decision.outcome, decision.reason, decision.patch) == ("passed", "no-memory-fit", ())
    assert [(w.kind, w.text) for w in decision.warnings] == [(
        "no-memory-fit", "castops.io/gpu-memory=40Gi: no MIG profile holds it (7g.40gb holds "
        "39.25Gi); left unchanged")]


def test_a_profile_of_unknown_memory_is_never_chosen_until_configured():
    rtx = dataclasses.replace(MIG, mig_profiles=RTX, max_slices=4)
    assert decided({"castops.io/gpu-memory": "40Gi"}, rtx).profile == "2g.48gb-me"
    assert decided({"castops.io/gpu-memory": "50Gi"}, rtx).reason == "no-memory-fit"
    known = dataclasses.replace(rtx, mig_memory={"4g.96gb": 94 * GiB})
    assert decided({"castops.io/gpu-memory": "50Gi"}, known).profile == "4g.96gb"


def test_profile_attributes_hold_their_profiles_memory():
    assert base("1g.24gb+gfx") == base("1g.24gb-me") == base("1g.24gb+me.all") == "1g.24gb"
    rtx = dataclasses.replace(MIG, mig_profiles=RTX, max_slices=4)
    assert limits({"castops.io/gpu-memory": "20Gi"}, rtx) == {
        "cpu": "1", "nvidia.com/mig-1g.24gb.gfx": "1"}


def test_configured_profile_memory_replaces_the_card_model():
    measured = dataclasses.replace(MIG, mig_memory={"2g.10gb": 10 * GiB})
    assert decided({"castops.io/gpu-memory": "10Gi"}, measured).profile == "2g.10gb"


def test_a_memory_ask_never_grants_past_max_slices():
    capped = dataclasses.replace(MIG, max_slices=4)
    decision = decided({"castops.io/gpu-memory": "30Gi"}, capped)
    assert decision.reason == "no-memory-fit"
    assert decision.warnings[0].text == ("castops.io/gpu-memory=30Gi: 7g.40gb is 7 slices, above "
                                         "CASTSLICE_MAX_SLICES=4; left unchanged")


def test_extended_grants_the_fewest_units_of_the_card_that_hold_the_ask():
    assert limits({"castops.io/gpu-memory": "5Gi"}, EXTENDED)["nvidia.com/gpu-shared"] == "1"
    assert limits({"castops.io/gpu-memory": "5121Mi"}, EXTENDED)["nvidia.com/gpu-shared"] == "2"
    assert limits({"castops.io/gpu-memory": "40Gi"}, EXTENDED)["nvidia.com/gpu-shared"] == "8"
    assert decided({"castops.io/gpu-memory": "41Gi"}, EXTENDED).warnings[0].text == (
        "castops.io/gpu-memory=41Gi: more than a whole card (40Gi); left unchanged")


def test_extended_grants_of_one_unit_pass_asks_that_need_more():
    one = dataclasses.replace(EXTENDED, max_slices=1)
    assert decided({"castops.io/gpu-memory": "5Gi"}, one).slices == 1
    assert decided({"castops.io/gpu-memory": "6Gi"}, one).warnings[0].text == (
        "castops.io/gpu-memory=6Gi: 2 of 8 units, above CASTSLICE_MAX_SLICES=1; left unchanged")


def test_extended_without_card_memory_cannot_size_an_ask():
    decision = decided({"castops.io/gpu-memory": "5Gi"}, Policy(slices_per_gpu=8))
    assert (decision.outcome, decision.patch) == ("passed", ())
    assert decision.warnings[0].text == ("castops.io/gpu-memory=5Gi: set CASTSLICE_GPU_MEMORY "
                                         "and CASTSLICE_SLICES_PER_GPU; left unchanged")


def test_dra_shares_claim_the_template_of_the_shares_that_hold_the_ask():
    review = pod_review({**ON, "castops.io/gpu-memory": "25Gi"})
    pod = admitted_pod(review, answer(review, SHARES))
    assert_valid_pod(pod)
    assert pod["spec"]["resourceClaims"] == [
        {"name": "castslice-0", "resourceClaimTemplateName": "castslice-gpu-3"}]


def test_dra_mig_templates_follow_the_profile_that_holds_the_ask():
    decision = decided({"castops.io/gpu-memory": "10Gi"}, Policy(backend="dra"))
    assert (decision.slices, decision.profile) == (3, "3g.20gb")
    assert "castslice-gpu-3" in decision.message


@pytest.mark.parametrize("value", ["10 GB", "ten", "0", "-1Gi", "", " 10Gi", "1.5.1Gi"])
def test_an_invalid_quantity_is_ignored_with_a_warning_and_resolution_falls_through(value):
    decision = decided({"castops.io/gpu-memory": value, "castops.io/workload-type": "inference"})
    assert (decision.outcome, decision.slices, decision.memory) == ("mutated", 2, 0)
    assert [w.kind for w in decision.warnings] == ["gpu-memory"]
    assert decision.warnings[0].text.endswith("ignored: use a memory quantity above 0, e.g. "
                                              "10Gi or 512Mi")


def test_an_invalid_quantity_is_denied_under_on_invalid_deny():
    deny = dataclasses.replace(MIG, on_invalid="deny")
    response = answer(pod_review({**ON, "castops.io/gpu-memory": "lots"}), deny)["response"]
    assert response["allowed"] is False
    assert response["status"]["code"] == 400
    assert response["status"]["message"] == ('castops.io/gpu-memory="lots" is not valid: use a '
                                             "memory quantity above 0, e.g. 10Gi or 512Mi")


def test_a_rule_gpu_memory_decides_after_the_pods_annotations():
    text = '[{"name": "big", "namespaces": ["ml"], "gpuMemory": "15Gi"}]'
    policy = dataclasses.replace(MIG, rules=parse_rules(text, MIG.presets, MIG.max_slices))
    assert decided({}, policy).message.endswith(
        "(3 per GPU by rule big gpuMemory=15Gi (holds 19.5Gi); opted in by "
        "castops.io/optimize=true)")
    assert decided({"castops.io/workload-type": "dev"}, policy).profile == "1g.5gb"


def test_a_rule_gpu_memory_reads_back_as_written():
    rule = parse_rules('[{"gpuMemory": "1.5Gi"}]', {}, 64)[0]
    assert rule.gpu_memory == 1536 * MiB
    assert rule.as_dict()["gpuMemory"] == "1536Mi"
    assert parse_rules(f'[{{"gpuMemory": "{rule.as_dict()["gpuMemory"]}"}}]', {}, 64)[0] == rule


def test_a_gpu_memory_rule_no_grant_holds_stops_the_start():
    rule = '[{"name": "big", "gpuMemory": "48Gi"}]'
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"CASTSLICE_BACKEND": "mig", "CASTSLICE_RULES": rule})
    assert caught.value.problems == [
        f"CASTSLICE_RULES={rule!r}: gpuMemory of rule big: no MIG profile holds it (7g.40gb "
        "holds 39.25Gi)"]
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"CASTSLICE_RULES": rule})
    assert caught.value.problems == [
        "CASTSLICE_GPU_MEMORY='': gpuMemory of rule big: set CASTSLICE_GPU_MEMORY and "
        "CASTSLICE_SLICES_PER_GPU"]


@pytest.mark.parametrize(("env", "problem"), [
    ({"CASTSLICE_GPU_MEMORY": "80 GB"}, "CASTSLICE_GPU_MEMORY='80 GB': allowed: a memory "
     "quantity above 0, e.g. 80Gi or 81559Mi (nvidia-smi --query-gpu=memory.total)"),
    ({"CASTSLICE_GPU_MEMORY": "0"}, "CASTSLICE_GPU_MEMORY='0': allowed: a memory quantity"),
    ({"CASTSLICE_MIG_MEMORY": "2g.12gb=11Gi"}, "CASTSLICE_MIG_MEMORY='2g.12gb=11Gi': entry "
     "'2g.12gb=11Gi' is not profile=memory for a profile of CASTSLICE_MIG_PROFILES (e.g. "
     "2g.10gb=9856Mi)"),
    ({"CASTSLICE_MIG_MEMORY": "2g.10gb"}, "CASTSLICE_MIG_MEMORY='2g.10gb': entry '2g.10gb' is "
     "not profile=memory"),
    ({"CASTSLICE_MIG_MEMORY": "2g.10gb=-1"}, "CASTSLICE_MIG_MEMORY='2g.10gb=-1': entry "
     "'2g.10gb=-1' is not profile=memory"),
])
def test_broken_memory_settings_stop_the_start_naming_the_variable(env, problem):
    with pytest.raises(ConfigError) as caught:
        Config.from_env(env)
    assert len(caught.value.problems) == 1 and caught.value.problems[0].startswith(problem)


def test_memory_settings_round_trip_through_the_environment():
    config = Config.from_env({"CASTSLICE_GPU_MEMORY": "81559Mi",
                              "CASTSLICE_MIG_MEMORY": "2g.10gb=9984Mi, 7g.40gb+me=39.5Gi",
                              "CASTSLICE_RULES": '[{"gpuMemory": "3Gi"}]',
                              "CASTSLICE_SLICES_PER_GPU": "8"})
    assert config.policy.gpu_memory == 81559 * MiB
    assert dict(config.policy.mig_memory) == {"2g.10gb": 9984 * MiB, "7g.40gb": 39.5 * GiB}
    assert Config.from_env(config.as_env()) == config


def test_the_card_models_profiles_hold_less_than_their_names():
    for profile, size in PROFILE_MEMORY.items():
        named = int(profile.split(".")[1].removesuffix("gb"))
        assert 0.8 * named * GiB < size < named * GiB, profile


def test_memory_asks_are_whole_bytes_rounded_up():
    assert (memory_ask("1.5Gi"), memory_ask("0.5"), memory_ask("10m"), memory_ask(1)) == (
        1536 * MiB, 1, 1, 1)
    assert [memory_ask(v) for v in ("0", "-1Gi", "1 Gi", True, 1.5, None)] == [None] * 6


def test_memory_reads_for_people():
    assert (gib(9856 * MiB), gib(40 * GiB), quantity_text(10 * GiB),
            quantity_text(1536 * MiB), quantity_text(1500)) == ("9.62Gi", "40Gi", "10Gi",
                                                                "1536Mi", "1500")


LADDERS = st.sampled_from([MIG.mig_profiles, A100_80, H200, A30])
UNIT_POLICIES = st.builds(lambda card, units, cap, backend: Policy(
    backend=backend, dra_devices="shares", gpu_memory=card * MiB, slices_per_gpu=units,
    max_slices=cap), st.integers(1024, 200_000), st.integers(1, 64), st.integers(1, 64),
    st.sampled_from(["extended", "dra"]))
POLICIES = LADDERS.map(lambda ladder: Policy(backend="mig", mig_profiles=ladder)) | UNIT_POLICIES
ASKS = st.integers(min_value=1, max_value=160 * GiB)
"""Whole bytes: memory_ask rounds every quantity up to them."""


@settings(max_examples=500, deadline=None)
@given(POLICIES, ASKS, ASKS)
def test_a_larger_ask_never_gets_a_smaller_grant(policy, one, other):
    small, large = sorted((one, other))
    before, after = policy.memory_grant(small), policy.memory_grant(large)
    if not after.unfit:
        assert not before.unfit and before.slices <= after.slices
        assert before.holds <= after.holds


@settings(max_examples=500, deadline=None)
@given(POLICIES, ASKS)
def test_the_grant_always_holds_the_ask_and_one_less_would_not(policy, ask):
    grant = policy.memory_grant(ask)
    if grant.unfit:
        return
    assert grant.holds >= ask
    assert 1 <= grant.slices <= policy.max_slices
    if policy.mig_devices:
        smaller = [p for p in policy.mig_profiles if int(p[0]) < grant.slices]
        assert all(policy.profile_memory[base(p)] < ask for p in smaller)
    else:
        assert policy.gpu_memory * (grant.slices - 1) / policy.slices_per_gpu < ask


@settings(max_examples=300, deadline=None)
@given(POLICIES, ASKS)
def test_a_converted_pods_grant_holds_its_ask_as_the_api_server_stores_it(policy, ask):
    review = pod_review({**ON, "castops.io/gpu-memory": quantity_text(ask)},
                        containers=[gpu_container("main", "1")])
    decision = decide(review["request"], policy)
    if decision.outcome == "mutated":
        assert decision.memory >= ask
        assert_valid_pod(admitted_pod(review, answer(review, policy)))
    else:
        assert (decision.reason, decision.warnings[-1].kind) == ("no-memory-fit", "no-memory-fit")


def test_a_profile_name_several_cards_share_is_granted_by_the_smallest_of_theirs():
    """1g.10gb holds 9728 MiB on an A100-80GB (nvidia-smi mig -lgip, HAMi PR #1847), less
    than the A100-40GB's 9856; 1g.24gb holds 20.00 GiB on a GB200 (gpu-operator#1303), less
    than the H100 NVL's 21.62 and the RTX PRO 6000's 23.12."""
    a100_80 = Policy(backend="mig", mig_profiles=A100_80)
    assert decided({"castops.io/gpu-memory": "9800Mi"}, a100_80).profile == "2g.20gb"
    assert decided({"castops.io/gpu-memory": "9728Mi"}, a100_80).profile == "1g.10gb"
    gb200 = Policy(backend="mig", mig_profiles=parse_ladder("1g.24gb,2g.47gb,7g.186gb"))
    assert decided({"castops.io/gpu-memory": "21Gi"}, gb200).reason == "no-memory-fit"
    assert decided({"castops.io/gpu-memory": "20Gi"}, gb200).profile == "1g.24gb"


def test_under_time_slicing_the_annotation_says_what_the_ask_was_matched_against():
    decision = decided({"castops.io/gpu-memory": "10Gi"}, EXTENDED)
    assert "(2 of 8 units of 40Gi: 10Gi, enforced only under MPS)" in decision.message
    assert "(holds" in decided({"castops.io/gpu-memory": "10Gi"}).message


@pytest.mark.parametrize(("size", "text"), [(2**40, "1Ti"), (3 * 2**40, "3Ti"), (GiB, "1Gi"),
                                             (3 * 1024, "3Ki"), (5 * MiB, "5Mi"), (1023, "1023")])
def test_whole_bytes_read_as_the_largest_exact_unit(size, text):
    assert quantity_text(size) == text


def test_a_long_memory_value_is_named_cut_in_the_annotation():
    from castslice.functions.resolve import shown_memory

    assert shown_memory("1" * 24) == "1" * 24
    assert shown_memory("1" * 25) == "1" * 21 + "..."


def test_a_ladder_of_unknown_memory_says_so():
    ladder = parse_ladder("1g.9gb,7g.77gb")
    decision = decided({"castops.io/gpu-memory": "1Gi"}, Policy(backend="mig", mig_profiles=ladder))
    assert decision.warnings[-1].text == ("castops.io/gpu-memory=1Gi: no MIG profile holds it "
                                          "(no profile's is known); left unchanged")
