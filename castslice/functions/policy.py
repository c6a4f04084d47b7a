"""What the decision needs from the configuration, and nothing else.

`castslice.settings.config.Config` builds a Policy from the environment; the pure core never sees
TLS files, capture targets or worker counts, so it can be imported, tested and reasoned
about on its own.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from castslice.functions.memory import PROFILE_MEMORY, Grant, mig_grant, unit_grant
from castslice.functions.mig import DEFAULT_LADDER, compute, profile_for, resource_suffix
from castslice.functions.rules import Rule

Backend = Literal["extended", "mig", "dra"]
BACKENDS: tuple[Backend, ...] = ("extended", "mig", "dra")
DraDevices = Literal["mig", "shares"]
DRA_DEVICES: tuple[DraDevices, ...] = ("mig", "shares")

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
    on_quota_escape: Literal["warn", "deny"] = "warn"
    """What a Pod the quota guard names gets: left whole with a warning, or refused."""
    exclude_namespaces: frozenset[str] = frozenset({"kube-system"})
    rules: tuple[Rule, ...] = ()
    backend: Backend = "extended"
    """What a converted container becomes: the target resource, a MIG profile, or claims."""
    mig_profiles: tuple[str, ...] = DEFAULT_LADDER
    mig_resource_prefix: str = "nvidia.com/mig-"
    dra_template_prefix: str = "castslice-gpu-"
    dra_devices: DraDevices = "mig"
    """What the `dra` templates claim: a MIG device of the ladder, or shares of a whole GPU
    (the NVIDIA DRA driver's consumable `shares` capacity, N per GPU)."""
    slices_per_gpu: int | None = None
    """N: the shared units one physical GPU advertises (time-slicing replicas under
    extended, `shares` under dra); None when not set."""
    gpu_memory: int | None = None
    """The card's memory in bytes, for memory asks under extended and dra shares."""
    mig_memory: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    """Real memory in bytes of MIG profiles, over the card model's table (memory.py)."""

    def mig_resource(self, profile: str) -> str:
        """The extended resource name of a MIG profile: nvidia.com/mig-1g.5gb, and
        nvidia.com/mig-1g.10gb.me for 1g.10gb+me (the device plugin writes '+' as '.')."""
        return self.mig_resource_prefix + resource_suffix(profile)

    @property
    def mig_devices(self) -> bool:
        """Whether a converted GPU becomes a MIG device (mig, or dra with MIG templates)."""
        return self.backend == "mig" or (self.backend == "dra" and self.dra_devices == "mig")

    def largest_slices(self) -> int | None:
        """The most slices one GPU can be granted by what the cluster offers: the ladder's
        largest profile for MIG devices, N shares; None for extended (any unit count)."""
        if self.mig_devices:
            return compute(self.mig_profiles[-1])
        if self.backend == "dra":
            return self.slices_per_gpu
        return None

    def card_units(self) -> int | None:
        """What one physical card holds, in the units a grant is counted in: its compute
        slices (the ladder's largest profile: 7 on A100/H100/H200, 4 on A30) for MIG
        devices, else N (shares or time-slicing replicas); None when N is not set."""
        return self.largest_slices() if self.mig_devices else self.slices_per_gpu

    def granted(self, slices: int) -> int:
        """The units a GPU of `slices` slices really holds: a MIG device's whole profile
        (5 slices on the A100 ladder are a 7g device), else the slices themselves."""
        profile = profile_for(self.mig_profiles, slices) if self.mig_devices else None
        return compute(profile) if profile else slices

    @property
    def profile_memory(self) -> Mapping[str, int]:
        """Each MIG profile's real memory: the card model's table, then the configuration's."""
        return {**PROFILE_MEMORY, **self.mig_memory}

    def memory_grant(self, ask: int) -> Grant:
        """The fewest slices per GPU whose memory holds `ask` bytes under this back-end: a
        MIG profile's real memory, else units of the card's memory."""
        if self.mig_devices:
            return mig_grant(ask, self.mig_profiles, self.profile_memory, self.max_slices)
        return unit_grant(ask, self.gpu_memory, self.slices_per_gpu, self.max_slices)

    def dra_template(self, slices: int) -> str:
        """The ResourceClaimTemplate a GPU of `slices` slices is claimed from."""
        return f"{self.dra_template_prefix}{slices}"
