"""CastSlice's own per-worker counts render what prometheus_client's metrics would."""

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from castslice.functions.decide import Decision
from castslice.handler.metrics import BODY_BUCKETS, LATENCY_BUCKETS, Metrics
from castslice.settings.config import Config

SECONDS = st.floats(min_value=0, max_value=1, allow_nan=False) | st.sampled_from(LATENCY_BUCKETS)
BYTES = st.integers(min_value=0, max_value=8 * 2**20) | st.sampled_from(BODY_BUCKETS)


def samples(text: bytes, family: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A family's samples as the Prometheus text parser reads them."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text.decode()) if f.name == family
            for s in f.samples}


@given(st.lists(st.tuples(SECONDS, BYTES), max_size=40))
def test_histograms_match_prometheus_client_for_any_observations(observations):
    metrics = Metrics(Config())
    registry = CollectorRegistry()
    latency = Histogram("castslice_admission_duration_seconds", "x", buckets=LATENCY_BUCKETS,
                        registry=registry)
    body = Histogram("castslice_request_body_bytes", "x", buckets=BODY_BUCKETS,
                     registry=registry)
    for seconds, size in observations:
        metrics.record(Decision("passed", "not-a-pod"), False, seconds, size, "ml")
        latency.observe(seconds)
        body.observe(size)
    ours, theirs = metrics.render(), generate_latest(registry)
    for family in ("castslice_admission_duration_seconds", "castslice_request_body_bytes"):
        expected = {k: v for k, v in samples(theirs, family).items()
                    if not k[0].endswith("_created")}
        assert samples(ours, family) == expected


def test_a_scrape_sums_every_worker_including_one_that_exited(tmp_path):
    mutated = ("castslice_admissions_total", (("outcome", "mutated"), ("reason", "mutated")))
    exited, answering = Metrics(Config(), str(tmp_path)), Metrics(Config(), str(tmp_path))
    exited.add(("admissions", "mutated", "mutated"), 3)
    exited.flush()
    answering.add(("admissions", "mutated", "mutated"), 2)  # not written yet
    assert samples(Metrics(Config(), str(tmp_path)).render(), "castslice_admissions") == {
        mutated: 3}
    assert samples(answering.render(), "castslice_admissions") == {mutated: 5}


def test_a_worker_with_a_reused_pid_does_not_overwrite_the_old_counts(tmp_path):
    old, new = Metrics(Config(), str(tmp_path)), Metrics(Config(), str(tmp_path))  # same pid
    old.add(("slices_granted",), 4)
    old.flush()
    new.add(("slices_granted",), 2)
    new.flush()
    assert Metrics(Config(), str(tmp_path)).totals()[("slices_granted",)] == 6


def test_unlabelled_counters_are_exported_at_zero_before_any_admission():
    families = samples(Metrics(Config()).render(), "castslice_capture_dropped")
    assert families == {("castslice_capture_dropped_total", ()): 0.0}
