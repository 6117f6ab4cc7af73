"""The publish service's Prometheus metrics (served on /metrics). No label ever holds data from
a delivery: decisions, outcomes and error classes only."""

from __future__ import annotations

from prometheus_client import Counter

BESLUITEN = Counter(
    "ddas_publish_besluiten",
    "Decisions asked for, by kind (goedkeuring, intrekking) and outcome (ok, dubbel, geweigerd)",
    ["soort", "uitkomst"],
)
GEPUBLICEERD = Counter("ddas_publish_gepubliceerd", "Deliveries published")
VERVANGEN = Counter("ddas_publish_vervangen", "Deliveries superseded by a newer one")
RAPPORTEN = Counter(
    "ddas_publish_rapporten",
    "Reports consumed, by outcome (opgeslagen, dubbel, overgeslagen)",
    ["uitkomst"],
)
DEAD_LETTERED = Counter(
    "ddas_publish_dead_lettered", "Messages sent to the dead-letter topic", ["error_class"]
)
