"""doctor for memory asks, under every back-end: is the memory CastSlice grants them from
what the cluster's GPUs really hold?

A memory ask gets the smallest grant whose memory holds it: a MIG profile's real memory
(the card model, `castslice/functions/memory.py`, or CASTSLICE_MIG_MEMORY), or units of
CASTSLICE_GPU_MEMORY. If the devices hold less, a Pod may be given less memory than it
asked for. What they hold: the `memory` capacity the NVIDIA DRA driver publishes in
ResourceSlices (dra-driver-nvidia-gpu cmd/gpu-kubelet-plugin/mig.go), and GPU feature
discovery's `nvidia.com/gpu.memory` node label, in MiB.
"""

from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.dra import device_memory, grantable_profiles
from castslice.cluster.objects import objects_of
from castslice.functions.memory import UNVERIFIED, MiB, base, gib
from castslice.functions.policy import Policy
from castslice.functions.quantity import whole_count
from castslice.functions.reviews import mapping, metadata_of

MEMORY_LABEL = "nvidia.com/gpu.memory"
"""GPU feature discovery's label: a node's GPU memory in MiB."""


def check(documents: list[Any], policy: Policy, result: Diagnosis) -> None:
    """MIG profiles against their devices' memory, or CASTSLICE_GPU_MEMORY against the GPUs'."""
    held = device_memory(objects_of(documents, "ResourceSlice"))
    if policy.mig_devices:
        _profiles(held, policy, result)
        return
    labelled = [n * MiB for node in objects_of(documents, "Node")
                if (n := whole_count(mapping(metadata_of(node).get("labels")).get(MEMORY_LABEL)))]
    cards = held.get("gpu", []) + labelled
    if policy.gpu_memory is None:
        if cards:
            result.lines.append(f"note: memory asks (castops.io/gpu-memory) pass unchanged "
                                f"until CASTSLICE_GPU_MEMORY is set; the smallest GPU here "
                                f"holds {gib(min(cards))}")
    elif cards and min(cards) < policy.gpu_memory:
        result.problem(f"a GPU holds {gib(min(cards))}, less than CASTSLICE_GPU_MEMORY="
                       f"{gib(policy.gpu_memory)}: memory asks may be granted too few units; "
                       f"set CASTSLICE_GPU_MEMORY={min(cards) // MiB}Mi")
    elif cards:
        result.lines.append(f"ok: memory asks: every GPU holds at least CASTSLICE_GPU_MEMORY="
                            f"{gib(policy.gpu_memory)}")


def _profiles(held: dict[str, list[int]], policy: Policy, result: Diagnosis) -> None:
    """Each profile a memory ask can get, by what its devices publish: one line for those
    that hold what the model says, one for each that does not or is unknown."""
    model = policy.profile_memory
    checked = []
    for profile in grantable_profiles(policy):
        devices = held.get(profile, [])
        if base(profile) not in model:
            seen = f" (its devices hold {gib(min(devices))})" if devices else ""
            result.lines.append(f"note: memory asks never get {profile}: its memory is "
                                f"unknown{seen}; set CASTSLICE_MIG_MEMORY={base(profile)}="
                                f"{min(devices) // MiB if devices else '<MiB>'}Mi")
        elif devices and min(devices) < model[base(profile)]:
            result.problem(f"MIG devices of {profile} hold {gib(min(devices))}, less than the "
                           f"{gib(model[base(profile)])} memory asks are granted it for; set "
                           f"CASTSLICE_MIG_MEMORY={base(profile)}={min(devices) // MiB}Mi")
        elif devices:
            checked.append(f"{profile} {gib(min(devices))}")
        elif base(profile) in UNVERIFIED and base(profile) not in policy.mig_memory:
            result.lines.append(f"note: {profile}'s memory ({gib(model[base(profile)])}) is "
                                "computed, not read off a card: no device publishes it here to "
                                "check; set CASTSLICE_MIG_MEMORY from nvidia-smi mig -lgip")
    if checked:
        result.lines.append(f"ok: memory asks: MIG devices hold at least what they are granted "
                            f"for ({', '.join(checked)})")
