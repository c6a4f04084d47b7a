"""Every install path as the real API server judges it: each one-file install, kustomization,
example and chart render applied with `kubectl apply --dry-run=server --validate=strict`
(unknown or duplicate fields refused, every admission plugin and default run). Custom
resources are checked against the CRD excerpts in tests/data/crds, installed for real."""

import shutil
from pathlib import Path

import pytest
import yaml

from tests.envtest import ControlPlane
from tests.test_helm import EXAMPLES, HELM, template, values_options

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "deploy" / "castslice.yaml", ROOT / "deploy" / "castslice-knative.yaml",
         ROOT / "deploy" / "castslice-policy.yaml",
         *sorted((ROOT / "deploy" / "examples").glob("*.yaml"))]
KUSTOMIZATIONS = [ROOT / "deploy" / name for name in ("plain", "knative", "dra", "policy",
                                                      "clusters/example")]
CHART_RENDERS = [pytest.param((), id="defaults"),
                 pytest.param(("--set", "mode=knative"), id="knative-defaults"),
                 pytest.param(("--set", "mode=policy"), id="policy-defaults"),
                 *(pytest.param(tuple(values_options(p)), id=p.name) for p in EXAMPLES)]


@pytest.fixture(scope="module")
def cluster(kube: ControlPlane) -> ControlPlane:
    """The CRDs CastSlice's objects use, installed and established."""
    crds = [yaml.safe_load(p.read_text())
            for p in sorted((ROOT / "tests" / "data" / "crds").glob("*.yaml"))]
    for crd in crds:  # the excerpts name one version each: the one served and stored
        for version in crd["spec"]["versions"]:
            version.setdefault("served", True)
            version.setdefault("storage", True)
    kube.apply(crds)
    names = [crd["metadata"]["name"] for crd in crds]
    kube.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                 *(f"crd/{name}" for name in names))
    return kube


def _server_dry_run(kube: ControlPlane, text: str) -> None:
    documents = [d for d in yaml.safe_load_all(text) if d]
    assert documents
    for namespace in {d["metadata"].get("namespace") for d in documents} - {None}:
        kube.ensure_namespace(namespace)  # what the install expects exists
    out = kube.apply(text, "--dry-run=server")
    assert out.count("(server dry run)") == len(documents), out


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_install_is_accepted_strictly_by_the_api_server(cluster, path):
    _server_dry_run(cluster, path.read_text())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_kustomization_is_accepted_strictly_by_the_api_server(cluster, directory):
    _server_dry_run(cluster, cluster.kubectl("kustomize", str(directory)).stdout)


@pytest.mark.skipif(not HELM.exists(), reason="helm is fetched by `make test`")
@pytest.mark.parametrize("options", CHART_RENDERS)
def test_each_chart_render_is_accepted_strictly_by_the_api_server(cluster, options):
    _server_dry_run(cluster, template(*options, tests=True))
