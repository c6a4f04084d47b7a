"""Every recorded case in events/ replays to its expected answer (SPEC §6)."""

from pathlib import Path

import pytest

from castslice import events
from castslice.config import Config
from castslice.functions.admit import admit, check_review
from tests.kube import admitted_pod, assert_valid_pod

EVENTS = Path(__file__).parent.parent / "events"
CASES = events.load_cases(EVENTS)


def test_there_are_enough_cases_to_cover_the_spec():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_event_replays_to_its_expected_answer(case):
    actual = events.answer(case, {})
    assert actual == case.expected, events.diff(case.name, case.expected, actual)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_event_patch_yields_a_valid_pod(case):
    response = admit(check_review(case.request), Config.from_env(case.env).policy).response
    assert response["response"]["uid"] == case.request["request"]["uid"]
    pod = case.request["request"]["object"]
    if response["response"].get("patch") and pod.get("kind") == "Pod":
        assert_valid_pod(admitted_pod(case.request, response))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_event_file_is_written_in_canonical_form(case):
    assert case.path.read_text() == events.dumps(
        {"description": case.description, "env": dict(case.env), "request": case.request,
         "expected": case.expected})
    assert case.description, "every case says what it shows"
