"""What the decision needs from the configuration, and nothing else.

`castslice.settings.config.Config` builds a Policy from the environment; the pure core never sees
TLS files, capture targets or worker counts, so it can be imported, tested and reasoned
about on its own.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from castslice.functions.mig import DEFAULT_LADDER
from castslice.functions.rules import Rule

Backend = Literal["extended", "mig", "dra"]
BACKENDS: tuple[Backend, ...] = ("extended", "mig", "dra")

DEFAULT_PRESETS: Mapping[str, int] = MappingProxyType(
    {"training": 4, "inference": 2, "batch": 2, "dev": 1})


@dataclass(frozen=True, slots=True)
class Policy:
    """The decision's inputs besides the review; build variants with dataclasses.replace."""

    source_resource: str = "nvidia.com/gpu"
    target_resource: str = "nvidia.com/gpu-shared"
    default_slices: int = 1
    max_slices: int = 64
    presets: Mapping[str, int] = field(default_factory=lambda: DEFAULT_PRESETS)
    on_invalid: Literal["warn", "deny"] = "warn"
    exclude_namespaces: frozenset[str] = frozenset({"kube-system"})
    rules: tuple[Rule, ...] = ()
    backend: Backend = "extended"
    """What a converted container becomes: the target resource, a MIG profile, or claims."""
    mig_profiles: tuple[str, ...] = DEFAULT_LADDER
    mig_resource_prefix: str = "nvidia.com/mig-"
    dra_template_prefix: str = "castslice-gpu-"

    def mig_resource(self, profile: str) -> str:
        """The extended resource name of a MIG profile: nvidia.com/mig-1g.5gb."""
        return self.mig_resource_prefix + profile

    def dra_template(self, slices: int) -> str:
        """The ResourceClaimTemplate a GPU of `slices` slices is claimed from."""
        return f"{self.dra_template_prefix}{slices}"
