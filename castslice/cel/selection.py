"""Which Pods the policies look at, and who opts in: the webhook's matchConditions, its
excluded namespaces, `castops.io/optimize` and CASTSLICE_RULES (SPEC §2.1-§2.2, §4).

CEL names follow the webhook's: `variables.rule` is `first_match`, `variables.opted` is
`resolve.opt_in`.
"""

from castslice.cel.literals import first, glob_pattern, literal, pick
from castslice.functions.annotations import OPTIMIZE, SLICED
from castslice.functions.policy import Policy
from castslice.functions.rules import Requirement, Rule

ANNOTATIONS = "variables.annotations"
LABELS = "variables.labels"
SENT = "asks-source-resource"
NOT_OPTED_OUT = "not-opted-out"
NOT_EXCLUDED = "not-excluded-namespace"


def sent_conditions(source: str) -> list[dict[str, str]]:
    """The Pods CastSlice is given, by either engine: a container or init container with the
    source in its limits, or CastSlice's own annotation (a converted Pod created again, or
    one the policy converted just before its warnings are checked), and not opted out. The
    source appears once, between the first pair of single quotes, so a kustomize
    replacement (delimiter "'", index 1) can write it."""
    containers = ("object.spec.containers + (has(object.spec.initContainers) ? "
                  "object.spec.initContainers : [])")
    annotations = "object.metadata.annotations"
    return [
        {"name": SENT,
         "expression": f"({containers}).exists(c, has(c.resources) && has(c.resources.limits) && "
         f"'{source}' in c.resources.limits) || (has({annotations}) && "
         f"'{SLICED}' in {annotations})"},
        {"name": NOT_OPTED_OUT,
         "expression": f"!has({annotations}) || !('{OPTIMIZE}' in {annotations}) || "
                       f"{annotations}['{OPTIMIZE}'] != 'false'"}]


def policy_conditions(policy: Policy) -> list[dict[str, str]]:
    """The webhook's conditions and its excluded namespaces (the webhook checks those in
    the decision, `_pass_through`; a policy has no namespaceSelector of CastSlice's)."""
    excluded = sorted(policy.exclude_namespaces)
    return [{"name": NOT_EXCLUDED, "expression": f"!(request.namespace in {literal(excluded)})"},
            *sent_conditions(policy.source_resource)]


def selection_variables(policy: Policy) -> list[tuple[str, str]]:
    """annotations, labels, the first matching rule's index (-1: none), the optimize value,
    whether the Pod opts in and who decided."""
    rules = policy.rules
    by_rule = pick("variables.rule", [literal(f"rule {rule.name}") for rule in rules], "''")
    return [
        ("annotations", "object.metadata.?annotations.orValue({})"),
        ("labels", "object.metadata.?labels.orValue({})"),
        ("rule", first([_matches(rule) for rule in rules])),
        ("optimize", f"{ANNOTATIONS}[?{literal(OPTIMIZE)}].orValue('')"),
        ("opted", "variables.optimize == 'true' || (variables.optimize != 'false' && "
                  f"variables.rule >= 0 && {literal([r.optimize for r in rules])}"
                  "[variables.rule])" if rules else "variables.optimize == 'true'"),
        ("opted_by", f"variables.optimize in ['true', 'false'] ? {literal(OPTIMIZE + '=')} + "
                     f"variables.optimize : {by_rule}"),
    ]


def _matches(rule: Rule) -> str:
    tests = [_requirement(r) for r in rule.requirements]
    if rule.namespaces:
        pattern = "|".join(glob_pattern(g)[1:-1] for g in rule.namespaces)
        tests.insert(0, f"request.namespace.matches({literal('^(?:' + pattern + ')$')})")
    return " && ".join(tests) or "true"


def _requirement(requirement: Requirement) -> str:
    """A label selector requirement, Kubernetes' semantics (rules.Requirement.matches)."""
    key = literal(requirement.key)
    present = f"{key} in {LABELS}"
    if requirement.operator == "Exists":
        return present
    if requirement.operator == "DoesNotExist":
        return f"!({present})"
    inside = f"({present} && {LABELS}[{key}] in {literal(sorted(requirement.values))})"
    return inside if requirement.operator == "In" else f"!{inside}"
