"""The one card model, used by the savings counter and by `castslice savings`.

A Pod that would have held g whole GPUs and is granted s units per GPU, on cards that each
hold R units, occupies g x s / R cards and so frees g x (1 - s / R). What a unit is comes
from the back-end (Policy.granted, Policy.card_units): a time-slicing replica of the R
that CASTSLICE_SLICES_PER_GPU says; a MIG device's whole profile, g compute slices of the
card's C (the ladder's largest profile: 7 on A100/H100/H200, 4 on A30 and RTX PRO 6000),
so 4g.20gb on an A100 frees 3/7 and 4g.24gb on an A30 frees nothing; a shares claim, s of
the N shares. A dra claim from castslice-gpu-5 under the A100 ladder holds 7g.40gb, a
whole card, and frees nothing. Worked example: a training Pod asking 1 GPU, granted 4 units
on cards of 8 units, uses half a card and frees the other half; at $2.50 per GPU-hour that
is $1.25 per hour. Granted more units than a card advertises (s > R), a Pod frees nothing;
the model never reports a negative saving, so a counter built on it only grows.
"""


def cards_freed(gpus: int, slices: int, per_card: int) -> float:
    """Whole cards' worth of capacity a Pod no longer reserves: cards_freed(1, 4, 8) == 0.5."""
    return gpus * max(0.0, 1 - slices / per_card)


def cards_used(gpus: int, slices: int, per_card: int) -> float:
    """Cards' worth of shared units the Pod is granted: cards_used(1, 4, 8) == 0.5."""
    return gpus * min(slices, per_card) / per_card
