"""The validate service: consumes chunks (`ddas.trajecten.v1`), checks and stores them, and
completes each delivery once all its chunks are stored and ingest has recorded it (see store.py
for the transactions).

    python -m services.validate          # KAFKA_*, DATABASE_*, DDAS_VALIDATE_* from the environment

`create_app(settings)` builds the service without starting it (tests configure the broker
first); `await app.start()` migrates the database, opens the pool and the dead-letter producer,
starts consuming, runs an outbox relay (ddas.outbox: it publishes the `LeveringEvent`s that the
completions write, woken right after each) and serves /healthz, /readyz and /metrics; `await app.stop()` stops in the
reverse order, letting the chunk in hand finish (graceful_timeout_s). `serve()` does both around
SIGTERM/SIGINT.

Chunks may come before ingest has recorded their delivery (ingest publishes them while it is
still making them, docs/pipeline.md): they are stored, staged, and the delivery is completed by
the last chunk's transaction if it is recorded by then, else on ingest's `ontvangen` event
(`levering_topic`, group `<consumer_group>-ontvangen`). A sweep every `sweep_interval_s`
completes what an event may have missed and deletes what submissions that were never recorded
left staged (after `staging_ttl_s`).

The guarantees:
- the offset of a chunk is committed only after its transaction committed (NACK_ON_ERROR; the
  handler returns only when the chunk is durable or dead-lettered);
- a chunk delivered again is a no-op (processed_events, validatie_chunks);
- a chunk that keeps failing goes to `<topic>.dlq` after `retry_attempts` tries with backoff
  (ddas.deadletter); a value that is not even JSON reaches the handler as bytes, so it cannot
  stall the consumer: the subscriber's decoder hands the raw value on, untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
import uuid
from typing import Any, ClassVar

import asyncpg
import msgspec
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage

from ddas import observability
from ddas.db.migrate import migrate_database
from ddas.deadletter import DependencyLost, Retrier
from ddas.messaging import build_broker, check_ack_policies, relay_producer_params
from ddas.outbox import run_relay
from ddas.pipeline.events import decode_levering_event
from ddas.service import ServiceBasics, raw_body, run
from ddas.service import serve as serve_service

from . import metrics
from .chunks import check_chunk
from .completion import Uitkomst
from .http import HealthServer
from .settings import ValidateSettings
from .store import (
    ChunkOutcome,
    Stored,
    complete_ready,
    drop_stale,
    open_deliveries,
    store_chunk,
)

log = logging.getLogger("services.validate")


async def _tolerant_parser(record: ConsumerRecord, original: Any) -> StreamMessage[Any]:
    """FastStream's parser decodes every header as UTF-8; a header that is not would stop the
    message before the handler. Such header values are replaced in FastStream's view only
    (`headers`); `raw_message` stays the record itself, and the dead-letter topic gets its own
    headers."""
    try:
        return await original(record)  # type: ignore[no-any-return]
    except UnicodeDecodeError:
        clean = [(k, v.decode("utf-8", "replace").encode()) for k, v in record.headers]
        message: StreamMessage[Any] = await original(dataclasses.replace(record, headers=clean))
        message.raw_message = record  # the record itself (for the dead-letter topic)
        return message


class ValidateService(ServiceBasics):
    name: ClassVar[str] = "validate"

    def __init__(self, settings: ValidateSettings, broker: KafkaBroker | None = None) -> None:
        self.settings = settings
        # The relay in this process publishes any service's outbox rows: the same producer
        # settings as every relay.
        self.broker = broker or build_broker(
            settings.kafka,
            graceful_timeout=settings.graceful_timeout_s,
            **relay_producer_params(settings.max_message_bytes),
        )
        self.pool: asyncpg.Pool | None = None
        self.producer: AIOKafkaProducer | None = None
        self.retrier = Retrier(self._dead_letter, settings.retry_policy(), on_outage=self._give_up)
        self.http = HealthServer(
            settings.http_host,
            settings.http_port,
            {"kafka": self._kafka_ready, "database": self._database_ready},
        )
        self.fatal: BaseException | None = None
        self.stopped = asyncio.Event()
        self._relay: asyncio.Task[None] | None = None
        self._relay_stop = asyncio.Event()
        self._relay_wake = asyncio.Event()
        self._sweep: asyncio.Task[None] | None = None

        consumer: dict[str, Any] = {  # both subscribers
            "auto_offset_reset": "earliest",
            "session_timeout_ms": settings.session_timeout_ms,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms,
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            "decoder": raw_body,
            "parser": _tolerant_parser,
        }
        subscriber = self.broker.subscriber(
            settings.topic, group_id=settings.consumer_group, **consumer
        )

        @subscriber
        async def on_chunk(body: bytes, msg: KafkaMessage) -> None:
            record = msg.raw_message
            assert isinstance(record, ConsumerRecord)
            started = time.perf_counter()
            outcome = await self.retrier.run(record, lambda: self.handle(body))
            metrics.SECONDS.observe(time.perf_counter() - started)
            if outcome.dead_lettered:
                metrics.DEAD_LETTERED.labels(outcome.error_class or "").inc()

        self.subscriber = subscriber

        @self.broker.subscriber(
            settings.levering_topic, group_id=f"{settings.consumer_group}-ontvangen", **consumer
        )
        async def on_levering_event(body: bytes) -> None:
            await self.on_recorded(body)

        check_ack_policies(self.broker)

    async def handle(self, data: bytes) -> ChunkOutcome:
        """Check and store one chunk (raises on any failure; the retrier decides what next)."""
        checked = check_chunk(data)
        assert self.pool is not None, "start() the service first"
        async with self.pool.acquire() as conn:
            outcome = await store_chunk(conn, checked)
        metrics.CHUNKS.labels(outcome.stored.value).inc()
        if outcome.stored is Stored.STORED or outcome.stored is Stored.COMPLETED:
            metrics.TRAJECTEN.inc(checked.trajecten)
        if outcome.uitkomst is not None:
            self._completed(checked.levering_id, outcome.uitkomst, outcome.transitioned)
        return outcome

    async def on_recorded(self, body: bytes) -> None:
        """A lifecycle event: on `ontvangen` (ingest recorded the delivery), complete the
        delivery if all its chunks are stored already. Never raises: what fails here the sweep
        does a moment later."""
        try:
            event = decode_levering_event(body)
            if event.state != "ontvangen":
                return
            levering_id = uuid.UUID(event.levering_id)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
            return  # not ours to judge: other consumers of the topic dead-letter it
        try:
            await self._complete_ready(levering_id)
        except Exception as exc:  # the database away: the sweep completes it later
            log.warning("delivery %s: completion on its event failed (%s)", levering_id,
                        type(exc).__name__)  # fmt: skip

    async def _complete_ready(self, levering_id: uuid.UUID) -> Uitkomst | None:
        assert self.pool is not None, "start() the service first"
        async with self.pool.acquire() as conn:
            done = await complete_ready(conn, levering_id)
        if done is None:
            return None
        uitkomst, transitioned = done
        self._completed(levering_id, uitkomst, transitioned)
        return uitkomst

    def _completed(self, levering_id: uuid.UUID, uitkomst: Uitkomst, transitioned: bool) -> None:
        self._relay_wake.set()  # its LeveringEvent is in the outbox: publish it now
        metrics.LEVERINGEN.labels(uitkomst.state).inc()
        log.info(
            "delivery %s %s (%d trajectories)%s",
            levering_id,
            uitkomst.state,
            uitkomst.trajecten,
            "" if transitioned else "; its state had moved on, left as it is",
        )

    async def sweep(self) -> None:
        """Once: complete the recorded deliveries that are ready, and delete stale staging."""
        assert self.pool is not None, "start() the service first"
        async with self.pool.acquire() as conn:
            ready, stale = await open_deliveries(conn, self.settings.staging_ttl_s)
            for levering_id in stale:
                if await drop_stale(conn, levering_id, self.settings.staging_ttl_s):
                    log.info("staged chunks of %s deleted: never recorded by ingest", levering_id)
        for levering_id in ready:
            await self._complete_ready(levering_id)

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.sweep()
            except Exception as exc:  # the database away: next time
                log.warning("validate: sweep failed (%s)", type(exc).__name__)

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        db = self.settings.database
        await migrate_database(db)
        self.pool = await asyncpg.create_pool(
            **db.to_asyncpg_params(), min_size=db.pool_min_size, max_size=db.pool_max_size
        )
        observability.install(self.pool, self.settings, service="validate")
        self.producer = AIOKafkaProducer(
            **self.settings.kafka.to_aiokafka_params(), acks="all", enable_idempotence=True
        )
        await self.producer.start()
        await self.http.start()
        await self.broker.start()
        if self.settings.relay:
            self._relay = asyncio.create_task(
                run_relay(self.pool, self.broker, stop=self._relay_stop, wake=self._relay_wake),
                name="outbox-relay",
            )
        self._sweep = asyncio.create_task(self._sweep_forever(), name="validate-sweep")
        log.info(
            "validate: consuming %s as %s; health on http://%s:%d",
            self.settings.topic,
            self.settings.consumer_group,
            self.settings.http_host,
            self.http.port,
        )

    async def stop(self) -> None:
        # Consuming first (the chunk in hand may finish), then the relay (its batch in flight
        # is published), then the producer.
        for subscriber in self.broker.subscribers:
            with contextlib.suppress(Exception):
                await subscriber.stop()
        if self._sweep is not None:
            self._sweep.cancel()
            with contextlib.suppress(BaseException):
                await self._sweep
            self._sweep = None
        if self._relay is not None:
            self._relay_stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._relay, 10)
            self._relay = None
        with contextlib.suppress(Exception):
            await self.broker.stop()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
            self.producer = None
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 10)
            self.pool = None
        await self.http.stop()
        self.stopped.set()

    @property
    def url(self) -> str:
        """Where /healthz, /readyz and /metrics answer."""
        return f"http://{self.settings.http_host}:{self.http.port}"


def create_app(settings: ValidateSettings | None = None, **overrides: Any) -> ValidateService:
    """The service, configured but not started. `overrides` replace settings fields."""
    settings = settings or ValidateSettings()
    if overrides:
        settings = settings.model_copy(update=overrides)
    return ValidateService(settings)


async def serve(settings: ValidateSettings | None = None) -> int:
    """Run until SIGTERM/SIGINT (exit 0) or until a dependency stays away too long (exit 1)."""
    return await serve_service(create_app(settings))


def main() -> int:
    return run(ValidateSettings(), create_app)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["DependencyLost", "ValidateService", "create_app", "main", "serve"]
