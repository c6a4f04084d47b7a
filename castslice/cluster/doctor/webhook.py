"""doctor for every back-end, from `kubectl get mutatingwebhookconfigurations -o json`: the
API server sends CastSlice only what the webhook's matchConditions let through
(`cluster/webhook.py`). Without them every Pod creation in the cluster waits on a call (and,
under Knative, may wake a replica); when they test another resource than CastSlice converts,
no Pod asking for it is ever sent."""

from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.objects import objects_of
from castslice.cluster.webhook import NAME, tested_resources
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of


def check(documents: list[Any], policy: Policy, result: Diagnosis) -> None:
    """One line per CastSlice webhook in the input; none when the input lists none."""
    source = policy.source_resource
    for configuration in objects_of(documents, "MutatingWebhookConfiguration"):
        hooks = configuration.get("webhooks")
        for hook in hooks if isinstance(hooks, list) else ():
            if mapping(hook).get("name") != NAME:
                continue
            where = (f"MutatingWebhookConfiguration "
                     f"{metadata_of(configuration).get('name', '?')}")
            tested = tested_resources(hook)
            if not hook.get("matchConditions"):
                result.lines.append(
                    f"warning: {where} has no matchConditions: every Pod creation is sent to "
                    "CastSlice, not only those asking for "
                    f"{source} (reinstall from this version's manifests or chart)")
            elif source not in tested:
                named = ", ".join(sorted(tested)) or "no resource CastSlice's manifests test"
                result.problem(f"{where}'s matchConditions send Pods asking for {named}, but "
                               f"CastSlice converts {source}: no Pod asking for it reaches "
                               "CastSlice (render the webhook with the same "
                               "CASTSLICE_SOURCE_RESOURCE)")
            else:
                result.lines.append(f"ok: {where} sends only Pods asking for {source}")
