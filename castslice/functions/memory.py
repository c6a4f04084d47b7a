"""Memory asks (`castops.io/gpu-memory`, a rule's `gpuMemory`): the card model's memory, and
the smallest grant whose memory holds an ask.

A MIG profile's name carries its memory rounded up (go-nvlib `getMigMemorySizeGB` rounds the
memory fraction up to eighths of the card and scales the card's whole GiB), so an instance
holds less than its name says: `2g.10gb` on an A100-40GB is 9856 MiB, not 10 GiB. `CARDS`
holds each card's profiles as measured listings give them (each cited; figures that look
computed are marked), and a profile is granted by the smallest figure of any card of that
name (1g.10gb: 9728 MiB on an A100-80GB, below the A100-40GB's 9856; 1g.24gb: 20.00 GiB on
a GB200, below the H100 NVL's 21.62 and the RTX PRO 6000's 23.12), so a grant holds the ask
on each of them. A profile no listing gives (RTX PRO 6000 4g.96gb, most of B200 and GB200)
is never granted for a memory ask until CASTSLICE_MIG_MEMORY names it.

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

class Card(NamedTuple):
    """One card's MIG profiles and their real memory in MiB, where the figures come from,
    and whether they were read off a card (measured) or look computed."""

    profiles: Mapping[str, int]
    source: str
    measured: bool = True


CARDS: Mapping[str, Card] = MappingProxyType({
    "A100-40GB": Card({"1g.5gb": 4864, "1g.10gb": 9856, "2g.10gb": 9856, "3g.20gb": 19968,
                       "4g.20gb": 19968, "7g.40gb": 40192},
                      "go-nvml a100_40gb_GpuInstanceProfiles (b72647c)"),
    "A100-80GB": Card({"1g.10gb": 9728, "1g.20gb": 19968, "2g.20gb": 19968, "3g.40gb": 40192,
                       "4g.40gb": 40192, "7g.80gb": 80384},
                      "nvidia-smi mig -lgip on an A100-SXM4-80GB (HAMi PR #1847) for 1g.10gb; "
                      "go-nvml a100_80gb_GpuInstanceProfiles (2ed30d2) for the rest"),
    "H200": Card({"1g.18gb": 16384, "1g.35gb": 33024, "2g.35gb": 33024, "3g.71gb": 71168,
                  "4g.71gb": 71168, "7g.141gb": 143104}, "nvidia-smi mig -lgip (mig-parted#120)"),
    "H100-NVL": Card({"1g.24gb": 22139}, "nvidia-smi mig -lgip, 21.62 GiB (gpu-operator#903)"),
    "GB200": Card({"1g.24gb": 20480}, "nvidia-smi mig -lgip, 20.00 GiB (gpu-operator#1303)"),
    "B200": Card({"1g.23gb": 20992}, "nvidia-smi mig -lgip: 20.50 GiB (gpu-operator#1351) and "
                 "22.00 GiB (mig-parted#166); the smaller"),
    "RTX-PRO-6000": Card({"1g.24gb": 23674, "2g.48gb": 47616},
                         "nvidia-smi mig -lgip (cubecos#312, container-engine-accelerators#564)"),
    "A30": Card({"1g.6gb": 5836, "2g.12gb": 11672, "4g.24gb": 23344},
                "go-nvml a30_24gb_GpuInstanceProfiles (2ed30d2): computed from the name, not "
                "read off a card", measured=False),
})
"""Each card's profiles, as measured listings give them (cited); a profile name several cards
share (1g.24gb: H100 NVL, GB200, RTX PRO 6000) is granted by the smallest of theirs."""

PROFILE_MEMORY: Mapping[str, int] = MappingProxyType({
    profile: min(card.profiles[profile] for card in CARDS.values() if profile in card.profiles)
    * MiB for profile in sorted({p for card in CARDS.values() for p in card.profiles})})
"""Real memory in bytes of each MIG profile, by its name without attributes (+me, +gfx,
-me share their profile's memory: cubecos#312 prints 23.12 GiB for 1g.24gb and 1g.24gb-me):
the smallest any card of CARDS holds."""

UNVERIFIED: frozenset[str] = frozenset(
    profile for profile in PROFILE_MEMORY
    if not any(card.measured for card in CARDS.values() if profile in card.profiles))
"""Profiles whose only figures look computed: doctor names them beside what the DRA driver
publishes."""


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
