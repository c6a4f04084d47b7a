"""The resource.k8s.io/v1 objects the `mig` and `dra` back-ends rely on.

DeviceClasses (cluster-wide, `deploy/dra/`) give each MIG profile the extended resource name
the device plugin's mixed strategy uses, so a Pod the `mig` back-end rewrote schedules on
DRA nodes too (Kubernetes 1.36+, DRAExtendedResource). ResourceClaimTemplates (one set per
namespace, `castslice dra-templates`) are what the `dra` back-end's claims name; a missing
one leaves the Pod Pending without an error, which `castslice doctor` looks for.
"""

from typing import Any

from castslice.functions.mig import compute, profile_for
from castslice.functions.policy import Policy

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
             "metadata": {"name": f"castslice-mig-{profile}", "labels": LABELS},
             "spec": {"selectors": [{"cel": {"expression": profile_selector(profile)}}],
                      "extendedResourceName": policy.mig_resource(profile)}}
            for profile in policy.mig_profiles]


def slice_counts(policy: Policy) -> range:
    """Every slice count a Pod can be granted: the slice-ratio annotation allows any up to
    CASTSLICE_MAX_SLICES, and presets, rules and the default stay within it."""
    return range(1, policy.max_slices + 1)


def claim_templates(policy: Policy, namespaces: list[str],
                    shared: bool = False) -> list[dict[str, Any]]:
    """The template for each slice count in each namespace: a MIG device of the smallest
    fitting profile (counts past the ladder have none), or with `shared` that many shares
    of a whole GPU (consumable capacity)."""
    templates = []
    for namespace in namespaces:
        for slices in slice_counts(policy):
            request = _shared_request(slices) if shared else _mig_request(policy, slices)
            if request is not None:
                templates.append({
                    "apiVersion": API_VERSION, "kind": "ResourceClaimTemplate",
                    "metadata": {"name": policy.dra_template(slices), "namespace": namespace,
                                 "labels": LABELS},
                    "spec": {"spec": {"devices": {"requests": [request]}}}})
    return templates


def _mig_request(policy: Policy, slices: int) -> dict[str, Any] | None:
    profile = profile_for(policy.mig_profiles, slices)
    if profile is None:
        return None
    return {"name": "gpu", "exactly": {"deviceClassName": MIG_CLASS, "selectors": [
        {"cel": {"expression": profile_selector(profile)}}]}}


def _shared_request(slices: int) -> dict[str, Any]:
    return {"name": "gpu", "exactly": {"deviceClassName": GPU_CLASS,
                                       "capacity": {"requests": {SHARES: str(slices)}}}}


def templates_missing_mig(policy: Policy) -> list[int]:
    """Slice counts whose MIG template cannot exist: past the ladder's largest profile."""
    largest = compute(policy.mig_profiles[-1])
    return [s for s in slice_counts(policy) if s > largest]
