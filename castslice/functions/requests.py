"""How much of a resource the scheduler reserves for a Pod, from its containers' requests.

The rule is Kubernetes' own (k8s.io/component-helpers/resource/helpers.go, PodRequests):
regular containers and sidecars (init containers with restartPolicy Always) add up; each
plain init container runs alone beside the sidecars started before it; the Pod reserves the
larger of the two. Ephemeral containers reserve nothing.
https://kubernetes.io/docs/concepts/workloads/pods/sidecar-containers/#resource-sharing-within-containers
"""

from collections.abc import Iterable


def scheduled(init: Iterable[tuple[int, bool]], regular: Iterable[int]) -> int:
    """The Pod's reservation from init containers (amount, is_sidecar) in order and the
    regular containers' amounts: scheduled([(2, False)], [1, 1]) == 2."""
    total = sum(regular)
    sidecars = largest_init = 0
    for amount, sidecar in init:
        if sidecar:
            total += amount
            sidecars += amount
            largest_init = max(largest_init, sidecars)
        else:
            largest_init = max(largest_init, amount + sidecars)
    return max(total, largest_init)
