"""decide(request, policy) -> Decision: the whole admission rule set (SPEC §2).

Skips come first and name their reason, so a log line or metric says why a Pod was left
alone without anyone re-reading this file.
"""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from castslice.functions import resolve
from castslice.functions.claims import rewrite_claims
from castslice.functions.mig import profile_for
from castslice.functions.patch import (
    Rewrite,
    annotate,
    resource_held,
    rewrite_resources,
)
from castslice.functions.policy import Policy
from castslice.functions.quantity import scaled
from castslice.functions.quota import escaping_quota
from castslice.functions.reviews import AdmissionRequest, PatchOp, mapping, metadata_of
from castslice.functions.rules import first_match
from castslice.functions.text import short

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
    gpus: int = 0
    """Whole GPUs the scheduler would have reserved for the converted containers."""
    message: str = ""
    """For a mutation, the castops.io/sliced text; for a denial, the status message."""
    error: BaseException | None = None
    """For the outcome error: what failed, for the log."""
    profile: str = ""
    """For a mutation to MIG devices (mig, or dra with MIG templates): the profile each GPU
    became, so a what-if can tell a profile change from a relabelled one."""
    memory: int = 0
    """Bytes of the memory ask that decided the slices (annotation or rule), else 0."""

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
    if invalid:
        warnings += tuple(AdmissionWarning(i.annotation.split("/")[-1], i.warning())
                          for i in invalid)
    rewrite, becomes = _rewrite(pod, policy, choice.value)
    if rewrite.most > 1:
        return Decision("passed", "multi-gpu", warnings=(*warnings, _multi_gpu(
            rewrite.most, policy)), slices=choice.value)
    if rewrite.warnings:
        warnings += tuple(AdmissionWarning("left-unchanged", w) for w in rewrite.warnings)
    if not rewrite.ops:
        reason = "already-sliced" if rewrite.already_sliced else "no-gpu"
        return Decision("passed", reason, warnings=warnings, slices=choice.value)
    if choice.unfit:
        return Decision("passed", "no-memory-fit", warnings=(*warnings, AdmissionWarning(
            "no-memory-fit", short(f"{choice.by}: {choice.unfit}; left unchanged"))),
            memory=choice.memory)
    if becomes is None:
        return _nothing_fits(policy, choice, warnings)
    escaping = escaping_quota(annotations, policy, choice.value)
    if escaping is not None:
        return _quota_guarded(escaping, policy, choice, warnings)
    gpus = rewrite.scheduled_gpus()
    message = (f"{policy.source_resource} x{gpus} -> {becomes(gpus)} ({choice.value} per GPU "
               f"by {choice.by}; opted in by {by})")
    if policy.backend == "extended":  # the hot path: no profile, the slices as granted
        return Decision("mutated", "mutated", (*rewrite.ops, annotate(pod, message)), warnings,
                        choice.value, gpus, message, memory=choice.memory)
    profile = profile_for(policy.mig_profiles, choice.value) if policy.mig_devices else None
    return Decision("mutated", "mutated", (*rewrite.ops, annotate(pod, message)), warnings,
                    policy.granted(choice.value), gpus, message, profile=profile or "",
                    memory=choice.memory)


def _multi_gpu(gpus: int, policy: Policy) -> AdmissionWarning:
    """Why a container asking for several whole GPUs is left alone: no back-end can promise
    it that many distinct GPUs."""
    why = ("a CUDA process uses one MIG device" if policy.mig_devices else
           "claims of shares may all be one GPU" if policy.backend == "dra" else
           "time-sliced units are not distinct GPUs")
    return AdmissionWarning("multi-gpu", short(
        f"a container asks for {gpus} {policy.source_resource}: {why}; Pod left unchanged"))


def _nothing_fits(policy: Policy, choice: resolve.Choice,
                  warnings: tuple[AdmissionWarning, ...]) -> Decision:
    """A slice count past what the cluster offers: no profile (mig), no template (dra)."""
    asked = f"{choice.value} slices per GPU ({choice.by})"
    if policy.backend == "mig":
        kind, text = "no-mig-profile", (f"{asked} is more than the largest MIG profile "
                                        f"{policy.mig_profiles[-1]}; left unchanged")
    else:
        kind, text = "no-template", (f"{asked} has no ResourceClaimTemplate (largest "
                                     f"{policy.dra_template(policy.largest_slices() or 0)}); "
                                     "left unchanged")
    return Decision("passed", kind, warnings=(*warnings, AdmissionWarning(kind, short(text))),
                    slices=choice.value)


def quota_text(quota: str, policy: Policy) -> str:
    """Why the quota guard leaves a Pod whole: the quota, and where the fix is."""
    return short(f"ResourceQuota {quota} limits {policy.source_resource} and would not count "
                 "this Pod converted; left whole (see castslice quotas)")


def _quota_guarded(quota: str, policy: Policy, choice: resolve.Choice,
                   warnings: tuple[AdmissionWarning, ...]) -> Decision:
    """A conversion the namespace's quota would not count: whole, or refused on request."""
    text = quota_text(quota, policy)
    if policy.on_quota_escape == "deny":
        return Decision("denied", "quota-guard", warnings=warnings, message=text)
    return Decision("passed", "quota-guard", warnings=(
        *warnings, AdmissionWarning("quota-guard", text)), slices=choice.value)


class _BackendRewrite(NamedTuple):
    rewrite: Rewrite
    becomes: Callable[[int], str] | None
    """What g whole GPUs became, in words for castops.io/sliced; None for a slice count
    past what the cluster offers (its rewrite is never applied)."""


def _rewrite(pod: dict[str, Any], policy: Policy, slices: int) -> _BackendRewrite:
    """The back-end's rewrite: the only step where the back-ends differ."""
    source = policy.source_resource
    if policy.backend == "extended":
        target = policy.target_resource
        return _BackendRewrite(
            rewrite_resources(pod, source, target, slices, resource_held(target)),
            lambda gpus: f"{target} x{scaled(gpus, slices)}")
    largest = policy.largest_slices()
    fits = largest is None or slices <= largest
    if policy.backend == "dra":
        template = policy.dra_template(slices)
        return _BackendRewrite(
            rewrite_claims(pod, source, template, policy.dra_template_prefix),
            (lambda gpus: f"{gpus} claim{'s' * (gpus != 1)} from template {template}")
            if fits else None)
    target = policy.mig_resource(profile_for(policy.mig_profiles, slices)
                                 or policy.mig_profiles[-1])
    held = resource_held(policy.mig_resource_prefix, prefix=True)
    return _BackendRewrite(rewrite_resources(pod, source, target, 1, held),
                           (lambda gpus: f"{target} x{gpus}") if fits else None)


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
