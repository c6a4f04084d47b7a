"""doctor for `mig`, from `kubectl get nodes,resourceslices,deviceclasses -o json`.

Every profile the configuration can grant must be offered somewhere: by a node's device
plugin (allocatable `nvidia.com/mig-<profile>`) or by a DRA driver's ResourceSlice with a
DeviceClass serving that name.
"""

from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.dra import grantable_profiles, mig_devices
from castslice.cluster.objects import objects_of
from castslice.functions.mig import profile_for
from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping, metadata_of
from castslice.functions.text import text_or_empty


def check(documents: list[Any], policy: Policy) -> Diagnosis:
    """Whether every profile the configuration can grant is offered by a node or by DRA."""
    result = Diagnosis()
    nodes = objects_of(documents, "Node")
    devices = mig_devices(objects_of(documents, "ResourceSlice"))
    classes = {text_or_empty(mapping(c.get("spec")).get("extendedResourceName")):
               text_or_empty(metadata_of(c).get("name"))
               for c in objects_of(documents, "DeviceClass")}
    if not nodes and not devices:
        result.problem("no Node or ResourceSlice objects in the input (kubectl get "
                       "nodes,resourceslices,deviceclasses -o json)")
    for profile in grantable_profiles(policy):
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
