"""The metric families CastSlice exports: names, help, labels and buckets. Below both the
counting (`metrics.py`) and the text format (`exposition.py`), so neither imports the other
for them."""

LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25)
BODY_BUCKETS = (1024, 4096, 8192, 16384, 65536, 262144, 1048576, 6291456)
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "admissions": ("Admission reviews answered.", ("outcome", "reason")),
    "warnings": ("Warnings returned to clients.", ("kind",)),
    "memory_asks": ("Admissions whose slices a memory ask decided (castops.io/gpu-memory or a "
                    "rule's gpuMemory), by outcome: mutated, or passed as no-memory-fit when "
                    "no grant holds it.", ("outcome", "reason")),
    "gpus_converted": ("Whole GPUs rewritten into slices.", ()),
    "slices_granted": ("Shared GPU slices granted.", ()),
    "savings_dollars_per_hour": (
        "Estimated GPU capacity freed by admitted Pods, in dollars per hour (needs "
        "CASTSLICE_GPU_HOURLY_COST and CASTSLICE_SLICES_PER_GPU).", ()),
    "capture_dropped": ("Events not captured because the queue was full.", ()),
    "capture_written": ("Events written to storage.", ()),
    "capture_failed": ("Events lost, by the stage that failed: redact or encode (one "
                       "event), store (a batch storage refused).", ("stage",)),
    "pods_mutated": ("Pods given shared slices, by namespace.", ("namespace",)),
    "observe_failed": ("Admissions answered whose logging, counting or capture failed.", ()),
    "requests_refused": ("Requests refused before any decision, by HTTP status (400 not an "
                         "AdmissionReview, 413 too large, 415 not JSON), and TLS handshakes "
                         "that never completed (status \"tls\": a plain http:// client, or "
                         "one that does not trust the certificate).", ("status",)),
}
GAUGES: dict[str, str] = {
    "capture_writer_alive": "Capture writer threads running (one per worker when capture is on).",
}
HISTOGRAMS: dict[str, tuple[str, tuple[float, ...]]] = {
    "admission_duration_seconds": ("Time from request body read to response ready.",
                                   LATENCY_BUCKETS),
    "request_body_bytes": ("Size of AdmissionReview bodies.", BODY_BUCKETS),
}

Key = tuple[str | int, ...]
"""A counter's name and label values; a histogram's name and bucket index, or "sum"."""
