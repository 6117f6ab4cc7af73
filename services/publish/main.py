"""The publish service: the approval gate, supersede, withdrawal, and the publication of
disclosure-protected statistics (see store.py for each transaction).

    python -m services.publish          # or: ddas serve publish
    # KAFKA_*, DATABASE_*, DDAS_PUBLISH_*, DDAS_NOTIFY_* from the environment

`create_app(settings)` builds the service without starting it; `await service.start()` migrates
the database, opens the pool, loads the registry, starts the broker (two subscribers, both
committing after processing), the publisher, the outbox relay, the notification sender and the
HTTP API (FastAPI on uvicorn); `await service.stop()` stops in the reverse order. `serve()` runs
it until SIGTERM/SIGINT.

Consumers (each with processed-event ids, bounded retries and a dead-letter twin,
ddas.deadletter):
- `rapporten_topic` (group `consumer_group`): the reports' figures, kept for publication;
- `leveringen_topic` (group `<consumer_group>-leveringen`): an `ontvangen` delivery supersedes
  the older unpublished ones of its organisation, soort and period.

The publisher publishes every approved delivery whose report is known and whose cooling-off
time has passed: woken by each approval and each report, and every `publish_poll_s`; at start it
finds whatever an earlier process approved and did not publish (a crash in between).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import Any

import msgspec
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from ddas.deadletter import Outcome as RetryOutcome
from ddas.pipeline.events import decode_levering_event, decode_rapport
from ddas.service import PipelineService, raw_body, run
from ddas.service import serve as serve_service

from . import metrics, store
from .http import create_app as create_http_app
from .settings import PublishSettings

log = logging.getLogger("services.publish")


class PublishService(PipelineService):
    name = "publish"
    settings: PublishSettings

    def __init__(self, settings: PublishSettings, broker: KafkaBroker | None = None) -> None:
        super().__init__(settings, broker)
        self._wake_publisher = asyncio.Event()
        args: dict[str, Any] = {
            "auto_offset_reset": "earliest",
            "decoder": raw_body,
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 3_000,
        }

        @self.broker.subscriber(settings.rapporten_topic, group_id=settings.consumer_group, **args)
        async def on_rapport(body: bytes, msg: KafkaMessage) -> None:
            await self.consume(msg, lambda: self.handle_rapport(body))

        @self.broker.subscriber(
            settings.leveringen_topic, group_id=f"{settings.consumer_group}-leveringen", **args
        )
        async def on_levering(body: bytes, msg: KafkaMessage) -> None:
            await self.consume(msg, lambda: self.handle_levering(body))

    def on_dead_letter(self, outcome: RetryOutcome) -> None:
        metrics.DEAD_LETTERED.labels(outcome.error_class or "").inc()

    def describe(self) -> str:
        return f"{self.settings.rapporten_topic} and {self.settings.leveringen_topic}"

    def http_app(self) -> FastAPI:
        assert self.registry is not None and self.pool is not None
        return create_http_app(
            self.registry,
            self.pool,
            ready=self.ready_checks(),
            on_decision=self._wake_publisher.set,
            base_url=lambda: self.public_url,
        )

    async def on_start(self) -> None:
        self.spawn(self._publisher(), "publisher")

    # -- handlers (raise on failure: the retrier decides what next) -------------------------

    async def handle_rapport(self, data: bytes) -> str:
        rapport = decode_rapport(data)
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            uitkomst = await store.store_rapport(conn, rapport)
        metrics.RAPPORTEN.labels(uitkomst).inc()
        if uitkomst == "opgeslagen":
            self._wake_publisher.set()
        return uitkomst

    async def handle_levering(self, data: bytes) -> list[Any]:
        try:
            event = decode_levering_event(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            # Another service's business to refuse; an unreadable event supersedes nothing.
            log.warning("publish: an unreadable lifecycle event skipped")
            return []
        if event.state != "ontvangen":
            return []
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            replaced = await store.supersede(conn, event)
        if replaced:
            metrics.VERVANGEN.inc(len(replaced))
            self.wake_relay()
            log.info("delivery %s supersedes %d older one(s)", event.levering_id, len(replaced))
        return replaced

    async def publish_due(self) -> int:
        """Publish every due delivery; returns how many were handled."""
        assert self.pool is not None
        n = 0
        while True:
            async with self.pool.acquire() as conn:
                done = await store.publish_due(
                    conn,
                    bedenktijd=self.settings.bedenktijd_s,
                    topic=self.settings.statistieken_topic,
                    link=f"{self.public_url}/v1/statistieken",
                )
            if done is None:
                return n
            n += 1
            self.wake_relay()
            if done.state == "gepubliceerd":
                metrics.GEPUBLICEERD.inc()
                log.info(
                    "delivery %s published (period %s, version %s)",
                    done.levering_id,
                    "/".join(done.periode) if done.periode else "-",
                    done.versie,
                )
            else:
                metrics.VERVANGEN.inc()

    async def _publisher(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                await self.publish_due()
                failures = 0
                wait = self.settings.publish_poll_s
            except Exception as exc:  # a database error, or a report it cannot read
                failures += 1
                wait = min(30.0, 0.5 * 2**failures)
                log.warning("publish: publishing failed (%r), again in %.1fs", exc, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wait_wake(), wait)

    async def _wait_wake(self) -> None:
        stop = asyncio.ensure_future(self.stopping.wait())
        wake = asyncio.ensure_future(self._wake_publisher.wait())
        try:
            await asyncio.wait({stop, wake}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
            wake.cancel()
        self._wake_publisher.clear()


def create_app(settings: PublishSettings | None = None, **overrides: Any) -> PublishService:
    """The service, configured but not started. `overrides` replace settings fields."""
    settings = settings or PublishSettings()
    if overrides:
        settings = settings.model_copy(update=overrides)
    return PublishService(settings)


async def serve(settings: PublishSettings | None = None) -> int:
    """Run until SIGTERM/SIGINT (exit 0); exit 1 when it cannot start or a dependency stays
    away too long."""
    return await serve_service(create_app(settings))


def main() -> int:
    return run(PublishSettings(), create_app)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["PublishService", "create_app", "main", "serve"]
