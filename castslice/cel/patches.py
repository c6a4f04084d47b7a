"""The JSON Patch the webhook writes, built in CEL: each back-end's rewrite of the
converting containers (patch.rewrite_resources, claims.rewrite_claims) and the
castops.io/sliced annotation with the webhook's text (decide.decide)."""

from castslice.cel.literals import literal
from castslice.functions.annotations import QUOTA_GUARD, SLICED
from castslice.functions.claims import CLAIM_PREFIX
from castslice.functions.mig import compute
from castslice.functions.patch import pointer
from castslice.functions.policy import Policy
from castslice.functions.quota import counted_as


def decision_variables(policy: Policy) -> list[tuple[str, str]]:
    """denied (an invalid annotation under CASTSLICE_ON_INVALID=deny), converts (the
    webhook's outcome `mutated`), and the back-end's names for the converted GPUs."""
    largest = policy.largest_slices()
    fits = f" && variables.slices <= {largest}" if largest is not None else ""
    found = [
        ("denied", "variables.opted && variables.invalid.exists(x, x)"
         if policy.on_invalid == "deny" else "false"),
        ("would_convert", "variables.opted && !variables.denied && variables.most <= 1 && "
                          f"variables.has_ops && variables.unfit == ''{fits}"),
    ]
    if policy.backend == "mig":
        target = literal(policy.mig_resource(policy.mig_profiles[-1]))
        for profile in reversed(policy.mig_profiles):
            target = (f"variables.slices <= {compute(profile)} ? "
                      f"{literal(policy.mig_resource(profile))} : ({target})")
        found.append(("target", target))
    if policy.backend == "dra":
        found += _claim_variables(policy)
    counted = ("['requests.' + variables.target]" if policy.backend == "mig" else
               literal(sorted(counted_as(policy, 1))))
    found += [
        ("quota_escape", (
            f"[object.metadata.?annotations[?{literal(QUOTA_GUARD)}].orValue('')].map(v, v == '' "
            "? '' : [v.split(';').filter(e, !(size(e.split('=')) > 1 ? e.split('=')[1].split('|')"
            f" : ['']).exists(k, k in {counted})).map(e, e.split('=')[0])].map(f, size(f) > 0 ? "
            "f[0] : '')[0])[0]")),
        ("converts", "variables.would_convert && variables.quota_escape == ''"),
    ]
    return found


def _claim_variables(policy: Policy) -> list[tuple[str, str]]:
    """claims._assign: one new claim per regular container and sidecar, in order; a plain
    init container reuses the first regular container's, else the first later sidecar's,
    else one extra claim."""
    claimer = "(x.list == 'containers' || x.sidecar)"
    plain = "h.list == 'initContainers' && !h.sidecar"
    claims = ".map(c, c.?resources.?claims.orValue([]).map(x, x.name)).flatten()"
    return [
        ("extra", f"variables.holdings.exists(h, {plain} && !variables.holdings.exists(x, "
                  "x.list == 'containers' || (x.sidecar && int(x.position) > int(h.position))))"),
        ("claim_count", f"size(variables.holdings.filter(x, {claimer})) + "
                        "(variables.extra ? 1 : 0)"),
        ("taken", "object.spec.?resourceClaims.orValue([]).map(p, p.name) + "
                  f"object.spec.containers{claims} + object.spec.?initContainers.orValue([])"
                  f"{claims} + object.spec.?ephemeralContainers.orValue([]){claims}"),
        ("claim_names", "lists.range(variables.claim_count + size(variables.taken)).map(i, "
                        f"{literal(CLAIM_PREFIX)} + string(i)).filter(n, !(n in variables.taken))"
                        ".slice(0, variables.claim_count)"),
        ("claim_of", "lists.range(size(variables.holdings)).map(k, [variables.holdings[k]].map("
                     f"h, {claimer.replace('x.', 'h.')} ? variables.claim_names[size("
                     f"lists.range(k).filter(m, [variables.holdings[m]].map(x, {claimer})[0]))] : "
                     "variables.holdings.exists(x, x.list == 'containers') ? "
                     "variables.claim_names[size(variables.holdings.filter(x, x.sidecar))] : "
                     "variables.holdings.exists(x, x.sidecar && int(x.position) > "
                     "int(h.position)) ? variables.claim_names[size(variables.holdings.filter("
                     "x, x.sidecar && int(x.position) < int(h.position)))] : "
                     "variables.claim_names[variables.claim_count - 1])[0])"),
    ]


def becomes(policy: Policy) -> str:
    """What the converted GPUs became, in the words of castops.io/sliced."""
    if policy.backend == "extended":
        return (f"{literal(policy.target_resource + ' x')} + "
                "string(variables.gpus * variables.slices)")
    if policy.backend == "mig":
        return "variables.target + ' x' + string(variables.gpus)"
    return ("string(variables.gpus) + (variables.gpus != 1 ? ' claims' : ' claim') + "
            f"' from template ' + {literal(policy.dra_template_prefix)} + string(variables.slices)")


def message(policy: Policy) -> str:
    """The castops.io/sliced text, decide.decide's `message`."""
    return (f"{literal(policy.source_resource + ' x')} + string(variables.gpus) + ' -> ' + "
            f"{becomes(policy)} + ' (' + string(variables.slices) + ' per GPU by ' + "
            "variables.by + '; opted in by ' + variables.opted_by + ')'")


def patch(policy: Policy) -> str:
    """The whole JSON Patch: the back-end's ops, then the annotation; [] unless it converts."""
    sliced = (f"has(object.metadata.annotations) ? JSONPatch{{op: 'add', path: "
              f"{literal(pointer('metadata', 'annotations', SLICED))}, value: variables.message}}"
              f" : JSONPatch{{op: 'add', path: '/metadata/annotations', value: "
              f"{{{literal(SLICED)}: variables.message}}}}")
    return f"variables.converts ? {_ops(policy)} + [{sliced}] : []"


def _remove(source: str) -> str:
    path = f"string(h.path) + string(s) + {literal(pointer(source))}"
    return f"JSONPatch{{op: 'remove', path: {path}}}"


def _ops(policy: Policy) -> str:
    source = policy.source_resource
    if policy.backend != "dra":
        target, value = ((literal(pointer(policy.target_resource)), "string(variables.slices)")
                         if policy.backend == "extended" else
                         ("'/' + jsonpatch.escapeKey(variables.target)", "'1'"))
        add = f"JSONPatch{{op: 'add', path: string(h.path) + string(s) + {target}, value: {value}}}"
        return (f"variables.holdings.map(h, h.sections.map(s, [{_remove(source)}, {add}])"
                ".flatten()).flatten()")
    template = f"{literal(policy.dra_template_prefix)} + string(variables.slices)"
    entry = f"{{'name': n, 'resourceClaimTemplateName': {template}}}"
    containers = (
        "lists.range(size(variables.holdings)).map(k, [variables.holdings[k]].map(h, "
        f"h.sections.map(s, {_remove(source)}) + [h.claims ? JSONPatch{{op: 'add', path: "
        "string(h.path) + 'claims/-', value: {'name': variables.claim_of[k]}} : JSONPatch{op: "
        "'add', path: string(h.path) + 'claims', value: [{'name': variables.claim_of[k]}]}])[0])"
        ".flatten()")
    pod = (f"(has(object.spec.resourceClaims) ? variables.claim_names.map(n, JSONPatch{{op: "
           f"'add', path: '/spec/resourceClaims/-', value: {entry}}}) : "
           "size(variables.claim_names) > 0 ? [JSONPatch{op: 'add', path: '/spec/resourceClaims',"
           f" value: variables.claim_names.map(n, {entry})}}] : [])")
    return f"{containers} + {pod}"
