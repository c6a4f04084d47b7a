"""doctor for every back-end, from `kubectl get resourcequotas -A -o json`: a namespace whose
quota limits whole GPUs but not what opted-in Pods convert to lets one annotation lift it
past its quota (quota is evaluated after mutating admission)."""

from typing import Any

from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.cluster.objects import objects_of
from castslice.cluster.quotas import (
    bounds_converted,
    charged_as_source,
    gpu_quotas,
    per_gpu,
)
from castslice.functions.policy import Policy


def check(documents: list[Any], policy: Policy, result: Diagnosis) -> None:
    """One line per GPU quota outside excluded namespaces: open (a problem), or split or
    counting claims through their DeviceClass's extendedResourceName (ok)."""
    charged = charged_as_source(policy, objects_of(documents, "DeviceClass"))
    for found in gpu_quotas(objects_of(documents, "ResourceQuota"), policy):
        if found.namespace in policy.exclude_namespaces:
            continue
        where = f"namespace {found.namespace}: ResourceQuota {found.name}"
        fix = f"castslice quotas -n {found.namespace} --shared-gpus K | kubectl apply -f -"
        if not found.counted:
            result.problem(f"{where} limits {found.key}, which Kubernetes never counts for an "
                           f"extended resource (only requests.{policy.source_resource}): it "
                           f"bounds nothing ({fix})")
        elif charged:
            result.lines.append(f"ok: {where} limits {found.key}, and claims of DeviceClass "
                                f"{charged} are charged it too (extendedResourceName): "
                                "nothing escapes")
        elif bounds_converted(found, policy):
            result.lines.append(f"ok: {where} bounds {', '.join(per_gpu(policy))} beside "
                                f"{found.key}")
        else:
            result.problem(f"{where} limits {found.key} to {found.gpus} but not "
                           f"{', '.join(per_gpu(policy))}: opted-in Pods there stay whole "
                           f"(the quota guard) or, without the guard, hold GPUs outside the "
                           f"quota ({fix})")
