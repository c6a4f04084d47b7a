"""`doctor`, `savings` and `audit` asking the cluster themselves, through a `kubectl` on PATH
that answers with recorded `kubectl get -o json` output and recorded errors, and logs the
command lines it was given: the flags and failures a real server cannot be made to show.
What a real API server returns is the envtest tier's (tests/test_apiserver_*.py)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from castslice.cli import main
from castslice.cli.reports import COMMON, ENGINES
from tests.test_doctor import gfd_node

DATA = Path(__file__).parent / "data"
FAKE = '''#!{python}
import json, os, sys
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "calls.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
kind = sys.argv[2]
answer = os.path.join(here, kind + ".json")
if os.path.exists(answer):
    sys.stdout.write(open(answer).read())
    sys.exit(0)
sys.stderr.write(open(os.path.join(here, kind + ".err")).read())
sys.exit(1)
'''


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A bin directory with the recording kubectl first on PATH; write <kind>.json or
    <kind>.err into it to answer."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE.format(python=sys.executable))
    kubectl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return bin_dir


def calls(bin_dir):
    return [json.loads(line) for line in (bin_dir / "calls.jsonl").read_text().splitlines()]


def listed(*items):
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})


def test_doctor_asks_the_cluster_with_the_users_context_and_kubeconfig(cluster, capsys):
    """A cluster that serves no admission policies (before 1.34) is no failure."""
    (cluster / "nodes.json").write_text(listed(gfd_node("dgx-1", 8)))
    for kind in COMMON:
        (cluster / f"{kind}.json").write_text(listed())
    for kind in ENGINES:
        (cluster / f"{kind}.err").write_text(
            f'error: the server doesn\'t have a resource type "{kind}"\n')
    env = {"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared", "CASTSLICE_MAX_SLICES": "1",
           "CASTSLICE_PRESETS": "training=1,inference=1"}
    code = main(["doctor", "--context", "prod-eu", "--kubeconfig", "/etc/k.yaml"], env)
    assert code == 0 and "ok: node dgx-1 advertises 64 nvidia.com/gpu.shared" in (
        capsys.readouterr().out)
    assert calls(cluster) == [["get", kind, "-o", "json", "-A", "--context", "prod-eu",
                               "--kubeconfig", "/etc/k.yaml"]
                              for kind in ("nodes", *COMMON, *ENGINES)]


def test_doctor_for_dra_reads_every_kind_it_needs(cluster, capsys):
    kinds = ("resourceslices", "resourceclaimtemplates", "namespaces", "pods", "deviceclasses",
             *COMMON, *ENGINES)
    for kind in kinds:
        (cluster / f"{kind}.json").write_text(listed())
    assert main(["doctor", "--context", "c"], {"CASTSLICE_BACKEND": "dra"}) == 1
    assert [call[1] for call in calls(cluster)] == list(kinds)
    capsys.readouterr()


def test_savings_and_audit_read_pods_of_one_namespace(cluster, capsys):
    (cluster / "pods.json").write_text((DATA / "pods.json").read_text())
    assert main(["savings", "-n", "ml", "--slices-per-gpu", "4"], {}) == 0
    assert main(["audit", "-n", "ml"], {}) in (0, 1)
    assert calls(cluster) == [["get", "pods", "-o", "json", "-n", "ml"]] * 2
    capsys.readouterr()


def test_with_nothing_piped_in_the_cluster_is_asked(cluster, capsys, monkeypatch):
    (cluster / "nodes.json").write_text(listed(gfd_node("a", 1)))
    for kind in (*COMMON, *ENGINES):
        (cluster / f"{kind}.json").write_text(listed())
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    main(["doctor"], {})
    assert calls(cluster) == [["get", kind, "-o", "json", "-A"]
                              for kind in ("nodes", *COMMON, *ENGINES)]
    capsys.readouterr()


@pytest.mark.parametrize(("stderr", "says"), [
    ('Error from server (Forbidden): nodes is forbidden: User "dev" cannot list resource '
     '"nodes" in API group "" at the cluster scope\n',
     "kubectl get nodes: forbidden for this user; it needs get and list on nodes"),
    ('error: the server doesn\'t have a resource type "nodes"\n',
     "the cluster does not serve nodes: it needs Kubernetes 1.34+"),
    ("error: context \"nope\" does not exist\n",
     'kubectl get nodes failed: error: context "nope" does not exist'),
])
def test_kubectl_errors_are_one_line_naming_what_to_do(cluster, capsys, stderr, says):
    (cluster / "nodes.err").write_text(stderr)
    assert main(["doctor", "--context", "nope"], {}) == 1
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_no_kubectl_on_path_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert main(["doctor", "--context", "c"], {}) == 1
    assert "kubectl is not on PATH" in capsys.readouterr().err


def test_a_file_and_cluster_flags_together_are_refused(capsys):
    assert main(["doctor", "nodes.json", "--context", "c"], {}) == 1
    assert "not both" in capsys.readouterr().err


def test_kubectl_finds_castslice_as_its_plugin(tmp_path):
    kubectl = shutil.which("kubectl", path="/usr/local/bin:/usr/bin:/bin")
    plugin = Path(sys.executable).parent / "kubectl-castslice"
    if kubectl is None or not plugin.exists():
        pytest.skip("needs the machine's kubectl and the installed kubectl-castslice script")
    done = subprocess.run([kubectl, "castslice", "--version"], capture_output=True, text=True,
                          env={"PATH": f"{plugin.parent}:/usr/bin:/bin",
                               "HOME": str(tmp_path)}, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("castslice "), done.stderr
