"""The Falcon app in-process: routes, readiness, and the answer when the decision fails."""

import dataclasses

import orjson
from falcon import testing

from castslice.config import Config
from castslice.functions.policy import Policy
from castslice.handler.app import create_app
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.metrics import Metrics
from tests.kube import pod_review

JSON = {"Content-Type": "application/json"}


class ExplodingRule:
    """A rule whose matching fails, standing in for any bug inside the decision."""

    name = "exploding"

    def matches(self, namespace, labels):
        raise RuntimeError("bug")


def test_a_failing_decision_still_answers_allowed_with_the_uid():
    config = Config(policy=Policy(rules=(ExplodingRule(),)))
    metrics = Metrics(config)
    client = testing.TestClient(create_app(config, metrics=metrics))
    review = pod_review({"castops.io/optimize": "true"})
    result = client.simulate_post("/mutate", body=orjson.dumps(review), headers=JSON)
    assert result.status_code == 200
    assert result.json["response"] == {
        "uid": review["request"]["uid"], "allowed": True,
        "warnings": ["CastSlice could not process this Pod; admitted unchanged"]}
    assert b'castslice_admissions_total{outcome="error",reason="internal-error"} 1.0' in (
        metrics.render())


def test_readyz_turns_503_when_draining():
    lifecycle = Lifecycle()
    client = testing.TestClient(create_app(Config(), lifecycle))
    assert client.simulate_get("/readyz").status_code == 200
    lifecycle.draining = True
    assert client.simulate_get("/readyz").json == {"status": "draining"}
    assert client.simulate_get("/readyz").status_code == 503
    assert client.simulate_get("/healthz").status_code == 200


def test_dry_run_is_answered_but_not_counted_as_conversion():
    metrics = Metrics(Config())
    client = testing.TestClient(create_app(Config(), metrics=metrics))
    review = pod_review({"castops.io/optimize": "true"})
    review["request"]["dryRun"] = True
    assert "patch" in client.simulate_post("/mutate", body=orjson.dumps(review),
                                           headers=JSON).json["response"]
    text = metrics.render().decode()
    assert "castslice_gpus_converted_total 0.0" in text
    assert 'castslice_admissions_total{outcome="mutated",reason="mutated"} 1.0' in text


def test_savings_counter_uses_the_card_share_freed():
    config = dataclasses.replace(Config(), gpu_hourly_cost=3.0, slices_per_gpu=8)
    metrics = Metrics(config)
    client = testing.TestClient(create_app(config, metrics=metrics))
    review = pod_review({"castops.io/optimize": "true", "castops.io/workload-type": "inference"})
    client.simulate_post("/mutate", body=orjson.dumps(review), headers=JSON)
    # 1 GPU asked, 2 of 8 slices granted: frees 1 - 2/8 = 0.75 of a $3/h card
    assert "castslice_savings_dollars_per_hour_total 2.25" in metrics.render().decode()


def test_body_over_the_configured_limit_is_413():
    config = dataclasses.replace(Config(), max_body_bytes=2048)
    client = testing.TestClient(create_app(config))
    result = client.simulate_post("/mutate", body=b" " * 4096, headers=JSON)
    assert result.status_code == 413


def test_decision_log_line_names_uid_latency_outcome_and_warning_kinds(tmp_path):
    from castslice.functions.admit import admit, check_review
    from castslice.handler.logs import DecisionLog, decision_fields

    review = pod_review({"castops.io/optimize": "true", "castops.io/slice-ratio": "x"})
    admission = admit(check_review(review), Policy())
    path = tmp_path / "log"
    with path.open("wb") as out:
        DecisionLog("info", out.fileno()).write(decision_fields(review, admission, 0.0012))
    line = orjson.loads(path.read_bytes())
    assert line["uid"] == review["request"]["uid"] and line["latency_ms"] == 1.2
    assert (line["outcome"], line["reason"], line["slices"], line["gpus"]) == (
        "mutated", "mutated", 1, 1)


def test_warnings_are_counted_by_the_annotation_they_name():
    metrics = Metrics(Config())
    client = testing.TestClient(create_app(Config(), metrics=metrics))
    review = pod_review({"castops.io/optimize": "yes", "castops.io/slice-ratio": "0"},
                        namespace="ml")
    client.simulate_post("/mutate", body=orjson.dumps(review), headers=JSON)
    review = pod_review({"castops.io/optimize": "true", "castops.io/slice-ratio": "0"})
    client.simulate_post("/mutate", body=orjson.dumps(review), headers=JSON)
    text = metrics.render().decode()
    assert 'castslice_warnings_total{kind="optimize-value"} 1.0' in text
    assert 'castslice_warnings_total{kind="slice-ratio"} 1.0' in text
