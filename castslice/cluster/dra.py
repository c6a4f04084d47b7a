"""The resource.k8s.io/v1 objects the `mig` and `dra` back-ends rely on.

DeviceClasses (cluster-wide, `deploy/dra/`) give each MIG profile the extended resource name
the device plugin's mixed strategy uses, so a Pod the `mig` back-end rewrote schedules on
DRA nodes too (Kubernetes 1.36+, DRAExtendedResource). ResourceClaimTemplates (one set per
namespace, `castslice dra-templates`) are what the `dra` back-end's claims name; a missing
one leaves the Pod Pending without an error, which `castslice doctor` looks for.
"""

from collections import Counter
from collections.abc import Iterable
from typing import Any

from castslice.functions.mig import profile_for, resource_suffix
from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping

API_VERSION = "resource.k8s.io/v1"
DRIVER = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
GPU_CLASS = "gpu.nvidia.com"
SHARES = "shares"
"""The capacity the NVIDIA DRA driver announces with --consumable-shares=N (N per GPU)."""
LABELS = {"app.kubernetes.io/part-of": "castslice"}


def profile_selector(profile: str) -> str:
    """CEL matching the NVIDIA driver's MIG devices of one profile; `in` first, since
    reading an attribute a device lacks is an evaluation error, not a mismatch."""
    attributes = f"device.attributes['{DRIVER}']"
    return (f"device.driver == '{DRIVER}' && 'profile' in {attributes} && "
            f"{attributes}.profile == '{profile}'")


def device_classes(policy: Policy) -> list[dict[str, Any]]:
    """One DeviceClass per profile of the ladder, serving `<prefix><profile>` from DRA."""
    return [{"apiVersion": API_VERSION, "kind": "DeviceClass",
             "metadata": {"name": f"castslice-mig-{resource_suffix(profile)}",
                          "labels": LABELS},
             "spec": {"selectors": [{"cel": {"expression": profile_selector(profile)}}],
                      "extendedResourceName": policy.mig_resource(profile)}}
            for profile in policy.mig_profiles]


def slice_counts(policy: Policy) -> range:
    """Every slice count a Pod can be converted with: the slice-ratio annotation allows any
    up to CASTSLICE_MAX_SLICES, and presets, rules and the default stay within it; past what
    the devices offer (the ladder's largest profile, N shares) a Pod passes unchanged, so no
    template is needed there."""
    largest = policy.largest_slices()
    return range(1, min(policy.max_slices, largest or policy.max_slices) + 1)


def claim_templates(policy: Policy, namespaces: list[str]) -> list[dict[str, Any]]:
    """The template for each slice count in each namespace, as CASTSLICE_DRA_DEVICES says:
    a MIG device of the smallest fitting profile, or that many shares of a whole GPU
    (consumable capacity)."""
    return [{"apiVersion": API_VERSION, "kind": "ResourceClaimTemplate",
             "metadata": {"name": policy.dra_template(slices), "namespace": namespace,
                          "labels": LABELS},
             "spec": {"spec": {"devices": {"requests": [request(policy, slices)]}}}}
            for namespace in namespaces for slices in slice_counts(policy)]


def request(policy: Policy, slices: int) -> dict[str, Any]:
    """The device request of the template for `slices`: what the claim asks the driver."""
    if policy.dra_devices == "shares":
        return {"name": "gpu", "exactly": {"deviceClassName": GPU_CLASS,
                                           "capacity": {"requests": {SHARES: str(slices)}}}}
    profile = profile_for(policy.mig_profiles, slices) or policy.mig_profiles[-1]
    return {"name": "gpu", "exactly": {"deviceClassName": MIG_CLASS, "selectors": [
        {"cel": {"expression": profile_selector(profile)}}]}}


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


def gpu_shares(slices: Iterable[dict[str, Any]]) -> list[int]:
    """The most shares one claim may take of each device of the NVIDIA driver that announces
    consumable `shares` capacity (--consumable-shares=N: value N, requestPolicy.validRange
    max N), one entry per such device."""
    found = []
    for item in slices:
        spec = mapping(item.get("spec"))
        devices = spec.get("devices") if spec.get("driver") == DRIVER else None
        for device in devices if isinstance(devices, list) else ():
            shares = mapping(mapping(mapping(device).get("capacity")).get(SHARES))
            limit = mapping(mapping(shares.get("requestPolicy")).get("validRange")).get("max")
            count = whole_count(limit if limit is not None else shares.get("value"))
            if count:
                found.append(count)
    return found
