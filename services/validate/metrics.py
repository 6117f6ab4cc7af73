"""The validate service's Prometheus metrics (served on /metrics). No label ever holds data
from a delivery: outcomes, states and error classes only."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

CHUNKS = Counter(
    "ddas_validate_chunks", "Chunks handled, by outcome (stored, completed, duplicate)", ["outcome"]
)
TRAJECTEN = Counter("ddas_validate_trajecten", "Trajectories stored")
LEVERINGEN = Counter("ddas_validate_leveringen", "Deliveries completed, by state", ["state"])
DEAD_LETTERED = Counter(
    "ddas_validate_dead_lettered", "Messages sent to the dead-letter topic", ["error_class"]
)
SECONDS = Histogram(
    "ddas_validate_chunk_seconds",
    "Time to handle one chunk message, retries included",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
