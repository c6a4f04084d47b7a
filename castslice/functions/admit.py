"""The one pure function from AdmissionReview to its answer, and the one check of a review.

check_review() is the boundary: past it a review has a known apiVersion and a request with
a uid, so an answer can always be built. admit() is total past that boundary: whatever the
Pod holds, it returns an answer, the documented fallback if the decision itself failed.
"""

from typing import Any, NamedTuple, cast

from castslice.functions.decide import Decision, decide, failed
from castslice.functions.policy import Policy
from castslice.functions.response import build_response
from castslice.functions.reviews import API_VERSIONS, AdmissionReview, AdmissionReviewResponse


class InvalidReview(ValueError):
    """The body is not an AdmissionReview one can answer; the message says what is wrong."""


class Admission(NamedTuple):
    """The answer to send, and the decision behind it (for logs and metrics)."""

    decision: Decision
    response: AdmissionReviewResponse


def admit(review: AdmissionReview, policy: Policy) -> Admission:
    """Answer one checked review. Never raises: a failure inside the decision answers
    allowed and unchanged with a warning, and the Decision carries the error for the log."""
    try:
        decision = decide(review["request"], policy)
        return Admission(decision, build_response(review=review, decision=decision))
    except Exception as error:
        decision = failed(error)
        return Admission(decision, build_response(review=review, decision=decision))


def check_review(review: Any) -> AdmissionReview:
    """The review, once it has what an answer needs: a known apiVersion and a request uid.
    Raises InvalidReview naming the first thing missing."""
    if not isinstance(review, dict):
        raise InvalidReview("body must be a JSON object (an AdmissionReview)")
    if review.get("apiVersion") not in API_VERSIONS:
        raise InvalidReview(f"apiVersion must be one of {', '.join(API_VERSIONS)}")
    if review.get("kind") != "AdmissionReview":
        raise InvalidReview("kind must be AdmissionReview")
    request = review.get("request")
    if not isinstance(request, dict):
        raise InvalidReview("request is missing or not an object")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise InvalidReview("request.uid is missing or not a non-empty string")
    return cast(AdmissionReview, review)
