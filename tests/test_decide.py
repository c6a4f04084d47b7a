"""The decision rules of SPEC §2, one behaviour per test."""

import dataclasses

import pytest

from castslice.functions.admit import InvalidReview, admit, check_review
from castslice.functions.policy import Policy
from castslice.functions.rules import parse_rules
from tests.kube import admitted_pod, assert_valid_pod, gpu_container, patch_of, pod_review

ON = {"castops.io/optimize": "true"}
CONFIG = Policy()


def answer(review, config=CONFIG):
    return admit(check_review(review), config).response


def shared(review, config=CONFIG, index=0):
    """The admitted Pod's first container resources, after the API server applied the patch."""
    pod = admitted_pod(review, answer(review, config))
    assert_valid_pod(pod)
    return pod["spec"]["containers"][index]["resources"]


def with_rules(text, **changes):
    config = dataclasses.replace(CONFIG, **changes)
    return dataclasses.replace(config, rules=parse_rules(text, config.presets, config.max_slices))


def test_opted_in_pod_gets_default_one_slice_in_limits_and_requests():
    resources = shared(pod_review(ON))
    assert resources["limits"] == {"cpu": "1", "nvidia.com/gpu-shared": "1"}
    assert resources["requests"] == {"cpu": "1", "nvidia.com/gpu-shared": "1"}


def test_slice_ratio_beats_workload_type():
    resources = shared(pod_review({**ON, "castops.io/slice-ratio": "8",
                                   "castops.io/workload-type": "training"}))
    assert resources["limits"]["nvidia.com/gpu-shared"] == "8"


@pytest.mark.parametrize(("kind", "slices"), [("training", "4"), ("inference", "2"),
                                              ("batch", "2"), ("dev", "1")])
def test_workload_type_presets(kind, slices):
    resources = shared(pod_review({**ON, "castops.io/workload-type": kind}))
    assert resources["requests"]["nvidia.com/gpu-shared"] == slices


@pytest.mark.parametrize(("changes", "why"), [
    ({}, "time-sliced units are not distinct GPUs"),
    ({"backend": "mig"}, "a CUDA process uses one MIG device"),
    ({"backend": "dra"}, "a CUDA process uses one MIG device"),
    ({"backend": "dra", "dra_devices": "shares", "slices_per_gpu": 8},
     "claims of shares may all be one GPU"),
])
def test_a_container_asking_several_gpus_leaves_the_pod_unchanged_in_every_back_end(changes,
                                                                                    why):
    review = pod_review({**ON, "castops.io/slice-ratio": "3"},
                        containers=[gpu_container("one", "1"), gpu_container("two", "2")])
    admission = admit(check_review(review), dataclasses.replace(CONFIG, **changes))
    assert admission.decision[:2] == ("passed", "multi-gpu")
    assert [w.kind for w in admission.decision.warnings] == ["multi-gpu"]
    assert admission.response["response"] == {
        "uid": review["request"]["uid"], "allowed": True,
        "warnings": [f"a container asks for 2 nvidia.com/gpu: {why}; Pod left unchanged"]}


def test_one_gpu_containers_each_get_their_slices():
    review = pod_review({**ON, "castops.io/slice-ratio": "3"},
                        containers=[gpu_container("main", "1"), gpu_container("side", "1")])
    assert shared(review, index=1)["limits"]["nvidia.com/gpu-shared"] == "3"
    assert admit(check_review(review), CONFIG).decision.granted == 6


def test_patch_names_the_escaped_json_pointer():
    ops = patch_of(answer(pod_review(ON)))
    assert ops[:2] == [
        {"op": "remove", "path": "/spec/containers/0/resources/limits/nvidia.com~1gpu"},
        {"op": "add", "path": "/spec/containers/0/resources/limits/nvidia.com~1gpu-shared",
         "value": "1"}]


def test_tilde_in_resource_names_is_escaped_before_slash():
    config = dataclasses.replace(CONFIG, source_resource="example.com/g~pu")
    review = pod_review(ON, containers=[gpu_container("main", "1", "example.com/g~pu")])
    assert patch_of(answer(review, config))[0]["path"].endswith("/example.com~1g~0pu")
    assert "example.com/g~pu" not in shared(review, config)["limits"]


def test_not_opted_in_pod_gets_no_patch_and_no_patch_type():
    response = answer(pod_review({"team": "vision"}))["response"]
    assert response == {"uid": "0b5e3c1e-0000-4000-8000-000000000001", "allowed": True}


@pytest.mark.parametrize("value", ["True", "yes", "1", "TRUE", ""])
def test_odd_optimize_value_is_absent_with_a_warning(value):
    response = answer(pod_review({"castops.io/optimize": value}))["response"]
    assert "patch" not in response
    assert response["warnings"] == [
        f'castops.io/optimize="{value}" ignored: only "true" or "false" count']


def test_annotation_false_beats_an_opting_in_rule():
    config = with_rules('[{"namespaces": ["ml"]}]')
    assert "patch" not in answer(pod_review({"castops.io/optimize": "false"}), config)["response"]
    assert "patch" in answer(pod_review({}), config)["response"]


def test_rule_ratio_applies_when_pod_opted_in_by_annotation():
    config = with_rules('[{"namespaces": ["ml"], "sliceRatio": 5, "optimize": false}]')
    assert shared(pod_review(ON), config)["limits"]["nvidia.com/gpu-shared"] == "5"


def test_rule_workload_type_uses_the_presets():
    config = with_rules('[{"matchLabels": {"app": "trainer"}, "workloadType": "training"}]')
    assert shared(pod_review(None), config)["limits"]["nvidia.com/gpu-shared"] == "4"


def test_default_slices_apply_when_nothing_else_decides():
    config = dataclasses.replace(CONFIG, default_slices=3)
    assert shared(pod_review(ON), config)["limits"]["nvidia.com/gpu-shared"] == "3"


@pytest.mark.parametrize("ratio", ["0", "-1", "1.5", "abc", " 2", "65", "02", "", "²", "1e1"])
def test_invalid_slice_ratio_warns_and_falls_to_the_next_level(ratio):
    review = pod_review({**ON, "castops.io/slice-ratio": ratio,
                         "castops.io/workload-type": "inference"})
    response = answer(review)["response"]
    (warning,) = response["warnings"]
    assert warning.startswith("castops.io/slice-ratio=") and "1 to 64" in warning
    assert shared(review)["limits"]["nvidia.com/gpu-shared"] == "2"


def test_unknown_workload_type_warns_with_the_allowed_names():
    response = answer(pod_review({**ON, "castops.io/workload-type": "gaming"}))["response"]
    assert response["warnings"] == [
        'castops.io/workload-type="gaming" ignored: use one of training, inference, batch, dev']
    assert "patch" in response


def test_deny_policy_refuses_invalid_values_with_400():
    config = dataclasses.replace(CONFIG, on_invalid="deny")
    response = answer(pod_review({**ON, "castops.io/slice-ratio": "abc"}), config)["response"]
    assert response["allowed"] is False and "patch" not in response
    assert response["status"] == {
        "code": 400, "status": "Failure", "reason": "BadRequest",
        "message": 'castops.io/slice-ratio="abc" is not valid: use a whole number from 1 to 64'}


def test_deny_policy_ignores_pods_that_did_not_opt_in():
    config = dataclasses.replace(CONFIG, on_invalid="deny")
    review = pod_review({"castops.io/optimize": "false", "castops.io/slice-ratio": "abc"})
    assert answer(review, config)["response"]["allowed"] is True


def test_warnings_never_exceed_120_characters():
    review = pod_review({**ON, "castops.io/slice-ratio": "x" * 500,
                         "castops.io/workload-type": "y" * 500},
                        containers=[gpu_container("c" * 63, "0.5")])
    config = dataclasses.replace(CONFIG, presets={f"preset-{i}": 1 for i in range(40)})
    warnings = answer(review, config)["response"]["warnings"]
    assert len(warnings) == 3 and all(len(w) <= 120 for w in warnings)


@pytest.mark.parametrize(("change", "reason"), [
    ({"operation": "UPDATE"}, "not-create"),
    ({"operation": "DELETE"}, "not-create"),
    ({"subResource": "status"}, "subresource"),
    ({"kind": {"group": "apps", "version": "v1", "kind": "Deployment"}}, "not-a-pod"),
    ({"kind": {"group": "", "version": "v1", "kind": "Service"}}, "not-a-pod"),
    ({"namespace": "kube-system"}, "excluded-namespace"),
    ({"object": None}, "no-object"),
])
def test_passes_through_untouched(change, reason):
    review = pod_review(ON)
    review["request"].update(change)
    admission = admit(check_review(review), CONFIG)
    assert admission.decision.reason == reason
    assert admission.response["response"] == {"uid": review["request"]["uid"], "allowed": True}


def test_already_sliced_pod_is_left_alone():
    review = pod_review(ON, containers=[gpu_container("main", "2", "nvidia.com/gpu-shared")])
    admission = admit(check_review(review), CONFIG)
    assert admission.decision.reason == "already-sliced"
    assert "patch" not in admission.response["response"]


def test_mutating_the_admitted_pod_again_changes_nothing():
    review = pod_review({**ON, "castops.io/workload-type": "training"})
    review["request"]["object"] = admitted_pod(review, answer(review))
    assert "patch" not in answer(review)["response"]


def test_container_with_source_and_target_is_left_alone_with_a_warning():
    both = gpu_container("both", "1")
    both["resources"]["limits"]["nvidia.com/gpu-shared"] = "1"
    both["resources"]["requests"]["nvidia.com/gpu-shared"] = "1"
    review = pod_review(ON, containers=[both, gpu_container("main", "1")])
    response = answer(review)["response"]
    assert response["warnings"] == ['container "both" has both nvidia.com/gpu and '
                                    'nvidia.com/gpu-shared in limits; left unchanged']
    assert all("/containers/1/" in op["path"] for op in patch_of(answer(review))[:-1])


@pytest.mark.parametrize("quantity", ["0", "500m", "1.5"])
def test_zero_or_fractional_quantity_is_left_alone(quantity):
    review = pod_review(ON, containers=[gpu_container("main", quantity)])
    assert "patch" not in answer(review)["response"]


def test_sliced_annotation_and_audit_annotation_explain_the_change():
    review = pod_review({**ON, "castops.io/workload-type": "training"})
    response = answer(review)["response"]
    text = ("nvidia.com/gpu x1 -> nvidia.com/gpu-shared x4 (4 per GPU by "
            "castops.io/workload-type=training; opted in by castops.io/optimize=true)")
    assert admitted_pod(review, answer(review))["metadata"]["annotations"][
        "castops.io/sliced"] == text
    assert response["auditAnnotations"] == {"sliced": text}


def test_missing_annotations_map_is_created():
    config = with_rules('[{"namespaces": ["ml"]}]')
    pod = admitted_pod(pod_review(None), answer(pod_review(None), config))
    assert list(pod["metadata"]["annotations"]) == ["castops.io/sliced"]


def test_v1beta1_is_answered_in_v1beta1():
    review = pod_review(ON, api_version="admission.k8s.io/v1beta1")
    assert answer(review)["apiVersion"] == "admission.k8s.io/v1beta1"


@pytest.mark.parametrize(("review", "message"), [
    ([], "must be a JSON object"),
    ({"kind": "AdmissionReview", "request": {"uid": "x"}}, "apiVersion must be one of"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "Pod", "request": {}}, "kind must be"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}, "request is missing"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}},
     "request.uid is missing"),
    ({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": 7}},
     "request.uid is missing"),
])
def test_reviews_without_what_an_answer_needs_are_refused(review, message):
    with pytest.raises(InvalidReview, match=message):
        check_review(review)


@pytest.mark.parametrize("garbage", [
    {"metadata": "x", "spec": {"containers": [{"name": "a"}]}},
    {"metadata": {"annotations": ["castops.io/optimize"]}, "spec": []},
    {"metadata": {"annotations": {"castops.io/optimize": True}}, "spec": {"containers": 3}},
    {"metadata": {"annotations": dict(ON)},
     "spec": {"containers": [None, 1, {"resources": 2}, {"resources": {"limits": []}}]}},
    {"metadata": {"annotations": {**ON, "castops.io/slice-ratio": 4}}, "spec": None},
])
def test_odd_objects_get_an_answer_not_an_exception(garbage):
    review = pod_review(ON)
    review["request"]["object"] = garbage
    assert answer(review)["response"]["allowed"] is True


def test_source_in_limits_and_target_in_requests_is_left_alone_with_a_warning():
    mixed = gpu_container("mixed", "1")
    del mixed["resources"]["requests"]["nvidia.com/gpu"]
    mixed["resources"]["requests"]["nvidia.com/gpu-shared"] = "1"
    response = answer(pod_review(ON, containers=[mixed]))["response"]
    assert "patch" not in response
    assert response["warnings"] == ['container "mixed" has both nvidia.com/gpu and '
                                    'nvidia.com/gpu-shared in its resources; left unchanged']


def test_workload_type_annotation_beats_a_rule_ratio():
    policy = with_rules('[{"namespaces": ["ml"], "sliceRatio": 8}]')
    review = pod_review({"castops.io/workload-type": "inference"})
    assert shared(review, policy)["limits"]["nvidia.com/gpu-shared"] == "2"


def test_sidecar_and_init_gpus_are_counted_as_the_scheduler_counts_them():
    review = pod_review(ON, containers=[gpu_container("main", "1")],
                        initContainers=[gpu_container("warmup", "1"),
                                        {**gpu_container("proxy", "1"), "restartPolicy": "Always"},
                                        gpu_container("late-init", "1")])
    decision = admit(check_review(review), CONFIG).decision
    # regular 1 + sidecar 1 = 2; warmup alone 1; late-init 1 beside the sidecar = 2: max 2
    assert decision.gpus == 2
    assert decision.message.startswith("nvidia.com/gpu x2 -> nvidia.com/gpu-shared x2 ")


def two_sidecars_before_a_plain_init_container():
    """A sidecar pair then an init container, each of one GPU, beside a main holding none:
    the init container runs beside both sidecars, so the scheduler reserves 1 + 1 + 1."""
    sidecars = [{**gpu_container(name, "1"), "restartPolicy": "Always"} for name in ("a", "b")]
    return pod_review(ON, containers=[{"name": "main", "image": "img:1"}],
                      initContainers=[*sidecars, gpu_container("late-init", "1")])


@pytest.mark.parametrize(("changes", "becomes"), [
    ({}, "nvidia.com/gpu-shared x3"),
    ({"backend": "mig"}, "nvidia.com/mig-1g.5gb x3"),
    ({"backend": "dra"}, "3 claims from template castslice-gpu-1"),
])
def test_two_gpu_sidecars_before_a_plain_init_container_count_three(changes, becomes):
    review = two_sidecars_before_a_plain_init_container()
    admission = admit(check_review(review), dataclasses.replace(CONFIG, **changes))
    text = f"nvidia.com/gpu x3 -> {becomes} (1 per GPU by default; opted in by "
    assert admission.decision.gpus == 3 and admission.decision.granted == 3
    assert admission.decision.message.startswith(text)
    assert admission.response["response"]["auditAnnotations"]["sliced"].startswith(text)
    pod = admitted_pod(review, admission.response)
    assert_valid_pod(pod)
    claims = pod["spec"].get("resourceClaims", [])
    assert len(claims) == (3 if changes.get("backend") == "dra" else 0)


@pytest.mark.parametrize(("init", "regular", "reserved"), [
    ([], [1, 2], 3),
    ([(4, False)], [1], 4),
    ([(2, True), (2, False)], [1], 4),  # the init container runs beside the sidecar: 2 + 2
    ([(2, True)], [1], 3),  # a sidecar adds to the regular containers
    ([(1, False), (1, True), (1, True)], [0], 2),
    ([(1, True), (1, True), (3, False)], [], 5),  # the plain init runs beside both sidecars
])
def test_scheduler_rule_for_init_and_sidecar_containers(init, regular, reserved):
    from castslice.functions.requests import scheduled

    assert scheduled(init, regular) == reserved


def test_a_container_name_of_any_depth_is_still_converted():
    review = pod_review(ON)
    deep: list = []
    for _ in range(5000):  # past the recursion limit of anything that walks it
        deep = [deep]
    review["request"]["object"]["spec"]["containers"][0]["name"] = deep
    assert admit(check_review(review), CONFIG).decision.outcome == "mutated"


def test_an_odd_optimize_value_still_warns_beside_an_invalid_annotation():
    config = with_rules('[{"namespaces": ["ml"]}]')
    decision = admit(check_review(pod_review({"castops.io/optimize": "yes",
                                              "castops.io/slice-ratio": "abc"})), config).decision
    assert decision.outcome == "mutated"
    assert [w.kind for w in decision.warnings] == ["optimize-value", "slice-ratio"]


def test_a_decision_that_fails_carries_its_error_for_the_log_line():
    broken = dataclasses.replace(CONFIG, rules=(object(),))  # no such rule can be matched
    admission = admit(check_review(pod_review(ON)), broken)
    assert admission.decision[:2] == ("error", "internal-error")
    assert isinstance(admission.decision.error, AttributeError)
    assert admission.response["response"] == {
        "uid": "0b5e3c1e-0000-4000-8000-000000000001", "allowed": True,
        "warnings": ["CastSlice could not process this Pod; admitted unchanged"]}


def test_a_slice_ratio_of_thousands_of_digits_is_an_invalid_annotation():
    decision = admit(check_review(pod_review({**ON, "castops.io/slice-ratio": "9" * 5000})),
                     CONFIG).decision
    assert decision.outcome == "mutated" and [w.kind for w in decision.warnings] == [
        "slice-ratio"]


def test_a_slice_ratio_equal_to_the_maximum_is_accepted():
    mig = dataclasses.replace(CONFIG, backend="mig", max_slices=7)
    decision = admit(check_review(pod_review({**ON, "castops.io/slice-ratio": "7"})),
                     mig).decision
    assert decision.message.startswith("nvidia.com/gpu x1 -> nvidia.com/mig-7g.40gb x1")
    assert decision.warnings == ()
