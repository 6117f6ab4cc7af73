"""Settings of the publish service: DDAS_PUBLISH_* plus the shared KAFKA_* and DATABASE_*, and
DDAS_NOTIFY_* for the notifications (ddas.notify)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ddas.pipeline import topics
from ddas.service import ApiServiceSettings


class PublishSettings(ApiServiceSettings):
    model_config = SettingsConfigDict(env_prefix="DDAS_PUBLISH_", extra="ignore")

    http_port: int = 8084
    """Port of the API (decisions, statistics, /healthz, /readyz, /metrics); 0: any free one."""
    consumer_group: str = "ddas-publish"

    # -- topics (tests give each run topics of their own) ---------------------------------
    leveringen_topic: str = topics.LEVERINGEN
    """The lifecycle events: an `ontvangen` delivery supersedes older ones (group
    `<consumer_group>-leveringen`)."""
    rapporten_topic: str = topics.RAPPORTEN
    """The reports' figures (group `<consumer_group>`)."""
    statistieken_topic: str = topics.STATISTIEKEN
    """Where the published statistics go (through the outbox)."""

    bedenktijd_s: Annotated[float, Field(ge=0)] = 0.0
    """How long an approval waits before it is published; the organisation may still withdraw
    it meanwhile (goedgekeurd -> ingetrokken)."""
    publish_poll_s: Annotated[float, Field(gt=0)] = 1.0
    """How often the publisher looks for approved deliveries that are due (it is also woken by
    each approval and each report)."""
