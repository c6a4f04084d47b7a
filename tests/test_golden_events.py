"""Every recorded case replays to its expected answer (SPEC §6): those in events/ under the
defaults, and each cluster's under its own env file (deploy/clusters/<name>/events/)."""

from pathlib import Path

import pytest

from castslice.functions.admit import admit, check_review
from castslice.offline import events
from castslice.settings.config import Config
from castslice.settings.envfile import read_env_file
from tests.kube import admitted_pod, assert_valid_pod

ROOT = Path(__file__).parent.parent
EVENTS = ROOT / "events"
CLUSTERS = sorted((ROOT / "deploy" / "clusters").glob("*/events"))
BASES = {case.path: {} for case in events.load_cases(EVENTS)} | {
    case.path: read_env_file(directory.parent / "castslice.env")
    for directory in CLUSTERS for case in events.load_cases(directory)}
CASES = events.load_cases(EVENTS) + [c for d in CLUSTERS for c in events.load_cases(d)]
IDS = {"ids": lambda c: str(c.path.relative_to(ROOT))}


def test_there_are_enough_cases_to_cover_the_spec_and_each_cluster_has_its_own():
    assert len(events.load_cases(EVENTS)) >= 25
    assert CLUSTERS and all(events.load_cases(d) for d in CLUSTERS)


@pytest.mark.parametrize("case", CASES, **IDS)
def test_event_replays_to_its_expected_answer(case):
    actual = events.answer(case, BASES[case.path])
    assert actual == case.expected, events.diff(case.name, case.expected, actual)


@pytest.mark.parametrize("case", CASES, **IDS)
def test_event_patch_yields_a_valid_pod(case):
    policy = Config.from_env(BASES[case.path] | dict(case.env)).policy
    response = admit(check_review(case.request), policy).response
    assert response["response"]["uid"] == case.request["request"]["uid"]
    pod = case.request["request"]["object"]
    if response["response"].get("patch") and pod.get("kind") == "Pod":
        assert_valid_pod(admitted_pod(case.request, response))


@pytest.mark.parametrize("case", CASES, **IDS)
def test_event_file_is_written_in_canonical_form(case):
    assert case.path.read_text() == events.dumps(
        {"description": case.description, "env": dict(case.env), "request": case.request,
         "expected": case.expected})
    assert case.description, "every case says what it shows"


LABELS = {  # outcome, reason, warning kinds: the labels dashboards and alerts read
    "already-sliced-idempotent": ("passed", "already-sliced", ()),
    "annotation-false-beats-rule": ("passed", "opted-out", ()),
    "annotation-ratio-beats-rule-ratio": ("mutated", "mutated", ()),
    "custom-presets-and-target": ("mutated", "mutated", ()),
    "dra-inference-two-containers": ("mutated", "mutated", ()),
    "dra-mig-gfx-profile-template": ("mutated", "mutated", ()),
    "dra-init-sidecar-and-regular": ("mutated", "mutated", ()),
    "dra-keeps-pod-own-claims": ("mutated", "mutated", ()),
    "dra-second-pass-idempotent": ("passed", "already-sliced", ()),
    "dra-two-gpu-container-left-unchanged": ("passed", "multi-gpu", ("multi-gpu",)),
    "dry-run-still-answered": ("mutated", "mutated", ()),
    "excluded-namespace-kube-system": ("passed", "excluded-namespace", ()),
    "dra-mig-gpu-memory-10gi-template-3": ("mutated", "mutated", ()),
    "dra-shares-gpu-memory-20gi-two-shares": ("mutated", "mutated", ()),
    "extended-gpu-memory-two-of-eight-units": ("mutated", "mutated", ()),
    "extended-gpu-memory-without-card-memory-warns":
        ("passed", "no-memory-fit", ("no-memory-fit",)),
    "fractional-gpu-left-alone": ("passed", "no-gpu", ("left-unchanged",)),
    "invalid-gpu-memory-warns": ("mutated", "mutated", ("gpu-memory",)),
    "mig-gpu-memory-10gi-gets-3g-20gb": ("mutated", "mutated", ()),
    "mig-gpu-memory-past-largest-profile-left-unchanged":
        ("passed", "no-memory-fit", ("no-memory-fit",)),
    "rule-gpu-memory-mig": ("mutated", "mutated", ()),
    "init-and-ephemeral-containers": ("mutated", "mutated", ()),
    "invalid-slice-ratio-denied": ("denied", "invalid-annotation", ()),
    "invalid-slice-ratio-fraction-warns": ("mutated", "mutated", ("slice-ratio",)),
    "invalid-slice-ratio-over-max-warns": ("mutated", "mutated", ("slice-ratio",)),
    "invalid-slice-ratio-zero-warns": ("mutated", "mutated", ("slice-ratio",)),
    "invalid-workload-type-warns": ("mutated", "mutated", ("workload-type",)),
    "limits-only-source": ("mutated", "mutated", ()),
    "mig-h100-ladder-five-slices": ("mutated", "mutated", ()),
    "mig-second-pass-idempotent": ("passed", "already-sliced", ()),
    "mig-slices-past-largest-profile-left-unchanged":
        ("passed", "no-mig-profile", ("no-mig-profile",)),
    "mig-three-slices-round-up-to-3g": ("mutated", "mutated", ()),
    "mig-training-gets-4g-profile": ("mutated", "mutated", ()),
    "mig-rtx-pro-6000-inference-gets-2g-48gb-me": ("mutated", "mutated", ()),
    "mig-two-gpu-container-left-unchanged": ("passed", "multi-gpu", ("multi-gpu",)),
    "no-annotations-creates-map": ("mutated", "mutated", ()),
    "no-gpu-passes": ("passed", "no-gpu", ()),
    "not-a-pod-passes": ("passed", "not-a-pod", ()),
    "not-opted-in-passes": ("passed", "not-opted-in", ()),
    "optimize-capital-true-warns": ("passed", "not-opted-in", ("optimize-value",)),
    "optimize-default-one-slice": ("mutated", "mutated", ()),
    "optimize-false-passes": ("passed", "opted-out", ()),
    "optimize-inference-two-containers": ("mutated", "mutated", ()),
    "optimize-training-four-slices": ("mutated", "mutated", ()),
    "optimize-yes-warns-rule-decides": ("mutated", "mutated", ("optimize-value",)),
    "own-namespace-excluded": ("passed", "excluded-namespace", ()),
    "quantity-forms-and-zero": ("mutated", "mutated", ()),
    "rule-match-expressions-first-match-wins": ("mutated", "mutated", ()),
    "rule-namespace-glob-slice-ratio": ("mutated", "mutated", ()),
    "rule-opt-out-by-label": ("passed", "opted-out", ()),
    "slice-ratio-beats-workload-type": ("mutated", "mutated", ()),
    "source-and-target-conflict-warns": ("mutated", "mutated", ("left-unchanged",)),
    "subresource-passes": ("passed", "subresource", ()),
    "two-gpu-container-left-unchanged": ("passed", "multi-gpu", ("multi-gpu",)),
    "update-operation-passes": ("passed", "not-create", ()),
    "v1beta1-answered-in-kind": ("mutated", "mutated", ()),
    "research-namespace-opted-in-by-rule": ("mutated", "mutated", ()),
    "slice-ratio-past-eight-warns": ("mutated", "mutated", ("slice-ratio",)),
    "training-four-of-eight-shares": ("mutated", "mutated", ()),
}


@pytest.mark.parametrize("case", CASES, **IDS)
def test_event_counts_under_the_outcome_reason_and_warning_kinds_dashboards_read(case):
    policy = Config.from_env(BASES[case.path] | dict(case.env)).policy
    decision = admit(check_review(case.request), policy).decision
    assert (decision.outcome, decision.reason,
            tuple(w.kind for w in decision.warnings)) == LABELS[case.name]
