"""Who opts in, and how many slices per GPU (SPEC §2.2-§2.4). Most specific wins."""

from collections.abc import Mapping
from typing import NamedTuple

from castslice.functions.annotations import GPU_MEMORY, OPTIMIZE, SLICE_RATIO, WORKLOAD_TYPE
from castslice.functions.memory import Grant, gib, memory_ask, quantity_text
from castslice.functions.policy import Policy
from castslice.functions.rules import Rule
from castslice.functions.text import short, show

_MAX_DIGITS = 5
"""CASTSLICE_MAX_SLICES is at most 10000: longer digit strings are over it unread (int() of
thousands of digits is refused, and costs more than the whole admission)."""


class Choice(NamedTuple):
    """A resolved value and the one thing that decided it, in words for the annotation."""

    value: int
    by: str
    memory: int = 0
    """For a memory ask: its whole bytes, rounded up."""
    unfit: str = ""
    """For a memory ask no grant holds: why (the value is then 1 and never granted)."""


class Invalid(NamedTuple):
    """An annotation value that cannot be used, and what would be allowed instead."""

    annotation: str
    value: object
    allowed: str

    def warning(self) -> str:
        return short(f"{self.annotation}={show(self.value)} ignored: {self.allowed}")

    def denial(self) -> str:
        return f"{self.annotation}={show(self.value)} is not valid: {self.allowed}"


def opt_in(annotations: Mapping[str, object], rule: Rule | None) -> tuple[bool | None, str]:
    """True/False when the Pod's annotation or a rule decides, None when nothing does.

    The second item says who decided; an odd annotation value falls through to the rules.
    """
    value = annotations.get(OPTIMIZE)
    if value in ("true", "false"):
        return value == "true", f"{OPTIMIZE}={value}"
    if rule is not None:
        return rule.optimize, f"rule {rule.name}"
    return None, ""


def odd_optimize(annotations: Mapping[str, object]) -> str | None:
    """The warning for an optimize value other than "true"/"false", e.g. "True" or "yes"."""
    value = annotations.get(OPTIMIZE, "true")
    if value in ("true", "false"):
        return None
    return short(f'{OPTIMIZE}={show(value)} ignored: only "true" or "false" count')


MEMORY_ALLOWED = "use a memory quantity above 0, e.g. 10Gi or 512Mi"
SHOWN_MEMORY = 24
"""A gpu-memory value longer than this is shown cut, in the annotation and the log."""


def allowed(annotation: str, policy: Policy) -> str:
    """What an annotation accepts, in the words of its warning and its denial."""
    if annotation == SLICE_RATIO:
        return f"use a whole number from 1 to {policy.max_slices}"
    if annotation == GPU_MEMORY:
        return MEMORY_ALLOWED
    return f"use one of {', '.join(policy.presets)}"


def shown_memory(written: str) -> str:
    """A gpu-memory value as castops.io/sliced names it: as written, cut past 24 characters."""
    return written if len(written) <= SHOWN_MEMORY else written[:SHOWN_MEMORY - 3] + "..."


def slices(annotations: Mapping[str, object], rule: Rule | None,
           policy: Policy) -> tuple[Choice, tuple[Invalid, ...]]:
    """slice-ratio annotation > gpu-memory annotation > workload-type annotation > rule >
    CASTSLICE_DEFAULT_SLICES."""
    invalid: list[Invalid] = []
    choice: Choice | None = None
    if SLICE_RATIO in annotations:
        ratio = annotations[SLICE_RATIO]
        if isinstance(ratio, str) and ratio.isascii() and ratio.isdigit() and len(
            ratio) <= _MAX_DIGITS and 1 <= int(ratio) <= policy.max_slices and not (
                ratio.startswith("0")):
            choice = Choice(int(ratio), f"{SLICE_RATIO}={ratio}")
        else:
            invalid.append(Invalid(SLICE_RATIO, ratio, allowed(SLICE_RATIO, policy)))
    if GPU_MEMORY in annotations:
        written = annotations[GPU_MEMORY]
        ask = memory_ask(written) if isinstance(written, str) else None
        if ask is None or not isinstance(written, str):
            invalid.append(Invalid(GPU_MEMORY, written, MEMORY_ALLOWED))
        elif choice is None:
            choice = by_memory(ask, f"{GPU_MEMORY}={shown_memory(written)}", policy)
    if WORKLOAD_TYPE in annotations:
        kind = annotations[WORKLOAD_TYPE]
        if not isinstance(kind, str) or kind not in policy.presets:
            invalid.append(Invalid(WORKLOAD_TYPE, kind, allowed(WORKLOAD_TYPE, policy)))
        elif choice is None:
            choice = Choice(policy.presets[kind], f"{WORKLOAD_TYPE}={kind}")
    return choice or rule_or_default(rule, policy), tuple(invalid)


def by_memory(ask: int, by: str, policy: Policy) -> Choice:
    """The grant whose memory holds `ask` bytes, and what it holds, in words."""
    grant = policy.memory_grant(ask)
    if grant.unfit:
        return Choice(1, by, ask, grant.unfit)
    return Choice(grant.slices, f"{by} {grant_text(grant, policy)}", ask)


def grant_text(grant: Grant, policy: Policy) -> str:
    """What a memory grant gives, in words: a MIG device holds its memory (the hardware
    isolates it); units of a card are what the ask was matched against, which only MPS
    enforces (a pinned limit of the card / N per client), and time-slicing does not."""
    if policy.mig_devices:
        return f"(holds {gib(grant.holds)})"
    return (f"({grant.slices} of {policy.slices_per_gpu} units of {gib(policy.gpu_memory or 0)}"
            f": {gib(grant.holds)}, enforced only under MPS)")


def rule_or_default(rule: Rule | None, policy: Policy) -> Choice:
    """What a matching rule grants (its gpuMemory, sliceRatio or workload type), else
    CASTSLICE_DEFAULT_SLICES: the last two levels of the resolution."""
    if rule is not None and rule.gpu_memory is not None:
        return by_memory(rule.gpu_memory, f"rule {rule.name} gpuMemory="
                         f"{quantity_text(rule.gpu_memory)}", policy)
    if rule is not None and rule.slice_ratio is not None:
        return Choice(rule.slice_ratio, f"rule {rule.name}")
    if rule is not None and rule.workload_type is not None:
        return Choice(policy.presets[rule.workload_type],
                      f"rule {rule.name} ({rule.workload_type})")
    return Choice(policy.default_slices, "default")
