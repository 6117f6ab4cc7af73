"""Settings of the report service: DDAS_REPORT_* plus the shared KAFKA_* and DATABASE_*, and the
notifications' DDAS_NOTIFY_* (ddas.notify.NotifySettings)."""

from __future__ import annotations

from pydantic_settings import SettingsConfigDict

from ddas.pipeline import topics
from ddas.service import ApiServiceSettings


class ReportSettings(ApiServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DDAS_REPORT_", extra="ignore")

    topic: str = topics.LEVERINGEN
    """The lifecycle events (`gevalideerd` and `afgekeurd` are reported on); its dead-letter
    twin is `<topic>.dlq`."""
    consumer_group: str = "ddas-report"
    http_port: int = 8083
    """Port of the report API (and /healthz, /readyz, /metrics); 0 lets the system choose.
    `base_url` (empty: http://host:port) is the API's public URL, for the link to the report
    in the notifications."""

    session_timeout_ms: int = 30_000
    """How soon the group notices a consumer that died (building a national report takes
    seconds; the heartbeats go on meanwhile)."""
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 600_000
