"""The webhook's `matchConditions`: CEL the API server evaluates itself, so that a Pod
CastSlice would pass unchanged is never sent (no call, no latency, no cold start under
Knative). Every install path writes exactly these (tests compare them); `doctor` reads them
back from the live MutatingWebhookConfiguration.

Only Pods whose containers or init containers ask for the source resource in `limits` (or
that carry castops.io/sliced: a converted Pod created again, warned about as the policy
engine warns) are sent, and not those opted out with `castops.io/optimize: "false"`. Limits
suffice: Kubernetes refuses an extended resource in requests without limits, and ephemeral
containers come by a subresource, never a Pod CREATE.
"""

import re
from collections.abc import Mapping
from typing import Any

from castslice.cel.selection import sent_conditions

NAME = "pods.castslice.castops.io"
"""The webhook's name in every install's MutatingWebhookConfiguration."""
_TESTED = re.compile(r"'([^']+)' in c\.resources\.limits")


def match_conditions(source: str) -> list[dict[str, str]]:
    """The conditions for a source resource, the same the policy engine's objects carry
    (cel.selection.sent_conditions), so both engines are given the same Pods."""
    return sent_conditions(source)


def tested_resources(webhook: Mapping[str, Any]) -> set[str]:
    """The resources a webhook's matchConditions test containers' limits for."""
    conditions = webhook.get("matchConditions")
    expressions = [str(c.get("expression", "")) for c in conditions
                   if isinstance(c, dict)] if isinstance(conditions, list) else []
    return {found for expression in expressions for found in _TESTED.findall(expression)}
