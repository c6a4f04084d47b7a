"""The `dra` back-end: whole GPUs become ResourceClaims from CastSlice's templates.

Kubernetes' rules for the Pod (pkg/apis/core/validation, validatePodResourceClaim):
`spec.resourceClaims` names are unique DNS-1123 labels, each container claim names a Pod
claim, and ephemeral containers may not hold claims. Both fields are set only at CREATE.
A controller's Pod has no name yet at admission, so claim names come from a counter that
skips every name the Pod already uses: deterministic, and never a clash.
"""

from collections.abc import Iterator, Mapping
from itertools import count
from typing import Any

from castslice.functions.patch import (
    EPHEMERAL,
    INIT,
    REGULAR,
    Held,
    Holding,
    Rewrite,
    scan,
    scheduled_gpus,
)
from castslice.functions.reviews import PatchOp, mapping
from castslice.functions.text import short, show, text_or_empty

CLAIM_PREFIX = "castslice-"
MAX_CLAIMS = 64
"""The most claims CastSlice writes into one Pod. One claim per GPU asked, and no node holds
more than a few dozen GPUs; a count past this (even 2^63-1, which a quantity may say) leaves
the Pod unchanged instead of writing a patch the size of the count."""


def rewrite_claims(pod: Mapping[str, Any], source: str, template: str,
                   template_prefix: str) -> Rewrite:
    """Take `source` out of each convertible container and give it one claim per GPU from
    `template`; the Pod gets as many claims as the scheduler would have reserved GPUs."""
    spec = mapping(pod.get("spec"))
    existing = spec.get("resourceClaims", [])
    found = scan(pod, source, _claims_held(existing, template_prefix))
    warnings = list(found.warnings)
    holdings = []
    for holding in found.holdings:
        problem = _unclaimable(holding, existing)
        if problem:
            warnings.append(problem)
        else:
            holdings.append(holding)
    wanted = scheduled_gpus(holdings)
    if wanted > MAX_CLAIMS:
        warnings.append(short(f"{wanted} GPUs would need more than {MAX_CLAIMS} claims; Pod "
                              "left unchanged"))
        return Rewrite((), (), tuple(warnings), found.already_sliced, found.most)
    names, made = _assign(holdings, _fresh_names(spec))
    ops: list[PatchOp] = []
    for holding in holdings:
        ops += holding.remove_source(source)
        ops += _container_claims(holding, names[holding[:2]])
    entries = [{"name": name, "resourceClaimTemplateName": template} for name in made]
    if entries:
        ops += ([{"op": "add", "path": "/spec/resourceClaims/-", "value": e} for e in entries]
                if "resourceClaims" in spec else
                [{"op": "add", "path": "/spec/resourceClaims", "value": entries}])
    return Rewrite(tuple(ops), tuple(holdings), tuple(warnings), found.already_sliced,
                   found.most)


def _assign(holdings: list[Holding],
            fresh: Iterator[str]) -> tuple[dict[tuple[str, int], list[str]], list[str]]:
    """Claim names per container (keyed by list and position), and every name made, in
    order. Regular containers and sidecars run together, so each holds its own; an init
    container that runs to completion reuses the claims of the containers that start after
    it (regular ones, later sidecars) and shares extra ones with the other init containers.
    The claims then number what the scheduler reserves of whole GPUs (requests.scheduled)."""
    names: dict[tuple[str, int], list[str]] = {}
    made: list[str] = []

    def new() -> str:
        made.append(next(fresh))
        return made[-1]

    for holding in holdings:
        if holding.list_name == REGULAR or holding.sidecar:
            names[holding[:2]] = [new() for _ in range(holding.gpus)]
    regular = [n for h in holdings if h.list_name == REGULAR for n in names[h[:2]]]
    extra: list[str] = []
    for holding in holdings:
        if holding.list_name == INIT and not holding.sidecar:
            later = [n for h in holdings if h.sidecar and h.position > holding.position
                     for n in names[h[:2]]]
            while len(regular) + len(later) + len(extra) < holding.gpus:
                extra.append(new())
            names[holding[:2]] = (regular + later + extra)[:holding.gpus]
    return names, made


def _fresh_names(spec: Mapping[str, Any]) -> Iterator[str]:
    """castslice-0, castslice-1, ... skipping names the Pod or its containers already use."""
    taken = {_name(c) for c in _listed(spec.get("resourceClaims"))}
    for list_name in (INIT, REGULAR, EPHEMERAL):
        for container in _listed(spec.get(list_name)):
            resources = mapping(mapping(container).get("resources"))
            taken |= {_name(c) for c in _listed(resources.get("claims"))}
    return (name for name in (f"{CLAIM_PREFIX}{i}" for i in count()) if name not in taken)


def _claims_held(existing: object, template_prefix: str) -> Held:
    """A container holds CastSlice's output when one of its claims names a Pod claim made
    from a CastSlice template."""
    ours = {_name(c) for c in _listed(existing)
            if text_or_empty(mapping(c).get("resourceClaimTemplateName")).startswith(
                template_prefix)} - {None}

    def held(resources: dict[str, Any]) -> tuple[str, str] | None:
        name = next((n for c in _listed(resources.get("claims")) if (n := _name(c)) in ours),
                    None)
        return None if name is None else (f"claim {show(name)}", "claims")
    return held


def _unclaimable(holding: Holding, existing: object) -> str | None:
    """Why this container cannot be given claims, if it cannot."""
    name = show(holding.container.get("name"), 40)
    if holding.list_name == EPHEMERAL:
        return short(f"ephemeral container {name} may not hold resource claims; left unchanged")
    if not isinstance(existing, list):
        return short(f"container {name} left unchanged: spec.resourceClaims is not a list")
    claims = holding.container["resources"].get("claims", [])
    if not isinstance(claims, list):
        return short(f"container {name} left unchanged: resources.claims is not a list")
    return None


def _container_claims(holding: Holding, names: list[str]) -> list[PatchOp]:
    path = holding.resources_path + "claims"
    if "claims" in holding.container["resources"]:
        return [{"op": "add", "path": path + "/-", "value": {"name": n}} for n in names]
    return [{"op": "add", "path": path, "value": [{"name": n} for n in names]}]


def _name(claim: object) -> str | None:
    """A claim entry's name if it is text (a user's Pod may hold anything there)."""
    name = mapping(claim).get("name")
    return name if isinstance(name, str) else None


def _listed(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
