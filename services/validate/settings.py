"""Settings of the validate service: DDAS_VALIDATE_* plus the shared KAFKA_* and DATABASE_*."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ddas.pipeline import topics
from ddas.service import ConsumerSettings


class ValidateSettings(ConsumerSettings):
    model_config = SettingsConfigDict(env_prefix="DDAS_VALIDATE_", extra="ignore")

    topic: str = topics.TRAJECTEN
    """The chunks' topic (tests give each run a topic of its own); its dead-letter twin is
    `<topic>.dlq`."""
    consumer_group: str = "ddas-validate"
    levering_topic: str = topics.LEVERINGEN
    """The lifecycle events: ingest's `ontvangen` says a delivery is recorded, so that one whose
    chunks are all stored already is completed now (group `<consumer_group>-ontvangen`)."""
    sweep_interval_s: Annotated[float, Field(gt=0)] = 2.0
    """How often the sweep looks for recorded deliveries ready to complete (should an
    `ontvangen` event have gone astray) and for stale staged chunks."""
    staging_ttl_s: Annotated[float, Field(gt=0)] = 3600.0
    """Chunks of a submission that ingest never recorded (refused half-way, crashed) are deleted
    once no chunk of it came for this long. Far longer than any submission takes."""
    http_port: int = 8082
    """Port of /healthz, /readyz and /metrics; 0 lets the system choose (logged at start)."""

    session_timeout_ms: int = 10_000
    """How soon the group notices a consumer that died (the broker's minimum is 6,000)."""
    fetch_max_wait_ms: Annotated[int, Field(ge=0)] = 100
    """How long the broker may hold a fetch that finds no new chunk. While one is held, the
    consumer sends no fetch for its other partitions either: with Kafka's 500 ms, the last
    chunks of a delivery waited half a second (docs/benchmarks.md). An idle consumer asks
    about ten times a second instead of twice."""
    heartbeat_interval_ms: int = 3_000
