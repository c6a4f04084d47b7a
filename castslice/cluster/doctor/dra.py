"""doctor for `dra`, from `kubectl get resourceclaimtemplates,namespaces,pods -A -o json`.

Every namespace where Pods opt in must hold every template the claims can name; Kubernetes
accepts a Pod naming a missing template and leaves it Pending, retrying for up to 1000 s
before 1.36 (kubernetes#135835).
"""

from fnmatch import fnmatchcase
from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.dra import slice_counts
from castslice.cluster.objects import objects_of
from castslice.functions import resolve
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of
from castslice.functions.rules import first_match
from castslice.functions.text import text_or_empty

_GLOB = frozenset("*?[")


def check(documents: list[Any], policy: Policy) -> Diagnosis:
    result = Diagnosis()
    templates = {(text_or_empty(metadata_of(t).get("namespace")),
                  text_or_empty(metadata_of(t).get("name")))
                 for t in objects_of(documents, "ResourceClaimTemplate")}
    namespaces = sorted(opted_namespaces(documents, policy) | {
        ns for ns, name in templates if ns and name.startswith(policy.dra_template_prefix)})
    namespaces = [ns for ns in namespaces if ns not in policy.exclude_namespaces]
    if not namespaces:
        result.problem("no namespace to check: no opted-in Pod, no Namespace a rule matches, "
                       "no CastSlice template (add namespaces,pods to the kubectl get)")
    for namespace in namespaces:
        missing = [s for s in slice_counts(policy)
                   if (namespace, policy.dra_template(s)) not in templates]
        if missing:
            result.problem(f"namespace {namespace} lacks ResourceClaimTemplate "
                           f"{_ranges(policy, missing)}: Pods converted there "
                           f"stay Pending (castslice dra-templates --namespace {namespace} | "
                           "kubectl apply -f -)")
        else:
            result.lines.append(f"ok: namespace {namespace} has every template "
                                f"({policy.dra_template(1)} to "
                                f"{policy.dra_template(policy.max_slices)})")
    return result


def opted_namespaces(documents: list[Any], policy: Policy) -> set[str]:
    """Namespaces with an opted-in Pod, Namespaces a rule opting in may match, and the
    namespaces rules name outright."""
    found = set()
    for pod in objects_of(documents, "Pod"):
        metadata = metadata_of(pod)
        namespace = text_or_empty(metadata.get("namespace", "default"))
        rule = first_match(policy.rules, namespace, mapping(metadata.get("labels")))
        if resolve.opt_in(mapping(metadata.get("annotations")), rule)[0]:
            found.add(namespace)
    opting = [r for r in policy.rules if r.optimize]
    for item in objects_of(documents, "Namespace"):
        name = text_or_empty(metadata_of(item).get("name"))
        if any(not r.namespaces or any(fnmatchcase(name, p) for p in r.namespaces)
               for r in opting):
            found.add(name)
    return (found | {p for r in opting for p in r.namespaces if not _GLOB & set(p)}) - {""}


def _ranges(policy: Policy, counts: list[int]) -> str:
    """The templates of these counts, runs shortened: "castslice-gpu-3, castslice-gpu-5 to
    castslice-gpu-64" for [3, 5, 6, ..., 64]."""
    spans: list[list[int]] = []
    for n in counts:
        if spans and spans[-1][1] == n - 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    name = policy.dra_template
    return ", ".join(name(a) if a == b else f"{name(a)} to {name(b)}" for a, b in spans)
