"""The dashboard and the PodMonitor only name metrics the service really exports."""

import json
import re
from pathlib import Path

import orjson
import pytest
import yaml
from falcon import testing
from prometheus_client.parser import text_string_to_metric_families

from castslice.handler.app import create_app
from castslice.handler.metrics import Metrics
from castslice.settings.config import Config
from tests.kube import pod_review
from tests.promql import returns

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


DCGM_SAMPLE = Path(__file__).parent / "data" / "dcgm-exporter-metrics.txt"


def sample_series() -> list[tuple[str, dict[str, str]]]:
    """dcgm-exporter's sample, and CastSlice's own /metrics after it converted Pods in a
    namespace the sample's GPUs serve."""
    metrics = Metrics(Config())
    client = testing.TestClient(create_app(Config(), metrics=metrics))
    client.simulate_post("/mutate", body=orjson.dumps(pod_review(
        {"castops.io/optimize": "true"}, namespace="ml-inference")),
        headers={"Content-Type": "application/json"})
    text = client.simulate_get("/metrics").text + DCGM_SAMPLE.read_text()
    return [(s.name, dict(s.labels)) for family in text_string_to_metric_families(text)
            for s in family.samples]


def gpu_queries(dashboard):
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]
            if "DCGM_" in t["expr"]]


def test_gpu_panels_return_the_gpus_that_run_sliced_pods_on_a_dcgm_exporter_sample():
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    series = sample_series()
    queries = gpu_queries(dashboard)
    assert len(queries) >= 4
    for query in queries:
        assert returns(query, series), query
    by_namespace = returns(queries[0], series)
    assert by_namespace == [{"namespace": "ml-inference"}]  # not web: nothing sliced there
    per_gpu = {(s["Hostname"], s["gpu"]) for q in queries[1:2] for s in returns(q, series)}
    assert per_gpu == {("gpu-node-1", "0")}
    row = next(p for p in dashboard["panels"] if p["type"] == "row")
    assert "github.com/NVIDIA/dcgm-exporter" in row["description"]


@pytest.mark.parametrize("typo", [
    ("DCGM_FI_DEV_GPU_UTIL{", "DCGM_FI_DEV_GPU_UTILIZATION{"),
    ("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_FRE"),
    ("on (namespace)", "on (namepsace)"),
    ("by (Hostname, gpu, UUID)", "by (hostname, gpu, UUID)"),
    ('{pod!=""}', '{pod_name!=""}'),
    ("castslice_pods_mutated_total", "castslice_pod_mutated_total"),
])
def test_a_typo_in_a_gpu_query_fails_the_check(typo):
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    series = sample_series()
    broken = [q.replace(*typo) for q in gpu_queries(dashboard) if typo[0] in q]
    assert broken
    with pytest.raises(AssertionError):
        for query in broken:
            assert returns(query, series), query
