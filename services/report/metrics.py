"""The report service's Prometheus metrics (served on /metrics). No label ever holds data from a
delivery: outcomes, formats and error classes only. (The notifications' counters are
ddas.notify's: ddas_notify_verzonden, ddas_notify_opnieuw, ddas_notify_mislukt.)"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

EVENTS = Counter(
    "ddas_report_events",
    "Lifecycle events handled, by outcome (reported, duplicate, ignored, skipped, stored)",
    ["outcome"],
)
BUILD_SECONDS = Histogram(
    "ddas_report_build_seconds",
    "Time to build one report (reading the stored facts and counting)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64),
)
DEAD_LETTERED = Counter(
    "ddas_report_dead_lettered", "Messages sent to the dead-letter topic", ["error_class"]
)
SERVED = Counter("ddas_report_served", "Reports served by the API, by format", ["formaat"])
REFUSED = Counter("ddas_report_refused", "Report requests refused, by status", ["status"])
