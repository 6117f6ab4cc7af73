"""Settings of the ingest service: DDAS_INGEST_* plus the shared KAFKA_* and DATABASE_*."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from ddas.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DDAS_INGEST_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8081
    """Port of the upload API (and /metrics, /health)."""
    consumer_group: str = "ddas-ingest"
