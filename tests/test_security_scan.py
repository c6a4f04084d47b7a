"""A static security scan (checkov) of the manifests and the Dockerfile, with reasons."""

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.test_helm import EXAMPLES, HELM, template, values_options

ROOT = Path(__file__).parent.parent
CHECKOV = Path(os.environ.get("CHECKOV", ROOT / ".venv-scan" / "bin" / "checkov"))
SKIPS = yaml.safe_load((ROOT / "tests" / "security" / "checkov-skips.yaml").read_text())


def findings(*target: str) -> set[str]:
    result = subprocess.run([str(CHECKOV), *target, "--output", "json", "--quiet",
                             "--skip-download", "--compact"], capture_output=True, text=True,
                            timeout=300, check=False, cwd=ROOT)
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {failed["check_id"] for report in reports
            for failed in report.get("results", {}).get("failed_checks", [])}


@pytest.mark.skipif(not CHECKOV.exists() or not HELM.exists(), reason="checkov (into "
                    ".venv-scan: it pins its own dependencies) and helm come with `make test`")
def test_every_finding_is_fixed_or_justified_and_no_justification_is_stale(tmp_path):
    overlay = tmp_path / "cluster-example.yaml"  # what `kubectl apply -k` sends for a cluster
    overlay.write_text(subprocess.run(["kubectl", "kustomize", "deploy/clusters/example"],
                                      capture_output=True, text=True, check=True,
                                      cwd=ROOT).stdout)
    renders = tmp_path / "helm"  # what `helm install` applies: the defaults and each example
    renders.mkdir()
    for values in [None, *EXAMPLES]:
        name = values.stem if values else "defaults"
        (renders / f"{name}.yaml").write_text(template(*values_options(values), tests=True))
    found = findings("-d", "deploy", "--framework", "kubernetes", "--skip-path",
                     "deploy/helm") | findings(
        "-f", "Dockerfile", "--framework", "dockerfile") | findings(
        "-f", str(overlay), "--framework", "kubernetes") | findings(
        "-d", str(renders), "--framework", "kubernetes")
    assert found - SKIPS.keys() == set(), "fix these or justify them in checkov-skips.yaml"
    assert SKIPS.keys() - found == set(), "these no longer fire: remove them from the list"
    assert all(entry["reason"].strip() for entry in SKIPS.values())
