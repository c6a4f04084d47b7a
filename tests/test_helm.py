"""The Helm chart, rendered by a real helm (v4.1.4, scripts/fetch-helm): lint-clean, every
render valid, its defaults the one-file installs object by object, its values typed."""

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from castslice import __version__
from castslice.cli import parser
from castslice.cluster.dra import claim_templates, device_classes
from castslice.settings.config import Config, ConfigError
from castslice.settings.decision import policy_from_env
from tests import crds
from tests.kube import K8S_VERSION
from tests.test_deploy import documents

ROOT = Path(__file__).parent.parent
CHART = ROOT / "deploy" / "helm" / "castslice"
HELM = Path(os.environ.get("HELM", ROOT / ".local" / "helm" / "helm"))
EXAMPLES = [*sorted((ROOT / "deploy" / "helm" / "examples").glob("*.yaml")),
            ROOT / "deploy" / "clusters" / "example" / "values.yaml"]
HELM_LABELS = ("helm.sh/chart", "app.kubernetes.io/instance", "app.kubernetes.io/managed-by",
               "app.kubernetes.io/version")
WIRED = {"CASTSLICE_BACKEND", "CASTSLICE_NAMESPACE", "CASTSLICE_TLS_CERT_FILE",
         "CASTSLICE_TLS_KEY_FILE", "CASTSLICE_BIND", "CASTSLICE_WORKERS"}
SCHEMA = json.loads((CHART / "values.schema.json").read_text())

pytestmark = pytest.mark.skipif(not HELM.exists() and not os.environ.get("CI"),
                                reason="helm is fetched by `make test` (scripts/fetch-helm)")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HELM), *args], capture_output=True, text=True, check=check,
                          timeout=120, env=os.environ | {"HELM_CACHE_HOME": "/tmp/helm-cache"})


def template(*options: str, tests: bool = False) -> str:
    """What `helm install` would apply, as helm prints it."""
    return helm("template", "castslice", str(CHART), "-n", "castslice",
                *([] if tests else ["--skip-tests"]), *options).stdout


def render(*options: str, tests: bool = False) -> list[dict]:
    return [d for d in yaml.safe_load_all(template(*options, tests=tests)) if d]


def values_options(path: Path | None) -> list[str]:
    return [] if path is None else ["-f", str(path)]


def without_helm(document: dict) -> dict:
    """The object as the kustomize install writes it: Helm's labels and the checksum
    annotations taken out."""
    document = json.loads(json.dumps(document))
    for meta in (document["metadata"], document.get("spec", {}).get("template", {}).get(
            "metadata", {})):
        for key in HELM_LABELS:
            meta.get("labels", {}).pop(key, None)
        if meta.get("labels") == {}:
            del meta["labels"]
        annotations = meta.get("annotations", {})
        for key in [k for k in annotations if k.startswith("checksum/")]:
            del annotations[key]
        if "annotations" in meta and not annotations:
            del meta["annotations"]
    return document


def installed(found: list[dict]) -> list[dict]:
    """The objects an install leaves, without Helm's hooks (the ready Job and its RBAC)."""
    return [d for d in found if "helm.sh/hook" not in d["metadata"].get("annotations", {})]


def by_name(found: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in found}


def one(found: list[dict], kind: str, name: str | None = None) -> dict:
    (match,) = [d for d in found if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    return match


def test_chart_version_app_version_and_images_are_the_projects():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == chart["appVersion"] == __version__
    images = {c["image"] for install in ("plain", "knative") for d in documents(install)
              for c in d.get("spec", {}).get("template", {}).get("spec", {}).get(
                  "containers", []) if "castslice" in c["image"]}
    assert images == {f"ghcr.io/castops/castslice:{__version__}"}
    (deployment,) = [d for d in render() if d["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] in images


@pytest.mark.parametrize("values", [None, *EXAMPLES], ids=lambda p: p.name if p else "defaults")
def test_helm_lint_strict_is_clean(values):
    result = helm("lint", "--strict", str(CHART), *values_options(values), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout and "[ERROR]" not in result.stdout


RENDERS = [pytest.param(None, (), id="defaults"),
           pytest.param(None, ("--set", "mode=knative"), id="knative-defaults"),
           *(pytest.param(p, (), id=p.name) for p in EXAMPLES)]


@pytest.mark.parametrize(("values", "sets"), RENDERS)
def test_every_rendered_object_passes_its_published_schema(values, sets):
    found = render(*values_options(values), *sets, tests=True)
    assert found
    for document in found:
        if crds.knows(document):
            crds.validate(document)
        else:
            kubernetes_validate.validate(document, K8S_VERSION, strict=True)


@pytest.mark.parametrize(("install", "sets"),
                         [("plain", ()), ("knative", ("--set", "mode=knative"))])
def test_default_render_is_the_one_file_install_object_by_object(install, sets):
    chart = by_name([without_helm(d) for d in installed(render(*sets))])
    kustomized = by_name(documents(install))
    namespace = kustomized.pop(("Namespace", "castslice"))
    assert namespace["metadata"]["labels"]["castslice.castops.io/ignore"] == "true"
    assert chart.keys() == kustomized.keys()
    for key, document in kustomized.items():
        assert chart[key] == document, key


def test_a_clusters_values_render_the_settings_of_its_kustomize_overlay():
    overlay = subprocess.run(["kubectl", "kustomize", str(EXAMPLES[-1].parent)],
                             capture_output=True, text=True, check=True).stdout
    (kustomized,) = [d["data"] for d in yaml.safe_load_all(overlay)
                     if d and d["kind"] == "ConfigMap"]
    charted = one(render("-f", str(EXAMPLES[-1])), "ConfigMap", "castslice-env")["data"]
    assert charted.keys() == kustomized.keys()
    assert Config.from_env(charted).describe() == Config.from_env(kustomized).describe()


def checksum(found: list[dict], kind: str, name: str) -> str:
    annotations = one(found, kind, name)["spec"]["template"]["metadata"]["annotations"]
    return str(annotations["checksum/config"])


@pytest.mark.parametrize(("mode", "kind", "name"), [("plain", "Deployment", "castslice"),
                                                    ("knative", "Service", "castslice-admit")])
def test_a_config_change_changes_the_pod_templates_checksum(mode, kind, name):
    base = ("--set", f"mode={mode}")
    same = checksum(render(*base), kind, name)
    assert checksum(render(*base), kind, name) == same
    assert checksum(render(*base, "--set", "config.CASTSLICE_LOG_LEVEL=debug"), kind, name) != same
    assert checksum(render(*base, "--set", "backend=mig"), kind, name) != same


@pytest.mark.parametrize(("sets", "says"), [
    ("config.CASTSLICE_MAX_SLICES=abc", "/config/CASTSLICE_MAX_SLICES"),
    ("config.CASTSLICE_MAX_SLICES=0", "/config/CASTSLICE_MAX_SLICES"),
    ("config.CASTSLICE_BIND=0.0.0.0:9", "CASTSLICE_BIND"),
    ("config.CASTSLICE_MAX_SLICE=8", "CASTSLICE_MAX_SLICE"),
    ("config.CASTSLICE_ON_INVALID=refuse", "/config/CASTSLICE_ON_INVALID"),
    ("config.CASTSLICE_MIG_PROFILES=8g.5gb", "/config/CASTSLICE_MIG_PROFILES"),
    ("config.CASTSLICE_CAPTURE_SAMPLE=2", "/config/CASTSLICE_CAPTURE_SAMPLE"),
    ("backend=gpu", "/backend"),
    ("mode=serverless", "/mode"),
    ("webhook.failurePolicy=ignore", "/webhook/failurePolicy"),
    ("webhook.timeoutSeconds=31", "/webhook/timeoutSeconds"),
    ("replicas=0", "/replicas"),
    ("replica=3", "replica"),
])
def test_the_schema_refuses_a_bad_value_before_anything_is_rendered(sets, says):
    result = helm("install", "castslice", str(CHART), "-n", "castslice", "--dry-run=client",
                  "--set", sets, check=False)
    assert result.returncode != 0 and "values don't meet the specifications" in result.stderr
    assert says in result.stderr


@pytest.mark.parametrize(("sets", "says"), [
    (("metrics.podMonitor.enabled=true", "mode=knative"), "metrics.podMonitor: plain mode only"),
    (("dra.claimTemplateNamespaces={ml}",), "set backend: dra"),
    (("tls.mode=secret",), "tls.mode=secret needs tls.caBundle, the base64 PEM of the CA"),
    (("config.CASTSLICE_BACKEND=mig",), "config.CASTSLICE_BACKEND: the back-end is the chart's "
     "top-level value: --set backend=mig"),
    (("mode=policy", "backend=mig"), "print the policies for that configuration (castslice "
     "policy --env-file FILE > policy.yaml) and pass them with --set-file policy.manifest"),
])
def test_values_that_cannot_work_together_fail_with_what_to_change(sets, says):
    result = helm("template", "castslice", str(CHART),
                  *[arg for s in sets for arg in ("--set", s)], check=False)
    assert result.returncode != 0 and says in result.stderr


def schema_accepts(key: str, value: object) -> bool:
    try:
        jsonschema.validate({"config": {key: value}}, {**SCHEMA, "required": []})
    except jsonschema.ValidationError:
        return False
    return True


def server_accepts(key: str, value: str) -> bool:
    try:
        Config.from_env({key: value, "CASTSLICE_SLICES_PER_GPU": "8"}
                        if key == "CASTSLICE_DRA_DEVICES" else {key: value})
    except ConfigError:
        return False
    return True


def test_the_schema_types_every_setting_the_chart_does_not_wire_itself():
    settings = set(Config().describe())
    # CASTSLICE_BACKEND is listed only so the chart can refuse it with the value to set
    assert set(SCHEMA["properties"]["config"]["properties"]) == settings - WIRED | {
        "CASTSLICE_BACKEND"}
    for key, text in Config().as_env().items():
        if key not in WIRED:
            assert schema_accepts(key, text) and schema_accepts(key, ""), key


@pytest.mark.parametrize(("key", "value"), [
    ("CASTSLICE_MAX_SLICES", "8"), ("CASTSLICE_MAX_SLICES", "abc"), ("CASTSLICE_MAX_SLICES", "0"),
    ("CASTSLICE_DEFAULT_SLICES", "-1"), ("CASTSLICE_ON_INVALID", "deny"),
    ("CASTSLICE_ON_INVALID", "refuse"), ("CASTSLICE_DRA_DEVICES", "shares"),
    ("CASTSLICE_DRA_DEVICES", "gpu"), ("CASTSLICE_LOG_LEVEL", "verbose"),
    ("CASTSLICE_SOURCE_RESOURCE", "gpu"), ("CASTSLICE_TARGET_RESOURCE", "nvidia.com/gpu.shared"),
    ("CASTSLICE_MIG_PROFILES", "1g.10gb+me,7g.80gb"), ("CASTSLICE_MIG_PROFILES", "9g.5gb"),
    ("CASTSLICE_EXCLUDE_NAMESPACES", "Team_A"), ("CASTSLICE_CAPTURE", "s3://bucket/prefix"),
    ("CASTSLICE_CAPTURE", "http://bucket"), ("CASTSLICE_CAPTURE_SAMPLE", "0.1"),
    ("CASTSLICE_CAPTURE_SAMPLE", "1.5"), ("CASTSLICE_CAPTURE_REDACT", "env"),
    ("CASTSLICE_GPU_HOURLY_COST", "0"), ("CASTSLICE_GPU_HOURLY_COST", "2.5"),
    ("CASTSLICE_DRAIN_SECONDS", "601"), ("CASTSLICE_PRESETS", "training=4,dev=1"),
    ("CASTSLICE_PRESETS", "Training=4"), ("CASTSLICE_CAPTURE_QUEUE", "0"),
    ("CASTSLICE_DRAIN_SECONDS", "600"), ("CASTSLICE_GPU_HOURLY_COST", "0.05"),
    ("CASTSLICE_SLICES_PER_GPU", "10001"),
])
def test_the_schema_and_castslice_agree_on_a_settings_value(key, value):
    assert schema_accepts(key, value) == server_accepts(key, value)


def test_yaml_lists_maps_and_numbers_reach_the_configmap_as_castslices_text(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"config": {
        "CASTSLICE_PRESETS": {"training": 4, "dev": 1},
        "CASTSLICE_EXCLUDE_NAMESPACES": ["batch", "ci"],
        "CASTSLICE_RULES": [{"name": "research", "namespaces": ["research-*"], "optimize": True}],
        "CASTSLICE_MAX_BODY_BYTES": 6291456, "CASTSLICE_CAPTURE_SAMPLE": 0.25}}))
    data = one(render("-f", str(values)), "ConfigMap", "castslice-env")["data"]
    assert data["CASTSLICE_MAX_BODY_BYTES"] == "6291456"
    settings = Config.from_env(data).describe()
    assert settings["CASTSLICE_PRESETS"] == {"dev": 1, "training": 4}
    assert settings["CASTSLICE_EXCLUDE_NAMESPACES"] == ["batch", "ci"]
    assert [r["name"] for r in settings["CASTSLICE_RULES"]] == ["research"]
    assert settings["CASTSLICE_CAPTURE_SAMPLE"] == 0.25


DRA_CONFIGS = [
    {},
    {"CASTSLICE_MIG_PROFILES": "1g.10gb.me,3g.40gb,7g.80gb", "CASTSLICE_MAX_SLICES": "5"},
    {"CASTSLICE_DRA_DEVICES": "shares", "CASTSLICE_SLICES_PER_GPU": "8"},
    {"CASTSLICE_DRA_DEVICES": "shares", "CASTSLICE_SLICES_PER_GPU": "8",
     "CASTSLICE_MAX_SLICES": "4", "CASTSLICE_DRA_TEMPLATE_PREFIX": "gpu-share-",
     "CASTSLICE_MIG_RESOURCE_PREFIX": "example.com/mig-"},
]


@pytest.mark.parametrize("config", DRA_CONFIGS, ids=lambda c: ",".join(c) or "defaults")
def test_dra_objects_are_what_castslice_makes_for_the_same_settings(config):
    sets = [arg for key, value in config.items()
            for arg in ("--set-string", f"config.{key}=" + value.replace(",", "\\,"))]
    found = [without_helm(d) for d in render(
        "--set", "backend=dra", "--set", "dra.deviceClasses=true",
        "--set", "dra.claimTemplateNamespaces={ml,research}", *sets)]
    policy = policy_from_env({"CASTSLICE_BACKEND": "dra", **config})
    assert [d for d in found if d["kind"] == "ResourceClaimTemplate"] == claim_templates(
        policy, ["ml", "research"])
    assert [d for d in found if d["kind"] == "DeviceClass"] == device_classes(policy)


def test_default_device_classes_are_deploy_dra():
    found = [without_helm(d) for d in render("--set", "dra.deviceClasses=true")
             if d["kind"] == "DeviceClass"]
    assert found == [d for d in yaml.safe_load_all(
        (ROOT / "deploy" / "dra" / "deviceclasses.yaml").read_text()) if d]


@pytest.mark.parametrize("values", [None, ROOT / "deploy/helm/examples/existing-secret.yaml"],
                         ids=["cert-manager", "existing-secret"])
def test_helm_test_probes_the_webhooks_service_with_the_ca_it_trusts(values):
    found = render(*values_options(values), tests=True)
    pod = one(found, "Pod", "castslice-probe")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    args = parser().parse_args(container["args"])
    hook = one(found, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]
    assert args.url == f"https://{hook['name']}.{hook['namespace']}.svc{hook['path']}"
    assert args.expect_patch and container["image"].endswith(f":{__version__}")
    (mount,) = container["volumeMounts"]
    assert args.ca_file == f"{mount['mountPath']}/ca.crt"
    (volume,) = pod["spec"]["volumes"]
    if values is None:
        assert volume["secret"]["secretName"] == "castslice-tls"
    else:
        ca = one(found, "ConfigMap", "castslice-probe-ca")["data"]["ca.crt"]
        webhook = one(found, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]
        assert base64.b64decode(webhook["caBundle"]).decode() == ca
        assert volume["configMap"]["name"] == "castslice-probe-ca"


def test_self_signed_mode_serves_a_certificate_the_webhooks_ca_bundle_trusts(tmp_path):
    found = render("--set", "tls.mode=self-signed")
    secret = one(found, "Secret", "castslice-tls")["data"]
    bundle = one(found, "MutatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"]
    assert bundle == secret["ca.crt"]
    assert not any(d["kind"] in ("Certificate", "Issuer") for d in found)
    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_bytes(base64.b64decode(secret[name]))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "tls.crt", tmp_path / "tls.key")
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.crt"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def accept() -> None:
            conn, _ = listener.accept()
            with server.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(b"ok")
        threading.Thread(target=accept, daemon=True).start()
        with socket.create_connection(listener.getsockname()) as raw, client.wrap_socket(
                raw, server_hostname="castslice.castslice.svc") as tls:
            assert tls.recv(2) == b"ok"


def test_the_dashboard_configmap_carries_the_dashboard_for_the_grafana_sidecar():
    found = render("--set", "metrics.dashboard.enabled=true")
    dashboard = one(found, "ConfigMap", "castslice-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["castslice.json"]) == json.loads(
        (ROOT / "deploy" / "observability" / "grafana-dashboard.json").read_text())


def test_the_reference_lists_every_value_of_the_schema():
    readme = (ROOT / "docs" / "reference" / "chart-values.md").read_text()
    table = readme.split("<!-- helm-values:start -->")[1].split("<!-- helm-values:end -->")[0]
    rows = set(re.findall(r"^\| `([^`]+)` \|", table, re.MULTILINE))
    assert {f"config.{key}" for key in SCHEMA["properties"]["config"]["properties"]} <= rows
    assert {"mode", "backend", "tls.mode", "webhook.failurePolicy", "dra.deviceClasses"} <= rows


def test_helm_show_readme_gives_the_charts_own_readme_with_every_value():
    shown = helm("show", "readme", str(CHART)).stdout
    assert "## Prerequisites" in shown and "must exist" in shown and "helm test" in shown
    rows = re.findall(r"^\| `([a-zA-Z0-9_.]+)` \|", shown, re.M)
    assert {"autoscaling.enabled", "tls.caBundle", "config.CASTSLICE_RULES"} <= set(rows)
    def table(text: str) -> str:
        return text.split("<!-- helm-values:start -->")[1].split("<!-- helm-values:end -->")[0]
    assert table(shown) == table(  # one generated table
        (ROOT / "docs" / "reference" / "chart-values.md").read_text())


def test_autoscaling_replaces_the_replica_count_with_a_valid_hpa():
    found = render("--set", "autoscaling.enabled=true", "--set", "autoscaling.minReplicas=3")
    (hpa,) = [d for d in found if d["kind"] == "HorizontalPodAutoscaler"]
    kubernetes_validate.validate(hpa, K8S_VERSION, strict=True)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                             "name": "castslice"}
    assert "replicas" not in one(found, "Deployment", "castslice")["spec"]
    assert not [d for d in render("--set", "autoscaling.enabled=true", "--set", "mode=knative")
                if d["kind"] == "HorizontalPodAutoscaler"]
    assert one(render(), "Deployment", "castslice")["spec"]["replicas"] == 2


def test_the_only_test_hook_is_the_probe_pod_so_helm_test_logs_shows_its_log():
    ca = base64.b64encode(b"-----BEGIN CERTIFICATE-----\n").decode()
    found = render("--set", "tls.mode=secret", "--set", f"tls.caBundle={ca}", tests=True)
    hooks = [(d["kind"], d["metadata"]["name"]) for d in found
             if d["metadata"].get("annotations", {}).get("helm.sh/hook") == "test"]
    assert hooks == [("Pod", "castslice-probe")]
    assert one(found, "ConfigMap", "castslice-probe-ca")["data"]["ca.crt"].startswith(
        "-----BEGIN CERTIFICATE-----")


def test_policy_mode_renders_castslice_policys_objects_and_nothing_of_the_webhook():
    rendered = [without_helm(d) for d in installed(render("--set", "mode=policy"))]
    printed = [d for d in yaml.safe_load_all(
        (ROOT / "deploy" / "components" / "policy" / "policy.yaml").read_text()) if d]
    assert by_name(rendered) == by_name(printed)
    assert not {d["kind"] for d in rendered} & {"Deployment", "Service", "Certificate",
                                                "MutatingWebhookConfiguration", "ConfigMap"}


def test_policy_mode_takes_the_policies_printed_for_your_configuration(tmp_path):
    env = {"CASTSLICE_DEFAULT_SLICES": "2"}
    printed = tmp_path / "policy.yaml"
    done = subprocess.run([sys.executable, "-m", "castslice", "policy"], env={
        **os.environ, **env}, capture_output=True, text=True, check=True)
    printed.write_text(done.stdout)
    rendered = installed(render("--set", "mode=policy", "--set",
                                "config.CASTSLICE_DEFAULT_SLICES=2", "--set-file",
                                f"policy.manifest={printed}"))
    assert by_name(rendered) == by_name([d for d in yaml.safe_load_all(done.stdout) if d])


def test_install_and_upgrade_wait_until_a_pod_really_converts():
    """The ready hook: a Job running `castslice ready --in-cluster` in the probe namespace,
    its ServiceAccount allowed only to create Pods there (what a dry run needs)."""
    found = render("--set", "ready.namespace=ml", "--set", "ready.timeoutSeconds=90")
    job = one(found, "Job", "castslice-ready")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["ready", "--in-cluster", "-n", "ml", "--timeout", "90"]
    assert one(found, "Role", "castslice-ready")["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["create"]}]
    assert one(found, "RoleBinding", "castslice-ready")["metadata"]["namespace"] == "ml"
    assert not [d for d in render("--set", "ready.enabled=false")
                if d["metadata"]["name"] == "castslice-ready"]
