"""`castslice ready` on a real API server: it returns once a dry-run opted-in Pod comes back
converted (through the user's kubectl, or with a ServiceAccount token as the chart's
post-install hook does), and fails with one line when nothing converts it in time."""

import json
import shutil
from collections.abc import Iterator

import pytest

from castslice.cli import main
from tests.envtest import ControlPlane
from tests.webhooks import Webhooks, fresh, probe_pod


@pytest.fixture(scope="module")
def webhooks(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhooks]:
    yield from fresh(kube, tmp_path_factory.mktemp("ready"), prefix="castslice-ready")


def _pod(tmp_path, namespace: str, route: str):
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(probe_pod(namespace, route)))
    return str(path)


def test_ready_returns_once_the_api_server_converts(kube, webhooks, tmp_path, capsys):
    route, _ = webhooks.route({})
    namespace = kube.namespace("ready")
    code = main(["ready", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                 "--pod", _pod(tmp_path, namespace, route), "--timeout", "30"], {})
    out = capsys.readouterr().out
    assert code == 0 and out.startswith("castslice: converted after "), out
    assert "nvidia.com/gpu x1 -> nvidia.com/gpu-shared x1" in out
    assert kube.get("pods", "-n", namespace)["items"] == []  # a dry run creates nothing


def test_ready_fails_in_one_line_when_nothing_converts(kube, tmp_path, capsys):
    namespace = kube.namespace("unready")
    code = main(["ready", "--kubeconfig", str(kube.kubeconfig), "-n", namespace,
                 "--pod", _pod(tmp_path, namespace, "nobody-serves-this"), "--timeout", "2"],
                {})
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert f"did not convert an opted-in GPU Pod in namespace {namespace} within 2 s" in err


def test_ready_in_cluster_asks_with_a_service_account_token(kube, webhooks, tmp_path, capsys):
    """What the chart's hook does: the SA may only create Pods in the probe's namespace."""
    route, _ = webhooks.route({})
    namespace = kube.namespace("hook")
    kube.kubectl("create", "serviceaccount", "castslice-ready", "-n", namespace)
    kube.kubectl("create", "role", "castslice-ready", "--verb=create", "--resource=pods",
                 "-n", namespace)
    kube.kubectl("create", "rolebinding", "castslice-ready", "--role=castslice-ready",
                 f"--serviceaccount={namespace}:castslice-ready", "-n", namespace)
    account = tmp_path / "account"
    account.mkdir()
    (account / "token").write_text(kube.kubectl(
        "create", "token", "castslice-ready", "-n", namespace).stdout)
    shutil.copy(kube.folder / "ca.crt", account / "ca.crt")
    code = main(["ready", "--in-cluster", "--server", kube.url, "--account", str(account),
                 "-n", namespace, "--pod", _pod(tmp_path, namespace, route),
                 "--timeout", "30"], {})
    assert code == 0, capsys.readouterr()
    assert "converted after" in capsys.readouterr().out
