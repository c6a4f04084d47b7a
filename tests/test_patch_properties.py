"""Property tests: for any Pod, the patch applies, converts fully, and touches nothing else."""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castslice.functions.admit import admit, check_review
from castslice.functions.patch import CONTAINER_LISTS, pointer
from castslice.functions.policy import Policy
from tests.kube import admitted_pod, answer, assert_valid_pod, kube_quantity, patch_of

SOURCE, TARGET = "nvidia.com/gpu", "nvidia.com/gpu-shared"
WHOLE = st.sampled_from(["1", "2", "4", "8", "1e0", "2e0", "1k"]) | st.integers(1, 16)
ODD = st.sampled_from(["0", "500m", "1.5", "abc", "", " 1", "-1"])
ANNOTATION_VALUES = st.sampled_from(["true", "false", "True", "yes", "1", "8", "0", "training",
                                     "dev", "gaming", "abc", "64", "65"])
NAMES = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)


@st.composite
def containers(draw, whole_only):
    """A container; GPU counts equal in limits and requests, as the API server defaults them."""
    resources = {"limits": {"cpu": "1"}, "requests": {"cpu": "1"}}
    kind = draw(st.sampled_from(["source", "source", "target", "none", "limits-only"]))
    gpus = draw(WHOLE if whole_only else WHOLE | ODD)
    if kind in ("source", "limits-only"):
        resources["limits"][SOURCE] = gpus
        if kind == "source":
            resources["requests"][SOURCE] = gpus
    elif kind == "target":
        resources["limits"][TARGET] = resources["requests"][TARGET] = str(draw(st.integers(1, 9)))
    return {"name": draw(NAMES), "image": "img:1", "resources": resources}


@st.composite
def pods(draw, whole_only=False):
    annotations = draw(st.dictionaries(
        st.sampled_from(["castops.io/optimize", "castops.io/slice-ratio",
                         "castops.io/workload-type", "app.kubernetes.io/name"]),
        ANNOTATION_VALUES, max_size=4))
    spec = {"containers": draw(st.lists(containers(whole_only), min_size=1, max_size=4))}
    for name in ("initContainers", "ephemeralContainers"):
        if draw(st.booleans()):
            spec[name] = draw(st.lists(containers(whole_only), min_size=1, max_size=2))
    for list_name in CONTAINER_LISTS:  # Kubernetes needs unique container names
        for i, container in enumerate(spec.get(list_name, [])):
            container["name"] = f"{list_name.lower()}-{i}-{container['name']}"
    metadata = {"name": "p", "namespace": "ml"}
    if annotations or draw(st.booleans()):
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def review_of(pod):
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u", "kind": {"group": "", "version": "v1", "kind": "Pod"},
                        "operation": "CREATE", "namespace": "ml", "object": pod}}


def opted_in(pod):
    return pod["metadata"].get("annotations", {}).get("castops.io/optimize") == "true"


def all_containers(pod):
    return [c for name in CONTAINER_LISTS for c in pod["spec"].get(name, [])]


SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(pods())
def test_patch_always_applies_and_never_changes_the_input(pod):
    review = review_of(pod)
    before = copy.deepcopy(pod)
    admitted_pod(review, answer(review))  # raises if any op cannot apply
    assert pod == before


@SETTINGS
@given(pods())
def test_pod_not_opted_in_is_never_changed(pod):
    if opted_in(pod):
        return
    assert patch_of(answer(review_of(pod))) == []


@SETTINGS
@given(pods(whole_only=True))
def test_opted_in_pod_keeps_no_source_and_requests_equal_limits(pod):
    review = review_of(pod)
    admission = admit(check_review(review), Policy())
    after = admitted_pod(review, admission.response)
    if not opted_in(pod):
        return
    asked = [kube_quantity(str(c["resources"][s][SOURCE])) for c in all_containers(pod)
             for s in ("limits", "requests") if SOURCE in c.get("resources", {}).get(s, {})]
    if any(a > 1 for a in asked):  # several GPUs for one container: nothing may change
        assert after == pod and admission.decision.reason == "multi-gpu"
        return
    slices = admission.decision.slices
    for old, new in zip(all_containers(pod), all_containers(after), strict=True):
        limits, requests = new["resources"]["limits"], new["resources"]["requests"]
        assert SOURCE not in limits and SOURCE not in requests
        if TARGET in requests:
            assert requests[TARGET] == limits[TARGET]
        if SOURCE in old["resources"]["limits"]:
            asked = kube_quantity(str(old["resources"]["limits"][SOURCE]))  # independent oracle
            assert int(limits[TARGET]) == int(asked) * slices


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pods(whole_only=True))
def test_every_admitted_pod_passes_kubernetes_validation(pod):
    review = review_of(pod)
    pod["spec"].pop("ephemeralContainers", None)  # the Pod schema forbids resources there
    assert_valid_pod(admitted_pod(review, answer(review)))


@given(st.text(max_size=20))
def test_pointer_round_trips_any_key(key):
    escaped = pointer(key)[1:]
    assert escaped.replace("~1", "/").replace("~0", "~") == key
    assert "/" not in escaped
