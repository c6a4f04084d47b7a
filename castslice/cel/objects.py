"""The printed objects: a MutatingAdmissionPolicy and its binding (the patch), a
ValidatingAdmissionPolicy with `validationActions: [Warn]` (the webhook's warnings), one with
`[Audit]` (its audit annotation), under a deny setting one with `[Deny]` (its refusals), and
the quota guard with its backstop (guard.py).

A ValidatingAdmissionPolicy sees the Pod after every mutation, so its conditions are the
webhook's, read on what the mutation leaves: the source still held, or CastSlice's own
annotation (selection.sent_conditions), and the same variables. Every object carries the
hash of the whole set, so `doctor` can tell a policy printed from another configuration.
"""

import hashlib
import json
from typing import Any

from castslice.cel.containers import scan_variables
from castslice.cel.guard import POD_CREATES, guard_objects
from castslice.cel.literals import literal
from castslice.cel.patches import decision_variables, message, patch
from castslice.cel.selection import policy_conditions, selection_variables
from castslice.cel.slices import GRANTED, invalid_message, invalid_messages, slice_variables
from castslice.cel.texts import short, show
from castslice.functions.annotations import AUDIT_KEY, OPTIMIZE, QUOTA_GUARD, SLICED
from castslice.functions.decide import quota_text
from castslice.functions.policy import Policy

API = "admissionregistration.k8s.io/v1"
NAME = "castslice"
WARNINGS = "castslice-warnings"
REFUSALS = "castslice-refusals"
AUDIT = "castslice-audit"
HASH = "castslice.castops.io/configuration"
"""The annotation holding the hash of the printed set (of its specs)."""
LABELS = {"app.kubernetes.io/name": "castslice", "app.kubernetes.io/component": "policy"}
ODD_TEXT = ' ignored: only "true" or "false" count'


def variables(policy: Policy) -> list[dict[str, str]]:
    """Every variable, in the order they read each other: who opts in, how many slices,
    which containers convert, what the webhook would decide, its annotation text."""
    found = [*selection_variables(policy), *slice_variables(policy), *scan_variables(policy),
             *decision_variables(policy), ("message", message(policy))]
    return [{"name": name, "expression": expression} for name, expression in found]


def policy_objects(policy: Policy) -> list[dict[str, Any]]:
    """The objects `castslice policy` prints, for `kubectl apply -f -`."""
    shared = {"failurePolicy": "Ignore", "matchConstraints": POD_CREATES,
              "matchConditions": policy_conditions(policy), "variables": variables(policy)}
    checked = shared | {"matchConditions": [*policy_conditions(policy), _may_warn(policy)]}
    specs: list[tuple[str, str, dict[str, Any]]] = [
        ("MutatingAdmissionPolicy", NAME, shared | {
            "reinvocationPolicy": "IfNeeded",
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": patch(policy)}}]}),
        ("MutatingAdmissionPolicyBinding", NAME, {"policyName": NAME}),
        ("ValidatingAdmissionPolicy", WARNINGS, checked | {"validations": _warnings(policy)}),
        ("ValidatingAdmissionPolicyBinding", WARNINGS,
         {"policyName": WARNINGS, "validationActions": ["Warn"]}),
        ("ValidatingAdmissionPolicy", AUDIT, {
            "failurePolicy": "Ignore", "matchConstraints": POD_CREATES,
            "matchConditions": [{"name": "converted", "expression": (
                f"has(object.metadata.annotations) && {literal(SLICED)} in "
                "object.metadata.annotations")}],
            "auditAnnotations": [{"key": AUDIT_KEY, "valueExpression": (
                f"object.metadata.?annotations[?{literal(SLICED)}].orValue('')")}]}),
        ("ValidatingAdmissionPolicyBinding", AUDIT,
         {"policyName": AUDIT, "validationActions": ["Audit"]}),
    ]
    refusals = _refusals(policy)
    if refusals:
        specs += [
            ("ValidatingAdmissionPolicy", REFUSALS, checked | {"validations": refusals}),
            ("ValidatingAdmissionPolicyBinding", REFUSALS,
             {"policyName": REFUSALS, "validationActions": ["Deny"]})]
    specs += guard_objects(policy, backstop=True)
    return _objects(specs)


def guard_install(policy: Policy) -> list[dict[str, Any]]:
    """The quota guard alone, for the webhook's installs (MutatingAdmissionPolicies run
    before any webhook, so no backstop is needed there)."""
    labels = {"app.kubernetes.io/name": "castslice"}
    return [{"apiVersion": API, "kind": kind, "metadata": {"name": name, "labels": labels},
             "spec": spec} for kind, name, spec in guard_objects(policy, backstop=False)]


def _objects(specs: list[tuple[str, str, dict[str, Any]]]) -> list[dict[str, Any]]:
    digest = fingerprint([spec for _, _, spec in specs])
    return [{"apiVersion": API, "kind": kind,
             "metadata": {"name": name, "labels": LABELS, "annotations": {HASH: digest}},
             "spec": spec} for kind, name, spec in specs]


def _refusals(policy: Policy) -> list[dict[str, str]]:
    """The webhook's denials: an invalid annotation under CASTSLICE_ON_INVALID=deny, a Pod
    the quota guard names under CASTSLICE_ON_QUOTA_ESCAPE=deny."""
    found = []
    if policy.on_invalid == "deny":
        found.append({"expression": "!variables.denied", "reason": "Invalid",
                      "messageExpression": f"({invalid_messages(policy)})"})
    if policy.on_quota_escape == "deny":
        found.append({"expression": "!(variables.would_convert && variables.quota_escape != '')",
                      "reason": "Forbidden", "messageExpression": _quota_text(policy)})
    return found


def _quota_text(policy: Policy) -> str:
    """decide.quota_text in CEL."""
    said = quota_text("QUOTA", policy)
    before, _, after = said.partition("QUOTA")
    return short(f"{literal(before)} + variables.quota_escape + {literal(after)}")


def _may_warn(policy: Policy) -> dict[str, str]:
    """Whether any warning or refusal can apply once the mutation is done, read cheaply so
    that the common converted Pod skips the checks: an annotation that may be invalid or an
    odd optimize value, or a container still holding the source (every other warning is
    about such a container)."""
    source = literal(policy.source_resource)
    annotations = "object.metadata.annotations"
    granting = " || ".join(f"{literal(a)} in {annotations}" for a in GRANTED)
    return {"name": "may-warn", "expression": (
        "(object.spec.containers + object.spec.?initContainers.orValue([])).exists(c, "
        f"{source} in c.?resources.?limits.orValue({{}}) || "
        f"{source} in c.?resources.?requests.orValue({{}})) || (has({annotations}) && ("
        f"{granting} || {literal(QUOTA_GUARD)} in {annotations} || "
        f"({literal(OPTIMIZE)} in {annotations} && "
        f"!({annotations}[{literal(OPTIMIZE)}] in ['true', 'false']))))")}


def fingerprint(specs: list[dict[str, Any]]) -> str:
    """A short hash of the specs: two configurations that decide differently print two."""
    return hashlib.sha256(json.dumps(specs, sort_keys=True).encode()).hexdigest()[:16]


def _warnings(policy: Policy) -> list[dict[str, str]]:
    """decide.decide's warnings, each where the webhook gives it: an odd optimize value for
    every Pod sent; invalid annotations, then multi-gpu (alone), then containers left
    unchanged and why nothing converted, for Pods that opt in and are not refused."""
    going = "variables.opted && !variables.denied"
    converting = f"{going} && variables.most <= 1 && variables.has_ops"
    optimize = f"variables.annotations[{literal(OPTIMIZE)}]"
    odd = short(f"{literal(OPTIMIZE + '=')} + {show(optimize)} + "
                f"{literal(ODD_TEXT)}")
    found = [{"expression": f"!({literal(OPTIMIZE)} in variables.annotations) || "
                            f"{optimize} in ['true', 'false']", "messageExpression": odd}]
    found += [{"expression": f"!({going} && variables.invalid[{i}])",
               "messageExpression": invalid_message(policy, i, denial=False)}
              for i in range(len(GRANTED))]
    found += [
        {"expression": f"!({going} && variables.most > 1)",
         "messageExpression": _multi_gpu(policy)},
        {"expression": f"!({going} && variables.most <= 1 && size(variables.problems) > 0)",
         "messageExpression": "variables.problems.join('; ')"},
        {"expression": f"!({converting} && variables.unfit != '')",
         "messageExpression": short("variables.by + ': ' + variables.unfit + '; left unchanged'")},
    ]
    if policy.on_quota_escape == "warn":
        found.append({"expression": "!(variables.would_convert && variables.quota_escape != '')",
                      "messageExpression": _quota_text(policy)})
    largest = policy.largest_slices()
    if largest is not None:
        found.append({"expression": f"!({converting} && variables.unfit == '' && "
                                    f"variables.slices > {largest})",
                      "messageExpression": _nothing_fits(policy, largest)})
    return found


def _multi_gpu(policy: Policy) -> str:
    why = ("a CUDA process uses one MIG device" if policy.mig_devices else
           "claims of shares may all be one GPU" if policy.backend == "dra" else
           "time-sliced units are not distinct GPUs")
    return short(f"'a container asks for ' + string(variables.most) + "
                 f"{literal(f' {policy.source_resource}: {why}; Pod left unchanged')}")


def _nothing_fits(policy: Policy, largest: int) -> str:
    asked = "string(variables.slices) + ' slices per GPU (' + variables.by + ')'"
    why = (f" is more than the largest MIG profile {policy.mig_profiles[-1]}"
           if policy.backend == "mig" else
           f" has no ResourceClaimTemplate (largest {policy.dra_template(largest)})")
    return short(f"{asked} + {literal(why + '; left unchanged')}")
