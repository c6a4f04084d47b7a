"""The dashboard and the PodMonitor only name metrics the service really exports."""

import json
import re
import time
from pathlib import Path

import orjson
import pytest
import yaml
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from castslice.handler.app import create_app
from castslice.handler.metrics import Metrics
from castslice.settings.config import Config
from castslice.usage.prometheus import Prometheus
from tests.kube import pod_review
from tests.prometheus import STEP, Gpu, Holder, prometheus

DEPLOY = Path(__file__).parent.parent / "deploy" / "observability"
METRIC = re.compile(r"\b(castslice_[a-z_]+)\b")


def exported_names() -> set[str]:
    """Sample names on /metrics after admissions that touch every metric."""
    metrics = Metrics(Config())
    client = testing.TestClient(create_app(Config(), metrics=metrics))
    for annotations in ({"castops.io/optimize": "true"}, {"castops.io/optimize": "yes"}):
        client.simulate_post("/mutate", body=orjson.dumps(pod_review(annotations)),
                             headers={"Content-Type": "application/json"})
    text = client.simulate_get("/metrics").text
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def test_every_dashboard_query_names_an_exported_metric():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exported = exported_names()
    queries = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    named = {name for query in queries for name in METRIC.findall(query)}
    assert len(queries) >= 10 and named
    assert named <= exported, named - exported


def test_dashboard_panels_have_unique_ids_and_a_datasource_variable():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])


def test_podmonitor_scrapes_metrics_over_https():
    monitor = yaml.safe_load((DEPLOY / "podmonitor.yaml").read_text())
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1" and monitor["kind"] == "PodMonitor"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["path"], endpoint["scheme"]) == ("/metrics", "https")
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "castslice"}
    # castslice_pods_mutated_total's own namespace label names the Pods' namespace; without
    # honorLabels Prometheus renames it exported_namespace and keeps "castslice" instead
    assert endpoint["honorLabels"] is True


def mutated_labels(namespace: str) -> tuple[str, dict[str, str]]:
    """castslice_pods_mutated_total's labels as CastSlice's own /metrics writes them, after
    it converted a Pod in `namespace`."""
    metrics = Metrics(Config())
    client = testing.TestClient(create_app(Config(), metrics=metrics))
    client.simulate_post("/mutate", body=orjson.dumps(pod_review(
        {"castops.io/optimize": "true"}, namespace=namespace)),
        headers={"Content-Type": "application/json"})
    (found,) = [dict(s.labels) for family in text_string_to_metric_families(
        client.simulate_get("/metrics").text) for s in family.samples
        if s.name == "castslice_pods_mutated_total"]
    return "castslice_pods_mutated_total", found


def gpu_queries(dashboard):
    return {p["id"]: t["expr"] for p in dashboard["panels"] for t in p["targets"]
            if "DCGM_" in t["expr"]}


def _busy(level):
    return lambda i: level


END = int(time.time()) // STEP * STEP
GPUS = [  # GPU-shared: two converted Pods under KUBERNETES_VIRTUAL_GPUS, scraped without
    # honorLabels; GPU-web: an unconverted Pod; GPU-idle: nothing; GPU-honor: a converted Pod
    # on a node scraped with honorLabels true; GPU-quiet: a converted Pod, nearly idle
    Gpu("GPU-shared", [Holder({"namespace": "ml-inference", "pod": f"llm-{n}", "container": "s"},
                              _busy(48 + n), _busy(19000), vgpu=str(n)) for n in (0, 1)],
        virtual=True, seconds=3 * 3600),
    Gpu("GPU-web", [Holder({"namespace": "web", "pod": "render-0", "container": "r"},
                           _busy(98), _busy(30000))], seconds=3 * 3600),
    Gpu("GPU-idle", [], seconds=3 * 3600),
    Gpu("GPU-quiet", [Holder({"namespace": "ml-inference", "pod": "embed-0", "container": "e"},
                             _busy(3), _busy(1000))], seconds=3 * 3600),
    Gpu("GPU-honor", [Holder({"namespace": "ml-train", "pod": "train-0", "container": "t"},
                             _busy(5), _busy(2000))], honor_labels=True, seconds=3 * 3600),
]


@pytest.fixture(scope="module")
def dashboard_url(tmp_path_factory):
    counters = [mutated_labels("ml-inference"), mutated_labels("ml-train")]
    with prometheus(tmp_path_factory.mktemp("dashboard"), GPUS, [], END, counters) as url:
        yield url


def ask(url, query):
    return Prometheus(url).query(query, END)


def test_gpu_panels_show_the_gpus_that_run_converted_pods_on_a_real_prometheus(dashboard_url):
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    queries = gpu_queries(dashboard)
    assert len(queries) == 5
    by_namespace = {s.labels["namespace"]: s.value for s in ask(dashboard_url, queries[11])}
    # each Pod's own use (48 and 49 % sharing one GPU, 3 % alone), not web's
    assert by_namespace == {"ml-inference": pytest.approx((48 + 49 + 3) / 3), "ml-train": 5}
    per_gpu = {s.labels["UUID"]: s.value for s in ask(dashboard_url, queries[12])}
    # a shared GPU's own series holds its Pods' sum: 38,000 of 40,448 MiB
    assert per_gpu == {"GPU-shared": 38000 / 40448, "GPU-honor": 2000 / 40448,
                       "GPU-quiet": 1000 / 40448}
    utilisation = {s.labels["UUID"]: s.value for s in ask(dashboard_url, queries[15])}
    assert utilisation == {"GPU-shared": 97, "GPU-honor": 5, "GPU-quiet": 3}
    assert [s.value for s in ask(dashboard_url, queries[13])] == [2]  # GPU-honor, GPU-quiet
    assert [s.value for s in ask(dashboard_url, queries[14])] == [1]  # GPU-shared saturated
    row = next(p for p in dashboard["panels"] if p["type"] == "row")
    assert "github.com/NVIDIA/dcgm-exporter" in row["description"]


@pytest.mark.parametrize("typo", [
    ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_UTILIZATION"),
    ("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_FRE"),
    ("on (namespace)", "on (namepsace)"),
    ('"exported_namespace"', '"exported_namepsace"'),
    ("castslice_pods_mutated_total", "castslice_pod_mutated_total"),
])
def test_a_typo_in_a_gpu_query_changes_its_answer(dashboard_url, typo):
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    queries = [q for q in gpu_queries(dashboard).values() if typo[0] in q]
    assert queries
    for query in queries:
        assert ask(dashboard_url, query.replace(*typo)) != ask(dashboard_url, query), query
