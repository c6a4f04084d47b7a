"""The quota guard's word (SPEC §9, tenancy): a Pod is left whole where a ResourceQuota of its
namespace limits the source but would not count what the Pod converts to, so opting in never
lifts a namespace past its GPU quota.

CastSlice reads no quota itself (it is stateless, with no API access): the guard, an admission
policy that the API server evaluates once per ResourceQuota of the Pod's namespace before any
webhook, writes `castops.io/quota-guard: "<quota>=<key>|<key>;..."`, one entry per quota
limiting `requests.<source>`, listing the `requests.*` and DeviceClass keys it counts. A
converted Pod is charged under one of `counted_as`'s keys, as Kubernetes counts it
(pkg/quota/v1/evaluator/core: extended resources as `requests.<name>`; claims as
`<class>.deviceclass.resource.k8s.io/devices`, and as the class's `extendedResourceName`
too, which NVIDIA's driver chart sets to nvidia.com/gpu on gpu.nvidia.com).
"""

from collections.abc import Mapping

from castslice.functions.annotations import QUOTA_GUARD
from castslice.functions.mig import profile_for
from castslice.functions.policy import Policy

DEVICES = ".deviceclass.resource.k8s.io/devices"
MIG_CLASS = "mig.nvidia.com"
GPU_CLASS = "gpu.nvidia.com"
"""The DeviceClasses CastSlice's ResourceClaimTemplates name (NVIDIA's DRA driver)."""


def counted_as(policy: Policy, slices: int) -> frozenset[str]:
    """The quota keys under which a Pod converted to `slices` per GPU is charged."""
    if policy.backend == "extended":
        return frozenset({f"requests.{policy.target_resource}"})
    if policy.backend == "mig":
        profile = profile_for(policy.mig_profiles, slices) or policy.mig_profiles[-1]
        return frozenset({f"requests.{policy.mig_resource(profile)}"})
    if policy.dra_devices == "mig":
        return frozenset({MIG_CLASS + DEVICES})
    return frozenset({GPU_CLASS + DEVICES, f"requests.{policy.source_resource}"})


def escaping_quota(annotations: Mapping[str, object], policy: Policy,
                   slices: int) -> str | None:
    """The first quota the guard named that would not count the converted Pod, if any."""
    value = annotations.get(QUOTA_GUARD)
    if not isinstance(value, str) or not value:
        return None
    counted = counted_as(policy, slices)
    for entry in value.split(";"):
        name, _, keys = entry.partition("=")
        if not counted & set(keys.split("|")):
            return name
    return None
