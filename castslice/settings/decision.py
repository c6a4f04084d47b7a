"""The decision's settings: the CASTSLICE_* variables that make the `Policy` the pure core
reads, and nothing of how it is served (TLS, bind, capture), so a replay can rebuild the
Policy a capture was decided under on another machine.
"""

from collections.abc import Mapping
from dataclasses import replace
from types import MappingProxyType

from castslice.functions.mig import DEFAULT_LADDER, parse_ladder
from castslice.functions.policy import BACKENDS, DRA_DEVICES, Policy
from castslice.functions.rules import parse_rules
from castslice.settings import values
from castslice.settings.values import DEFAULT_PRESETS, ConfigError, Reader


def policy_from_env(env: Mapping[str, str]) -> Policy:
    """The decision's settings alone, for replaying under a recorded configuration: TLS
    files, bind address and capture target of another machine are not looked at."""
    read = Reader(env)
    policy = read_policy(read, read.text("NAMESPACE") or None)
    if read.problems:
        raise ConfigError(read.problems)
    return policy


def read_policy(read: Reader, namespace: str | None) -> Policy:
    """The decision's settings; the namespace CastSlice runs in is always excluded. A
    preset, default or rule that no GPU could ever be granted under the back-end stops
    the start; a slice-ratio annotation past it passes the Pod unchanged with a warning."""
    backend = read.choice("BACKEND", "extended", BACKENDS)
    ladder = read.parse("MIG_PROFILES", ",".join(DEFAULT_LADDER), parse_ladder)
    shape = Policy(backend=backend, mig_profiles=ladder,  # type: ignore[arg-type]
                   dra_devices=read.choice("DRA_DEVICES", "mig", DRA_DEVICES),  # type: ignore[arg-type]
                   slices_per_gpu=read.parse("SLICES_PER_GPU", "", values.optional_whole))
    if backend == "dra" and shape.dra_devices == "shares" and shape.slices_per_gpu is None:
        read.problem("SLICES_PER_GPU", "", "CASTSLICE_DRA_DEVICES=shares needs the shares "
                     "per GPU (the DRA driver's --consumable-shares=N), e.g. 8")
    max_slices = read.whole("MAX_SLICES", 64, 1, 10_000)
    presets = read.parse("PRESETS", DEFAULT_PRESETS, values.presets)
    too_big = [f"{name}={count}" for name, count in presets.items() if count > max_slices]
    if too_big:
        read.problem("PRESETS", read.text("PRESETS") or DEFAULT_PRESETS,
                     f"{', '.join(too_big)} above CASTSLICE_MAX_SLICES={max_slices}")
    source = read.parse("SOURCE_RESOURCE", "nvidia.com/gpu", values.resource_name)
    target = read.parse("TARGET_RESOURCE", "nvidia.com/gpu-shared", values.resource_name)
    if source == target:
        read.problem("TARGET_RESOURCE", target, "must differ from CASTSLICE_SOURCE_RESOURCE")
    excluded = read.parse("EXCLUDE_NAMESPACES", "kube-system", values.name_list)
    mig_prefix = read.parse("MIG_RESOURCE_PREFIX", "nvidia.com/mig-",
                            lambda value: values.mig_prefix(value, ladder))
    policy = replace(
        shape,
        gpu_memory=read.parse("GPU_MEMORY", "", values.memory),
        mig_memory=MappingProxyType(read.parse(
            "MIG_MEMORY", "", lambda value: values.mig_memory(value, ladder))),
        source_resource=source,
        target_resource=target,
        default_slices=read.whole("DEFAULT_SLICES", 1, 1, max_slices),
        max_slices=max_slices,
        presets=MappingProxyType(presets),
        on_invalid=read.choice("ON_INVALID", "warn", ("warn", "deny")),  # type: ignore[arg-type]
        on_quota_escape=read.choice(  # type: ignore[arg-type]
            "ON_QUOTA_ESCAPE", "warn", ("warn", "deny")),
        exclude_namespaces=frozenset(excluded) | ({namespace} if namespace else set()),
        rules=read.parse("RULES", "", lambda v: parse_rules(v, presets, max_slices)),
        mig_resource_prefix=mig_prefix,
        dra_template_prefix=read.parse("DRA_TEMPLATE_PREFIX", "castslice-gpu-",
                                       values.template_prefix),
    )
    if source in {policy.mig_resource(profile) for profile in ladder}:
        read.problem("MIG_RESOURCE_PREFIX", mig_prefix,
                     f"a profile's resource name equals CASTSLICE_SOURCE_RESOURCE={source}")
    _never_granted(read, policy)
    _memory_rules(read, policy)
    return policy


def _memory_rules(read: Reader, policy: Policy) -> None:
    """A rule's gpuMemory that no grant of this configuration holds would leave every Pod it
    decides unchanged: refused at start, saying what is missing (the card's memory, a
    profile that large)."""
    unsized = not policy.mig_devices and None in (policy.gpu_memory, policy.slices_per_gpu)
    name = "GPU_MEMORY" if unsized else "RULES"
    for rule in policy.rules:
        unfit = rule.gpu_memory is not None and policy.memory_grant(rule.gpu_memory).unfit
        if unfit:
            read.problem(name, read.text(name), f"gpuMemory of rule {rule.name}: {unfit}")


def _never_granted(read: Reader, policy: Policy) -> None:
    """Presets, the default and rules above what one GPU can be given under mig or dra
    would leave every Pod they decide unchanged: refused at start, naming the limit."""
    largest = policy.largest_slices()
    if largest is None:
        return
    limit = (f"the largest MIG profile {policy.mig_profiles[-1]} holds {largest} compute "
             "slices" if policy.mig_devices else
             f"a GPU has {largest} shares (CASTSLICE_SLICES_PER_GPU={largest})")
    over = [f"{name}={count}" for name, count in policy.presets.items() if count > largest]
    if over:
        read.problem("PRESETS", read.text("PRESETS") or DEFAULT_PRESETS,
                     f"{', '.join(over)}: {limit}; lower the preset or change the back-end")
    if policy.default_slices > largest:
        read.problem("DEFAULT_SLICES", str(policy.default_slices), f"{limit}")
    rules = [r.name for r in policy.rules if (r.slice_ratio or 0) > largest]
    if rules:
        read.problem("RULES", read.text("RULES"), f"sliceRatio of rule {', '.join(rules)}: {limit}")
