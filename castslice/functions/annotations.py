"""The annotations CastSlice reads and writes on a Pod's own metadata."""

OPTIMIZE = "castops.io/optimize"
SLICE_RATIO = "castops.io/slice-ratio"
WORKLOAD_TYPE = "castops.io/workload-type"
GPU_MEMORY = "castops.io/gpu-memory"
SLICED = "castops.io/sliced"

AUDIT_KEY = "sliced"
"""auditAnnotations key; the API server prefixes it with the webhook's name."""
QUOTA_GUARD = "castops.io/quota-guard"
"""Written by the quota guard (an admission policy reading the namespace's ResourceQuotas)
before CastSlice decides: each quota that limits the source, and what it counts."""
