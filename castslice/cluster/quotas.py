"""GPU quotas that opting in cannot escape: ResourceQuota is evaluated on the Pod after
mutating admission, so a converted Pod asks a resource a namespace's GPU quota does not list
and holds GPUs past it. A ResourceQuota cannot bound a weighted sum of two resources, so a
namespace's N GPUs are split: K of them move to what the back-end converts to, N - K stay
whole (`castslice quotas`), and `doctor` names every quota still open.

Kubernetes counts an extended resource only as `requests.<name>`: a quota item `<name>` or
`limits.<name>` is accepted and never counted (no `status.used`; measured on v1.36.2). DRA
claims are counted as devices per DeviceClass, `<class>.deviceclass.resource.k8s.io/devices`.
"""

from dataclasses import dataclass
from typing import Any

from castslice.cluster.dra import GPU_CLASS, MIG_CLASS, grantable_profiles
from castslice.functions.mig import instances_per_card
from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping, metadata_of

KEPT_METADATA = ("name", "namespace", "labels", "annotations")


@dataclass(frozen=True)
class GpuQuota:
    """A ResourceQuota that limits whole GPUs: where, how many, and under which key."""

    quota: dict[str, Any]
    namespace: str
    name: str
    key: str
    gpus: int

    @property
    def counted(self) -> bool:
        """Whether Kubernetes counts the key at all (only `requests.<name>` for extended)."""
        return self.key.startswith("requests.")


def gpu_quotas(quotas: list[dict[str, Any]], policy: Policy) -> list[GpuQuota]:
    """The quotas whose `spec.hard` limits the source resource, in input order."""
    found = []
    source = policy.source_resource
    for quota in quotas:
        hard = mapping(mapping(quota.get("spec")).get("hard"))
        for key in (f"requests.{source}", source, f"limits.{source}"):
            gpus = whole_count(hard.get(key))
            if gpus is not None:
                metadata = metadata_of(quota)
                found.append(GpuQuota(quota, str(metadata.get("namespace", "default")),
                                      str(metadata.get("name", "?")), key, gpus))
                break
    return found


def per_gpu(policy: Policy) -> dict[str, int]:
    """What one whole GPU moved to the converted side becomes, as quota items, as tight as
    a ResourceQuota can say it: under `extended` exact (its units); under `mig` each
    grantable profile bounded alone (the instances of it one card holds); under `dra` the
    devices of the templates' DeviceClass (shares: one device per claim, whatever its
    shares; MIG: one per instance, as many as the smallest profile fits)."""
    units = policy.slices_per_gpu or 0
    if policy.backend == "extended":
        return {f"requests.{policy.target_resource}": units}
    if policy.backend == "mig":
        return {f"requests.{policy.mig_resource(p)}": count for p, count in _instances(policy)}
    if policy.dra_devices == "shares":
        return {_devices_key(GPU_CLASS): units}
    return {_devices_key(MIG_CLASS): _instances(policy)[0][1]}


def counts_units(policy: Policy) -> bool:
    """Whether the split counts in units of a GPU (time-slicing replicas or DRA shares),
    which only CASTSLICE_SLICES_PER_GPU says."""
    return policy.backend == "extended" or (policy.backend == "dra"
                                            and policy.dra_devices == "shares")


def _instances(policy: Policy) -> list[tuple[str, int]]:
    """Each grantable profile and how many of it one card holds (mig.instances_per_card:
    compute and memory slices both)."""
    return [(p, instances_per_card(p, policy.mig_profiles)) for p in grantable_profiles(policy)]


def overshoot(policy: Policy, shared: int) -> float:
    """The most cards converted Pods can fill within the split's limits of `shared` GPUs:
    exactly `shared` under `extended`; under `mig` every profile full at once (each limit
    is `shared` cards of that profile); under `dra` every device counted may be a whole GPU
    (N shares, or the largest profile)."""
    if policy.backend == "extended":
        return float(shared)
    if policy.backend == "mig":
        return float(len(_instances(policy)) * shared)
    return float(sum(per_gpu(policy).values()) * shared)


def promise(found: GpuQuota, policy: Policy, shared: int) -> str:
    """What the split quota promises, as comment lines to print above it."""
    whole = found.gpus - shared
    moved = ", ".join(f"{count} {key}" for key, count in per_gpu(policy).items())
    lines = [f"# {found.namespace}/{found.name}: {found.gpus} GPU(s), {whole} kept whole and "
             f"{shared} moved to {moved} per GPU"]
    if not found.counted:
        lines.append(f"# was {found.key}, which Kubernetes never counts: now "
                     f"requests.{policy.source_resource}")
    if policy.backend == "extended":
        lines.append(f"# whole GPUs + units/{policy.slices_per_gpu} <= {found.gpus}, exactly")
    else:
        lines.append(f"# a ResourceQuota cannot bound these together: the namespace can fill "
                     f"up to {whole + overshoot(policy, shared):g} cards (each limit alone "
                     f"stays within {shared})")
    return "\n".join(lines) + "\n"


def _devices_key(device_class: str) -> str:
    return f"{device_class}.deviceclass.resource.k8s.io/devices"


def bounds_converted(found: GpuQuota, policy: Policy) -> bool:
    """Whether the quota already limits every resource converted Pods hold."""
    hard = mapping(mapping(found.quota.get("spec")).get("hard"))
    return all(key in hard for key in per_gpu(policy))


def charged_as_source(policy: Policy, classes: list[dict[str, Any]]) -> str | None:
    """The DeviceClass whose claims Kubernetes charges as the source resource too (its
    `extendedResourceName`, with DRAExtendedResource, beta and on in 1.36:
    pkg/quota/v1/evaluator/core/resource_claims.go), where CastSlice's templates name it:
    then a quota of whole GPUs counts every claim, and nothing escapes."""
    if policy.backend != "dra":
        return None
    wanted = GPU_CLASS if policy.dra_devices == "shares" else MIG_CLASS
    for item in classes:
        spec = mapping(item.get("spec"))
        if (metadata_of(item).get("name") == wanted
                and spec.get("extendedResourceName") == policy.source_resource):
            return wanted
    return None


def split(found: GpuQuota, policy: Policy, shared: int) -> dict[str, Any]:
    """The same ResourceQuota with `shared` of its GPUs moved to what the back-end converts
    to; every other hard limit, label and annotation kept, server-set fields dropped."""
    quota = found.quota
    metadata = {k: v for k, v in metadata_of(quota).items() if k in KEPT_METADATA}
    spec = dict(mapping(quota.get("spec")))
    hard = {k: v for k, v in mapping(spec.get("hard")).items() if k != found.key}
    hard[f"requests.{policy.source_resource}"] = str(found.gpus - shared)
    hard |= {k: str(v * shared) for k, v in per_gpu(policy).items()}
    spec["hard"] = hard
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": metadata, "spec": spec}
