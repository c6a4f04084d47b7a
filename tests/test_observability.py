"""The dashboard and the PodMonitor only name metrics the service really exports."""

import json
import re
from pathlib import Path

import orjson
import yaml
from falcon import testing

from castslice.config import Config
from castslice.handler.app import create_app
from castslice.handler.metrics import Metrics
from tests.kube import pod_review

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
