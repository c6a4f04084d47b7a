"""How many slices per GPU, and who decided (resolve.slices, SPEC §2.3-§2.4): the
slice-ratio, gpu-memory and workload-type annotations, the first matching rule, the default.

A memory ask's grant is a step function of the ask whose steps are fixed by the
configuration (MIG profiles' real memory, or the card's units): `memory_steps` computes them
with the webhook's own `Policy.memory_grant`, and the CEL only finds the step an ask falls in.
"""

from typing import NamedTuple

from castslice.cel.literals import literal, pick
from castslice.cel.texts import short, show
from castslice.functions import resolve
from castslice.functions.annotations import GPU_MEMORY, SLICE_RATIO, WORKLOAD_TYPE
from castslice.functions.memory import base
from castslice.functions.policy import Policy

ANNOTATIONS = "variables.annotations"
GRANTED = (SLICE_RATIO, GPU_MEMORY, WORKLOAD_TYPE)
"""The annotations that grant slices, in the order they win (and are reported)."""
QUANTITY = (r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)"
            r"(?:Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?0*(?:[0-9]|[12][0-9]|30))?$")
"""quantity.parse_quantity's grammar (exponents up to 30) as RE2; isQuantity checks the rest."""
_MAX_QUANTITY = 128


class Step(NamedTuple):
    """Asks up to `upto` bytes (None: any larger ask) get `slices` and the `holds` text,
    or pass unchanged for `unfit`."""

    upto: int | None
    slices: int
    holds: str
    unfit: str


def memory_steps(policy: Policy) -> list[Step]:
    """The grant of every ask, as steps: each threshold is a memory the configuration
    grants (a profile's, k of the card's units), so between two the grant cannot change."""
    if policy.mig_devices:
        memory = policy.profile_memory
        thresholds = {memory[base(p)] for p in policy.mig_profiles if base(p) in memory}
    elif policy.gpu_memory and policy.slices_per_gpu:
        units = policy.slices_per_gpu
        thresholds = {policy.gpu_memory * k // units for k in range(1, units + 1)}
    else:
        thresholds = set()
    uptos: list[int | None] = [*sorted(t for t in thresholds if t > 0), None]
    steps = []
    for upto in uptos:
        grant = policy.memory_grant(upto if upto is not None else max(thresholds, default=0) + 1)
        steps.append(Step(upto, grant.slices or 1, f" {resolve.grant_text(grant, policy)}"
                          if not grant.unfit else "", grant.unfit))
    return steps


def _value(annotation: str) -> str:
    return f"{ANNOTATIONS}[{literal(annotation)}]"


def _present(annotation: str) -> str:
    return f"{literal(annotation)} in {ANNOTATIONS}"


def slice_variables(policy: Policy) -> list[tuple[str, str]]:
    """ratio_ok, memory_ok, memory_step, workload_ok; then slices, by and unfit as the
    webhook's Choice; then each annotation's invalid flag."""
    steps = memory_steps(policy)
    memory, ratio, workload = (_value(a) for a in (GPU_MEMORY, SLICE_RATIO, WORKLOAD_TYPE))
    uptos = literal([str(s.upto) for s in steps if s.upto is not None])
    step = (f"[{uptos}.filter(t, !quantity({memory}).isGreaterThan(quantity(t)))].map(f, "
            f"{len(steps) - 1} - size(f))[0]")
    rules = [resolve.rule_or_default(rule, policy) for rule in policy.rules]
    default = resolve.rule_or_default(None, policy)
    cut = resolve.SHOWN_MEMORY
    shown = f"(size({memory}) <= {cut} ? {memory} : {memory}.substring(0, {cut - 3}) + '...')"
    by_rule = pick("variables.rule", [literal(c.by) for c in rules], literal(default.by))
    slices_by_rule = pick("variables.rule", [str(c.value) for c in rules], str(default.value))
    return [
        ("ratio_ok", f"{_present(SLICE_RATIO)} && {ratio}.matches('^[1-9][0-9]{{0,4}}$') && "
                     f"int({ratio}) <= {policy.max_slices}"),
        ("memory_ok", f"{_present(GPU_MEMORY)} && size({memory}) <= {_MAX_QUANTITY} && "
                      f"{memory}.matches({literal(QUANTITY)}) && isQuantity({memory}) && "
                      f"quantity({memory}).isGreaterThan(quantity('0'))"),
        ("memory_step", f"variables.memory_ok ? {step} : 0"),
        ("workload_ok", f"{_present(WORKLOAD_TYPE)} && {workload} in "
                        f"{literal(list(policy.presets))}"),
        ("slices", f"variables.ratio_ok ? int({ratio}) : variables.memory_ok ? "
                   f"{literal([s.slices for s in steps])}[variables.memory_step] : "
                   f"variables.workload_ok ? {literal(dict(policy.presets))}[{workload}] : "
                   f"{slices_by_rule}"),
        ("by", f"variables.ratio_ok ? {literal(SLICE_RATIO + '=')} + {ratio} : "
               f"variables.memory_ok ? {literal(GPU_MEMORY + '=')} + {shown} + "
               f"{literal([s.holds for s in steps])}[variables.memory_step] : "
               f"variables.workload_ok ? {literal(WORKLOAD_TYPE + '=')} + {workload} : "
               f"{by_rule}"),
        ("unfit", f"!variables.ratio_ok && variables.memory_ok ? "
                  f"{literal([s.unfit for s in steps])}[variables.memory_step] : ''"),
        ("invalid", f"[{', '.join(_invalid(a) for a in GRANTED)}]"),
    ]


def _invalid(annotation: str) -> str:
    """Whether the annotation is present and cannot be used."""
    flag = {SLICE_RATIO: "ratio_ok", GPU_MEMORY: "memory_ok", WORKLOAD_TYPE: "workload_ok"}
    return f"{_present(annotation)} && !variables.{flag[annotation]}"


def invalid_message(policy: Policy, index: int, denial: bool) -> str:
    """CEL for Invalid.warning() (or denial()) of the index-th granting annotation."""
    annotation = GRANTED[index]
    said = "is not valid" if denial else "ignored"
    text = (f"{literal(annotation + '=')} + {show(_value(annotation))} + "
            f"{literal(f' {said}: ' + resolve.allowed(annotation, policy))}")
    return text if denial else short(text)


def invalid_messages(policy: Policy) -> str:
    """CEL for the denial texts of the annotations that cannot be used, in the webhook's
    order, joined as its status message joins them."""
    return "(" + " + ".join(f"(variables.invalid[{i}] ? [{invalid_message(policy, i, True)}] : [])"
                            for i in range(len(GRANTED))) + ").join('; ')"
