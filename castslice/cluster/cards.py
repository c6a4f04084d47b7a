"""The one savings model, used by the savings counter and by `castslice savings`.

A Pod that would have held g whole GPUs and is granted s shared units per GPU, on cards
that each advertise R shared units (CASTSLICE_SLICES_PER_GPU), occupies g x s / R cards
and so frees g x (1 - s / R). Worked example: a training Pod asking 1 GPU, granted 4 units
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
