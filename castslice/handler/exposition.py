"""The Prometheus text format of CastSlice's summed counts, rendered by prometheus_client.

A module of its own so that prometheus_client is imported at the first scrape, off a cold
replica's path to its first admission.
"""

from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from castslice.handler.families import COUNTERS, GAUGES, HISTOGRAMS, Key


def text(totals: Mapping[Key, float], info: Mapping[str, tuple[dict[str, str], str]]) -> bytes:
    """The exposition of `totals` (every family, zeros included) and the info gauges."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(totals, info))
    return generate_latest(registry)


class _Families:
    """A prometheus_client collector over summed counts."""

    def __init__(self, totals: Mapping[Key, float],
                 info: Mapping[str, tuple[dict[str, str], str]]) -> None:
        self.totals, self.info = totals, info

    def collect(self) -> Iterator[Metric]:
        ordered = sorted(self.totals.items(), key=str)
        for name, (doc, labels) in COUNTERS.items():
            family = CounterMetricFamily(f"castslice_{name}", doc, labels=labels)
            if not labels:
                family.add_metric([], self.totals.get((name,), 0.0))
            for key, value in ordered:
                if key[0] == name and labels:
                    family.add_metric([str(v) for v in key[1:]], value)
            yield family
        for name, doc in GAUGES.items():
            yield GaugeMetricFamily(f"castslice_{name}", doc, value=self.totals.get((name,), 0.0))
        for name, (doc, bounds) in HISTOGRAMS.items():
            yield _histogram(name, doc, bounds, self.totals)
        for name, (values, doc) in self.info.items():
            gauge = GaugeMetricFamily(f"castslice_{name}", doc, labels=list(values))
            gauge.add_metric(list(values.values()), 1.0)
            yield gauge


def _histogram(name: str, doc: str, bounds: tuple[float, ...],
               totals: Mapping[Key, float]) -> HistogramMetricFamily:
    buckets, seen = [], 0.0
    for index, bound in enumerate((*bounds, float("inf"))):
        seen += totals.get((name, index), 0.0)
        buckets.append((floatToGoString(bound), seen))
    return HistogramMetricFamily(f"castslice_{name}", doc, buckets=buckets,
                                 sum_value=totals.get((name, "sum"), 0.0))
