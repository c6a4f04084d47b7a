"""doctor for every back-end, from `kubectl get daemonsets -A -o json`: once CastSlice has
converted a Pod, dcgm-exporter attributes its GPU only if told to, and `castslice recommend`
(and the dashboard's shared-GPU row) stop seeing it. The exporter maps Pods for
`nvidia.com/gpu`, `nvidia.com/mig-*` and the names in NVIDIA_RESOURCE_NAMES; on a shared GPU
each Pod gets its own series only with KUBERNETES_VIRTUAL_GPUS=true; DRA claims only with
KUBERNETES_ENABLE_DRA=true (NVIDIA/dcgm-exporter `internal/pkg/transformation/kubernetes.go`,
`pkg/cmd/app.go`)."""

from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.objects import objects_of
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of

IMAGE = "dcgm-exporter"
MAPPED = ("nvidia.com/gpu", "nvidia.com/mig-")


def check(documents: list[Any], policy: Policy, result: Diagnosis) -> None:
    """One line per dcgm-exporter DaemonSet in the input: what it must be set to see the
    Pods this configuration converts."""
    for daemonset in objects_of(documents, "DaemonSet"):
        spec = mapping(mapping(mapping(daemonset.get("spec")).get("template")).get("spec"))
        containers = spec.get("containers")
        for container in containers if isinstance(containers, list) else ():
            if IMAGE in str(mapping(container).get("image", "")):
                where = (f"dcgm-exporter DaemonSet {metadata_of(daemonset).get('namespace', '?')}"
                         f"/{metadata_of(daemonset).get('name', '?')}")
                missing = _missing(_env(container), policy)
                result.lines.append(
                    f"warning: {where} does not attribute converted Pods: set "
                    f"{', '.join(missing)} (castslice recommend reads its per-Pod series)"
                    if missing else f"ok: {where} attributes the Pods CastSlice converts")


def _env(container: Any) -> dict[str, str]:
    listed = mapping(container).get("env")
    return {str(e.get("name")): str(e.get("value", "")) for e in listed
            if isinstance(e, dict)} if isinstance(listed, list) else {}


def _missing(env: dict[str, str], policy: Policy) -> list[str]:
    """The settings the exporter lacks for this back-end, as NAME=value."""
    if policy.backend == "dra":
        return [] if _true(env.get("KUBERNETES_ENABLE_DRA")) else [
            "KUBERNETES_ENABLE_DRA=true"]
    if policy.backend == "mig":
        if policy.mig_resource_prefix == MAPPED[1]:
            return []
        wanted = [policy.mig_resource(p) for p in policy.mig_profiles]
    else:
        wanted = [policy.target_resource]
    names = [n.strip() for n in env.get("NVIDIA_RESOURCE_NAMES", "").split(",") if n.strip()]
    found = [] if all(w in names for w in wanted) else [
        "NVIDIA_RESOURCE_NAMES=" + ",".join(dict.fromkeys([*names, *wanted]))]
    if policy.backend == "extended" and not _true(env.get("KUBERNETES_VIRTUAL_GPUS")):
        found.append("KUBERNETES_VIRTUAL_GPUS=true")
    return found


def _true(value: str | None) -> bool:
    """As the exporter's flags read a boolean (Go's strconv.ParseBool)."""
    return (value or "").strip() in ("1", "t", "T", "true", "TRUE", "True")
