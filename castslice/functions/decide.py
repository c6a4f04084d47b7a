"""decide(request, config) -> Decision: the whole admission rule set (SPEC §2).

Skips come first and name their reason, so a log line or metric says why a Pod was left
alone without anyone re-reading this file.
"""

from typing import Any, Literal, NamedTuple

from castslice.config import Config
from castslice.functions import resolve
from castslice.functions.patch import annotate, rewrite_resources
from castslice.functions.reviews import AdmissionRequest, PatchOp, mapping, metadata_of
from castslice.functions.rules import first_match

Outcome = Literal["patch", "skip", "deny"]


class AdmissionWarning(NamedTuple):
    """A warning for the client, with a kind for metrics."""

    kind: str
    text: str


class Decision(NamedTuple):
    """What to answer and why: the reason travels with the outcome."""

    outcome: Outcome
    reason: str
    patch: tuple[PatchOp, ...] = ()
    warnings: tuple[AdmissionWarning, ...] = ()
    slices: int | None = None
    gpus: int = 0
    message: str = ""
    """For a patch, the castops.io/sliced text; for a denial, the status message."""


def decide(request: AdmissionRequest, config: Config) -> Decision:
    """Decide one admission. Pure: same request and config, same Decision."""
    skip = _pass_through(request, config)
    if skip:
        return Decision("skip", skip)
    pod: dict[str, Any] = request["object"]
    metadata = metadata_of(pod)
    annotations = mapping(metadata.get("annotations"))
    rule = first_match(config.rules, _namespace(request), mapping(metadata.get("labels")))
    odd = resolve.odd_optimize(annotations)
    warnings: tuple[AdmissionWarning, ...] = (
        (AdmissionWarning("optimize-value", odd),) if odd else ())
    opted, by = resolve.opt_in(annotations, rule)
    if not opted:
        return Decision("skip", "not-opted-in" if opted is None else "opted-out",
                        warnings=warnings)
    choice, invalid = resolve.slices(annotations, rule, config)
    if invalid and config.on_invalid == "deny":
        return Decision("deny", "invalid-annotation", warnings=warnings,
                        message="; ".join(i.denial() for i in invalid))
    warnings += tuple(AdmissionWarning(i.annotation.split("/")[-1], i.warning()) for i in invalid)
    rewrite = rewrite_resources(pod, config.source_resource, config.target_resource,
                                choice.value)
    warnings += tuple(AdmissionWarning("left-unchanged", w) for w in rewrite.warnings)
    if not rewrite.ops:
        reason = "already-sliced" if rewrite.already_sliced else "no-gpu"
        return Decision("skip", reason, warnings=warnings, slices=choice.value)
    message = (f"{config.source_resource} x{rewrite.gpus} -> {config.target_resource} "
               f"x{rewrite.gpus * choice.value} ({choice.value} per GPU by {choice.by}; "
               f"opted in by {by})")
    return Decision("patch", "mutated", (*rewrite.ops, annotate(pod, message)), warnings,
                    choice.value, rewrite.gpus, message)


def _pass_through(request: AdmissionRequest, config: Config) -> str | None:
    """The reason to leave this request alone before looking inside the Pod, if any."""
    kind = request.get("kind")
    if not isinstance(kind, dict) or (kind.get("group"), kind.get("version"),
                                      kind.get("kind")) != ("", "v1", "Pod"):
        return "not-a-pod"
    if request.get("subResource"):
        return "subresource"
    if request.get("operation") != "CREATE":
        return "not-create"
    if _namespace(request) in config.exclude_namespaces:
        return "excluded-namespace"
    if not isinstance(request.get("object"), dict):
        return "no-object"
    return None


def _namespace(request: AdmissionRequest) -> str:
    namespace = request.get("namespace")
    return namespace if isinstance(namespace, str) else ""

