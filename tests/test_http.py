"""The Falcon app in-process: routes, readiness, and the answer when the decision fails."""

import asyncio
import contextlib
import dataclasses
import itertools
import os
import select

import orjson
from falcon import testing
from hypothesis import given
from hypothesis import strategies as st

from castslice.functions.policy import Policy
from castslice.handler.app import create_app
from castslice.handler.lifecycle import Lifecycle
from castslice.handler.metrics import Metrics
from castslice.settings.config import Config
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
    config = dataclasses.replace(Config(), gpu_hourly_cost=3.0, policy=dataclasses.replace(
        Config().policy, slices_per_gpu=8))
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

    async def one_line() -> None:
        with path.open("wb") as out:
            DecisionLog("info", out.fileno()).write(decision_fields(review, admission, 0.0012))
            await asyncio.sleep(0)  # the line goes out at the end of the loop's iteration

    asyncio.run(one_line())
    line = orjson.loads(path.read_bytes())
    assert line["uid"] == review["request"]["uid"] and line["latency_ms"] == 1.2
    assert (line["outcome"], line["reason"], line["slices"], line["gpus"]) == (
        "mutated", "mutated", 1, 1)
    assert line["gpu_memory"] is None


def test_decision_log_line_names_the_bytes_a_memory_ask_asked():
    from castslice.functions.admit import admit, check_review
    from castslice.handler.logs import decision_fields

    review = pod_review({"castops.io/optimize": "true", "castops.io/gpu-memory": "10Gi"})
    fields = decision_fields(review, admit(check_review(review), Policy(backend="mig")), 0.001)
    assert (fields["reason"], fields["slices"], fields["gpu_memory"]) == ("mutated", 3, 10 * 2**30)


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


def test_decision_lines_of_one_loop_iteration_go_out_in_one_write():
    from castslice.handler.logs import DecisionLog

    async def three_lines(read: int, write: int) -> list[bytes]:
        log = DecisionLog("info", write)
        for uid in ("a", "b", "c"):
            log.write({"uid": uid})
        os.set_blocking(read, False)
        with contextlib.suppress(BlockingIOError):
            os.read(read, 65536)
            raise AssertionError("a line went out before the iteration ended")
        await asyncio.sleep(0)
        return os.read(read, 65536).splitlines()

    read, write = os.pipe()
    lines = asyncio.run(three_lines(read, write))
    assert [orjson.loads(line)["uid"] for line in lines] == ["a", "b", "c"]


@given(st.lists(st.binary(min_size=0, max_size=6000).map(lambda b: b + b"\n"), max_size=40))
def test_decision_lines_are_chunked_whole_and_within_pipe_buf(lines):
    from castslice.handler.logs import pipe_chunks

    chunks = list(pipe_chunks(lines))
    assert b"".join(chunks) == b"".join(lines)
    for chunk in chunks:
        assert len(chunk) <= select.PIPE_BUF or chunk in lines  # a long line alone
    ends = set(itertools.accumulate(len(line) for line in lines))
    assert set(itertools.accumulate(len(chunk) for chunk in chunks)) <= ends  # lines whole


def test_a_failed_decision_log_write_is_counted_and_the_answer_still_sent():
    metrics = Metrics(Config())
    app = create_app(Config(), metrics=metrics)
    read, write = os.pipe()
    os.close(read)  # writing now fails with EPIPE
    mutate = app._router.find("/mutate")[0]
    mutate.decisions.fd = write
    review = pod_review({"castops.io/optimize": "true"})
    result = testing.TestClient(app).simulate_post("/mutate", body=orjson.dumps(review),
                                                   headers=JSON)
    assert result.status_code == 200 and result.json["response"]["patch"]
    assert 'castslice_observe_failed_total 1.0' in metrics.render().decode()


def test_the_answer_is_json_and_the_body_size_is_counted():
    metrics = Metrics(Config())
    client = testing.TestClient(create_app(Config(), metrics=metrics))
    body = orjson.dumps(pod_review({"castops.io/optimize": "true"}))
    result = client.simulate_post("/mutate", body=body, headers={
        "Content-Type": "Application/JSON; charset=utf-8"})
    assert result.status_code == 200 and result.headers["content-type"] == "application/json"
    assert f"castslice_request_body_bytes_sum {float(len(body))}" in metrics.render().decode()
