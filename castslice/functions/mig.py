"""MIG profiles: a ladder of hardware partitions, and the one that fits a slice count.

A profile `<g>g.<memory>gb` holds g of the card's compute slices (NVIDIA MIG user guide:
7 on A100/H100/H200, 4 on A30 and RTX PRO 6000), so a Pod granted s slices per GPU gets the
smallest profile of the ladder with g >= s. A profile may carry one attribute, as go-nvlib's
mig_profile.go defines them (vendored in the device plugin v0.20.0; NVIDIA mig-parted's
config-default.yaml uses each): `+me` (media extensions), `+me.all`, `+gfx` (graphics) and
`-me` (no media extensions), e.g. `1g.24gb+gfx`, `2g.48gb-me`. The DRA driver's `profile`
attribute spells them so; the device plugin writes '+' as '.' in resource names
(`nvidia.com/mig-1g.24gb.gfx`, `nvidia.com/mig-2g.48gb-me`; internal/rm/rm.go).
"""

import re
from collections.abc import Sequence
from itertools import pairwise

DEFAULT_LADDER = ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")
"""A100-40GB, without the +me and duplicate-compute profiles."""
_PROFILE = re.compile(r"([1-7]g\.[1-9][0-9]{0,3}gb)(?:[+.](me\.all|me|gfx)|(-me))?")


def compute(profile: str) -> int:
    """The compute slices of a profile name that parse_ladder accepted: compute("3g.20gb") == 3."""
    return int(profile[0])


def resource_suffix(profile: str) -> str:
    """The profile as the device plugin's resource name ends: 1g.10gb+me -> 1g.10gb.me."""
    return profile.replace("+", ".")


def _spelled(match: re.Match[str]) -> str:
    """go-nvlib's spelling of a profile the device plugin's spelling may have named."""
    base, attribute, no_media = match.groups()
    return base + (f"+{attribute}" if attribute else "") + (no_media or "")


def profile_for(ladder: Sequence[str], slices: int) -> str | None:
    """The smallest profile with at least `slices` compute slices; None past the largest."""
    return next((p for p in ladder if compute(p) >= slices), None)


def parse_ladder(text: str) -> tuple[str, ...]:
    """Comma-separated profiles in increasing compute, attributes as the DRA driver writes
    them (the device plugin's `.me`, `.me.all`, `.gfx` accepted too); ValueError says what
    is wrong."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    matches = [_PROFILE.fullmatch(p) for p in names]
    bad = [p for p, m in zip(names, matches, strict=True) if m is None]
    if bad or not names:
        raise ValueError(f"{bad[0] if bad else text!r} is not a MIG profile such as 1g.5gb, "
                         "1g.10gb+me, 1g.24gb+gfx or 2g.48gb-me (<compute 1-7>g.<memory>gb, "
                         f"one of +me, +me.all, +gfx, -me); example: {','.join(DEFAULT_LADDER)}")
    ladder = tuple(_spelled(m) for m in matches if m is not None)
    for smaller, larger in pairwise(ladder):
        if compute(larger) <= compute(smaller):
            raise ValueError(f"{larger} after {smaller}: profiles must increase in compute "
                             "slices, one per compute size")
    return ladder


def memory_gb(profile: str) -> int:
    """The memory a profile's name says, in GB: memory_gb("3g.20gb+me") == 20."""
    return int(profile.split(".")[1].split("gb")[0])


def instances_per_card(profile: str, ladder: Sequence[str]) -> int:
    """How many instances of `profile` one card holds, as NVIDIA's MIG geometry allows: its
    compute slices into the card's, and its memory slices into the card's (8 on a 7-slice
    card, 4 on a 4-slice one), whichever is fewer. Checked against NVIDIA mig-parted's
    config-default.yaml (all-1g.10gb: 7, all-1g.20gb: 4, all-2g.20gb: 3, all-3g.40gb: 2 on
    A100-80GB/H100) and `nvidia-smi mig -lgip` (H100 NVL 1g.24gb: 4; A30 1g.6gb: 4)."""
    largest = ladder[-1]
    card_compute = compute(largest)
    card_memory = 8 if card_compute == 7 else card_compute
    memory_slices = max(1, round(card_memory * memory_gb(profile) / memory_gb(largest)))
    return min(card_compute // compute(profile), card_memory // memory_slices)
