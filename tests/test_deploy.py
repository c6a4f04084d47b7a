"""The plain deployment: valid Kubernetes objects that agree with each other, in one file."""

import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.kube import K8S_VERSION

ROOT = Path(__file__).parent.parent
PLAIN = ROOT / "deploy" / "plain"
CORE_KINDS = {"Namespace", "ServiceAccount", "Service", "Deployment", "PodDisruptionBudget",
              "NetworkPolicy",
              "MutatingWebhookConfiguration"}


def documents():
    return [d for d in yaml.safe_load_all((ROOT / "deploy" / "castslice.yaml").read_text()) if d]


def one(kind, name=None):
    (found,) = [d for d in documents()
                if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def test_rendered_file_is_the_sum_of_its_parts():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "render-deploy"), "--check"],
                            check=False)
    assert result.returncode == 0, "run scripts/render-deploy and commit deploy/castslice.yaml"
    parts = [d for name in yaml.safe_load((PLAIN / "kustomization.yaml").read_text())["resources"]
             for d in yaml.safe_load_all((PLAIN / name).read_text()) if d]
    assert parts == documents()


@pytest.mark.parametrize("document", [d for d in documents() if d["kind"] in CORE_KINDS],
                         ids=lambda d: d["kind"])
def test_core_objects_pass_the_kubernetes_schema(document):
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_webhook_is_configured_as_the_spec_asks():
    (hook,) = one("MutatingWebhookConfiguration")["webhooks"]
    metadata = one("MutatingWebhookConfiguration")["metadata"]
    assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["reinvocationPolicy"] == "IfNeeded" and hook["matchPolicy"] == "Equivalent"
    assert 1 <= hook["timeoutSeconds"] < 10
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert metadata["annotations"]["admissions.enforcer/disabled"] == "true"
    excluded = hook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["operator"] == "NotIn" and {"kube-system", "castslice"} <= set(
        excluded["values"])


def test_names_ports_and_secrets_agree():
    hook = one("MutatingWebhookConfiguration")
    service, deployment = one("Service"), one("Deployment")
    serving = one("Certificate", "castslice-serving")
    client = hook["webhooks"][0]["clientConfig"]["service"]
    assert (client["name"], client["namespace"]) == (service["metadata"]["name"],
                                                     service["metadata"]["namespace"])
    assert client["port"] == service["spec"]["ports"][0]["port"] == 443
    assert client["path"] == "/mutate"
    assert f"{client['name']}.{client['namespace']}.svc" in serving["spec"]["dnsNames"]
    assert hook["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{serving['metadata']['namespace']}/{serving['metadata']['name']}")
    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"][
        "labels"].items()
    (container,) = pod["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] in [p["name"] for p in container["ports"]]
    env = {e["name"]: e for e in container["env"]}
    tls = next(v for v in pod["spec"]["volumes"] if v["name"] == "tls")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "tls")
    assert tls["secret"]["secretName"] == serving["spec"]["secretName"]
    assert "subPath" not in mount, "a subPath mount never sees renewed certificates"
    assert env["CASTSLICE_TLS_CERT_FILE"]["value"] == f"{mount['mountPath']}/tls.crt"
    assert env["CASTSLICE_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == (
        "metadata.namespace")
    assert env["CASTSLICE_BIND"]["value"].endswith(f":{container['ports'][0]['containerPort']}")


def test_pod_is_locked_down():
    deployment = one("Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert one("ServiceAccount")["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False,
                                            "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    assert {"requests", "limits"} <= container["resources"].keys()
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert one("PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_certificate_chain_is_self_signed_root_then_ca_issuer():
    root = one("Certificate", "castslice-ca")
    assert root["spec"]["isCA"] is True
    assert root["spec"]["issuerRef"]["name"] == "castslice-selfsigned"
    assert "selfSigned" in one("Issuer", "castslice-selfsigned")["spec"]
    assert one("Issuer", "castslice-ca")["spec"]["ca"]["secretName"] == root["spec"]["secretName"]
    assert one("Certificate", "castslice-serving")["spec"]["issuerRef"]["name"] == "castslice-ca"


def test_podmonitor_matches_the_deployment():
    monitor = yaml.safe_load((ROOT / "deploy" / "observability" / "podmonitor.yaml").read_text())
    pod = one("Deployment")["spec"]["template"]
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert endpoint["port"] in [p["name"] for p in pod["spec"]["containers"][0]["ports"]]
    assert endpoint["tlsConfig"]["ca"]["secret"]["name"] == one(
        "Certificate", "castslice-serving")["spec"]["secretName"]


@pytest.mark.parametrize(("name", "key"), [("device-plugin-time-slicing.yaml", "time-slicing"),
                                           ("device-plugin-mps.yaml", "mps")])
def test_device_plugin_examples_advertise_what_their_castslice_settings_name(name, key):
    path = ROOT / "deploy" / "examples" / name
    config_map = yaml.safe_load(path.read_text())
    kubernetes_validate.validate(config_map, K8S_VERSION, strict=True)
    sharing = yaml.safe_load(config_map["data"][key])["sharing"]
    (strategy,) = sharing.values()
    settings = dict(re.findall(r"^#\s+(CASTSLICE_[A-Z_]+)=(\S+)", path.read_text(), re.M))
    assert strategy["renameByDefault"] is True
    assert settings["CASTSLICE_TARGET_RESOURCE"] == "nvidia.com/gpu.shared"
    assert int(settings["CASTSLICE_SLICES_PER_GPU"]) == strategy["resources"][0]["replicas"]
    if key == "mps":
        assert settings["CASTSLICE_MAX_SLICES"] == "1"
        assert all(p.endswith("=1") for p in settings["CASTSLICE_PRESETS"].split(","))
