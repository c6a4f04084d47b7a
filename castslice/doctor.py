"""`castslice doctor`: can this cluster run the Pods CastSlice mutates?

The mig and dra back-ends are checked in doctor_dra. For extended, from
`kubectl get nodes -o json`: some node must advertise the target resource in its
allocatable (if none does, every mutated Pod stays Pending), and on nodes whose sharing
strategy is MPS the NVIDIA device plugin refuses a container asking for more than 1 shared
GPU (failRequestsGreaterThanOne is forced on there).
"""

from dataclasses import dataclass, field
from typing import Any

from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping, metadata_of
from castslice.podlist import objects_of

STRATEGY_LABEL = "nvidia.com/gpu.sharing-strategy"
STOCK_RENAMED = "nvidia.com/gpu.shared"


@dataclass
class Diagnosis:
    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def problem(self, text: str) -> None:
        self.ok = False
        self.lines.append(f"problem: {text}")


def largest_grant(policy: Policy) -> int:
    """The most slices CastSlice may give one GPU under this configuration."""
    rules = [r.slice_ratio or policy.presets.get(r.workload_type or "", 0) for r in policy.rules]
    return max([policy.max_slices, policy.default_slices, *policy.presets.values(), *rules])


def diagnose(documents: list[Any], policy: Policy) -> Diagnosis:
    """What stops the configured back-end from placing the Pods CastSlice converts."""
    if policy.backend != "extended":
        from castslice import doctor_dra

        check = doctor_dra.diagnose_mig if policy.backend == "mig" else doctor_dra.diagnose_dra
        return check(documents, policy)
    return _extended(documents, policy)


def _extended(documents: list[Any], policy: Policy) -> Diagnosis:
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
                f"asking for more than 1 {target} fails there (UnexpectedAdmissionError), and "
                f"CastSlice may grant up to {grant} per GPU; keep such Pods off MPS nodes or "
                "set CASTSLICE_MAX_SLICES=1 and every preset to 1")
    if not nodes:
        result.problem("no Node objects in the input (kubectl get nodes -o json)")
    return result
