"""doctor for `extended`, from `kubectl get nodes -o json`.

Some node must advertise the target resource in its allocatable (if none does, every
mutated Pod stays Pending); on nodes whose sharing strategy is MPS the NVIDIA device plugin
v0.20.0 refuses a container asking for more than 1 shared GPU unless the config sets
failRequestsGreaterThanOne: false (it defaults to true under MPS, api/config/v1/config.go);
and on nodes with several GPUs (GPU feature discovery's nvidia.com/gpu.count) a container
granted more than one unit can see several GPUs whatever the allocation policy: the default
`distributed` spreads its units, and `packed` takes the fullest GPU with a free unit first
without checking that the whole request fits there, so the rest spill onto a second GPU
(k8s-device-plugin internal/rm/allocate.go).
"""

from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis, largest_grant
from castslice.cluster.objects import objects_of
from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping, metadata_of

STRATEGY_LABEL = "nvidia.com/gpu.sharing-strategy"
COUNT_LABEL = "nvidia.com/gpu.count"
"""GPU feature discovery's count of physical GPUs on the node."""
STOCK_RENAMED = "nvidia.com/gpu.shared"


def check(documents: list[Any], policy: Policy) -> Diagnosis:
    """What stops nodes from placing the Pods `extended` converts, and what they would see."""
    nodes = objects_of(documents, "Node")
    result = Diagnosis()
    target = policy.target_resource
    serving = []
    for node in nodes:
        name = metadata_of(node).get("name", "?")
        allocatable = mapping(mapping(node.get("status")).get("allocatable"))
        count = whole_count(allocatable.get(target))
        if count:
            serving.append(node)
            result.lines.append(f"ok: node {name} advertises {count} {target}")
    if not serving:
        result.problem(f"no node advertises {target} in its allocatable; every Pod CastSlice "
                       "mutates would stay Pending")
        renamed = any(whole_count(mapping(mapping(n.get("status")).get("allocatable")).get(
            STOCK_RENAMED)) for n in nodes)
        if renamed and target != STOCK_RENAMED:
            result.lines.append(f"hint: nodes advertise {STOCK_RENAMED} (the device plugin's "
                                f"renameByDefault): set CASTSLICE_TARGET_RESOURCE={STOCK_RENAMED}")
    grant = largest_grant(policy)
    for node in serving:
        labels = mapping(metadata_of(node).get("labels"))
        if labels.get(STRATEGY_LABEL) == "mps" and grant > 1:
            result.lines.append(
                f"warning: node {metadata_of(node).get('name', '?')} shares by MPS: a container "
                f"asking for more than 1 {target} fails there (UnexpectedAdmissionError) unless "
                "the plugin config sets failRequestsGreaterThanOne: false (true by default "
                f"under MPS), and CastSlice may grant up to {grant} per GPU ({_grants(policy)}); "
                "keep such Pods off MPS nodes or set CASTSLICE_MAX_SLICES=1 and every preset "
                "to 1")
        gpus = whole_count(labels.get(COUNT_LABEL))
        if gpus and gpus > 1 and grant > 1:
            result.problem(
                f"node {metadata_of(node).get('name', '?')} has {gpus} GPUs ({COUNT_LABEL}) "
                f"and CastSlice may grant up to {grant} {target} to one container "
                f"({_grants(policy)}): such a container can see up to {min(gpus, grant)} GPUs "
                "(`distributed` spreads its units, `packed` spills what the fullest GPU cannot "
                "hold); grant 1 everywhere (CASTSLICE_MAX_SLICES=1, every preset 1) with "
                "failRequestsGreaterThanOne: true and density from the plugin's replicas "
                "(deploy/examples/device-plugin-time-slicing.yaml), or use the mig or dra "
                "back-end")
    if not nodes:
        result.problem("no Node objects in the input (kubectl get nodes -o json)")
    return result


def _grants(policy: Policy) -> str:
    """The settings that let one container get more than one unit, by name."""
    named = [f"CASTSLICE_MAX_SLICES={policy.max_slices}"] if policy.max_slices > 1 else []
    if policy.default_slices > 1:
        named.append(f"CASTSLICE_DEFAULT_SLICES={policy.default_slices}")
    above = [f"{name}={count}" for name, count in policy.presets.items() if count > 1]
    if above:
        named.append("presets " + ", ".join(above))
    ratios = [r.name for r in policy.rules if (r.slice_ratio or policy.presets.get(
        r.workload_type or "", 0)) > 1]
    if ratios:
        named.append("rules " + ", ".join(ratios))
    return "; ".join(named)
