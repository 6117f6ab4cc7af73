"""The collector's Prometheus metrics (served on ingest's /metrics). Labels hold the endpoint's
configured name, outcomes and reason codes only, never data from a delivery."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RUNS = Counter(
    "ddas_collector_runs",
    "Collection runs ended, by endpoint and outcome",
    ["endpoint", "uitkomst"],
)
FAILURES = Counter(
    "ddas_collector_fouten", "Failed collection runs, by endpoint and reason code",
    ["endpoint", "reden"],
)  # fmt: skip
PAGES = Counter("ddas_collector_paginas", "Verified pages stored, by endpoint", ["endpoint"])
HEALTHY = Gauge(
    "ddas_collector_endpoint_gezond", "1 while an endpoint is healthy, 0 once it keeps failing",
    ["endpoint"],
)  # fmt: skip
CONSECUTIVE_FAILURES = Gauge(
    "ddas_collector_opeenvolgende_fouten", "Consecutive failed runs of an endpoint", ["endpoint"]
)
