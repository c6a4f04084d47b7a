"""What a doctor check finds: lines for the user, and whether the cluster can run the Pods
CastSlice converts. Below the checks, so none imports another."""

from dataclasses import dataclass, field

from castslice.functions.policy import Policy


@dataclass
class Diagnosis:
    """The lines a check prints, and `ok` False once any of them is a problem (exit 1)."""

    lines: list[str] = field(default_factory=list)
    ok: bool = True

    def problem(self, text: str) -> None:
        self.ok = False
        self.lines.append(f"problem: {text}")


def largest_grant(policy: Policy) -> int:
    """The most slices CastSlice may give one GPU under this configuration."""
    rules = [r.slice_ratio or policy.presets.get(r.workload_type or "", 0) for r in policy.rules]
    return max([policy.max_slices, policy.default_slices, *policy.presets.values(), *rules])
