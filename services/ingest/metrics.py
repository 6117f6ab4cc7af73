"""The ingest service's Prometheus metrics (served on /metrics). No label ever holds data from a
delivery: the way in, outcomes and status codes only."""

from __future__ import annotations

from prometheus_client import Counter

ACCEPTED = Counter(
    "ddas_ingest_leveringen", "Deliveries taken in, by way in and whether new", ["via", "nieuw"]
)
REFUSED = Counter(
    "ddas_ingest_geweigerd", "Delivery attempts refused, by way in and status", ["via", "status"]
)
PUBLISHED = Counter("ddas_ingest_outbox_published", "Outbox messages published")
DEAD_LETTERED = Counter(
    "ddas_ingest_dead_lettered", "Inbound events sent to the dead-letter topic", ["error_class"]
)
