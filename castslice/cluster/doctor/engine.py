"""doctor for every back-end: which engine decides, from `kubectl get
mutatingwebhookconfigurations,mutatingadmissionpolicies,...bindings -o json`. The webhook
(a MutatingWebhookConfiguration holding CastSlice's webhook) or the policy engine (the
MutatingAdmissionPolicy `castslice policy` prints, bound); both at once decide every GPU Pod
twice. A live policy is checked against the configuration doctor is given: the hash of what
`castslice policy` would print for it, and the API server's type checking."""

from typing import Any

from castslice.cel.errors import Unsupported
from castslice.cel.guard import GUARD
from castslice.cel.objects import HASH, LABELS, policy_objects
from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.objects import objects_of
from castslice.cluster.webhook import NAME
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of


def _ours(item: Any) -> bool:
    labels = mapping(metadata_of(item).get("labels"))
    return all(labels.get(k) == v for k, v in LABELS.items())


def check(documents: list[Any], policy: Policy, result: Diagnosis) -> None:
    """One line saying which engine is live, and why a live policy is wrong, if it is;
    nothing when the input holds neither engine's objects."""
    webhooks = [metadata_of(c).get("name", "?")
                for c in objects_of(documents, "MutatingWebhookConfiguration")
                if any(mapping(h).get("name") == NAME for h in c.get("webhooks") or ())]
    mutating = [p for p in objects_of(documents, "MutatingAdmissionPolicy")
                if mapping(metadata_of(p).get("labels")).get("app.kubernetes.io/name")
                == "castslice"]
    guards = {metadata_of(p).get("name") for p in mutating if _guard(p)}
    policies = [p for p in mutating if _ours(p) and not _guard(p)]
    bound = {mapping(b.get("spec")).get("policyName")
             for b in objects_of(documents, "MutatingAdmissionPolicyBinding")}
    live = [p for p in policies if metadata_of(p).get("name") in bound]
    for item in policies:
        if item not in live:
            result.lines.append(f"warning: MutatingAdmissionPolicy {metadata_of(item).get('name')}"
                                " has no binding: it converts nothing (apply castslice "
                                "policy's whole output)")
    if webhooks and live:
        result.lines.append(
            f"warning: both engines are live (webhook {', '.join(webhooks)} and policy "
            f"{', '.join(str(metadata_of(p).get('name')) for p in live)}): every GPU Pod is "
            "decided twice; delete one (kubectl delete -f deploy/castslice.yaml, or the "
            "policy's objects)")
    elif webhooks:
        result.lines.append(f"ok: the webhook decides (MutatingWebhookConfiguration "
                            f"{', '.join(webhooks)})")
    elif live:
        result.lines.append("ok: the policy engine decides (MutatingAdmissionPolicy "
                            f"{', '.join(str(metadata_of(p).get('name')) for p in live)})")
    if webhooks or live:
        _guard_line(sorted(str(name) for name in guards & bound), result)
    for item in live:
        _policy_lines(item, policy, result)
    for item in objects_of(documents, "ValidatingAdmissionPolicy"):
        if _ours(item):
            _type_checking(item, result)


def _guard(item: dict[str, Any]) -> bool:
    """Whether a MutatingAdmissionPolicy of CastSlice's is the quota guard (it reads quotas)."""
    return mapping(mapping(item.get("spec")).get("paramKind")).get("kind") == "ResourceQuota"


def _guard_line(guards: list[str], result: Diagnosis) -> None:
    """Whether the quota guard is live beside the engine."""
    if guards:
        result.lines.append(f"ok: the quota guard is live (MutatingAdmissionPolicy "
                            f"{', '.join(guards)})")
    else:
        result.lines.append(f"warning: no quota guard ({GUARD}): opting in can lift a "
                            "namespace past its GPU quota (apply the whole install, or "
                            "castslice policy's output)")


def _policy_lines(item: dict[str, Any], policy: Policy, result: Diagnosis) -> None:
    name = metadata_of(item).get("name")
    _type_checking(item, result)
    try:
        expected = policy_objects(policy)[0]["metadata"]["annotations"][HASH]
    except Unsupported as error:
        result.problem(f"MutatingAdmissionPolicy {name} is live, but this configuration "
                       f"cannot be a policy: {error}")
        return
    found = mapping(metadata_of(item).get("annotations")).get(HASH)
    if found != expected:
        result.problem(f"MutatingAdmissionPolicy {name} was printed from another "
                       f"configuration ({HASH} {found or 'missing'}, this one's {expected}): "
                       "apply castslice policy's output for this configuration")


def _type_checking(item: dict[str, Any], result: Diagnosis) -> None:
    """The API server's type-checking warnings of a policy (status.typeChecking)."""
    checking = mapping(mapping(item.get("status")).get("typeChecking"))
    for warning in checking.get("expressionWarnings") or ():
        found = mapping(warning)
        result.problem(f"{item.get('kind')} {metadata_of(item).get('name')}: the API server's "
                       f"type checking warns at {found.get('fieldRef')}: "
                       f"{str(found.get('warning', ''))[:200]}")
