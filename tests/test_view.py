"""The decision fields decoded alone (handler/view.py) decide exactly as the whole review."""

import random
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castslice.functions.admit import InvalidReview, admit, check_review
from castslice.functions.policy import Policy
from castslice.handler.view import decode_view
from castslice.offline import events
from castslice.settings.config import Config
from castslice.settings.envfile import read_env_file
from tests.hostile import check_answer, hostile_body

ROOT = Path(__file__).parent.parent
CASES = [(case, {}) for case in events.load_cases(ROOT / "events")] + [
    (case, read_env_file(d.parent / "castslice.env"))
    for d in sorted((ROOT / "deploy" / "clusters").glob("*/events"))
    for case in events.load_cases(d)]
POLICIES = [Policy(), Policy(backend="mig"), Policy(backend="dra")]


def answers(body: bytes, policy: Policy) -> tuple[object, object]:
    """(the whole review's answer, the view's answer); None where that side refuses."""
    def of(decoded: object) -> object:
        try:
            return admit(check_review(decoded), policy).response
        except InvalidReview as error:
            return f"400: {error}"
    try:
        whole = of(orjson.loads(body))
    except orjson.JSONDecodeError:
        whole = None
    view = decode_view(body)
    return whole, None if view is None else of(view)


@pytest.mark.parametrize("case,base", CASES, ids=lambda c: getattr(c, "name", ""))
def test_every_golden_event_is_answered_the_same_from_the_view(case, base):
    policy = Config.from_env(base | dict(case.env)).policy
    whole, view = answers(orjson.dumps(case.request), policy)
    assert view is not None, "a golden event falls back to the full parse"
    assert view == whole


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), policy=st.sampled_from(POLICIES))
def test_hostile_bodies_are_answered_the_same_or_fall_back_to_the_whole_review(rng, policy):
    body = hostile_body(rng)
    whole, view = answers(body, policy)
    if view is None or whole == view:
        return  # the transport parses all of it, as before; or both agree
    # only where orjson refuses the JSON itself (nesting past 255 or an integer past 64
    # bits, in a field the decision never reads): the view's answer must then be sound
    # for what it read (its patch applies to the view, requests stay equal to limits)
    assert whole is None, (whole, view)
    if not isinstance(view, str):
        check_answer(body, 200, orjson.dumps(view), "nvidia.com/gpu-shared")


def test_a_seeded_sample_of_hostile_bodies_mostly_takes_the_view():
    taken = sum(decode_view(hostile_body(random.Random(seed))) is not None
                for seed in range(300))
    assert taken > 150  # the fast path is the common path, not a rare one


@pytest.mark.parametrize("escape", [r"\ud800", r"\udc00", r"\uDBFF", r"\udc00\ud800",
                                    r"\ud800\u0041", r"\ud83d\ude00"])
@pytest.mark.parametrize("where", ["annotation", "skipped"])
def test_escaped_surrogates_are_judged_alike_by_the_view_and_the_whole_parse(escape, where):
    # the view is not guarded by a scan for "\ud" (11 µs per typical body): msgspec, like
    # orjson, refuses a lone surrogate wherever it is, read or skipped, and decodes a pair
    review = orjson.loads(orjson.dumps(CASES[0][0].request))
    value = f"x{escape}y"
    if where == "annotation":
        review["request"]["object"]["metadata"].setdefault("annotations", {})["note"] = "S"
    else:
        review["request"]["object"]["spec"]["hostname"] = "S"
    body = orjson.dumps(review).replace(b'"S"', f'"{value}"'.encode(), 1)
    whole, view = answers(body, Policy())
    if escape == r"\ud83d\ude00":
        assert view is not None and view == whole
    else:
        assert whole is None and view is None
