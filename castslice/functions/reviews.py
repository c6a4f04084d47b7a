"""The AdmissionReview wire format, in one place.

Shapes follow `admission.k8s.io/v1` (v1beta1 is identical on the fields used here):
https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request
"""

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

API_VERSIONS = ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")


class GroupVersionKind(TypedDict):
    group: str
    version: str
    kind: str


class GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


class AdmissionRequest(TypedDict):
    uid: str
    kind: GroupVersionKind
    resource: NotRequired[GroupVersionResource]
    operation: str
    namespace: NotRequired[str]
    name: NotRequired[str]
    subResource: NotRequired[str]
    dryRun: NotRequired[bool]
    object: NotRequired[dict[str, Any]]


class AdmissionReview(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    request: AdmissionRequest


class Status(TypedDict):
    code: int
    message: str
    status: Literal["Failure"]
    reason: str


class AdmissionResponse(TypedDict):
    uid: str
    allowed: bool
    patchType: NotRequired[Literal["JSONPatch"]]
    patch: NotRequired[str]
    warnings: NotRequired[list[str]]
    auditAnnotations: NotRequired[dict[str, str]]
    status: NotRequired[Status]


class AdmissionReviewResponse(TypedDict):
    apiVersion: str
    kind: Literal["AdmissionReview"]
    response: AdmissionResponse


def mapping(value: object) -> dict[str, Any]:
    """`value` if it is a JSON object, else {}: objects come from users, and any field may
    be missing, null or of the wrong type without that being an error of CastSlice's."""
    return value if isinstance(value, dict) else {}


def dry_run(request: AdmissionRequest) -> bool:
    """Whether the API server will persist nothing: such admissions are answered but never
    counted as conversions or captured. Only the boolean true counts, as the API server
    sends it."""
    return request.get("dryRun") is True


def metadata_of(obj: Mapping[str, Any]) -> dict[str, Any]:
    """An object's metadata, {} when absent or malformed."""
    return mapping(obj.get("metadata"))


class PatchOp(TypedDict):
    op: Literal["add", "remove"]
    path: str
    value: NotRequired[Any]
