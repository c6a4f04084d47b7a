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
from castslice.functions.mig import compute
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
    """Each grantable profile and how many of it one card holds (its compute slices into
    the ladder's largest)."""
    largest = compute(policy.mig_profiles[-1])
    return [(p, largest // compute(p)) for p in grantable_profiles(policy)]


def overshoot(policy: Policy, shared: int) -> float:
    """The most GPUs converted Pods can hold within the split's limits of `shared` GPUs:
    exactly `shared` under `extended`; under `mig` every profile full at once; under `dra`
    every device counted may be a whole GPU (N shares, or the largest profile)."""
    if policy.backend == "extended":
        return float(shared)
    if policy.backend == "mig":
        largest = compute(policy.mig_profiles[-1])
        return sum(count * shared * compute(p) / largest for p, count in _instances(policy))
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
        lines.append(f"# a ResourceQuota cannot bound these together: the namespace can hold "
                     f"up to {whole + overshoot(policy, shared):g} GPUs' worth (each limit "
                     f"alone stays within {shared})")
    return "\n".join(lines) + "\n"


def _devices_key(device_class: str) -> str:
    return f"{device_class}.deviceclass.resource.k8s.io/devices"


def bounds_converted(found: GpuQuota, policy: Policy) -> bool:
    """Whether the quota already limits every resource converted Pods hold."""
    hard = mapping(mapping(found.quota.get("spec")).get("hard"))
    return all(key in hard for key in per_gpu(policy))


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
