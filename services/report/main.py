"""The report service: consumes the lifecycle events (`ddas.leveringen.v1`), builds the
op-orde-rapport of every delivery that became `gevalideerd` or `afgekeurd`, stores it, moves the
delivery to `rapport_gereed` and tells the organisation (see store.py for the transaction);
serves the report (http.py) and sends the notifications (ddas.notify).

    python -m services.report          # or: ddas serve report
    # KAFKA_*, DATABASE_*, DDAS_REPORT_*, DDAS_NOTIFY_* from the environment

`create_app(settings)` builds the service without starting it; `await app.start()` and
`await app.stop()` run it (`ddas.service.PipelineService`: the database, the registry, the
consumer, the outbox relay that publishes the `LeveringEvent` and `Rapport` messages the reports
write, woken right after each, the notification sender and the HTTP API); `serve()` does both
around SIGTERM/SIGINT.

The guarantees:
- an event's offset is committed only after its transaction committed (NACK_ON_ERROR; the
  handler returns only when the report is durable or the event dead-lettered);
- an event delivered again is a no-op (processed_events), and a delivery is reported once per
  `gevalideerd`/`afgekeurd` (the guarded transition);
- an event that keeps failing goes to `<topic>.dlq` after `retry_attempts` tries with backoff; a
  database or broker that stays away longer than `outage_s` stops the service (ddas.deadletter);
- notifications are sent at least once, a resend with the same webhook-id / Message-ID.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from ddas.deadletter import DependencyLost
from ddas.deadletter import Outcome as RetryOutcome
from ddas.pipeline.events import decode_levering_event
from ddas.service import PipelineService, raw_body, run
from ddas.service import serve as serve_service

from . import metrics
from .http import create_app as create_http_app
from .settings import ReportSettings
from .store import Handled, Outcome, handle_event

log = logging.getLogger("services.report")


class ReportService(PipelineService):
    name = "report"
    settings: ReportSettings

    def __init__(self, settings: ReportSettings, broker: KafkaBroker | None = None) -> None:
        super().__init__(settings, broker)
        subscriber = self.broker.subscriber(
            settings.topic,
            group_id=settings.consumer_group,
            auto_offset_reset="earliest",
            session_timeout_ms=settings.session_timeout_ms,
            heartbeat_interval_ms=settings.heartbeat_interval_ms,
            max_poll_interval_ms=settings.max_poll_interval_ms,
            decoder=raw_body,
        )

        @subscriber
        async def on_event(body: bytes, msg: KafkaMessage) -> None:
            await self.consume(msg, lambda: self.handle(body))

        self.subscriber = subscriber

    def on_dead_letter(self, outcome: RetryOutcome) -> None:
        metrics.DEAD_LETTERED.labels(outcome.error_class or "").inc()

    def describe(self) -> str:
        return f"{self.settings.topic} as {self.settings.consumer_group}"

    def http_app(self) -> FastAPI:
        assert self.registry is not None and self.pool is not None
        return create_http_app(self.registry, self.pool, ready=self.ready_checks())

    async def handle(self, data: bytes) -> Outcome:
        """Handle one lifecycle event (raises on any failure; the retrier decides what next)."""
        event = decode_levering_event(data)
        assert self.pool is not None, "start() the service first"
        async with self.pool.acquire() as conn:
            outcome = await handle_event(conn, event, base_url=self.public_url)
        metrics.EVENTS.labels(outcome.handled.value).inc()
        if outcome.handled in (Handled.REPORTED, Handled.STORED):
            metrics.BUILD_SECONDS.observe(outcome.seconds)
            self.wake_relay()
            if self.sender is not None:
                self.sender.wake()
            log.info(
                "delivery %s: report v%s (%d trajectories, %.2f s, %d notifications)",
                event.levering_id,
                outcome.versie,
                outcome.trajecten,
                outcome.seconds,
                outcome.notificaties,
            )
        return outcome


def create_app(settings: ReportSettings | None = None, **overrides: Any) -> ReportService:
    """The service, configured but not started. `overrides` replace settings fields."""
    settings = settings or ReportSettings()
    if overrides:
        settings = settings.model_copy(update=overrides)
    return ReportService(settings)


async def serve(settings: ReportSettings | None = None) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a dependency stays away too long (exit 1)."""
    return await serve_service(create_app(settings))


def main() -> int:
    return run(ReportSettings(), create_app)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["DependencyLost", "ReportService", "create_app", "main", "serve"]
