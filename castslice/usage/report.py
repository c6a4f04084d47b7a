"""A recommendation for people (a table), for automation (JSON), and as an env file that
`castslice config --env-file` validates and `castslice replay CAPTURE --env-file` previews."""

import json
from dataclasses import asdict, replace
from typing import Any, Literal

from castslice.functions.memory import MiB, quantity_text
from castslice.functions.policy import Policy
from castslice.settings.config import Config
from castslice.usage.advice import Advice, Recommendation
from castslice.usage.series import ENGINE, FB_USED, UTIL, Measured

HOURS_PER_MONTH = 730
RuleBy = Literal["grant", "memory"]


def rules(recommendation: Recommendation, policy: Policy,
          by: RuleBy = "grant") -> list[dict[str, Any]]:
    """One rule per namespace, first in CASTSLICE_RULES: the largest grant any of its
    workloads needs (a namespace holding a workload that needs a whole GPU gets none), then
    the configuration's own rules. By memory, the rule asks the largest memory ask of its
    workloads instead, where some grant of the configuration holds it (else the grant)."""
    per_namespace: dict[str, list[Advice]] = {}
    for advice in recommendation.advice:
        per_namespace.setdefault(advice.workload.namespace, []).append(advice)
    made = []
    for namespace, found in sorted(per_namespace.items()):
        if not all(a.shares for a in found):
            continue
        ask = max(a.memory_ask for a in found)
        rule: dict[str, Any] = {"name": f"recommended-{namespace}", "namespaces": [namespace],
                                "optimize": True}
        if by == "memory" and not policy.memory_grant(ask).unfit:
            made.append(rule | {"gpuMemory": quantity_text(ask)})
            continue
        key, _, value = max(found, key=lambda a: a.units).grant.partition("=")
        made.append(rule | {key: int(value) if key == "sliceRatio" else value})
    return made + [rule.as_dict() for rule in policy.rules]


def measured_policy(recommendation: Recommendation, policy: Policy, by: RuleBy) -> Policy:
    """The policy memory rules are written for: where units of the card's memory grant a
    memory ask and the configuration does not say the card's memory, the smallest card
    measured (FB_USED + FB_FREE + FB_RESERVED)."""
    cards = [a.workload.card_mib for a in recommendation.advice if not a.workload.profiles]
    if by != "memory" or policy.mig_devices or policy.gpu_memory is not None or not cards:
        return policy
    return replace(policy, gpu_memory=int(min(cards)) * MiB)


def env_file(recommendation: Recommendation, config: Config, measured: Measured,
             window: str, by: RuleBy = "grant") -> str:
    """The decision's settings of this configuration with the recommended rules (and, for
    memory rules, the card's memory as measured where the configuration lacks it)."""
    policy = measured_policy(recommendation, config.policy, by)
    policy_names = {f"CASTSLICE_{name.upper()}" for name in policy.__dataclass_fields__}
    settings = {k: v for k, v in replace(config, policy=policy).as_env().items()
                if k in policy_names}
    settings["CASTSLICE_RULES"] = json.dumps(rules(recommendation, policy, by),
                                             separators=(",", ":"))
    if config.gpu_hourly_cost is not None:
        settings["CASTSLICE_GPU_HOURLY_COST"] = repr(config.gpu_hourly_cost)
    lines = [f"# castslice recommend: dcgm-exporter series over {window} "
             f"(p95 {measured.queries['p95_engine'][:60]}...)",
             "# check: castslice config --env-file FILE; preview: castslice replay CAPTURE "
             "--env-file FILE"]
    return "\n".join([*lines, *(f"{k}={v}" for k, v in sorted(settings.items()))]) + "\n"


def as_dict(recommendation: Recommendation, measured: Measured, window: str,
            policy: Policy, by: RuleBy = "grant") -> dict[str, Any]:
    """The recommendation for automation, each figure with its PromQL."""
    saved = _saved(recommendation)
    return {"window": window, "source": measured.queries,
            "workloads": [asdict(a.workload) | {k: v for k, v in asdict(a).items()
                                                if k != "workload"} for a in recommendation.advice],
            "skipped": [asdict(s) for s in recommendation.skipped],
            "over_packed": [asdict(o) for o in recommendation.over_packed],
            "unheld_devices": measured.unheld, "scrape_interval_seconds": measured.interval,
            "copied_devices": measured.copied,
            "rules": rules(recommendation, measured_policy(recommendation, policy, by), by),
            "saved_dollars_per_hour": saved,
            "saved_dollars_per_month": None if saved is None else round(saved * HOURS_PER_MONTH, 2)}


def table(recommendation: Recommendation, measured: Measured, window: str,
          headroom: float = 20.0) -> str:
    """The recommendation for people, with where each column comes from."""
    lines: list[str] = [f"{'NAMESPACE':16} {'WORKLOAD':28} {'PODS':>4} {'P95%':>6} {'PEAK MIB':>9} "
             f"{'CARD MIB':>9} {'FIT':>4} {'GRANT':24} {'SAVED/H':>8} {'MEMORY ASK':>10}"]
    for a in recommendation.advice:
        w = a.workload
        saved = "" if a.saved_per_hour is None else f"${a.saved_per_hour:,.2f}"
        grant = a.grant + (f" ({a.profile})" if a.profile else "")
        name = f"{w.kind}/{w.name}{'?' if w.guessed else ''}{'*' if w.metric == UTIL else ''}"
        lines.append(f"{w.namespace:16} {name[:28]:28} {w.running:>4} "
                     f"{w.p95:>6.1f} {w.peak_mib:>9.0f} {w.card_mib:>9.0f} {a.fit:>4} "
                     f"{grant:24} {saved:>8} {quantity_text(a.memory_ask):>10}")
    lines.append(f"\nP95%: quantile_over_time(0.95, {ENGINE}[{window}]) x 100 (* where the "
                 f"exporter reports none: {UTIL}), of the card (a MIG instance's as its share "
                 f"of the card); PEAK MIB: max_over_time({FB_USED}[{window}]); CARD MIB: "
                 "FB_USED + FB_FREE + FB_RESERVED; PODS: holding a whole GPU now; FIT: Pods "
                 "per card with that grant; MEMORY ASK: PEAK + "
                 f"{headroom:g} % (--memory-headroom), rounded up to 256 MiB, for "
                 "castops.io/gpu-memory or --rules memory; ? : no kube_pod_owner series, name "
                 "guessed; "
                 f"samples {measured.interval:g} s apart.")
    for uuid in measured.copied:
        lines.append(f"GPU {uuid}: its Pods all carry the same values: the exporter copies the "
                     "GPU's use to each (dcgm-exporter before 4.5.3-4.8.2); each Pod is charged "
                     "its share, and the use is the GPU's, not theirs (castslice doctor)")
    if measured.unheld:
        lines.append(f"{len(measured.unheld)} device(s) no workload held all window (series "
                     "with only the exporter's own Pod labels): not advised on.")
    for s in recommendation.skipped:
        lines.append(f"skipped: {s.namespace + '/' if s.namespace else ''}{s.name}: {s.reason}")
    for o in recommendation.over_packed:
        lines.append(f"over-packed: GPU {o.uuid} ({o.model}) p95 {o.p95:.0f}%, peak "
                     f"{o.peak_mib:.0f} of {o.card_mib:.0f} MiB over {window}: "
                     f"{', '.join(o.workloads)}")
    total = _saved(recommendation)
    if total is not None:
        lines.append(f"Saved: ${total:,.2f} per hour, ${total * HOURS_PER_MONTH:,.2f} per month "
                     "(CASTSLICE_GPU_HOURLY_COST), for the Pods running now.")
    return "\n".join(lines) + "\n"


def _saved(recommendation: Recommendation) -> float | None:
    figures = [a.saved_per_hour for a in recommendation.advice]
    if not figures or any(f is None for f in figures):
        return None
    return round(sum(f for f in figures if f is not None), 2)
