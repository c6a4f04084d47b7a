"""admit(review, config): the one pure function from AdmissionReview to its answer."""

from typing import Any, NamedTuple, cast

from castslice.config import Config
from castslice.functions.decide import Decision, decide
from castslice.functions.response import build_response
from castslice.functions.reviews import API_VERSIONS, AdmissionReview, AdmissionReviewResponse


class InvalidReview(ValueError):
    """The body is not an AdmissionReview one can answer; the message says what is wrong."""


class Admission(NamedTuple):
    """The answer to send, and the decision behind it (for logs and metrics)."""

    decision: Decision
    response: AdmissionReviewResponse


def admit(review: Any, config: Config) -> Admission:
    """Answer one AdmissionReview. Raises InvalidReview when there is nothing to answer."""
    checked = check_review(review)
    decision = decide(checked["request"], config)
    uid = checked["request"]["uid"]
    return Admission(decision, build_response(api_version=checked["apiVersion"], uid=uid,
                                              decision=decision))


def check_review(review: Any) -> AdmissionReview:
    """The review, once it has what an answer needs: a known apiVersion and a request uid."""
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
