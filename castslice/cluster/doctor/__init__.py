"""`castslice doctor`: can this cluster run the Pods CastSlice converts?

One check per back-end (`extended`, `mig`, `dra`), each `check(documents, policy) ->
Diagnosis` over what `kubectl get ... -o json` printed, then the quota check common to all
(`quota.py`); `Diagnosis` sits below them in `diagnosis.py`, so no check imports another.
"""

from typing import Any

from castslice.cluster.doctor import dra, extended, mig, quota
from castslice.cluster.doctor.diagnosis import Diagnosis
from castslice.functions.policy import Policy

_CHECKS = {"extended": extended.check, "mig": mig.check, "dra": dra.check}


def diagnose(documents: list[Any], policy: Policy) -> Diagnosis:
    """What stops the configured back-end from placing the Pods CastSlice converts, and
    the GPU quotas its conversions escape."""
    result = _CHECKS[policy.backend](documents, policy)
    quota.check(documents, policy, result)
    return result
