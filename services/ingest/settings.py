"""Settings of the ingest service: DDAS_INGEST_* plus the shared KAFKA_* and DATABASE_*, and
the pseudonym key (DDAS_PSEUDONYM_KEY or DDAS_PSEUDONYM_KEY_FILE; DDAS_TEST_MODE=1 allows the
fixed test key)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from ddas.domain.pseudonym import load_key
from ddas.pipeline import topics
from ddas.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="DDAS_INGEST_", extra="ignore", populate_by_name=True
    )

    http_host: str = "127.0.0.1"
    http_port: int = 8081
    """Port of the upload API (and /metrics, /healthz, /readyz); 0 lets the system choose."""
    base_url: str = ""
    """The API's public URL, for the status links in answers (empty: from the request)."""
    consumer_group: str = "ddas-ingest"

    # -- topics (tests give each run topics of their own) ---------------------------------
    inbound_topic: str = topics.AANGEBODEN
    chunk_topic: str = topics.TRAJECTEN
    status_topic: str = topics.LEVERINGEN
    """The lifecycle events, projected into levering_status for the status endpoint."""
    kafka_inbound: bool = True
    """Consume supplier delivery events from `inbound_topic`."""

    # -- the privacy edge ----------------------------------------------------------------
    pseudonym_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DDAS_PSEUDONYM_KEY", "DDAS_INGEST_PSEUDONYM_KEY"),
        repr=False,
    )
    pseudonym_key_file: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DDAS_PSEUDONYM_KEY_FILE", "DDAS_INGEST_PSEUDONYM_KEY_FILE"),
    )
    test_mode: bool = Field(
        default=False, validation_alias=AliasChoices("DDAS_TEST_MODE", "DDAS_INGEST_TEST_MODE")
    )
    """Allows the fixed test key when no pseudonym key is configured. Never in a deployment."""

    # -- limits ------------------------------------------------------------------------------
    max_bytes: Annotated[int, Field(ge=1)] = 256 * 1024 * 1024
    """Largest delivery accepted (HTTP body, inline Kafka document or download): 413 above."""
    max_depth: Annotated[int, Field(ge=4)] = 32
    """Deepest JSON nesting accepted (a SHV document needs 7)."""
    max_trajecten: Annotated[int, Field(ge=1)] = 500_000
    """Most trajectories accepted in one delivery."""
    chunk_size: Annotated[int, Field(ge=1)] = 2_000
    """Trajectories per chunk on the chunk topic."""
    workers: Annotated[int, Field(ge=0)] = 2
    """Worker processes (forked at start-up) that pseudonymise and encode a large delivery's
    chunks side by side; 0: all in the service's own process."""
    workers_min_trajecten: Annotated[int, Field(ge=1)] = 20_000
    """Deliveries with fewer trajectories are done in the service's own process (sooner)."""

    # -- the Kafka way in ------------------------------------------------------------------------
    download_timeout_s: Annotated[float, Field(gt=0)] = 60.0
    download_hosts: list[str] = Field(default_factory=list)
    """Host names a delivery event's URL may point at (empty: any). Set it in a deployment."""
    token_max_age_s: Annotated[int, Field(ge=1)] = 3600
    """How old an event's signed token may be."""

    # -- the outbox relay -----------------------------------------------------------------------
    relay_batch_size: Annotated[int, Field(ge=1)] = 16
    relay_lease_s: Annotated[float, Field(gt=0)] = 60.0
    relay_poll_s: Annotated[float, Field(gt=0)] = 0.2
    relay_max_backoff_s: Annotated[float, Field(gt=0)] = 60.0
    max_message_bytes: Annotated[int, Field(ge=1024)] = 64 * 1024 * 1024
    """The producer's largest (uncompressed) message; chunks are compressed (snappy) on the wire."""

    # -- the collector (services/ingest/collect) --------------------------------------------
    collector_config: str | None = Field(
        default=None,
        validation_alias=AliasChoices("DDAS_COLLECTOR_CONFIG", "DDAS_INGEST_COLLECTOR_CONFIG"),
    )
    """The collector's TOML file (supplier endpoints, schedule, trust store); unset: no
    collection. Secrets are not in it (files or environment variables it names)."""

    outage_s: Annotated[float, Field(ge=0)] = 120.0
    """How long the database may be away while handling an inbound event before the service
    gives up and exits (the event stays uncommitted)."""
    graceful_timeout_s: float = 30.0
    """On SIGTERM: how long requests and the event in hand may take to finish."""

    def key(self) -> bytes:
        """The pseudonym key; raises MissingPseudonymKey (outside test mode, without a key)."""
        return load_key(self.pseudonym_key, self.pseudonym_key_file, test_mode=self.test_mode)
