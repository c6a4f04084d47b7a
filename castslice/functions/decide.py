"""decide(request, policy) -> Decision: the whole admission rule set (SPEC §2).

Skips come first and name their reason, so a log line or metric says why a Pod was left
alone without anyone re-reading this file.
"""

from typing import Any, Literal, NamedTuple

from castslice.functions import resolve
from castslice.functions.patch import Conversion, annotate, rewrite_resources
from castslice.functions.policy import Policy
from castslice.functions.quantity import scaled
from castslice.functions.reviews import AdmissionRequest, PatchOp, mapping, metadata_of
from castslice.functions.rules import first_match

Outcome = Literal["mutated", "passed", "denied", "error"]
"""One vocabulary from the decision to the metrics and the log lines."""


class AdmissionWarning(NamedTuple):
    """A warning for the client, with a kind for metrics."""

    kind: str
    text: str


class Decision(NamedTuple):
    """What to answer and why: the reason travels with the outcome, and the facts of a
    conversion travel as numbers, not as the castops.io/sliced text."""

    outcome: Outcome
    reason: str
    patch: tuple[PatchOp, ...] = ()
    warnings: tuple[AdmissionWarning, ...] = ()
    slices: int | None = None
    conversions: tuple[Conversion, ...] = ()
    gpus: int = 0
    """Whole GPUs the scheduler would have reserved for the converted containers."""
    message: str = ""
    """For a mutation, the castops.io/sliced text; for a denial, the status message."""
    error: BaseException | None = None
    """For the outcome error: what failed, for the log."""

    @property
    def granted(self) -> int:
        """Target units the scheduler reserves instead of `gpus` whole GPUs."""
        return scaled(self.gpus, self.slices or 0)


FAILED_WARNING = AdmissionWarning(
    "internal-error", "CastSlice could not process this Pod; admitted unchanged")


def failed(error: BaseException) -> Decision:
    """The documented fallback: allowed, unchanged, with a warning (failurePolicy Ignore
    would admit the Pod unchanged anyway; this says so to the user)."""
    return Decision("error", "internal-error", warnings=(FAILED_WARNING,), error=error)


def decide(request: AdmissionRequest, policy: Policy) -> Decision:
    """Decide one admission. Pure: same request and policy, same Decision."""
    skip = _pass_through(request, policy)
    if skip:
        return Decision("passed", skip)
    pod: dict[str, Any] = request["object"]
    metadata = metadata_of(pod)
    annotations = mapping(metadata.get("annotations"))
    rule = first_match(policy.rules, _namespace(request), mapping(metadata.get("labels")))
    odd = resolve.odd_optimize(annotations)
    warnings: tuple[AdmissionWarning, ...] = (
        (AdmissionWarning("optimize-value", odd),) if odd else ())
    opted, by = resolve.opt_in(annotations, rule)
    if not opted:
        return Decision("passed", "not-opted-in" if opted is None else "opted-out",
                        warnings=warnings)
    choice, invalid = resolve.slices(annotations, rule, policy)
    if invalid and policy.on_invalid == "deny":
        return Decision("denied", "invalid-annotation", warnings=warnings,
                        message="; ".join(i.denial() for i in invalid))
    warnings += tuple(AdmissionWarning(i.annotation.split("/")[-1], i.warning()) for i in invalid)
    rewrite = rewrite_resources(pod, policy.source_resource, policy.target_resource,
                                choice.value)
    warnings += tuple(AdmissionWarning("left-unchanged", w) for w in rewrite.warnings)
    if not rewrite.ops:
        reason = "already-sliced" if rewrite.already_sliced else "no-gpu"
        return Decision("passed", reason, warnings=warnings, slices=choice.value)
    gpus = rewrite.scheduled_gpus()
    message = (f"{policy.source_resource} x{gpus} -> {policy.target_resource} "
               f"x{scaled(gpus, choice.value)} ({choice.value} per GPU by {choice.by}; "
               f"opted in by {by})")
    return Decision("mutated", "mutated", (*rewrite.ops, annotate(pod, message)), warnings,
                    choice.value, rewrite.conversions, gpus, message)


def _pass_through(request: AdmissionRequest, policy: Policy) -> str | None:
    """The reason to leave this request alone before looking inside the Pod, if any."""
    kind = request.get("kind")
    if not isinstance(kind, dict) or (kind.get("group"), kind.get("version"),
                                      kind.get("kind")) != ("", "v1", "Pod"):
        return "not-a-pod"
    if request.get("subResource"):
        return "subresource"
    if request.get("operation") != "CREATE":
        return "not-create"
    if _namespace(request) in policy.exclude_namespaces:
        return "excluded-namespace"
    if not isinstance(request.get("object"), dict):
        return "no-object"
    return None


def _namespace(request: AdmissionRequest) -> str:
    namespace = request.get("namespace")
    return namespace if isinstance(namespace, str) else ""
