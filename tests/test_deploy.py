"""The two installs: valid Kubernetes and custom objects that agree with each other, each in
one file."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from google.protobuf import json_format

from castslice.cli import main
from castslice.cluster.doctor.diagnosis import largest_grant
from castslice.settings.config import Config
from castslice.settings.envfile import read_env_files
from tests import crds
from tests.envoy import parse_bootstrap, parse_sds
from tests.kube import K8S_VERSION

ROOT = Path(__file__).parent.parent
INSTALLS = {"plain": ROOT / "deploy" / "castslice.yaml",
            "knative": ROOT / "deploy" / "castslice-knative.yaml"}


def documents(install="plain"):
    return [d for d in yaml.safe_load_all(INSTALLS[install].read_text()) if d]


def one(kind, name=None, install="plain"):
    (found,) = [d for d in documents(install)
                if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found


def kustomized(directory):
    """The objects of a kustomization, bases first, read straight from its files; a
    generated ConfigMap under its plain name (the one-file installs carry no hash)."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    found = []
    for name in kustomization["resources"]:
        path = directory / name
        found += kustomized(path) if path.is_dir() else [
            d for d in yaml.safe_load_all(path.read_text()) if d]
    for generator in kustomization.get("configMapGenerator", []):
        found.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": generator["name"], "namespace": generator["namespace"],
            "labels": generator["options"]["labels"]}, "data": read_env_files(
                directory / env for env in generator["envs"])})
    return found


def test_rendered_files_are_the_sum_of_their_parts():
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "render-deploy"), "--check"],
                            check=False)
    assert result.returncode == 0, "run scripts/render-deploy and commit deploy/*.yaml"
    for install in INSTALLS:
        assert kustomized(ROOT / "deploy" / install) == documents(install)


@pytest.mark.parametrize("document", [d for install in INSTALLS for d in documents(install)],
                         ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_object_passes_its_published_schema(document):
    if crds.knows(document):
        crds.validate(document)
    else:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("path", "value", "refused"), [
    (("spec", "dnsName"), ["castslice.castslice.svc"], "dnsName"),
    (("spec", "usages"), ["server-auth"], "server-auth"),
    (("spec", "privateKey", "size"), "256", "'256'"),
])
def test_custom_objects_with_a_typo_or_a_wrong_type_are_refused(path, value, refused):
    certificate = one("Certificate", "castslice-serving")
    *parents, last = path
    target = certificate
    for key in parents:
        target = target[key]
    target[last] = value
    with pytest.raises(jsonschema.ValidationError, match=re.escape(refused)):
        crds.validate(certificate)


def test_a_knative_container_field_the_crd_does_not_publish_is_refused():
    service = one("Service", "castslice-admit", install="knative")
    service["spec"]["template"]["spec"]["containers"][0]["stdin"] = True
    with pytest.raises(jsonschema.ValidationError, match="stdin"):
        crds.validate(service)


@pytest.mark.parametrize("install", INSTALLS)
def test_webhook_is_configured_as_the_spec_asks(install):
    configuration = one("MutatingWebhookConfiguration", install=install)
    (hook,) = configuration["webhooks"]
    assert hook["failurePolicy"] == "Ignore" and hook["sideEffects"] == "None"
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["reinvocationPolicy"] == "IfNeeded" and hook["matchPolicy"] == "Equivalent"
    assert 1 <= hook["timeoutSeconds"] <= 10
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert configuration["metadata"]["annotations"]["admissions.enforcer/disabled"] == "true"
    excluded = hook["namespaceSelector"]["matchExpressions"][0]
    assert excluded["operator"] == "NotIn" and {"kube-system", "castslice"} <= set(
        excluded["values"])
    serving = one("Certificate", "castslice-serving", install=install)
    client = hook["clientConfig"]["service"]
    service = one("Service", client["name"], install=install)
    assert f"{client['name']}.{client['namespace']}.svc" in serving["spec"]["dnsNames"]
    assert service["metadata"]["namespace"] == client["namespace"]
    assert client["port"] == service["spec"]["ports"][0]["port"] == 443


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
    plugin_config = yaml.safe_load(config_map["data"][key])
    sharing = plugin_config["sharing"]
    (strategy,) = sharing.values()
    settings = dict(re.findall(r"^#\s+(CASTSLICE_[A-Z_]+)=(\S+)", path.read_text(), re.M))
    assert strategy["renameByDefault"] is True
    assert settings["CASTSLICE_TARGET_RESOURCE"] == "nvidia.com/gpu.shared"
    assert int(settings["CASTSLICE_SLICES_PER_GPU"]) == strategy["resources"][0]["replicas"]
    # One converted GPU must stay one GPU on multi-GPU nodes, in any order of Pods: every
    # grant is 1 unit (one replica is on one GPU), and a grant above 1 fails at Allocate
    # instead of spilling onto a second GPU.
    # (under MPS it defaults to true: device plugin v0.20.0 api/config/v1/config.go)
    assert strategy.get("failRequestsGreaterThanOne", key == "mps") is True
    assert settings["CASTSLICE_MAX_SLICES"] == settings["CASTSLICE_DEFAULT_SLICES"] == "1"
    assert all(p.endswith("=1") for p in settings["CASTSLICE_PRESETS"].split(","))
    policy = Config.from_env({k: v for k, v in settings.items()}).policy
    assert largest_grant(policy) == 1


def front_config():
    data = one("ConfigMap", "castslice-front", install="knative")["data"]
    return yaml.safe_load(data["envoy.yaml"]), yaml.safe_load(data["sds-serving.yaml"])


def test_knative_service_scales_to_zero_and_serves_plain_http_on_port():
    service = one("Service", "castslice-admit", install="knative")
    template = service["spec"]["template"]
    (container,) = template["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert service["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/min-scale"] == "0"
    assert template["spec"]["containerConcurrency"] > 0
    assert not {"CASTSLICE_TLS_CERT_FILE", "CASTSLICE_BIND", "PORT"} & env.keys(), (
        "Knative sets PORT; CastSlice must serve plain HTTP there")
    assert env["CASTSLICE_NAMESPACE"] == service["metadata"]["namespace"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz"}
    assert "periodSeconds" not in container["readinessProbe"], "keeps Knative's fast probing"
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert env["TMPDIR"].startswith("/dev/shm")
    assert template["spec"]["automountServiceAccountToken"] is False


def test_knative_front_carries_the_api_servers_tls_to_the_knative_route():
    envoy, sds = front_config()
    service = one("Service", "castslice-admit", install="knative")
    route_host = (f"{service['metadata']['name']}.{service['metadata']['namespace']}"
                  ".svc.cluster.local")
    (listener,) = envoy["static_resources"]["listeners"]
    (chain,) = listener["filter_chains"]
    manager = chain["filters"][0]["typed_config"]
    routes = {r["match"].get("path") or r["match"]["prefix"]: r
              for r in manager["route_config"]["virtual_hosts"][0]["routes"]}
    mutate = routes["/mutate"]["route"]
    (cluster,) = envoy["static_resources"]["clusters"]
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert mutate["cluster"] == cluster["name"]
    assert mutate["host_rewrite_literal"] == route_host
    assert endpoint["address"]["socket_address"] == {"address": route_host, "port_value": 80}
    hook = one("MutatingWebhookConfiguration", install="knative")["webhooks"][0]
    assert mutate["timeout"] == f"{hook['timeoutSeconds']}s"
    assert service["spec"]["template"]["spec"]["timeoutSeconds"] == hook["timeoutSeconds"]
    assert hook["clientConfig"]["service"]["path"] == "/mutate"
    tls = chain["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["alpn_protocols"] == ["http/1.1"]
    front = one("Deployment", "castslice-front", install="knative")["spec"]["template"]
    (container,) = front["spec"]["containers"]
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in front["spec"]["volumes"]}
    assert listener["address"]["socket_address"]["port_value"] == container["ports"][0][
        "containerPort"]
    assert one("Service", "castslice", install="knative")["spec"]["ports"][0]["targetPort"] == (
        container["ports"][0]["name"])
    sds_path = tls["tls_certificate_sds_secret_configs"][0]["sds_config"][
        "path_config_source"]["path"]
    assert sds_path.startswith(mounts["config"]["mountPath"] + "/")
    (secret,) = sds["resources"]
    certificate = secret["tls_certificate"]
    assert secret["name"] == tls["tls_certificate_sds_secret_configs"][0]["name"]
    assert certificate["watched_directory"]["path"] == mounts["tls"]["mountPath"]
    assert certificate["certificate_chain"]["filename"] == mounts["tls"]["mountPath"] + "/tls.crt"
    assert "subPath" not in mounts["tls"], "a subPath mount never sees renewed certificates"
    assert volumes["tls"]["secret"]["secretName"] == one(
        "Certificate", "castslice-serving", install="knative")["spec"]["secretName"]


def test_knative_webhook_never_intercepts_what_carries_its_admissions():
    hook = one("MutatingWebhookConfiguration", install="knative")["webhooks"][0]
    excluded = hook["namespaceSelector"]["matchExpressions"][0]["values"]
    assert {"knative-serving", "kourier-system"} <= set(excluded)


CLUSTER = ROOT / "deploy" / "clusters" / "example"


def kustomize(directory):
    rendered = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True,
                              text=True, check=True).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def settings_maps(documents_):
    return [d for d in documents_
            if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("castslice-env-")]


def env_from(document):
    spec = document["spec"]["template"]["spec"]
    return [source["configMapRef"]["name"] for c in spec["containers"]
            for source in c.get("envFrom", [])]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("install", ["plain", "knative"])
def test_a_cluster_overlay_renders_valid_objects_that_read_its_env_file(tmp_path, install):
    overlay = _copy_deploy(tmp_path, install)
    documents_ = kustomize(overlay)
    for document in documents_:
        test_every_object_passes_its_published_schema(document)
    (config_map,) = settings_maps(documents_)
    assert config_map["data"] == read_env_files([CLUSTER / "castslice.env"])
    kind = "Deployment" if install == "plain" else "Service"
    (server,) = [d for d in documents_ if d["kind"] == kind and "template" in d["spec"]
                 and d["metadata"]["name"].startswith("castslice")
                 and "front" not in d["metadata"]["name"]]
    assert env_from(server) == [config_map["metadata"]["name"]]
    (overlay / "castslice.env").write_text(
        (overlay / "castslice.env").read_text() + "CASTSLICE_DEFAULT_SLICES=2\n")
    changed = kustomize(overlay)
    (new_map,) = settings_maps(changed)
    (new_server,) = [d for d in changed if d["metadata"]["name"] == server["metadata"]["name"]
                     and d["kind"] == kind]
    assert new_map["metadata"]["name"] != config_map["metadata"]["name"]
    assert env_from(new_server) == [new_map["metadata"]["name"]]  # a rollout / new Revision


def _copy_deploy(tmp_path, install):
    """deploy/ copied, with the example overlay built on `install`."""
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    overlay = tmp_path / "deploy" / "clusters" / "example"
    text = (overlay / "kustomization.yaml").read_text()
    (overlay / "kustomization.yaml").write_text(text.replace("../../plain", f"../../{install}"))
    return overlay


def test_the_example_env_file_is_a_valid_configuration(capsys):
    assert main(["config", "--env-file", str(CLUSTER / "castslice.env")], {}) == 0
    assert '"CASTSLICE_TARGET_RESOURCE": "nvidia.com/gpu.shared"' in capsys.readouterr().out


def test_the_front_envoy_bootstrap_and_sds_parse_strictly_as_envoys_own_types():
    envoy, sds = front_config()
    bootstrap = parse_bootstrap(envoy)
    (listener,) = bootstrap.static_resources.listeners
    manager = listener.filter_chains[0].filters[0].typed_config
    assert manager.type_url.endswith("http_connection_manager.v3.HttpConnectionManager")
    (secret,) = parse_sds(sds).resources
    assert secret.type_url.endswith("tls.v3.Secret")


@pytest.mark.parametrize("typo", [
    ("idle_timeout: 120s", "idle_timout: 120s"),                 # unknown field
    ("port_value: 8443", "port_value: eighty"),                   # wrong type
    ("http.router.v3.Router", "http.router.v3.Routr"),            # a type no one defines
    ("num_retries: 1", "num_retries: [1]"),
])
def test_a_typo_in_the_front_envoy_bootstrap_is_refused(typo):
    data = one("ConfigMap", "castslice-front", install="knative")["data"]
    assert typo[0] in data["envoy.yaml"]
    with pytest.raises(json_format.ParseError):
        parse_bootstrap(yaml.safe_load(data["envoy.yaml"].replace(*typo)))
