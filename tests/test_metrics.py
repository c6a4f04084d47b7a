"""CastSlice's own per-worker counts render what prometheus_client's metrics would."""

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from castslice.functions.decide import Decision
from castslice.handler.families import BODY_BUCKETS, LATENCY_BUCKETS
from castslice.handler.metrics import CONTENT_TYPE, Metrics
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


def counted(env, *annotation_sets):
    """The counters after one admission per annotation set, under `env`'s back-end."""
    from castslice.functions.admit import admit, check_review
    from tests.kube import gpu_container, pod_review

    config = Config.from_env(env)
    metrics = Metrics(config)
    for annotations in annotation_sets:
        review = pod_review({"castops.io/optimize": "true", **annotations},
                            containers=[gpu_container("a", "1"), gpu_container("b", "1")])
        metrics.record(admit(check_review(review), config.policy).decision, False, 0.001, 100,
                       "ml")
    return metrics.totals()


def test_mig_counts_each_conversion_with_the_whole_profile_it_was_given():
    # slice-ratio 5 rounds up to 7g.40gb: 2 GPUs x 7 slices granted, the card's 7 of 7
    totals = counted({"CASTSLICE_BACKEND": "mig", "CASTSLICE_GPU_HOURLY_COST": "7"},
                     {"castops.io/slice-ratio": "5"}, {"castops.io/slice-ratio": "2"})
    assert totals[("gpus_converted",)] == 4
    assert totals[("slices_granted",)] == 2 * 7 + 2 * 2
    assert totals[("pods_mutated", "ml")] == 2
    assert totals[("admissions", "mutated", "mutated")] == 2
    assert round(totals[("savings_dollars_per_hour",)], 6) == round(2 * (1 - 2 / 7) * 7, 6)


def test_dra_counts_claims_by_their_real_profile_and_shares_by_n():
    mig = counted({"CASTSLICE_BACKEND": "dra", "CASTSLICE_GPU_HOURLY_COST": "7"},
                  {"castops.io/slice-ratio": "3"})
    assert (mig[("gpus_converted",)], mig[("slices_granted",)]) == (2, 6)
    assert round(mig[("savings_dollars_per_hour",)], 6) == round(2 * (4 / 7) * 7, 6)
    shares = counted({"CASTSLICE_BACKEND": "dra", "CASTSLICE_DRA_DEVICES": "shares",
                      "CASTSLICE_SLICES_PER_GPU": "4", "CASTSLICE_PRESETS": "training=4",
                      "CASTSLICE_GPU_HOURLY_COST": "2"}, {"castops.io/slice-ratio": "1"})
    assert (shares[("gpus_converted",)], shares[("slices_granted",)]) == (2, 2)
    assert shares[("savings_dollars_per_hour",)] == 2 * (3 / 4) * 2


def test_a30_mig_profile_that_fills_the_card_saves_nothing():
    totals = counted({"CASTSLICE_BACKEND": "mig", "CASTSLICE_GPU_HOURLY_COST": "2",
                      "CASTSLICE_MIG_PROFILES": "1g.6gb,2g.12gb,4g.24gb"},
                     {"castops.io/workload-type": "training"})
    assert totals[("slices_granted",)] == 8
    assert totals.get(("savings_dollars_per_hour",), 0) == 0


def test_a_multi_gpu_pod_is_counted_as_passed_with_its_own_reason_and_warning_kind():
    from castslice.functions.admit import admit, check_review
    from tests.kube import gpu_container, pod_review

    metrics = Metrics(Config())
    review = pod_review({"castops.io/optimize": "true"}, containers=[gpu_container("a", "2")])
    metrics.record(admit(check_review(review), Config().policy).decision, False, 0.001, 1, "ml")
    totals = metrics.totals()
    assert totals[("admissions", "passed", "multi-gpu")] == 1
    assert totals[("warnings", "multi-gpu")] == 1
    assert ("gpus_converted",) not in totals


def test_metrics_page_content_type_is_prometheus_clients():
    assert CONTENT_TYPE == CONTENT_TYPE_LATEST


def test_memory_asks_are_counted_by_outcome_and_only_for_memory_asks():
    totals = counted({"CASTSLICE_BACKEND": "mig"}, {"castops.io/gpu-memory": "10Gi"},
                     {"castops.io/gpu-memory": "48Gi"}, {"castops.io/slice-ratio": "2"})
    assert totals[("memory_asks", "mutated", "mutated")] == 1
    assert totals[("memory_asks", "passed", "no-memory-fit")] == 1
    assert totals[("warnings", "no-memory-fit")] == 1
    assert sum(v for k, v in totals.items() if k[0] == "memory_asks") == 2
    assert totals[("admissions", "mutated", "mutated")] == 2
    text = Metrics(Config()).render()
    assert b"# TYPE castslice_memory_asks_total counter" in text
