"""The AdmissionReview answer, in the apiVersion that was asked (SPEC §2)."""

import binascii

import orjson

from castslice.functions.annotations import AUDIT_KEY
from castslice.functions.decide import Decision
from castslice.functions.reviews import AdmissionResponse, AdmissionReview, AdmissionReviewResponse


def build_response(*, review: AdmissionReview, decision: Decision) -> AdmissionReviewResponse:
    """Allowed unless denied; patchType and patch only when something changes; apiVersion
    and uid echoed."""
    response: AdmissionResponse = {"uid": review["request"]["uid"],
                                   "allowed": decision.outcome != "denied"}
    if decision.outcome == "mutated":
        response["patchType"] = "JSONPatch"
        response["patch"] = binascii.b2a_base64(orjson.dumps(decision.patch),
                                                newline=False).decode("ascii")
        response["auditAnnotations"] = {AUDIT_KEY: decision.message}
    if decision.outcome == "denied":
        response["status"] = {"code": 400, "message": decision.message,
                              "status": "Failure", "reason": "BadRequest"}
    if decision.warnings:
        response["warnings"] = [w.text for w in decision.warnings]
    return {"apiVersion": review["apiVersion"], "kind": "AdmissionReview", "response": response}
