"""doctor for `dra`, from
`kubectl get resourceslices,resourceclaimtemplates,namespaces,pods -A -o json`.

The devices the templates ask for must exist in ResourceSlices (a capacity request a
device does not provide is never met: k8s.io/api resource/v1 CapacityRequirements), and
every namespace where Pods opt in must hold every template the claims can name, as
`dra-templates` prints it now; Kubernetes accepts a Pod naming a missing template and
leaves it Pending, retrying for up to 1000 s before 1.36 (kubernetes#135835).
"""

from fnmatch import fnmatchcase
from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.dra import (
    PROBE,
    SHARES,
    as_stored,
    asks_capacity,
    claim_templates,
    gpu_shares,
    mig_devices,
    slice_counts,
)
from castslice.cluster.objects import objects_of
from castslice.functions import resolve
from castslice.functions.mig import profile_for
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of
from castslice.functions.rules import first_match
from castslice.functions.text import text_or_empty

_GLOB = frozenset("*?[")


def check(documents: list[Any], policy: Policy) -> Diagnosis:
    """Devices first (a template no device can satisfy leaves every Pod Pending), then the
    templates of every namespace where Pods opt in, as `dra-templates` prints them now."""
    result = Diagnosis()
    _devices(objects_of(documents, "ResourceSlice"), policy, result)
    found = objects_of(documents, "ResourceClaimTemplate")
    probes = [t for t in found if metadata_of(t).get("name") == PROBE]
    templates = {(text_or_empty(metadata_of(t).get("namespace")),
                  text_or_empty(metadata_of(t).get("name"))): as_stored(t.get("spec"))
                 for t in found if t not in probes}
    if policy.dra_devices == "shares":
        _capacity_kept(probes, templates, policy, result)
    namespaces = sorted(opted_namespaces(documents, policy) | {
        ns for ns, name in templates if ns and name.startswith(policy.dra_template_prefix)})
    namespaces = [ns for ns in namespaces if ns not in policy.exclude_namespaces]
    if not namespaces:
        result.problem("no namespace to check: no opted-in Pod, no Namespace a rule matches, "
                       "no CastSlice template (add namespaces,pods to the kubectl get)")
    for namespace in namespaces:
        _templates(namespace, templates, policy, result)
    return result


def _devices(slices: list[dict[str, Any]], policy: Policy, result: Diagnosis) -> None:
    """Each MIG profile a template asks for has devices, or GPUs announce enough shares."""
    counts = slice_counts(policy)
    if policy.dra_devices == "shares":
        shares = gpu_shares(slices)
        if not shares:
            result.problem(f"no GPU in ResourceSlices announces {SHARES} capacity: claims from "
                           f"{_ranges(policy, list(counts))} stay Pending (the NVIDIA DRA "
                           "driver needs --consumable-shares=N and its ConsumableShares gate; "
                           "add resourceslices to the kubectl get)")
        elif max(shares) < counts[-1]:
            result.problem(f"GPUs announce at most {max(shares)} shares: claims from "
                           f"{_ranges(policy, list(counts)[max(shares):])} can never be "
                           f"allocated; set CASTSLICE_SLICES_PER_GPU={max(shares)}")
        else:
            result.lines.append(f"ok: {len(shares)} GPU(s) announce {SHARES} (up to "
                                f"{max(shares)} per claim)")
        return
    devices = mig_devices(slices)
    needing_by_profile: dict[str, list[int]] = {}
    for count in counts:  # every count here has a profile: slice_counts stops at the ladder
        profile = profile_for(policy.mig_profiles, count)
        if profile is not None:
            needing_by_profile.setdefault(profile, []).append(count)
    for profile, needing in needing_by_profile.items():
        if devices[profile]:
            result.lines.append(f"ok: {profile}: {devices[profile]} MIG device(s) in "
                                f"ResourceSlices ({_ranges(policy, needing)})")
        else:
            result.problem(f"no ResourceSlice holds a MIG device of profile {profile}: claims "
                           f"from {_ranges(policy, needing)} stay Pending")


def _capacity_kept(probes: list[dict[str, Any]],
                   templates: dict[tuple[str, str], dict[str, Any]], policy: Policy,
                   result: Diagnosis) -> None:
    """Shares need the API server to keep `exactly.capacity`; one that drops it stores
    templates whose claims each take a whole GPU, exclusively."""
    ours = [spec for (_, name), spec in templates.items()
            if name.startswith(policy.dra_template_prefix)]
    if any(not asks_capacity(t.get("spec")) for t in probes) or any(
            not asks_capacity(spec) for spec in ours):
        result.problem("the API server drops the shares a claim asks (exactly.capacity): "
                       "every claim takes a whole GPU, exclusively; it needs the "
                       "DRAConsumableCapacity feature gate (alpha and off in Kubernetes 1.34 "
                       "and 1.35, beta and on in 1.36) on the API server, scheduler and "
                       "kubelet, or CASTSLICE_DRA_DEVICES=mig")
    elif probes:
        result.lines.append("ok: the API server keeps the shares a claim asks (a dry run of "
                            f"{PROBE})")


def _templates(namespace: str, templates: dict[tuple[str, str], dict[str, Any]],
               policy: Policy, result: Diagnosis) -> None:
    """Missing templates (Pods stay Pending), stale ones (they ask other devices than the
    configuration's), and CastSlice templates no claim names any more."""
    wanted = {t["metadata"]["name"]: as_stored(t["spec"])
              for t in claim_templates(policy, [namespace])}
    counts = list(slice_counts(policy))
    missing = [s for s in counts if (namespace, policy.dra_template(s)) not in templates]
    stale = [s for s in counts if (namespace, policy.dra_template(s)) in templates
             and _differs(templates[(namespace, policy.dra_template(s))],
                          wanted[policy.dra_template(s)])]
    fix = f"(castslice dra-templates --namespace {namespace} | kubectl apply -f -)"
    if missing:
        result.problem(f"namespace {namespace} lacks ResourceClaimTemplate "
                       f"{_ranges(policy, missing)}: Pods converted there stay Pending {fix}")
    if stale:
        result.problem(f"namespace {namespace}: ResourceClaimTemplate {_ranges(policy, stale)} "
                       f"differ from what the configuration claims {fix}")
    unused = sorted(name for ns, name in templates if ns == namespace and name.startswith(
        policy.dra_template_prefix) and name not in wanted)
    if unused:
        result.lines.append(f"note: namespace {namespace}: {', '.join(unused)} no longer "
                            "named by any claim")
    if not missing and not stale:
        result.lines.append(f"ok: namespace {namespace} has every template "
                            f"({_ranges(policy, counts)})")


def _differs(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """A real edit, not the capacity a server without consumable capacity drops (named
    once, by _capacity_kept)."""
    if asks_capacity(wanted) and not asks_capacity(stored):
        return stored != _without_capacity(wanted)
    return stored != wanted


def _without_capacity(spec: dict[str, Any]) -> dict[str, Any]:
    claim = spec["spec"]
    requests = [{**r, "exactly": {k: v for k, v in r["exactly"].items() if k != "capacity"}}
                for r in claim["devices"]["requests"]]
    return {**spec, "spec": {**claim, "devices": {**claim["devices"], "requests": requests}}}


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
