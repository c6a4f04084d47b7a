"""The two engines decide the same (SPEC §7a): every golden Pod creation, sent through a real
kube-apiserver v1.36 once to the webhook and once to only the policies `castslice policy`
prints for the same configuration, is stored identically (limits, requests and claims of
every container, the Pod's claims, castops.io/sliced), refused by both or neither, and warned
about by both or neither."""

import copy
import re
from collections.abc import Iterator

import pytest

from tests.envtest import ControlPlane
from tests.policies import Policies
from tests.test_apiserver_webhook import REFUSED_BY_KUBERNETES, SENT, _resources
from tests.webhooks import ROUTE, Webhooks, create, fresh

_WARNING = re.compile(r"^Warning: (.*)$", re.M)
_POLICY_PREFIX = re.compile(r"^Validation failed for ValidatingAdmissionPolicy '[^']+' with "
                            r"binding '[^']+': ")


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    yield from fresh(kube, tmp_path_factory.mktemp("engines"))


@pytest.fixture(scope="module")
def policies(kube: ControlPlane) -> Policies:
    return Policies(kube)


def _created(kube: ControlPlane, case, route: str) -> tuple[dict | None, str, list[str]]:
    """The case's Pod created under `route`: as stored, what kubectl said, the warnings."""
    request = case.request["request"]
    namespace = request["namespace"]
    kube.ensure_namespace(namespace)
    pod = copy.deepcopy(request["object"])
    pod["metadata"].pop("managedFields", None)
    pod["metadata"]["namespace"] = namespace
    pod["metadata"].setdefault("labels", {})[ROUTE] = route
    stored, said = create(kube, pod)
    warnings = [_POLICY_PREFIX.sub("", w) for w in _WARNING.findall(said)]
    return stored, said, warnings


@pytest.mark.parametrize("case", SENT, ids=lambda c: c.name)
def test_the_policies_store_what_the_webhook_stores(kube, webhooks, policies, case):
    by_webhook, said_webhook, warned_webhook = _created(kube, case, webhooks.route(case.env)[0])
    by_policy, said_policy, warned_policy = _created(kube, case, policies.route(case.env))
    assert (by_webhook is None) == (by_policy is None), (said_webhook, said_policy)
    if by_webhook is not None:
        assert _resources(by_policy) == _resources(by_webhook)
    if case.name in REFUSED_BY_KUBERNETES:
        # Kubernetes' own validation refuses it before any ValidatingAdmissionPolicy runs,
        # so the policies cannot warn; a webhook's warnings come back with the refusal.
        assert REFUSED_BY_KUBERNETES[case.name] in said_policy, said_policy
        return
    assert bool(warned_policy) == bool(warned_webhook), (warned_webhook, warned_policy)
    for warning in warned_webhook:
        assert warning in "\n".join(warned_policy), (warned_webhook, warned_policy)
