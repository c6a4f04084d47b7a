"""A real Kubernetes control plane on loopback: etcd, kube-apiserver and, where a controller
must act, kube-controller-manager, from envtest's layout (controller-runtime's
`KUBEBUILDER_ASSETS`, or `.local/envtest` unpacked by `scripts/envtest-assets` from
../shared/envtest). Flags as ../shared/envtest/README.md gives them. Tests talk to it through
the user's own `kubectl`, as CastSlice's cluster commands do, and assert on what the server
stored, never on what they sent.
"""

import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.served import free_port

ROOT = Path(__file__).resolve().parent.parent
UNPACKED = ROOT / ".local" / "envtest"
HOW = ("no kube-apiserver/etcd: run scripts/envtest-assets .local/envtest (needs ../shared/envtest "
       "and Debian's etcd-server), or set KUBEBUILDER_ASSETS (setup-envtest use 1.36.x -p path)")
SERVICE_RANGE = "10.96.0.0/24"
ISSUER = "https://kubernetes.default.svc.cluster.local"


def assets() -> Path | None:
    """The folder holding kube-apiserver and etcd, or None when this machine has neither."""
    for candidate in (os.environ.get("KUBEBUILDER_ASSETS"), str(UNPACKED)):
        if candidate and all((Path(candidate) / b).exists() for b in ("kube-apiserver", "etcd")):
            return Path(candidate)
    return None


@dataclass
class ControlPlane:
    """A running API server, and kubectl pointed at it with an admin (system:masters) user."""

    kubeconfig: Path
    url: str
    folder: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _namespaces: int = 0

    def kubectl(self, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        """One kubectl command; a failure raises with what kubectl said."""
        done = subprocess.run(["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)}: {done.stderr}")
        return done

    def apply(self, documents: str | list[dict[str, Any]], *extra: str) -> str:
        """`kubectl apply -f -` with strict server-side field validation."""
        text = documents if isinstance(documents, str) else json.dumps(
            {"apiVersion": "v1", "kind": "List", "items": documents})
        return self.kubectl("apply", "--validate=strict", "-f", "-", *extra, stdin=text).stdout

    def get(self, *args: str) -> Any:
        """`kubectl get ... -o json`, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def namespace(self, prefix: str = "t", labels: dict[str, str] | None = None) -> str:
        """A fresh namespace for one test, so tests never see each other's objects."""
        self._namespaces += 1
        name = f"{prefix}-{self._namespaces}-{os.getpid() % 10000}"
        self.apply([{"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": name, "labels": labels or {}}}])
        return name

    def ensure_namespace(self, name: str) -> None:
        """A namespace an object names, created if the server has none of that name."""
        if self.kubectl("get", "namespace", name, check=False).returncode:
            self.kubectl("create", "namespace", name)

    def start_controllers(self) -> None:
        """kube-controller-manager, once: quota status, claims from templates, ReplicaSets."""
        if len(self.processes) > 2:
            return
        found = assets()
        assert found is not None and (found / "kube-controller-manager").exists(), HOW
        kubeconfig = str(self.kubeconfig)
        self.processes.append(_start(
            [str(found / "kube-controller-manager"), f"--kubeconfig={kubeconfig}",
             f"--authentication-kubeconfig={kubeconfig}",
             f"--authorization-kubeconfig={kubeconfig}", "--leader-elect=false",
             "--secure-port=0", "--bind-address=127.0.0.1",
             f"--cert-dir={self.folder / 'kcm'}",
             "--controllers=*,-node-lifecycle-controller",
             f"--service-account-private-key-file={self.folder / 'sa.key'}",
             f"--root-ca-file={self.folder / 'ca.crt'}",
             "--use-service-account-credentials=false",
             f"--service-cluster-ip-range={SERVICE_RANGE}"], self.folder / "kcm.log"))

    def logs(self) -> str:
        """The last lines each component wrote, for a failing test's message."""
        return "\n".join(f"{p.name}: {p.read_text()[-2000:]}" for p in self.folder.glob("*.log"))


def _start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def _write_key(path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))


def _kubeconfig(folder: Path, url: str, ca: trustme.CA) -> Path:
    admin = ca.issue_cert("castslice-test-admin", common_name="castslice-test-admin",
                          organization_name="system:masters")
    admin.cert_chain_pems[0].write_to_path(str(folder / "admin.crt"))
    admin.private_key_pem.write_to_path(str(folder / "admin.key"))
    path = folder / "kubeconfig"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "envtest",
        "clusters": [{"name": "envtest", "cluster": {
            "server": url, "certificate-authority": str(folder / "ca.crt")}}],
        "users": [{"name": "admin", "user": {"client-certificate": str(folder / "admin.crt"),
                                              "client-key": str(folder / "admin.key")}}],
        "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": "admin"}}]}))
    return path


def _wait_ready(plane: ControlPlane, ca: trustme.CA, deadline: float = 60) -> None:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    context.load_cert_chain(str(plane.folder / "admin.crt"), str(plane.folder / "admin.key"))
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if any(p.poll() is not None for p in plane.processes):
            raise AssertionError(f"control plane exited:\n{plane.logs()}")
        with suppress(OSError), urllib.request.urlopen(f"{plane.url}/readyz", context=context,
                                                         timeout=2) as answer:
            if answer.status == 200:
                return
        time.sleep(0.2)
    raise AssertionError(f"API server not ready in {deadline} s:\n{plane.logs()}")


@contextmanager
def control_plane(folder: Path, feature_gates: str = "") -> Iterator[ControlPlane]:
    """etcd and kube-apiserver on free loopback ports; stopped and their data removed after."""
    found = assets()
    assert found is not None, HOW
    folder.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "ca.crt"))
    ca.private_key_pem.write_to_path(str(folder / "ca.key"))
    serving = ca.issue_cert("127.0.0.1", "localhost")
    serving.cert_chain_pems[0].write_to_path(str(folder / "serving.crt"))
    serving.private_key_pem.write_to_path(str(folder / "serving.key"))
    _write_key(folder / "sa.key")
    client, peer, secure = free_port(), free_port(), free_port()
    etcd_url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    url = f"https://127.0.0.1:{secure}"
    plane = ControlPlane(_kubeconfig(folder, url, ca), url, folder)
    plane.processes.append(_start(
        [str(found / "etcd"), f"--data-dir={folder / 'etcd'}", f"--listen-client-urls={etcd_url}",
         f"--advertise-client-urls={etcd_url}", f"--listen-peer-urls={peer_url}",
         f"--initial-advertise-peer-urls={peer_url}", f"--initial-cluster=default={peer_url}",
         "--name=default", "--unsafe-no-fsync"], folder / "etcd.log"))
    plane.processes.append(_start(
        [str(found / "kube-apiserver"), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1",
         f"--secure-port={secure}", f"--tls-cert-file={folder / 'serving.crt'}",
         f"--tls-private-key-file={folder / 'serving.key'}",
         f"--client-ca-file={folder / 'ca.crt'}",
         f"--service-account-key-file={folder / 'sa.key'}",
         f"--service-account-signing-key-file={folder / 'sa.key'}",
         f"--service-account-issuer={ISSUER}", f"--api-audiences={ISSUER}",
         f"--service-cluster-ip-range={SERVICE_RANGE}", "--authorization-mode=Node,RBAC",
         "--endpoint-reconciler-type=none", "--disable-admission-plugins=ServiceAccount",
         *([f"--feature-gates={feature_gates}"] if feature_gates else [])],
        folder / "apiserver.log"))
    try:
        _wait_ready(plane, ca)
        yield plane
    finally:
        for process in reversed(plane.processes):  # throwaway data: no graceful drain (15 s)
            process.kill()
            process.wait()
        shutil.rmtree(folder / "etcd", ignore_errors=True)
