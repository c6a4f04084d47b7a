"""`castslice doctor` for the mig and dra back-ends, from
`kubectl get nodes,resourceslices,deviceclasses,resourceclaimtemplates,namespaces,pods -A -o json`.

mig: every profile the configuration can grant must be offered somewhere, by a node's
device plugin (allocatable `nvidia.com/mig-<profile>`) or by a DRA driver's ResourceSlice
with a DeviceClass serving that name. dra: every namespace where Pods opt in must hold
every template the claims can name; Kubernetes accepts a Pod naming a missing template and
leaves it Pending, retrying for up to 1000 s before 1.36 (kubernetes#135835).
"""

from collections import Counter
from collections.abc import Iterable
from fnmatch import fnmatchcase
from typing import Any

from castslice.doctor import Diagnosis
from castslice.dra import DRIVER, slice_counts
from castslice.functions import resolve
from castslice.functions.mig import profile_for
from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping, metadata_of
from castslice.functions.rules import first_match
from castslice.functions.text import text_or_empty
from castslice.podlist import objects_of

_GLOB = frozenset("*?[")


def diagnose_mig(documents: list[Any], policy: Policy) -> Diagnosis:
    result = Diagnosis()
    nodes = objects_of(documents, "Node")
    devices = mig_devices(objects_of(documents, "ResourceSlice"))
    classes = {text_or_empty(mapping(c.get("spec")).get("extendedResourceName")):
               text_or_empty(metadata_of(c).get("name"))
               for c in objects_of(documents, "DeviceClass")}
    if not nodes and not devices:
        result.problem("no Node or ResourceSlice objects in the input (kubectl get "
                       "nodes,resourceslices,deviceclasses -o json)")
    grantable = dict.fromkeys(p for s in slice_counts(policy)
                              if (p := profile_for(policy.mig_profiles, s)) is not None)
    for profile in grantable:
        resource = policy.mig_resource(profile)
        serving = [(str(metadata_of(n).get("name", "?")), count) for n in nodes
                   if (count := whole_count(mapping(mapping(n.get("status")).get(
                       "allocatable")).get(resource)))]
        if serving:
            result.lines.append(f"ok: {profile}: node {serving[0][0]} advertises "
                                f"{serving[0][1]} {resource} (device plugin)")
        elif devices[profile] and resource in classes:
            result.lines.append(f"ok: {profile}: {devices[profile]} MIG device(s) in "
                                f"ResourceSlices, served as {resource} by DeviceClass "
                                f"{classes[resource]}")
        elif devices[profile]:
            result.problem(f"{profile}: ResourceSlices hold {devices[profile]} MIG device(s) "
                           f"but no DeviceClass has extendedResourceName {resource}; apply "
                           "deploy/dra (Kubernetes 1.36+)")
        else:
            result.problem(f"no node or ResourceSlice offers MIG profile {profile} ({resource}); "
                           "Pods granted it stay Pending")
    largest = policy.mig_profiles[-1]
    if profile_for(policy.mig_profiles, policy.max_slices) is None:
        result.lines.append(f"note: slice counts past {largest} (CASTSLICE_MAX_SLICES="
                            f"{policy.max_slices}) leave Pods unchanged, with a warning")
    return result


def mig_devices(slices: Iterable[dict[str, Any]]) -> Counter[str]:
    """MIG devices per profile in ResourceSlices of the NVIDIA driver (v1 devices, or
    v1beta1's `basic`); the attribute is `profile` in the driver's domain."""
    found: Counter[str] = Counter()
    for item in slices:
        spec = mapping(item.get("spec"))
        driver = spec.get("driver")
        devices = spec.get("devices")
        for device in devices if isinstance(devices, list) else ():
            device = mapping(device)
            attributes = mapping(mapping(device.get("basic", device)).get("attributes"))
            key = "profile" if driver == DRIVER else f"{DRIVER}/profile"
            value = mapping(attributes.get(key, attributes.get(f"{DRIVER}/profile"))).get(
                "string")
            if isinstance(value, str):
                found[value] += 1
    return found


def diagnose_dra(documents: list[Any], policy: Policy) -> Diagnosis:
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
