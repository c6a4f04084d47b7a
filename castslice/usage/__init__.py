"""Measured GPU use -> a recommended configuration (`castslice recommend`).

`prometheus.py` (the HTTP API client: auth, TLS, one-line errors), `series.py` (the PromQL
that aggregates dcgm-exporter's and kube-state-metrics' series on the server, and what comes
back per workload and per GPU), `advice.py` (the pure recommendation: how many Pods fit on
one card, rounded to the configuration's presets or MIG ladder), `report.py` (table, JSON and
env file). Imports `castslice.functions`, `castslice.settings` and `castslice.cluster`.
"""
