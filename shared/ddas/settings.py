"""Settings read from the environment: the Kafka and PostgreSQL connection settings that every
service shares, and the base class each service's own settings extend (one env prefix per service).

The defaults point at what `ddas infra up` starts on this machine, so a developer needs no
environment at all; a deployment sets KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Where `ddas infra up` puts the broker and the database unless DDAS_KAFKA_PORT / DDAS_PG_PORT
# say otherwise (see ddas.infra.config). Non-standard ports, so that a PostgreSQL that Debian
# started on 5432 or a developer's own Kafka on 9092 is never picked up by accident.
DEFAULT_KAFKA_PORT = 19092
DEFAULT_PG_PORT = 15432
DEFAULT_DATABASE = "ddas"


class KafkaSettings(BaseSettings):
    """How to reach the Kafka cluster: `KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_CLIENT_ID`, ..."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="ignore")

    bootstrap_servers: str = f"127.0.0.1:{DEFAULT_KAFKA_PORT}"
    """Comma-separated host:port list."""
    client_id: str = "ddas"
    request_timeout_ms: int = 30_000

    @property
    def servers(self) -> list[str]:
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def to_faststream_params(self) -> dict[str, Any]:
        """Keyword arguments for `faststream.kafka.KafkaBroker` (connection only)."""
        return {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
        }

    def to_aiokafka_params(self) -> dict[str, Any]:
        """Keyword arguments for aiokafka's producer, consumer and admin clients."""
        return {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "request_timeout_ms": self.request_timeout_ms,
        }


class DatabaseSettings(BaseSettings):
    """How to reach PostgreSQL: `DATABASE_URL`, `DATABASE_POOL_MIN_SIZE`, ..."""

    model_config = SettingsConfigDict(env_prefix="DATABASE_", extra="ignore")

    url: str = f"postgresql://postgres@127.0.0.1:{DEFAULT_PG_PORT}/{DEFAULT_DATABASE}"
    """A libpq URL: postgresql://user:password@host:port/database."""
    pool_min_size: int = 1
    pool_max_size: int = 10
    search_path: str = "public"
    """The schema the tables live in (tests give each test a schema of its own)."""

    @field_validator("url")
    @classmethod
    def _libpq_scheme(cls, value: str) -> str:
        # SQLAlchemy-style URLs (postgresql+asyncpg://) are common in .env files; asyncpg wants
        # the plain scheme.
        scheme, sep, rest = value.partition("://")
        if not sep or not scheme.startswith(("postgresql", "postgres")):
            raise ValueError("DATABASE_URL must look like postgresql://user@host:port/database")
        return f"postgresql://{rest}"

    def to_asyncpg_params(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect` / `asyncpg.create_pool`."""
        return {"dsn": self.url, "server_settings": {"search_path": self.search_path}}


class ServiceSettings(BaseSettings):
    """Base of each service's settings. A subclass sets its own prefix, e.g.

        class IngestSettings(ServiceSettings):
            model_config = SettingsConfigDict(env_prefix="DDAS_INGEST_")

    and adds its own fields; the connection settings stay shared (KAFKA_*, DATABASE_*), so one
    environment serves all four services.
    """

    model_config = SettingsConfigDict(env_prefix="DDAS_", extra="ignore")

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int = 0
    """Port of the /metrics endpoint; 0 lets the service choose."""
