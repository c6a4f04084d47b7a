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
