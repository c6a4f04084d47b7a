"""MIG profiles: a ladder of hardware partitions, and the one that fits a slice count.

A profile `<g>g.<memory>gb` holds g of the GPU's 7 compute slices (NVIDIA MIG user guide),
so a Pod granted s slices per GPU gets the smallest profile of the ladder with g >= s.
"""

import re
from collections.abc import Sequence
from itertools import pairwise

COMPUTE_SLICES = 7
"""Compute slices of a whole MIG-capable GPU (A100, H100, H200): a g profile is g/7 of it."""
DEFAULT_LADDER = ("1g.5gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb")
"""A100-40GB, without the +me and duplicate-compute profiles."""
_PROFILE = re.compile(r"([1-7])g\.([1-9][0-9]{0,3})gb")


def compute(profile: str) -> int:
    """The compute slices of a profile name that parse_ladder accepted: compute("3g.20gb") == 3."""
    return int(profile[0])


def profile_for(ladder: Sequence[str], slices: int) -> str | None:
    """The smallest profile with at least `slices` compute slices; None past the largest."""
    return next((p for p in ladder if compute(p) >= slices), None)


def parse_ladder(text: str) -> tuple[str, ...]:
    """Comma-separated profiles in increasing compute; ValueError says what is wrong."""
    ladder = tuple(p.strip() for p in text.split(",") if p.strip())
    bad = [p for p in ladder if not _PROFILE.fullmatch(p)]
    if bad or not ladder:
        raise ValueError(f"{bad[0] if bad else text!r} is not a MIG profile such as 1g.5gb "
                         f"(<compute 1-7>g.<memory>gb); example: {','.join(DEFAULT_LADDER)}")
    for smaller, larger in pairwise(ladder):
        if compute(larger) <= compute(smaller):
            raise ValueError(f"{larger} after {smaller}: profiles must increase in compute "
                             "slices, one per compute size")
    return ladder
