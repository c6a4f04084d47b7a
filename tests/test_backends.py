"""The mig and dra back-ends: what a converted container becomes, checked by Kubernetes'
own rules (schema, claim references, the scheduler's GPU count), never by the code's."""

import copy
import io
import re
from pathlib import Path

import jsonpatch
import kubernetes_validate
import orjson
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castslice.cli import main
from castslice.functions.admit import InvalidReview, admit, check_review
from castslice.functions.mig import parse_ladder
from castslice.functions.policy import Policy
from castslice.offline.events import readable
from tests.hostile import check_answer, hostile_body
from tests.kube import (
    K8S_VERSION,
    admitted_pod,
    answer,
    assert_valid_pod,
    gpu_container,
    patch_of,
    pod_review,
)
from tests.served import serve

MIG = Policy(backend="mig")
DRA = Policy(backend="dra")
ON = {"castops.io/optimize": "true"}
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# NVIDIA's A100-40GB ladder read off the MIG user guide: compute slices -> smallest profile
A100_40GB = {1: "1g.5gb", 2: "2g.10gb", 3: "3g.20gb", 4: "4g.20gb", 5: "7g.40gb",
             6: "7g.40gb", 7: "7g.40gb"}


def ratio(slices):
    return ON | {"castops.io/slice-ratio": str(slices)}


@pytest.mark.parametrize("slices", sorted(A100_40GB))
def test_mig_grants_the_smallest_profile_with_enough_compute_slices(slices):
    review = pod_review(ratio(slices), containers=[gpu_container("main", "1"),
                                                   gpu_container("side", "1")])
    response = answer(review, MIG)
    pod = admitted_pod(review, response)
    assert_valid_pod(pod)
    resource = f"nvidia.com/mig-{A100_40GB[slices]}"
    for container in pod["spec"]["containers"]:
        resources = container["resources"]
        assert resources["limits"] == resources["requests"] == {"cpu": "1", resource: "1"}


def test_mig_slices_past_the_largest_profile_leave_the_pod_with_a_warning():
    response = answer(pod_review(ratio(8)), MIG)["response"]
    assert "patch" not in response and response["allowed"] is True
    assert response["warnings"] == ["8 slices per GPU (castops.io/slice-ratio=8) is more than "
                                    "the largest MIG profile 7g.40gb; left unchanged"]


def test_mig_resource_prefix_and_ladder_come_from_the_configuration():
    policy = Policy(backend="mig", mig_profiles=("1g.18gb", "2g.35gb", "3g.71gb", "7g.141gb"),
                    mig_resource_prefix="example.com/mig-")
    pod = admitted_pod(review := pod_review(ratio(4)), answer(review, policy))
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "1", "example.com/mig-7g.141gb": "1"}


def test_mig_container_holding_a_profile_and_the_source_is_left_with_a_warning():
    mixed = gpu_container("mixed", "1")
    mixed["resources"]["limits"]["nvidia.com/mig-1g.5gb"] = "1"
    response = answer(pod_review(ON, containers=[mixed]), MIG)["response"]
    assert "patch" not in response
    assert response["warnings"] == ['container "mixed" has both nvidia.com/gpu and '
                                    'nvidia.com/mig-1g.5gb in limits; left unchanged']


@pytest.mark.parametrize("env,message", [
    ({"CASTSLICE_MIG_PROFILES": "2g.10gb,1g.5gb"}, "profiles must increase"),
    ({"CASTSLICE_MIG_PROFILES": "1g.5gb,1g.10gb"}, "profiles must increase"),
    ({"CASTSLICE_MIG_PROFILES": "1g.5gb,8g.80gb"}, "is not a MIG profile"),
    ({"CASTSLICE_MIG_PROFILES": "1g.5gb+mx"}, "is not a MIG profile"),
    ({"CASTSLICE_MIG_PROFILES": ","}, "is not a MIG profile"),
    ({"CASTSLICE_MIG_PROFILES": "1g.0gb"}, "is not a MIG profile"),
    ({"CASTSLICE_MIG_PROFILES": "1g.05gb"}, "is not a MIG profile"),
    ({"CASTSLICE_BACKEND": "dra", "CASTSLICE_DRA_DEVICES": "shares"}, "needs the shares"),
    ({"CASTSLICE_DRA_DEVICES": "slices"}, "allowed: mig, shares"),
    ({"CASTSLICE_BACKEND": "hami"}, "allowed: extended, mig, dra"),
    ({"CASTSLICE_MIG_RESOURCE_PREFIX": "mig-"}, "resource name prefix"),
    ({"CASTSLICE_DRA_TEMPLATE_PREFIX": "GPU_"}, "lowercase letters"),
    ({"CASTSLICE_SOURCE_RESOURCE": "nvidia.com/mig-1g.5gb"}, "equals CASTSLICE_SOURCE_RESOURCE"),
])
def test_a_bad_back_end_setting_stops_the_server_with_one_line(env, message, capsys):
    assert main(["serve"], env) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err, err


def test_dra_claims_replace_the_source_one_per_gpu():
    review = pod_review(ON | {"castops.io/workload-type": "training"},
                        containers=[gpu_container("a", "1"), gpu_container("b", "1"),
                                    gpu_container("c", "1")])
    response = answer(review, DRA)
    pod = admitted_pod(review, response)
    assert_valid_pod(pod)
    assert pod["spec"]["resourceClaims"] == [
        {"name": f"castslice-{i}", "resourceClaimTemplateName": "castslice-gpu-4"}
        for i in range(3)]
    assert [c["resources"] for c in pod["spec"]["containers"]] == [
        {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}, "claims": [{"name": f"castslice-{i}"}]}
        for i in range(3)]
    assert pod["metadata"]["annotations"]["castops.io/sliced"].startswith(
        "nvidia.com/gpu x3 -> 3 claims from template castslice-gpu-4 (4 per GPU")


@pytest.mark.parametrize(("policy", "largest"), [
    (DRA, "castslice-gpu-7"),
    (Policy(backend="dra", dra_devices="shares", slices_per_gpu=4), "castslice-gpu-4"),
])
def test_dra_slice_count_without_a_template_leaves_the_pod_with_a_warning(policy, largest):
    admission = admit(check_review(pod_review(ratio(8))), policy)
    assert admission.decision[:2] == ("passed", "no-template")
    assert admission.response["response"] == {
        "uid": "0b5e3c1e-0000-4000-8000-000000000001", "allowed": True,
        "warnings": [f"8 slices per GPU (castops.io/slice-ratio=8) has no ResourceClaimTemplate "
                     f"(largest {largest}); left unchanged"]}


def test_dra_shares_grant_the_slice_count_itself():
    policy = Policy(backend="dra", dra_devices="shares", slices_per_gpu=8)
    admission = admit(check_review(pod_review(ratio(5))), policy)
    assert admission.decision.granted == 5
    assert patch_of(admission.response)[-2]["value"] == [
        {"name": "castslice-0", "resourceClaimTemplateName": "castslice-gpu-5"}]


def test_dra_claim_names_do_not_depend_on_the_pod_name():
    named = pod_review(ON)
    named["request"]["object"]["metadata"]["name"] = "trainer-x7k2p"
    assert patch_of(answer(named, DRA)) == patch_of(answer(pod_review(ON), DRA))


def test_dra_leaves_ephemeral_containers_with_a_warning():
    review = pod_review(ON, ephemeralContainers=[gpu_container("debug", "1")])
    response = answer(review, DRA)
    assert response["response"]["warnings"] == [
        'ephemeral container "debug" may not hold resource claims; left unchanged']
    pod = admitted_pod(review, response)
    assert pod["spec"]["ephemeralContainers"][0] == gpu_container("debug", "1")
    assert pod["spec"]["resourceClaims"] == [
        {"name": "castslice-0", "resourceClaimTemplateName": "castslice-gpu-1"}]


@pytest.mark.parametrize("spec", [{"resourceClaims": {"name": "x"}},
                                  {"resourceClaims": "castslice-0"}])
def test_dra_pod_with_odd_claims_is_admitted_unchanged_with_a_warning(spec):
    response = answer(pod_review(ON, **spec), DRA)["response"]
    assert response["allowed"] is True and "patch" not in response
    assert response["warnings"] == ['container "main" left unchanged: spec.resourceClaims is '
                                    'not a list']


def scheduler_gpus(init, regular):
    """Kubernetes' PodRequests for one resource, written out here apart from the code:
    regular containers and sidecars add up; a plain init container needs its own count plus
    the sidecars started before it."""
    sidecars = peak = 0
    for gpus, sidecar in init:
        if sidecar:
            sidecars += gpus
        else:
            peak = max(peak, gpus + sidecars)
    return max(peak, sum(regular) + sidecars)


NAMES = st.sets(st.sampled_from(["castslice-0", "castslice-2", "gpu", "nic"]), max_size=3)


@st.composite
def dra_pods(draw):
    own = sorted(draw(NAMES))
    claims = [{"name": n, "resourceClaimTemplateName": f"user-{n}"} for n in own]

    def container(name, restart=None):
        gpus = draw(st.integers(0, 3))
        made = gpu_container(name, str(gpus)) if gpus else {"name": name, "image": "img:1"}
        if own and draw(st.booleans()):
            made.setdefault("resources", {})["claims"] = [{"name": draw(st.sampled_from(own))}]
        if restart:
            made["restartPolicy"] = restart
        return made, gpus

    init = [container(f"init-{i}", draw(st.sampled_from([None, "Always"])))
            for i in range(draw(st.integers(0, 3)))]
    regular = [container(f"main-{i}") for i in range(draw(st.integers(1, 3)))]
    spec = {"initContainers": [c for c, _ in init]} if init else {}
    if claims:
        spec["resourceClaims"] = claims
    review = pod_review(ratio(draw(st.integers(1, 7))), containers=[c for c, _ in regular],
                        **spec)
    expected = scheduler_gpus([(g, c.get("restartPolicy") == "Always") for c, g in init],
                              [g for _, g in regular])
    return review, expected, claims, max(g for _, g in init + regular)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dra_pods())
def test_dra_claims_follow_kubernetes_rules_and_number_the_scheduler_gpus(case):
    review, expected, own, most = case
    response = answer(review, DRA)
    if most > 1:  # a container asking several GPUs: no claims could promise them
        assert "patch" not in response["response"]
        assert any(w.startswith("a container asks for") for w in response["response"]["warnings"])
        return
    pod = admitted_pod(review, response)
    assert_valid_pod(pod)
    claims = pod["spec"].get("resourceClaims", [])
    names = [c["name"] for c in claims]
    assert len(names) == len(set(names)) and all(DNS_LABEL.fullmatch(n) for n in names)
    assert claims[:len(own)] == own  # the Pod's own claims stay, first and unchanged
    ours = claims[len(own):]
    assert len(ours) == expected
    assert all(c["resourceClaimTemplateName"].startswith("castslice-gpu-") for c in ours)
    for container in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]:
        held = [c["name"] for c in container.get("resources", {}).get("claims", [])]
        assert set(held) <= set(names) and len(held) == len(set(held))
        assert "nvidia.com/gpu" not in container.get("resources", {}).get("limits", {})
    again = copy.deepcopy(review)
    again["request"]["object"] = pod
    assert "patch" not in answer(again, DRA)["response"]  # a second admission changes nothing


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 7), st.integers(1, 4))
def test_mig_second_admission_changes_nothing(slices, containers):
    review = pod_review(ratio(slices), containers=[gpu_container(f"c{i}", "1")
                                                   for i in range(containers)])
    pod = admitted_pod(review, answer(review, MIG))
    again = copy.deepcopy(review)
    again["request"]["object"] = pod
    response = answer(again, MIG)["response"]
    assert "patch" not in response and "warnings" not in response


GOLDEN = Path(__file__).parent.parent / "events"


@pytest.mark.parametrize("backend,case", [("mig", "mig-three-slices-round-up-to-3g"),
                                          ("dra", "dra-init-sidecar-and-regular")])
def test_each_back_end_serves_captures_and_replays_like_extended(tmp_path, backend, case,
                                                                 capsys):
    golden = orjson.loads((GOLDEN / f"{case}.json").read_bytes())
    target = tmp_path / "captured"
    env = {"CASTSLICE_BACKEND": backend}
    with serve(tmp_path, env | {"CASTSLICE_CAPTURE": f"file://{target}"}, workers=1) as served:
        answered = readable(served.admit(golden["request"]))
        assert served.stop() == 0
    assert answered == golden["expected"]
    assert_valid_pod(jsonpatch.apply_patch(golden["request"]["request"]["object"],
                                           answered["response"]["patch"]))
    assert main(["replay", f"file://{target}"], {}) == 0  # under the recorded configuration
    assert main(["replay", f"file://{target}", "--current-env"], {}) == 1  # extended differs
    capsys.readouterr()


def test_mutate_previews_a_deployment_under_dra(capsys, monkeypatch):
    manifest = yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "llm", "namespace": "ml"},
        "spec": {"selector": {"matchLabels": {"app": "llm"}}, "template": {
            "metadata": {"labels": {"app": "llm"},
                         "annotations": {"castops.io/optimize": "true",
                                         "castops.io/workload-type": "inference"}},
            "spec": {"containers": [gpu_container("server", "1")]}}}})
    monkeypatch.setattr("sys.stdin", io.StringIO(manifest))
    assert main(["mutate", "-"], {"CASTSLICE_BACKEND": "dra"}) == 0
    deployment = yaml.safe_load(capsys.readouterr().out)
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    pod_spec = deployment["spec"]["template"]["spec"]
    assert pod_spec["resourceClaims"] == [{"name": "castslice-0",
                                           "resourceClaimTemplateName": "castslice-gpu-2"}]
    assert pod_spec["containers"][0]["resources"]["claims"] == [{"name": "castslice-0"}]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), backend=st.sampled_from(["mig", "dra"]))
def test_hostile_reviews_get_an_answer_that_applies_under_every_back_end(rng, backend):
    body = hostile_body(rng)
    try:
        review = check_review(orjson.loads(body))
    except (orjson.JSONDecodeError, InvalidReview):
        return  # the transport's 400, pinned through the server in test_hostile
    admission = admit(review, Policy(backend=backend))
    assert admission.decision.outcome != "error", admission.decision.error
    check_answer(body, 200, orjson.dumps(admission.response), "nvidia.com/mig-1g.5gb")


def test_dra_pod_needing_more_claims_than_the_cap_is_left_unchanged():
    review = pod_review(ON, containers=[gpu_container(f"c{i}", "1") for i in range(65)])
    response = answer(review, DRA)["response"]
    assert "patch" not in response
    assert response["warnings"] == ["65 GPUs would need more than 64 claims; Pod left "
                                    "unchanged"]


def test_dra_at_the_claim_cap_writes_every_claim():
    review = pod_review(ON, containers=[gpu_container(f"c{i}", "1") for i in range(64)])
    pod = admitted_pod(review, answer(review, DRA))
    assert_valid_pod(pod)
    assert len(pod["spec"]["resourceClaims"]) == 64


def test_a_second_dra_admission_is_already_sliced():
    review = pod_review(ON)
    again = copy.deepcopy(review)
    again["request"]["object"] = admitted_pod(review, answer(review, DRA))
    decision = admit(check_review(again), DRA).decision
    assert decision[:2] == ("passed", "already-sliced") and decision.warnings == ()


def test_a_container_with_the_source_and_a_castslice_claim_gets_the_has_both_warning():
    review = pod_review(ON)
    pod = admitted_pod(review, answer(review, DRA))
    pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] = "1"
    pod["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = "1"
    again = copy.deepcopy(review)
    again["request"]["object"] = pod
    response = answer(again, DRA)["response"]
    assert "patch" not in response  # no second claim for the same container
    assert response["warnings"] == ['container "main" has both nvidia.com/gpu and claim '
                                    '"castslice-0" in its resources; left unchanged']


def test_a_claim_from_a_template_of_someone_else_is_not_castslice_output():
    review = pod_review(ON, resourceClaims=[{"name": "nic",
                                             "resourceClaimTemplateName": "sriov-nic"}])
    review["request"]["object"]["spec"]["containers"][0]["resources"]["claims"] = [
        {"name": "nic"}]
    assert admit(check_review(review), DRA).decision.outcome == "mutated"


@pytest.mark.parametrize("ladder", ["1g.10gb+me,2g.20gb,7g.80gb", "1g.10gb.me,2g.20gb,7g.80gb"])
def test_me_profiles_are_granted_under_the_device_plugins_name(ladder):
    policy = Policy(backend="mig", mig_profiles=parse_ladder(ladder))
    pod = admitted_pod(review := pod_review(ratio(1)), answer(review, policy))
    assert_valid_pod(pod)
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {
        "cpu": "1", "nvidia.com/mig-1g.10gb.me": "1"}
