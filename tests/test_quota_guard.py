"""The quota guard's word, read by the decision (functions/quota.py): a Pod is left whole, or
refused on request, where a quota the guard listed would not count what it converts to, as
Kubernetes counts each back-end's output. On a real API server: test_apiserver_quota_guard."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from castslice.functions.decide import decide
from castslice.functions.policy import Policy
from castslice.functions.quota import counted_as, escaping_quota
from tests.kube import pod_review

GUARD = "castops.io/quota-guard"
ON = {"castops.io/optimize": "true"}


DEFAULT = Policy()


def decided(guard: str, policy: Policy = DEFAULT, **annotations: str):
    return decide(pod_review({**ON, GUARD: guard, **annotations})["request"], policy)


def test_a_quota_counting_only_whole_gpus_leaves_the_pod_whole_with_a_warning():
    decision = decided("gpu=requests.nvidia.com/gpu")
    assert (decision.outcome, decision.reason, decision.patch) == ("passed", "quota-guard", ())
    assert [w.text for w in decision.warnings] == [
        "ResourceQuota gpu limits nvidia.com/gpu and would not count this Pod converted; left "
        "whole (see castslice quotas)"]


def test_a_quota_that_counts_the_target_converts():
    assert decided("gpu=requests.nvidia.com/gpu|requests.nvidia.com/gpu-shared").outcome == (
        "mutated")


def test_one_quota_of_several_not_counting_is_enough_to_leave_it_whole():
    guard = "a=requests.nvidia.com/gpu|requests.nvidia.com/gpu-shared;b=requests.nvidia.com/gpu"
    assert decided(guard).reason == "quota-guard"


def test_the_guard_refuses_under_on_quota_escape_deny():
    decision = decided("gpu=requests.nvidia.com/gpu", Policy(on_quota_escape="deny"))
    assert (decision.outcome, decision.reason) == ("denied", "quota-guard")
    assert decision.message.startswith("ResourceQuota gpu limits nvidia.com/gpu")


def test_other_reasons_to_pass_come_before_the_guard():
    decision = decide(pod_review({"castops.io/optimize": "false", GUARD: "gpu="})["request"],
                      Policy())
    assert decision.reason == "opted-out"
    assert decided("gpu=", Policy(), **{"castops.io/slice-ratio": "99"}).reason == "quota-guard"
    too_many = decided("gpu=", Policy(backend="mig"), **{"castops.io/slice-ratio": "9"})
    assert too_many.reason == "no-mig-profile"


@pytest.mark.parametrize(("policy", "slices", "keys"), [
    (Policy(), 2, {"requests.nvidia.com/gpu-shared"}),
    (Policy(backend="mig"), 3, {"requests.nvidia.com/mig-3g.20gb"}),
    (Policy(backend="mig"), 9, {"requests.nvidia.com/mig-7g.40gb"}),
    (Policy(backend="dra"), 1, {"mig.nvidia.com.deviceclass.resource.k8s.io/devices"}),
    (Policy(backend="dra", dra_devices="shares", slices_per_gpu=4), 1,
     {"gpu.nvidia.com.deviceclass.resource.k8s.io/devices", "requests.nvidia.com/gpu"}),
])
def test_each_back_end_is_counted_as_kubernetes_counts_it(policy, slices, keys):
    assert counted_as(policy, slices) == keys


def test_under_dra_shares_a_gpu_quota_counts_claims_through_the_classs_extended_resource():
    """NVIDIA's chart gives gpu.nvidia.com extendedResourceName nvidia.com/gpu: the claim is
    charged requests.nvidia.com/gpu, so nothing escapes and the Pod converts."""
    policy = Policy(backend="dra", dra_devices="shares", slices_per_gpu=4)
    assert escaping_quota({GUARD: "gpu=requests.nvidia.com/gpu"}, policy, 1) is None


@given(st.text(max_size=60))
def test_any_guard_text_is_read_without_error_and_an_entry_without_keys_escapes(text):
    found = escaping_quota({GUARD: text}, Policy(), 1)
    assert found is None or isinstance(found, str)
    if text and "requests.nvidia.com/gpu-shared" not in text:
        assert found is not None


def test_a_refusal_keeps_the_warnings_said_before_it():
    decision = decided("gpu=requests.nvidia.com/gpu", Policy(on_quota_escape="deny"),
                       **{"castops.io/optimize": "yes"})
    assert decision.outcome == "passed"  # "yes" does not opt in: nothing to refuse
    review = pod_review({"castops.io/optimize": "true", GUARD: "gpu=requests.nvidia.com/gpu",
                         "castops.io/slice-ratio": "abc"})["request"]
    refused = decide(review, Policy(on_quota_escape="deny"))
    assert (refused.outcome, [w.kind for w in refused.warnings]) == ("denied", ["slice-ratio"])
    left = decide(review, Policy())
    assert [w.kind for w in left.warnings] == ["slice-ratio", "quota-guard"]


def test_under_mig_the_guard_reads_the_profile_the_pod_would_get():
    """A quota counting 1g.5gb lets a one-slice Pod convert and leaves a three-slice one
    whole: the counted key is the profile's, from the Pod's own slice count."""
    guard = "gpu=requests.nvidia.com/gpu|requests.nvidia.com/mig-1g.5gb"
    mig = Policy(backend="mig")
    assert decided(guard, mig, **{"castops.io/slice-ratio": "1"}).outcome == "mutated"
    assert decided(guard, mig, **{"castops.io/slice-ratio": "3"}).reason == "quota-guard"


def test_each_quota_the_guard_lists_is_read_on_its_own():
    two = "a=requests.nvidia.com/gpu-shared;b=requests.nvidia.com/gpu"
    assert escaping_quota({GUARD: two}, Policy(), 1) == "b"
    assert escaping_quota({GUARD: ""}, Policy(), 1) is None


def test_a_pod_left_whole_by_the_guard_keeps_its_slice_count_for_the_log():
    assert decided("gpu=requests.nvidia.com/gpu",
                   **{"castops.io/workload-type": "inference"}).slices == 2
