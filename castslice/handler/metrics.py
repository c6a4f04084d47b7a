"""Prometheus metrics (SPEC §8), correct across gunicorn workers.

In multiprocess mode (PROMETHEUS_MULTIPROC_DIR set by `castslice serve` before this module
is imported) every worker writes its own files and a scrape sums them.
"""

import platform

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from castslice import __version__
from castslice.config import Config
from castslice.functions.admit import Admission

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
BODY_BUCKETS = (1024, 4096, 8192, 16384, 65536, 262144, 1048576, 6291456)
OUTCOMES = {"patch": "mutated", "skip": "passed", "deny": "denied"}


class Metrics:
    """The counters one app writes: to its own registry, or to the multiprocess files."""

    def __init__(self, config: Config, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        registry = None if multiprocess_dir else CollectorRegistry()
        self.registry = registry
        self.savings_rate = _savings_rate(config)

        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"castslice_{name}", doc, labels, registry=registry)

        self.admissions = counter("admissions_total", "Admission reviews answered.",
                                  ("outcome", "reason"))
        self.warnings = counter("warnings_total", "Warnings returned to clients.", ("kind",))
        self.gpus = counter("gpus_converted_total", "Whole GPUs rewritten into slices.")
        self.slices = counter("slices_granted_total", "Shared GPU slices granted.")
        self.savings = counter("savings_dollars_per_hour_total",
                               "Estimated GPU capacity freed by admitted Pods, in dollars "
                               "per hour (needs CASTSLICE_GPU_HOURLY_COST and "
                               "CASTSLICE_SLICES_PER_GPU).")
        self.capture_dropped = counter("capture_dropped_total",
                                       "Events not captured because the queue was full.")
        self.capture_written = counter("capture_written_total", "Events written to storage.")
        self.capture_failed = counter("capture_failed_total",
                                      "Events lost because storage refused a batch.")
        self.mutated = counter("pods_mutated_total", "Pods given shared slices, by namespace.",
                               ("namespace",))
        self.latency = Histogram("castslice_admission_duration_seconds",
                                 "Time from request body read to response ready.",
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.body = Histogram("castslice_request_body_bytes", "Size of AdmissionReview bodies.",
                              buckets=BODY_BUCKETS, registry=registry)
        Gauge("castslice_build_info", "Always 1; labels name the version running.",
              ("version", "python"), registry=registry, multiprocess_mode="max").labels(
            __version__, platform.python_version()).set(1)
        Gauge("castslice_config_info", "Always 1; labels name the effective configuration.",
              ("source_resource", "target_resource", "on_invalid", "default_slices"),
              registry=registry, multiprocess_mode="max").labels(
            config.source_resource, config.target_resource, config.on_invalid,
            str(config.default_slices)).set(1)

    def record(self, admission: Admission | None, dry_run: bool, seconds: float,
               body_bytes: int, namespace: str) -> None:
        """Count one answered review; None means the decision failed (outcome error).

        dryRun admissions and re-invocations of a converted Pod (outcome passed) convert
        nothing, so they add to no conversion or savings figure.
        """
        self.latency.observe(seconds)
        self.body.observe(body_bytes)
        if admission is None:
            self.admissions.labels("error", "internal-error").inc()
            return
        decision = admission.decision
        self.admissions.labels(OUTCOMES[decision.outcome], decision.reason).inc()
        for warning in decision.warnings:
            self.warnings.labels(warning.kind).inc()
        if decision.outcome == "patch" and not dry_run and decision.slices:
            self.gpus.inc(decision.gpus)
            self.mutated.labels(namespace).inc()
            self.slices.inc(decision.gpus * decision.slices)
            if self.savings_rate is not None:
                freed = max(0.0, 1 - decision.slices * self.savings_rate[1])
                self.savings.inc(decision.gpus * freed * self.savings_rate[0])

    def render(self) -> bytes:
        """The text exposition: this process's registry, or all workers' files summed."""
        if self.multiprocess_dir:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
            return generate_latest(registry)
        return generate_latest(self.registry) if self.registry else b""


def _savings_rate(config: Config) -> tuple[float, float] | None:
    """(dollars per GPU-hour, 1/R) when both savings variables are set."""
    if config.gpu_hourly_cost is None or config.slices_per_gpu is None:
        return None
    return config.gpu_hourly_cost, 1 / config.slices_per_gpu
