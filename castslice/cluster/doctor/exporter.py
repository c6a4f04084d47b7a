"""doctor for every back-end, from `kubectl get daemonsets -A -o json`: once CastSlice has
converted a Pod, dcgm-exporter attributes its GPU only if told to, and `castslice recommend`
(and the dashboard's shared-GPU row) stop seeing it. The exporter maps Pods for
`nvidia.com/gpu`, `nvidia.com/mig-*` and the names in NVIDIA_RESOURCE_NAMES; on a shared GPU
each Pod gets its own series only with KUBERNETES_VIRTUAL_GPUS=true; DRA claims only with
KUBERNETES_ENABLE_DRA=true (NVIDIA/dcgm-exporter `internal/pkg/transformation/kubernetes.go`,
`pkg/cmd/app.go`).

Per-Pod values on a shared GPU need more than the settings (read at d5e5f51, 4.5.3-4.8.2):
per-process values start at 4.5.3-4.8.2 (fb5e3dc); before, KUBERNETES_VIRTUAL_GPUS copies the
GPU's value to every Pod on it. They map host PIDs to Pods through /proc/<pid>/cgroup
(`pidmapper.go`), so the DaemonSet needs `hostPID: true` (the exporter's chart defaults to
false); when mapping fails, each Pod is written 0. Its DRA mapping watches
`resource.k8s.io/v1beta1` ResourceSlices (`dra.go`), which Kubernetes 1.36 does not serve by
default, keys MIG devices by their parent GPU (never matching a MIG series), and is skipped
when KUBERNETES_VIRTUAL_GPUS is set."""

import re
from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.objects import objects_of
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of

IMAGE = "dcgm-exporter"
MAPPED = ("nvidia.com/gpu", "nvidia.com/mig-")
PER_PROCESS = (4, 8, 2)
"""The exporter version (the tag's second part: 4.5.3-4.8.2) with per-process values."""
_TAG = re.compile(r":\d+\.\d+\.\d+-(\d+)\.(\d+)\.(\d+)(?:-[\w.]+)?$")


def check(documents: list[Any], policy: Policy, result: Diagnosis) -> None:
    """One line per dcgm-exporter DaemonSet in the input: what it must be set to see the
    Pods this configuration converts, and what converted Pods will look like otherwise."""
    for daemonset in objects_of(documents, "DaemonSet"):
        spec = mapping(mapping(mapping(daemonset.get("spec")).get("template")).get("spec"))
        containers = spec.get("containers")
        for container in containers if isinstance(containers, list) else ():
            image = str(mapping(container).get("image", ""))
            if IMAGE not in image:
                continue
            where = (f"dcgm-exporter DaemonSet {metadata_of(daemonset).get('namespace', '?')}"
                     f"/{metadata_of(daemonset).get('name', '?')}")
            env = _env(container)
            missing = _missing(env, policy)
            problems = _shared_gpu(image, spec, env, policy)
            for problem in problems:
                result.problem(f"{where}: {problem}")
            if missing:
                result.lines.append(f"warning: {where} does not attribute converted Pods: set "
                                    f"{', '.join(missing)} (castslice recommend reads its "
                                    "per-Pod series)")
            elif not problems:
                result.lines.append(f"ok: {where} attributes the Pods CastSlice converts")


def _shared_gpu(image: str, spec: dict[str, Any], env: dict[str, str],
                policy: Policy) -> list[str]:
    """Why converted Pods sharing a GPU would not get their own values from this exporter."""
    if policy.backend == "dra":
        return ["its DRA mapping watches resource.k8s.io/v1beta1 ResourceSlices, which "
                "Kubernetes 1.36 serves only with --runtime-config=resource.k8s.io/v1beta1=true "
                "(it waits for them with no timeout), never attributes DRA MIG devices, and is "
                "skipped under KUBERNETES_VIRTUAL_GPUS: converted Pods get no series of their "
                "own; recommend sees only GPUs"]
    if policy.backend != "extended":
        return []  # a MIG device is the Pod's own: no per-process values needed
    found = []
    version = _TAG.search(image)
    if version is None:
        found.append(f"cannot tell the version of {image.rsplit('/', 1)[-1]}: per-Pod values "
                     "on a shared GPU need 4.5.3-4.8.2 or later (set a version tag)")
    elif tuple(map(int, version.groups())) < PER_PROCESS:
        found.append(f"{image.rsplit(':', 1)[-1]} copies a shared GPU's value to every Pod on "
                     "it (per-process values start at 4.5.3-4.8.2): each converted Pod is "
                     "charged the whole GPU's use and memory; upgrade the exporter")
    if spec.get("hostPID") is not True:
        found.append("hostPID is not true: it cannot map processes to Pods, and writes 0 for "
                     "each converted Pod (recommend would pack them as idle); set hostPID: "
                     "true")
    return found


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
