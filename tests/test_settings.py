"""Settings from the environment: shared connection settings, per-service prefixes."""

from __future__ import annotations

import pytest

from ddas.settings import DatabaseSettings, KafkaSettings
from services.ingest.settings import IngestSettings


def test_defaults_point_at_what_ddas_infra_up_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert KafkaSettings().servers == ["127.0.0.1:19092"]
    assert DatabaseSettings().url == "postgresql://postgres@127.0.0.1:15432/ddas"


def test_a_service_shares_the_connection_settings_and_has_its_own_prefix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092, kafka-2:9092")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://ddas:secret@db:5432/ddas")
    monkeypatch.setenv("DATABASE_SEARCH_PATH", "ddas")
    monkeypatch.setenv("DDAS_INGEST_HTTP_PORT", "9000")
    monkeypatch.setenv("DDAS_VALIDATE_HTTP_PORT", "9999")  # another service's: ignored

    settings = IngestSettings()
    assert settings.http_port == 9000
    assert settings.kafka.to_faststream_params()["bootstrap_servers"] == [
        "kafka-1:9092",
        "kafka-2:9092",
    ]
    # asyncpg takes the plain libpq scheme.
    assert settings.database.to_asyncpg_params() == {
        "dsn": "postgresql://ddas:secret@db:5432/ddas",
        "server_settings": {"search_path": "ddas"},
    }


def test_a_database_url_that_is_not_postgres_is_refused() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL must look like"):
        DatabaseSettings(url="mysql://x@y/z")
