"""MIG profiles: a ladder of hardware partitions, and the one that fits a slice count.

A profile `<g>g.<memory>gb` holds g of the card's compute slices (NVIDIA MIG user guide:
7 on A100/H100/H200, 4 on A30 and RTX PRO 6000), so a Pod granted s slices per GPU gets the
smallest profile of the ladder with g >= s. A `+me` profile (media extensions) is named
`1g.10gb+me` by the DRA driver's `profile` attribute (go-nvlib's spelling) and
`nvidia.com/mig-1g.10gb.me` by the device plugin, which writes '+' as '.'
(k8s-device-plugin internal/rm/rm.go).
"""

import re
from collections.abc import Sequence
from itertools import pairwise

DEFAULT_LADDER = ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")
"""A100-40GB, without the +me and duplicate-compute profiles."""
_PROFILE = re.compile(r"([1-7])g\.([1-9][0-9]{0,3})gb([+.]me)?")


def compute(profile: str) -> int:
    """The compute slices of a profile name that parse_ladder accepted: compute("3g.20gb") == 3."""
    return int(profile[0])


def resource_suffix(profile: str) -> str:
    """The profile as the device plugin's resource name ends: 1g.10gb+me -> 1g.10gb.me."""
    return profile.replace("+", ".")


def profile_for(ladder: Sequence[str], slices: int) -> str | None:
    """The smallest profile with at least `slices` compute slices; None past the largest."""
    return next((p for p in ladder if compute(p) >= slices), None)


def parse_ladder(text: str) -> tuple[str, ...]:
    """Comma-separated profiles in increasing compute, `+me` as the DRA driver writes it
    (the device plugin's `.me` accepted too); ValueError says what is wrong."""
    ladder = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in ladder if not _PROFILE.fullmatch(p)]
    if bad or not ladder:
        raise ValueError(f"{bad[0] if bad else text!r} is not a MIG profile such as 1g.5gb "
                         "or 1g.10gb+me (<compute 1-7>g.<memory>gb); example: "
                         f"{','.join(DEFAULT_LADDER)}")
    ladder = tuple(p.replace(".me", "+me") for p in ladder)
    for smaller, larger in pairwise(ladder):
        if compute(larger) <= compute(smaller):
            raise ValueError(f"{larger} after {smaller}: profiles must increase in compute "
                             "slices, one per compute size")
    return ladder
