"""The pipeline's Kafka topics. Versioned names; every topic has a dead-letter twin."""

from __future__ import annotations

#: Supplier delivery events (CloudEvents 1.0, structured JSON): the Kafka way in (ingest).
AANGEBODEN = "ddas.leveringen.aangeboden.v1"
#: Chunks of pseudonymised trajectories, ingest -> validate. Keyed by "<levering_id>:<chunk>"
#: so that one large delivery spreads over the partitions.
TRAJECTEN = "ddas.trajecten.v1"
#: Lifecycle events of deliveries (gevalideerd, afgekeurd, ...), keyed by levering_id so that
#: the events of one delivery stay in order. validate -> report, report -> publish, ...
LEVERINGEN = "ddas.leveringen.v1"
#: A delivery's op-orde-rapport figures (no personal data), report -> publish, keyed by
#: levering_id: what publish needs to publish an approved delivery.
RAPPORTEN = "ddas.rapporten.v1"
#: Published, disclosure-protected statistics per period and municipality: publish -> outside.
STATISTIEKEN = "ddas.statistieken.v1"

ALL = (AANGEBODEN, TRAJECTEN, LEVERINGEN, RAPPORTEN, STATISTIEKEN)


def dead_letter(topic: str) -> str:
    """The dead-letter twin of a topic."""
    return f"{topic}.dlq"
