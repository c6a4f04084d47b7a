"""`castslice audit`: opted-in Pods that still hold whole GPUs, and how to recreate them.

With failurePolicy Ignore, a Pod created while CastSlice was down or cold is admitted
unchanged. This finds them in a Pod list and names the command that recreates each
through admission again.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from castslice.cluster.objects import holds, live
from castslice.functions import resolve
from castslice.functions.policy import Policy
from castslice.functions.reviews import mapping, metadata_of
from castslice.functions.rules import first_match


@dataclass(frozen=True, slots=True)
class Slipped:
    namespace: str
    name: str
    opted_in_by: str
    command: str


def slipped(pods: list[dict[str, Any]], policy: Policy) -> list[Slipped]:
    """Live, opted-in Pods outside excluded namespaces that hold the source resource."""
    found = []
    for pod in pods:
        metadata = metadata_of(pod)
        namespace = str(metadata.get("namespace", "default"))
        if namespace in policy.exclude_namespaces or not live(pod):
            continue
        annotations, labels = mapping(metadata.get("annotations")), mapping(metadata.get("labels"))
        opted, by = resolve.opt_in(annotations, first_match(policy.rules, namespace, labels))
        if opted and holds(pod, policy.source_resource):
            found.append(Slipped(namespace, str(metadata.get("name", "?")), by,
                                 recreate_command(namespace, metadata)))
    return found


def recreate_command(namespace: str, metadata: Mapping[str, Any]) -> str:
    """The kubectl command that makes the Pod's owner create it again, through admission."""
    owner = next((o for o in metadata.get("ownerReferences", []) if isinstance(o, dict)
                  and o.get("controller")), None)
    name = metadata.get("name", "?")
    kubectl = f"kubectl -n {namespace}"
    if owner is None:
        return f"{kubectl} get pod {name} -o yaml | kubectl replace --force -f -"
    kind, owner_name = owner.get("kind"), str(owner.get("name", "?"))
    template_hash = mapping(metadata.get("labels")).get("pod-template-hash")
    if kind == "ReplicaSet" and template_hash and owner_name.endswith(f"-{template_hash}"):
        return f"{kubectl} rollout restart deployment/{owner_name[:-len(template_hash) - 1]}"
    if kind in ("StatefulSet", "DaemonSet"):
        return f"{kubectl} rollout restart {kind.lower()}/{owner_name}"
    return f"{kubectl} delete pod {name}  # {kind}/{owner_name} creates it again"
