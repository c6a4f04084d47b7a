"""The container image, really built and run: podman, a local Debian base, TLS, non-root.

No registry is reachable here, so the base is made with debootstrap from the Debian mirror
apt uses, imported into podman, and passed as BASE. .ci/run installs podman and debootstrap;
elsewhere the test is skipped when they are missing.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import trustme

from tests.kube import pod_review
from tests.served import Served, free_port, make_cert

ROOT = Path(__file__).parent.parent
pytestmark = [pytest.mark.timeout(1500), pytest.mark.skipif(
    not (shutil.which("podman") and shutil.which("debootstrap") and os.geteuid() == 0),
    reason="needs root, podman and debootstrap (.ci/run installs them with apt-get)")]


def podman(env, *args, check=True, timeout=600):
    return subprocess.run(["podman", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, check=check)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("image")
    storage = tmp / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "vfs"\nrunroot = "{tmp}/run"\n'
                       f'graphroot = "{tmp}/graph"\n')
    env = os.environ | {"CONTAINERS_CONF": str(ROOT / "tests" / "image" / "containers.conf"),
                        "CONTAINERS_STORAGE_CONF": str(storage)}
    rootfs = tmp / "rootfs"
    subprocess.run(["debootstrap", "--variant=minbase",
                    "--include=python3,python3-venv,ca-certificates", "bookworm", str(rootfs),
                    "http://deb.debian.org/debian"], check=True, capture_output=True,
                   timeout=900)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["podman", "import", "-", "localhost/castslice-base"], stdin=tar.stdout,
                   env=env, check=True, capture_output=True, timeout=600)
    tar.wait()
    build = podman(env, "build", "--network", "host", "--build-arg",
                   "BASE=localhost/castslice-base", "-v",
                   "/etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro",
                   "-t", "localhost/castslice:test", str(ROOT), check=False, timeout=900)
    assert build.returncode == 0, build.stderr[-3000:]
    yield env
    podman(env, "rmi", "-a", "-f", check=False)


def test_image_serves_admissions_read_only_as_non_root(image, tmp_path):
    ca = trustme.CA()
    make_cert(ca, tmp_path / "tls")
    (tmp_path / "tls").chmod(0o755)
    for name in ("tls.crt", "tls.key"):
        (tmp_path / "tls" / name).chmod(0o644)
    port = free_port()
    run = podman(image, "run", "-d", "--read-only", "--tmpfs", "/tmp", "--user", "65532:65532",
                 "--network", "host", "-v", f"{tmp_path / 'tls'}:/etc/castslice/tls:ro",
                 "-e", f"CASTSLICE_BIND=127.0.0.1:{port}",
                 "-e", "CASTSLICE_TLS_CERT_FILE=/etc/castslice/tls/tls.crt",
                 "-e", "CASTSLICE_TLS_KEY_FILE=/etc/castslice/tls/tls.key",
                 "-e", "CASTSLICE_DRAIN_SECONDS=0", "localhost/castslice:test")
    container = run.stdout.strip()
    try:
        served = Served(subprocess.Popen(["sleep", "120"]), port, ca, tmp_path / "none.log")
        served.log.write_text("")
        served.wait_ready(60)
        answer = served.admit(pod_review({"castops.io/optimize": "true"}))
        served.process.kill()
        assert "patch" in answer["response"]
        status = podman(image, "exec", container, "cat", "/proc/1/status").stdout
        uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uid_line.split()[1:3] == ["65532", "65532"]
        inspect = podman(image, "image", "inspect", "localhost/castslice:test",
                         "--format", "{{.Config.Entrypoint}} {{.Config.User}}").stdout
        assert inspect.strip() == "[castslice] 65532:65532"
        assert podman(image, "exec", container, "sh", "-c", "command -v gcc cc || true"
                      ).stdout.strip() == ""
        precompiled = ("import os, castslice.handler.server as m, falcon, uvicorn; "
                       "print(all(os.path.exists(x.__cached__) for x in (m, falcon, uvicorn)))")
        assert podman(image, "exec", container, "python", "-c", precompiled
                      ).stdout.strip() == "True"
    finally:
        started = time.monotonic()
        podman(image, "stop", "-t", "30", container, check=False)
        logs = podman(image, "logs", container, check=False).stderr
        exit_code = podman(image, "inspect", container, "--format", "{{.State.ExitCode}}",
                           check=False).stdout.strip()
        podman(image, "rm", "-f", container, check=False)
    assert exit_code == "0", logs[-2000:]
    assert time.monotonic() - started < 30
