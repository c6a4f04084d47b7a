"""The resource.k8s.io/v1 objects the `mig` and `dra` back-ends rely on.

DeviceClasses (cluster-wide, `deploy/dra/`) give each MIG profile the extended resource name
the device plugin's mixed strategy uses, so a Pod the `mig` back-end rewrote schedules on
DRA nodes too (Kubernetes 1.36+, DRAExtendedResource). ResourceClaimTemplates (one set per
namespace, `castslice dra-templates`) are what the `dra` back-end's claims name; a missing
one leaves the Pod Pending without an error, which `castslice doctor` looks for.
"""

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from castslice.functions.mig import profile_for, resource_suffix
from castslice.functions.policy import Policy
from castslice.functions.quantity import parse_quantity, whole_count
from castslice.functions.reviews import mapping

API_VERSION = "resource.k8s.io/v1"
DRIVER = "gpu.nvidia.com"
MIG_CLASS = "mig.nvidia.com"
GPU_CLASS = "gpu.nvidia.com"
SHARES = "shares"
"""The capacity the NVIDIA DRA driver announces with --consumable-shares=N (N per GPU)."""
LABELS = {"app.kubernetes.io/part-of": "castslice"}
PROBE = "castslice-capacity-probe"
"""The template doctor sends as a server-side dry run: what the API server keeps of it."""


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


def grantable_profiles(policy: Policy) -> list[str]:
    """The profiles of the ladder some slice count converts to, smallest first."""
    return list(dict.fromkeys(p for s in slice_counts(policy)
                              if (p := profile_for(policy.mig_profiles, s)) is not None))


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


def as_stored(spec: Any) -> dict[str, Any]:
    """A template's spec as the API server stores it, so what `dra-templates` printed
    compares equal to what the server returns: the claims' `metadata` is written (empty), and
    every `exactly` request gets `allocationMode: ExactCount` and, with it, `count: 1`
    (kubernetes pkg/apis/resource/v1/defaults.go, SetDefaults_ExactDeviceRequest; measured
    on v1.36.2)."""
    stored = {"metadata": {}, **mapping(spec)}
    claim = dict(mapping(stored.get("spec")))
    devices = dict(mapping(claim.get("devices")))
    requests = devices.get("requests")
    if isinstance(requests, list):
        devices["requests"] = [_defaulted(r) for r in requests]
    claim["devices"] = devices
    stored["spec"] = claim
    return stored


def _defaulted(request: Any) -> Any:
    exactly = mapping(request).get("exactly")
    if not isinstance(exactly, dict):
        return request
    filled = {"allocationMode": "ExactCount", **exactly}
    if filled["allocationMode"] == "ExactCount":
        filled.setdefault("count", 1)
    return {**request, "exactly": filled}


def asks_capacity(spec: Any) -> bool:
    """Whether a template's requests still ask for consumable capacity: an API server with
    DRAConsumableCapacity off (alpha, off in 1.34 and 1.35) drops `exactly.capacity` when it
    stores the template (resourceclaimtemplate strategy,
    dropDisabledDRAResourceClaimConsumableCapacityFields), and the claim takes a whole GPU."""
    requests = mapping(mapping(mapping(spec).get("spec")).get("devices")).get("requests")
    return any("capacity" in mapping(mapping(r).get("exactly"))
               for r in (requests if isinstance(requests, list) else ()))


def capacity_probe(policy: Policy, namespace: str) -> dict[str, Any]:
    """One shares template under a name no claim uses, for a server-side dry run: whether
    the server keeps capacity shows before any template is applied."""
    (template,) = claim_templates(policy, [namespace])[:1]
    return {**template, "metadata": {**template["metadata"], "name": PROBE}}


def _devices(slices: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], Any]]:
    """Each device of the NVIDIA driver in the ResourceSlices (v1 devices, or v1beta1's
    `basic`), with a reader of its attributes by name in the driver's domain."""
    for item in slices:
        spec = mapping(item.get("spec"))
        devices = spec.get("devices") if spec.get("driver") == DRIVER else None
        for device in devices if isinstance(devices, list) else ():
            device = mapping(mapping(device).get("basic", device))
            attributes = mapping(device.get("attributes"))
            yield device, lambda name, found=attributes: mapping(
                found.get(name, found.get(f"{DRIVER}/{name}"))).get("string")


def mig_devices(slices: Iterable[dict[str, Any]]) -> Counter[str]:
    """MIG devices per profile in ResourceSlices of the NVIDIA driver; the attribute is
    `profile` in the driver's domain."""
    found: Counter[str] = Counter()
    for _, attribute in _devices(slices):
        value = attribute("profile")
        if isinstance(value, str):
            found[value] += 1
    return found


def gpu_shares(slices: Iterable[dict[str, Any]]) -> list[int]:
    """The most shares one claim may take of each whole GPU that announces consumable
    `shares` capacity (--consumable-shares=N: value N, requestPolicy.validRange max N), one
    entry per such device. Only devices of `type` gpu count: the DeviceClass the shares
    templates name selects `device.attributes['gpu.nvidia.com'].type == 'gpu'`, while the
    driver announces shares on static MIG devices too (dra-driver-nvidia-gpu
    cmd/gpu-kubelet-plugin/allocatable.go)."""
    found = []
    for device, attribute in _devices(slices):
        if attribute("type") != "gpu":
            continue
        shares = mapping(mapping(device.get("capacity")).get(SHARES))
        limit = mapping(mapping(shares.get("requestPolicy")).get("validRange")).get("max")
        count = whole_count(limit if limit is not None else shares.get("value"))
        if count:
            found.append(count)
    return found


def device_memory(slices: Iterable[dict[str, Any]]) -> dict[str, list[int]]:
    """The `memory` capacity (bytes) of the NVIDIA driver's devices, by MIG profile, and of
    whole GPUs under "gpu": NVML's memorySizeMB x 2^20 for a MIG device, the card's total
    for a GPU (dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin/mig.go, partitions.go)."""
    found: dict[str, list[int]] = {}
    for device, attribute in _devices(slices):
        size = parse_quantity(mapping(mapping(device.get("capacity")).get("memory")).get("value"))
        kind = attribute("type")
        key = attribute("profile") if kind == "mig" else kind if kind == "gpu" else None
        if isinstance(key, str) and size:
            found.setdefault(key, []).append(int(size))
    return found
