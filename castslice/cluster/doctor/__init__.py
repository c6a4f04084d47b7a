"""`castslice doctor`: can this cluster run the Pods CastSlice converts?

One check per back-end (`extended`, `mig`, `dra`), each `check(documents, policy) ->
Diagnosis` over what `kubectl get ... -o json` printed, then the checks common to all: the
memory that memory asks are granted from (`memory.py`), quotas (`quota.py`), the webhook's
matchConditions (`webhook.py`), which engine decides (`engine.py`) and dcgm-exporter's
settings (`exporter.py`); `Diagnosis`
sits below them in `diagnosis.py`, so no check imports another.
"""

from typing import Any

from castslice.cluster.doctor import (
    dra,
    engine,
    exporter,
    extended,
    memory,
    mig,
    quota,
    webhook,
)
from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.functions.policy import Policy

_CHECKS = {"extended": extended.check, "mig": mig.check, "dra": dra.check}


def diagnose(documents: list[Any], policy: Policy) -> Diagnosis:
    """What stops the configured back-end from placing the Pods CastSlice converts, whether
    memory asks get the memory they ask, the GPU quotas its conversions escape, which Pods
    the API server sends it, and whether dcgm-exporter still sees the Pods it converted."""
    result = _CHECKS[policy.backend](documents, policy)
    memory.check(documents, policy, result)
    quota.check(documents, policy, result)
    webhook.check(documents, policy, result)
    engine.check(documents, policy, result)
    exporter.check(documents, policy, result)
    return result
