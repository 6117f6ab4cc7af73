"""Settings of the validate service: DDAS_VALIDATE_* plus the shared KAFKA_* and DATABASE_*."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ddas.deadletter import RetryPolicy
from ddas.messaging import RELAY_MAX_MESSAGE_BYTES
from ddas.pipeline import topics
from ddas.settings import ServiceSettings


class ValidateSettings(ServiceSettings):
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
    http_host: str = "127.0.0.1"
    http_port: int = 8082
    """Port of /healthz, /readyz and /metrics; 0 lets the system choose (logged at start)."""

    retry_attempts: Annotated[int, Field(ge=1)] = 4
    """Tries of a failing chunk before it goes to the dead-letter topic."""
    retry_backoff_s: Annotated[float, Field(ge=0)] = 0.5
    retry_max_backoff_s: Annotated[float, Field(ge=0)] = 30.0
    outage_s: Annotated[float, Field(ge=0)] = 120.0
    """How long the database or broker may be away before the service gives up and exits."""

    session_timeout_ms: int = 10_000
    """How soon the group notices a consumer that died (the broker's minimum is 6,000)."""
    heartbeat_interval_ms: int = 3_000
    relay: bool = True
    """Run an outbox relay in this process (any service's relay publishes any outbox row)."""
    max_message_bytes: Annotated[int, Field(ge=1024)] = RELAY_MAX_MESSAGE_BYTES
    """The relay's largest (uncompressed) message: as ingest's, since any relay publishes any
    outbox row."""
    graceful_timeout_s: float = 30.0
    """On SIGTERM: how long the chunk in hand may take to finish before the process stops."""

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            backoff=self.retry_backoff_s,
            max_backoff=self.retry_max_backoff_s,
            outage=self.outage_s,
        )
