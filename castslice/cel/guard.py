"""The quota guard: a MutatingAdmissionPolicy the API server evaluates once per ResourceQuota
of a Pod's namespace (`paramKind: ResourceQuota`, `parameterNotFoundAction: Allow`: not at
all in a namespace without one), before any webhook. Each quota that limits
`requests.<source>` is written into `castops.io/quota-guard` with the `requests.*` and
DeviceClass keys it counts; both engines then leave whole a Pod whose conversion a listed
quota would not count (functions/quota.py). It keeps no state and needs no CastSlice process.

Every Pod CastSlice is given is marked there (asking for the source, not opted out: the
webhook's matchConditions), opted in or not, so that no rule or annotation finds a way past
the guard and the guard needs nothing of the configuration but the source resource (a
kustomize replacement or a Helm value writes it: it appears between the first pair of single
quotes of the condition, and the second of the mutation).

MutatingAdmissionPolicies run in no fixed order among themselves (measured on v1.36.2), so
the policy engine's conversion may run before the guard: `backstop` is a
ValidatingAdmissionPolicy, also per quota, that refuses a Pod converted in a namespace whose
quota would not count it, so no order lets a namespace past its quota.
"""

from typing import Any

from castslice.cel.literals import literal
from castslice.cel.selection import sent_conditions
from castslice.functions.annotations import QUOTA_GUARD, SLICED
from castslice.functions.patch import pointer
from castslice.functions.policy import Policy
from castslice.functions.quota import DEVICES, counted_as

GUARD = "castslice-quota-guard"
BACKSTOP = "castslice-quota-backstop"
_PARAM = {"apiVersion": "v1", "kind": "ResourceQuota"}
_PARAM_REF = {"selector": {}, "parameterNotFoundAction": "Allow"}
POD_CREATES = {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                                  "operations": ["CREATE"], "resources": ["pods"]}]}
"""What every printed policy matches: Pod CREATEs (the webhook's rules)."""


def _limits(policy: Policy) -> str:
    """Whether this quota (params) limits the source."""
    return (f"has(params.spec) && has(params.spec.hard) && "
            f"('requests.' + '{policy.source_resource}') in params.spec.hard")


def guard_spec(policy: Policy) -> dict[str, Any]:
    """The guard's MutatingAdmissionPolicy spec."""
    entry = (f"params.metadata.name + '=' + params.spec.hard.filter(k, k.startsWith('requests.')"
             f" || k.endsWith({literal(DEVICES)})).sort().join('|')")
    before = f"object.metadata.?annotations[?{literal(QUOTA_GUARD)}].orValue('')"
    value = f"({before} == '' ? {entry} : {before} + ';' + {entry})"
    patch = (f"has(object.metadata.annotations) ? JSONPatch{{op: 'add', path: "
             f"{literal(pointer('metadata', 'annotations', QUOTA_GUARD))}, value: {value}}} : "
             f"JSONPatch{{op: 'add', path: '/metadata/annotations', value: "
             f"{{{literal(QUOTA_GUARD)}: {value}}}}}")
    return {"failurePolicy": "Fail", "paramKind": _PARAM, "matchConstraints": POD_CREATES,
            "matchConditions": sent_conditions(policy.source_resource),
            "reinvocationPolicy": "Never",
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {
                "expression": f"{_limits(policy)} ? [{patch}] : []"}}]}


def backstop_spec(policy: Policy) -> dict[str, Any]:
    """The backstop's ValidatingAdmissionPolicy spec: a Pod CastSlice converted (it carries
    castops.io/sliced) in a namespace whose quota limits the source but would not count
    what the Pod now holds is refused."""
    if policy.backend == "mig":
        prefix = literal(policy.mig_resource_prefix)
        holds = ("(object.spec.containers + object.spec.?initContainers.orValue([])).map(c, "
                 f"c.?resources.?limits.orValue({{}}).filter(k, k.startsWith({prefix})))"
                 ".flatten().map(k, 'requests.' + k)")
    else:
        holds = literal(sorted(counted_as(policy, 1)))
    converted = (f"has(object.metadata.annotations) && {literal(SLICED)} in "
                 "object.metadata.annotations")
    return {"failurePolicy": "Ignore", "paramKind": _PARAM, "matchConstraints": POD_CREATES,
            "matchConditions": [{"name": "converted", "expression": converted}],
            "validations": [{
                "expression": f"!({_limits(policy)}) || {holds}.exists(k, k in params.spec.hard)",
                "reason": "Forbidden",
                "messageExpression": "'ResourceQuota ' + params.metadata.name + " + literal(
                    f" limits {policy.source_resource} and would not count this converted Pod;"
                    " create it again (or see castslice quotas)")}]}


def guard_objects(policy: Policy, backstop: bool) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, name, spec) of the guard and its binding, and the backstop's where asked."""
    found = [("MutatingAdmissionPolicy", GUARD, guard_spec(policy)),
             ("MutatingAdmissionPolicyBinding", GUARD,
              {"policyName": GUARD, "paramRef": _PARAM_REF})]
    if backstop:
        found += [("ValidatingAdmissionPolicy", BACKSTOP, backstop_spec(policy)),
                  ("ValidatingAdmissionPolicyBinding", BACKSTOP,
                   {"policyName": BACKSTOP, "paramRef": _PARAM_REF,
                    "validationActions": ["Deny"]})]
    return found
