"""Memory asks (`castops.io/gpu-memory`, a rule's `gpuMemory`): the card model's memory, and
the smallest grant whose memory holds an ask.

A MIG profile's name carries its memory rounded up (go-nvlib `getMigMemorySizeGB` rounds the
memory fraction up to eighths of the card and scales the card's whole GiB), so an instance
holds less than its name says: `2g.10gb` on an A100-40GB is 9856 MiB, not 10 GiB. The table
below is each profile's real memory, the smallest figure found for it (a profile name shared
by several cards, 1g.10gb on the A100-40GB, A100-80GB and H100-80GB, takes the smallest of
theirs), so a grant chosen from it holds the ask on each of those cards:

- A100-40GB, A100-80GB, A30: NVML's `memorySizeMB` in go-nvml's mock GPUs
  (`pkg/nvml/mock/gpus/a100.go`, `a30.go`; "Update mock dgxa100 server with real values",
  b72647c), below `nvidia-smi mig -lgip` as widely quoted for the A100-40GB (4.75, 9.75,
  19.62, 39.38 GiB) and as published for an H100-80GB (9.75, 19.62, 39.50, 79.25 GiB).
- H200: `nvidia-smi mig -lgip` on an H200 (NVIDIA/mig-parted#120): 16.00, 32.25, 69.50,
  139.75 GiB.
- RTX PRO 6000 Blackwell: `nvidia-smi mig -lgip` (bigstack-oss/cubecos#312: 23.12 and
  46.50 GiB; GoogleCloudPlatform/container-engine-accelerators#564 printed 23.62 for 1g).
  Its 4g.96gb is not in the table: no printed figure was found. Set it with
  CASTSLICE_MIG_MEMORY.

Drivers differ (an A100-80GB named its 3g profile 3g.39gb on drivers 535 and 545,
NVIDIA/mig-parted#31), so CASTSLICE_MIG_MEMORY overrides the table, and `castslice doctor`
compares it with the `memory` capacity the NVIDIA DRA driver publishes for each MIG device
(NVML's memorySizeMB x 2^20, cmd/gpu-kubelet-plugin/mig.go).

Time-slicing isolates no memory: there an ask sets density (how many Pods share a card of
known memory), not a limit; MPS gives each client 1/R of the card. Either way the fewest of
the card's R units whose share holds the ask is the grant.
"""

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from castslice.functions.mig import compute
from castslice.functions.quantity import parse_quantity

MiB = 2**20
GiB = 2**30

PROFILE_MEMORY: Mapping[str, int] = MappingProxyType({profile: mib * MiB for profile, mib in {
    # A100-40GB (go-nvml a100_40gb_GpuInstanceProfiles)
    "1g.5gb": 4864, "1g.10gb": 9856, "2g.10gb": 9856, "3g.20gb": 19968, "4g.20gb": 19968,
    "7g.40gb": 40192,
    # A100-80GB (go-nvml a100_80gb_GpuInstanceProfiles) and H100-80GB (lgip, larger)
    "1g.20gb": 19968, "2g.20gb": 19968, "3g.40gb": 40192, "4g.40gb": 40192, "7g.80gb": 80384,
    # H200 (mig-parted#120)
    "1g.18gb": 16384, "1g.35gb": 33024, "2g.35gb": 33024, "3g.71gb": 71168, "4g.71gb": 71168,
    "7g.141gb": 143104,
    # A30 (go-nvml a30_24gb_GpuInstanceProfiles)
    "1g.6gb": 5836, "2g.12gb": 11672, "4g.24gb": 23344,
    # RTX PRO 6000 Blackwell (cubecos#312, the smaller of the two 1g figures)
    "1g.24gb": 23674, "2g.48gb": 47616,
}.items()})
"""Real memory in bytes of each MIG profile, by its name without attributes (+me, +gfx,
-me share their profile's memory: cubecos#312 prints 23.12 GiB for 1g.24gb and 1g.24gb-me)."""


def memory_ask(value: object) -> int | None:
    """Whole bytes of a memory quantity above 0, rounded up ("10Gi", "1.5Gi"), or None. Every
    memory CastSlice compares is whole bytes, so a grant that holds the rounded ask holds
    the ask."""
    ask = parse_quantity(value)
    return math.ceil(ask) if ask is not None and ask > 0 else None


def base(profile: str) -> str:
    """The profile without its attribute: 1g.24gb+gfx -> 1g.24gb, 2g.48gb-me -> 2g.48gb."""
    return profile.split("+")[0].removesuffix("-me")


class Grant(NamedTuple):
    """What a memory ask resolved to: slices per GPU and the memory they hold (bytes), or
    why no grant holds it (slices 0)."""

    slices: int
    holds: int = 0
    unfit: str = ""


def mig_grant(ask: int, ladder: Sequence[str], memory: Mapping[str, int],
              max_slices: int) -> Grant:
    """The first profile of the ladder (the fewest compute slices) whose known memory holds
    the ask; a profile of unknown memory is never chosen."""
    held = [(p, memory[base(p)]) for p in ladder if base(p) in memory]
    profile, holds = next(((p, m) for p, m in held if m >= ask), ("", 0))
    if not profile:
        largest = f"{held[-1][0]} holds {gib(held[-1][1])}" if held else "no profile's is known"
        return Grant(0, unfit=f"no MIG profile holds it ({largest})")
    if compute(profile) > max_slices:
        return Grant(0, unfit=f"{profile} is {compute(profile)} slices, above "
                              f"CASTSLICE_MAX_SLICES={max_slices}")
    return Grant(compute(profile), holds)


def unit_grant(ask: int, card: int | None, units: int | None, max_slices: int) -> Grant:
    """The fewest of a card's `units` whose share of its memory `card` holds the ask."""
    if card is None or units is None:
        return Grant(0, unfit="set CASTSLICE_GPU_MEMORY and CASTSLICE_SLICES_PER_GPU")
    needed = -(-ask * units // card)  # ceil(ask / (card / units))
    if needed > units:
        return Grant(0, unfit=f"more than a whole card ({gib(card)})")
    if needed > max_slices:
        return Grant(0, unfit=f"{needed} of {units} units, above CASTSLICE_MAX_SLICES="
                              f"{max_slices}")
    return Grant(int(needed), card * int(needed) // units)


def gib(size: float) -> str:
    """A memory size for people, in GiB to two decimals: gib(9856 * MiB) == "9.62Gi"."""
    return f"{int(size * 100 / GiB) / 100:g}Gi"


def quantity_text(size: int) -> str:
    """A whole number of bytes as the exact Kubernetes quantity a person would write:
    quantity_text(10 * GiB) == "10Gi", quantity_text(1500) == "1500"."""
    for suffix, unit in (("Ti", 2**40), ("Gi", GiB), ("Mi", MiB), ("Ki", 2**10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)
