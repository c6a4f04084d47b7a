"""Which containers convert (patch.scan, claims.rewrite_claims' checks): each container and
init container holding the source is read once into a record the later variables filter,
as the webhook's `Holding`s and warnings are.

A count is the source's quantity as a whole number (quantity.whole_count): 0 for zero, a
fraction or a negative; a container with any 0 count, or already holding the back-end's
output, is left alone (`problem` says why, as patch._problem does).
"""

from castslice.cel.literals import literal
from castslice.cel.texts import short, show
from castslice.functions.claims import MAX_CLAIMS
from castslice.functions.patch import INIT, REGULAR
from castslice.functions.policy import Policy
from castslice.functions.quantity import MAX_COUNT

LISTS = {INIT: "object.spec.?initContainers.orValue([])", REGULAR: "object.spec.containers"}


def whole_count(value: str) -> str:
    """quantity.whole_count in CEL (values reaching admission are valid quantities)."""
    return (f"[quantity({value})].map(q, q.isInteger() ? (q.asInteger() >= 1 ? q.asInteger() "
            f": 0) : q.isGreaterThan(quantity('{MAX_COUNT}')) ? {MAX_COUNT} : "
            "[q.asApproximateFloat()].map(f, f >= 1.0 && f == double(int(f)) ? int(f) : 0)[0])[0]")


def _held(policy: Policy) -> str:
    """What the container already holds of the back-end's output: [name, where] or []."""
    if policy.backend == "dra":
        return ("[c.?resources.?claims.orValue([]).map(x, x.name).filter(x, x in variables.ours)]"
                ".map(m, size(m) > 0 ? ['claim ' + strings.quote(m[0]), 'claims'] : [])[0]")
    if policy.backend == "mig":
        prefix = literal(policy.mig_resource_prefix)
        return " : ".join(
            f"r[{i}].exists(k, k.startsWith({prefix})) ? [string(r[{i}].filter(k, k.startsWith("
            f"{prefix})).sort()[0]), '{section}']" for i, section in enumerate(
                ("limits", "requests"))) + " : []"
    target = literal(policy.target_resource)
    return (f"{target} in r[0] ? [{target}, 'limits'] : "
            f"{target} in r[1] ? [{target}, 'requests'] : []")


def _problem(source: str) -> str:
    """patch._problem: why a container holding the source is left alone, or ''."""
    name = show("c.name", 40)
    both = short(f"'container ' + {name} + ' has both {source} and ' + h[0] + ' in ' + "
                 f"((h[1] == 'limits' && {literal(source)} in r[0]) || (h[1] == 'requests' && "
                 f"{literal(source)} in r[1]) ? h[1] : 'its resources') + '; left unchanged'")
    broken = [
        (f"{literal(source)} in r[{i}] && n[{'0' if i == 0 else 'size(n) - 1'}] == 0 && "
         f"quantity(r[{i}][{literal(source)}]).compareTo(quantity('0')) != 0",
         short(f"'container ' + {name} + ' {section} {source}=' + "
               f"{show(f'r[{i}][{literal(source)}]')} + ' is not a whole number; left unchanged'"))
        for i, section in enumerate(("limits", "requests"))]
    return (f"size(n) == 0 ? '' : size(h) > 0 ? {both} : {broken[0][0]} ? {broken[0][1]} : "
            f"{broken[1][0]} ? {broken[1][1]} : ''")


def _per_container(list_name: str, policy: Policy, body: str) -> str:
    """CEL mapping each container of a list to `body`, which may read the container `c`,
    its position `i`, its limits and requests `r`, its source counts `n` and what it
    already holds `h`."""
    source = literal(policy.source_resource)
    containers = LISTS[list_name]
    counts = (f"({source} in r[0] ? [{whole_count(f'r[0][{source}]')}] : []) + "
              f"({source} in r[1] ? [{whole_count(f'r[1][{source}]')}] : [])")
    return (f"lists.range(size({containers})).map(i, [{containers}[i]].map(c, "
            "[[c.?resources.?limits.orValue({}), c.?resources.?requests.orValue({})]].map(r, "
            f"[{counts}].map(n, [{_held(policy)}].map(h, {body})[0])[0])[0])[0])")


def _records(list_name: str, policy: Policy) -> str:
    """One record per container: what the later variables filter (no texts: those are
    the warnings policy's alone, `_problems`)."""
    source = literal(policy.source_resource)
    sidecar = "c.?restartPolicy.orValue('') == 'Always'" if list_name == INIT else "false"
    record = ", ".join(f"'{key}': dyn({value})" for key, value in {
        "list": literal(list_name), "position": "i",
        "path": f"'/spec/{list_name}/' + string(i) + '/resources/'",
        "holds": "size(n) > 0", "gpus": "size(n) > 0 ? n.max() : 0",
        "convert": "size(n) > 0 && size(h) == 0 && !n.exists(x, x == 0)",
        "held": "size(h) > 0", "sidecar": sidecar,
        "sections": f"({source} in r[0] ? ['limits'] : []) + "
                    f"({source} in r[1] ? ['requests'] : [])",
        "claims": "c.?resources.?claims.hasValue()"}.items())
    return _per_container(list_name, policy, f"{{{record}}}")


def scan_variables(policy: Policy) -> list[tuple[str, str]]:
    """The records; the most whole GPUs a container asks; whether one already holds the
    output; the containers to convert; the warnings; the whole GPUs the scheduler would
    reserve for them (requests.scheduled, every count 1 since more is multi-gpu); whether
    there is anything to convert."""
    found: list[tuple[str, str]] = []
    if policy.backend == "dra":
        found.append(("ours", "object.spec.?resourceClaims.orValue([]).filter(p, "
                              f"p.?resourceClaimTemplateName.orValue('').startsWith("
                              f"{literal(policy.dra_template_prefix)})).map(p, p.name)"))
    claimed = "variables.holdings.filter(h, h.list == 'containers' || h.sidecar)"
    cap = short(f"string(variables.gpus) + ' GPUs would need more than {MAX_CLAIMS} claims; "
                "Pod left unchanged'")
    dra = policy.backend == "dra"
    found += [
        ("scan", f"{_records(INIT, policy)} + {_records(REGULAR, policy)}"),
        ("most", "[variables.scan.filter(e, e.holds).map(e, int(e.gpus))].map(g, "
                 "size(g) == 0 ? 0 : g.max())[0]"),
        ("already", "variables.scan.exists(e, !e.holds && e.held)"),
        ("holdings", "variables.scan.filter(e, e.convert)"),
        ("gpus", f"([size({claimed})] + variables.holdings.filter(h, h.list == 'initContainers' "
                 "&& !h.sidecar).map(h, 1 + size(variables.holdings.filter(s, s.sidecar && "
                 "int(s.position) < int(h.position))))).max()"),
        ("problems", "(" + " + ".join(_per_container(name, policy, _problem(
            policy.source_resource)) for name in (INIT, REGULAR)) + ").filter(p, p != '')" + (
            f" + (variables.gpus > {MAX_CLAIMS} ? [{cap}] : [])" if dra else "")),
        ("has_ops", "size(variables.holdings) > 0" + (
            f" && variables.gpus <= {MAX_CLAIMS}" if dra else "")),
    ]
    return found
