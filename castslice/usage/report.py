"""A recommendation for people (a table), for automation (JSON), and as an env file that
`castslice config --env-file` validates and `castslice replay CAPTURE --env-file` previews."""

import json
from dataclasses import asdict
from typing import Any

from castslice.functions.policy import Policy
from castslice.settings.config import Config
from castslice.usage.advice import Advice, Recommendation
from castslice.usage.series import Measured

HOURS_PER_MONTH = 730


def rules(recommendation: Recommendation, policy: Policy) -> list[dict[str, Any]]:
    """One rule per namespace, first in CASTSLICE_RULES: the largest grant any of its
    workloads needs (a namespace holding a workload that needs a whole GPU gets none), then
    the configuration's own rules."""
    per_namespace: dict[str, list[Advice]] = {}
    for advice in recommendation.advice:
        per_namespace.setdefault(advice.workload.namespace, []).append(advice)
    made = []
    for namespace, found in sorted(per_namespace.items()):
        if not all(a.shares for a in found):
            continue
        widest = max(found, key=lambda a: a.units)
        key, _, value = widest.grant.partition("=")
        made.append({"name": f"recommended-{namespace}", "namespaces": [namespace],
                     "optimize": True, key: int(value) if key == "sliceRatio" else value})
    return made + [rule.as_dict() for rule in policy.rules]


def env_file(recommendation: Recommendation, config: Config, measured: Measured,
             window: str) -> str:
    """The decision's settings of this configuration with the recommended rules."""
    policy_names = {f"CASTSLICE_{name.upper()}" for name in config.policy.__dataclass_fields__}
    settings = {k: v for k, v in config.as_env().items() if k in policy_names}
    settings["CASTSLICE_RULES"] = json.dumps(rules(recommendation, config.policy),
                                             separators=(",", ":"))
    if config.gpu_hourly_cost is not None:
        settings["CASTSLICE_GPU_HOURLY_COST"] = repr(config.gpu_hourly_cost)
    lines = [f"# castslice recommend: dcgm-exporter series over {window} "
             f"(p95 {measured.queries['p95'][:60]}...)",
             "# check: castslice config --env-file FILE; preview: castslice replay CAPTURE "
             "--env-file FILE"]
    return "\n".join([*lines, *(f"{k}={v}" for k, v in sorted(settings.items()))]) + "\n"


def as_dict(recommendation: Recommendation, measured: Measured, window: str,
            policy: Policy) -> dict[str, Any]:
    """The recommendation for automation, each figure with its PromQL."""
    saved = _saved(recommendation)
    return {"window": window, "source": measured.queries,
            "workloads": [asdict(a.workload) | {k: v for k, v in asdict(a).items()
                                                if k != "workload"} for a in recommendation.advice],
            "skipped": [asdict(s) for s in recommendation.skipped],
            "over_packed": [asdict(o) for o in recommendation.over_packed],
            "rules": rules(recommendation, policy),
            "saved_dollars_per_hour": saved,
            "saved_dollars_per_month": None if saved is None else round(saved * HOURS_PER_MONTH, 2)}


def table(recommendation: Recommendation, window: str) -> str:
    """The recommendation for people, with where each column comes from."""
    lines: list[str] = [f"{'NAMESPACE':16} {'WORKLOAD':28} {'PODS':>4} {'P95%':>6} {'PEAK MIB':>9} "
             f"{'CARD MIB':>9} {'FIT':>4} {'GRANT':24} {'SAVED/H':>8}"]
    for a in recommendation.advice:
        w = a.workload
        saved = "" if a.saved_per_hour is None else f"${a.saved_per_hour:,.2f}"
        grant = a.grant + (f" ({a.profile})" if a.profile else "")
        lines.append(f"{w.namespace:16} {(w.kind + '/' + w.name)[:28]:28} {w.running:>4} "
                     f"{w.p95:>6.1f} {w.peak_mib:>9.0f} {w.card_mib:>9.0f} {a.fit:>4} "
                     f"{grant:24} {saved:>8}")
    lines.append(f"\nP95%: quantile_over_time(0.95, DCGM_FI_DEV_GPU_UTIL[{window}]); PEAK MIB: "
                 f"max_over_time(DCGM_FI_DEV_FB_USED[{window}]); CARD MIB: FB_USED + FB_FREE; "
                 "PODS: holding a whole GPU now; FIT: Pods per card with that grant.")
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
