"""The ingest service: the upload API, the Kafka way in, the producer that publishes each
delivery's chunks as they are made (services/ingest/intake.py), and the outbox relay that
publishes its lifecycle events.

    python -m services.ingest          # or: ddas serve ingest
    # KAFKA_*, DATABASE_*, DDAS_INGEST_*, DDAS_PSEUDONYM_KEY[_FILE] from the environment

`create_app(settings)` builds the service without starting it; `await service.start()` refuses
to start without a pseudonym key (outside test mode), migrates the database, opens the pool,
loads the supplier registry, starts the broker (the inbound subscriber and the status
subscriber, both committing after processing), the outbox relay and the HTTP server (FastAPI on
uvicorn); `await service.stop()` stops in the reverse order: no new requests, the requests and
the event in hand finish (graceful_timeout_s), the relay finishes its batch, then the broker and
the pool close. `serve()` runs it until SIGTERM/SIGINT.

Consumers:
- `inbound_topic` (group `consumer_group`): supplier delivery events (services/ingest/inbound.py);
  an event whose handling keeps failing goes to `<inbound_topic>.dlq` after bounded retries, and
  a database that stays away longer than `outage_s` stops the service (ddas.deadletter);
- `status_topic` (group `<consumer_group>-status`): the lifecycle events of ddas.leveringen.v1,
  the validation's outcome and findings summary projected into `levering_status` for
  GET /v1/leveringen/{id}.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import uuid
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from typing import Any, ClassVar, Final

import asyncpg
import msgspec
import uvicorn
from aiokafka import AIOKafkaProducer, ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from ddas import observability
from ddas.db.migrate import migrate_database
from ddas.deadletter import Retrier, RetryPolicy
from ddas.domain.pseudonym import MissingPseudonymKey, Pseudonymiser
from ddas.messaging import build_broker, check_ack_policies, relay_producer_params
from ddas.outbox import RelayStats, run_relay
from ddas.pipeline.events import decode_levering_event
from ddas.registry import Registry
from ddas.service import ServiceBasics, UvicornServer, raw_body, refresh_registry
from ddas.service import serve as serve_service

from . import metrics
from .http import create_app as create_http_app
from .inbound import Inbound
from .intake import Intake, Limits, spreading, start_workers
from .settings import IngestSettings

log = logging.getLogger("services.ingest")
_VALIDATED: Final = frozenset(("gevalideerd", "afgekeurd"))


class IngestService(ServiceBasics):
    name: ClassVar[str] = "ingest"

    def __init__(self, settings: IngestSettings, broker: KafkaBroker | None = None) -> None:
        self.settings = settings
        self.key = settings.key()  # raises MissingPseudonymKey: no default key
        self.broker = broker or build_broker(
            settings.kafka,
            graceful_timeout=settings.graceful_timeout_s,
            **relay_producer_params(settings.max_message_bytes),
        )
        self.pool: asyncpg.Pool | None = None
        self.workers: ProcessPoolExecutor | None = None
        self.registry: Registry | None = None
        self.intake: Intake | None = None
        self.inbound: Inbound | None = None
        self.server: UvicornServer | None = None
        self.port: int | None = None
        self.relay_stats = RelayStats()
        self._stop_relay = asyncio.Event()
        self._wake_relay = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.stopped = asyncio.Event()
        self.fatal: BaseException | None = None
        self.producer: AIOKafkaProducer | None = None
        self.retrier = Retrier(
            self._dead_letter,
            RetryPolicy(outage=settings.outage_s),
            on_outage=self._give_up,
        )

        subscriber_args: dict[str, Any] = {
            "auto_offset_reset": "earliest",
            "decoder": raw_body,
            "session_timeout_ms": 10_000,
            "heartbeat_interval_ms": 3_000,
        }
        if settings.kafka_inbound:

            @self.broker.subscriber(
                settings.inbound_topic,
                group_id=settings.consumer_group,
                max_poll_interval_ms=600_000,  # a large delivery takes a while
                **subscriber_args,
            )
            async def on_aanbieding(body: bytes, msg: KafkaMessage) -> None:
                inbound = self.inbound
                assert inbound is not None
                record = msg.raw_message
                assert isinstance(record, ConsumerRecord)
                outcome = await self.retrier.run(record, lambda: inbound.handle(body))
                if outcome.dead_lettered:
                    metrics.DEAD_LETTERED.labels(outcome.error_class or "").inc()

        @self.broker.subscriber(
            settings.status_topic, group_id=f"{settings.consumer_group}-status", **subscriber_args
        )
        async def on_status(body: bytes, msg: KafkaMessage) -> None:
            await self._project_status(body)

        check_ack_policies(self.broker)

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        db = s.database
        pseudonymiser = Pseudonymiser(self.key)
        if s.workers:  # forked first, before the service has connections and threads
            self.workers = start_workers(pseudonymiser, s.workers)
        await migrate_database(db)
        self.pool = await asyncpg.create_pool(
            **db.to_asyncpg_params(), min_size=db.pool_min_size, max_size=db.pool_max_size
        )
        self.registry = Registry(self.pool)
        await self.registry.load()
        observability.install(self.pool, s, service="ingest")
        self.intake = Intake(
            self.pool,
            pseudonymiser,
            Limits(s.max_bytes, s.max_depth, s.max_trajecten, s.chunk_size),
            chunk_topic=s.chunk_topic,
            publish=self._publish_chunk,
            on_enqueued=self._wake_relay.set,
            workers=self.workers,
            workers_min_trajecten=s.workers_min_trajecten,
        )
        self.inbound = Inbound(
            self.intake,
            self.registry,
            token_max_age=s.token_max_age_s,
            download_timeout=s.download_timeout_s,
            download_hosts=s.download_hosts,
        )
        app = create_http_app(
            self.intake,
            self.registry,
            self.pool,
            ready={"kafka": self._kafka_ready, "database": self._database_ready},
            base_url=s.base_url,
        )
        self.producer = AIOKafkaProducer(
            **s.kafka.to_aiokafka_params(),
            acks="all",
            enable_idempotence=True,
            max_request_size=2 * s.max_bytes + 1024 * 1024,
            # The chunks (and dead letters) go out compressed with snappy: 2.3 ms per 2 MB
            # chunk in this event loop against zstd's 5.5 (to 520 KB instead of 260 KB), and
            # as quick to decompress (docs/benchmarks.md).
            compression_type="snappy",
        )
        await self.producer.start()
        await self.broker.start()
        self._tasks.append(
            asyncio.create_task(
                run_relay(
                    self.pool,
                    self.broker,
                    stop=self._stop_relay,
                    wake=self._wake_relay,
                    batch_size=s.relay_batch_size,
                    lease=s.relay_lease_s,
                    poll_interval=s.relay_poll_s,
                    max_backoff=s.relay_max_backoff_s,
                    stats=self.relay_stats,
                ),
                name="ddas-ingest-relay",
            )
        )
        self._tasks.append(
            asyncio.create_task(refresh_registry(self.registry), name="ddas-registry")
        )
        if s.collector_config:  # periodic collection over the suppliers' pull API (collect/)
            from .collect import Collector, load_config

            self.collector = Collector(self.pool, self.intake, load_config(s.collector_config),
                                       self.key)  # fmt: skip
            self._tasks.append(asyncio.create_task(
                self.collector.run_forever(self._stop_relay), name="ddas-collector"))  # fmt: skip
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.http_host, s.http_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            http="httptools",  # C parser: half h11's CPU on a large body (docs/benchmarks.md)
            log_level=s.log_level.lower(),
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(s.graceful_timeout_s),
            limit_concurrency=256,
        )
        self.server = UvicornServer(config)
        self._tasks.append(
            asyncio.create_task(self.server.serve(sockets=[sock]), name="ddas-ingest-http")
        )
        while not self.server.started:
            if self._tasks[-1].done():
                self._tasks[-1].result()  # raises the server's start-up error
            await asyncio.sleep(0.01)
        log.info(
            "ingest: API on http://%s:%d, consuming %s, chunks to %s",
            s.http_host,
            self.port,
            s.inbound_topic if s.kafka_inbound else "(nothing)",
            s.chunk_topic,
        )

    async def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        with contextlib.suppress(Exception):
            await self.broker.stop()  # the event in hand finishes (graceful_timeout)
        self._stop_relay.set()
        for task in self._tasks:
            if task.get_name() == "ddas-registry":
                task.cancel()
        if self._tasks:
            done, pending = await asyncio.wait(
                self._tasks, timeout=self.settings.graceful_timeout_s
            )
            for task in pending:
                task.cancel()
            for task in (*done, *pending):
                with contextlib.suppress(BaseException):
                    await task
        self._tasks = []
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await self.producer.stop()
            self.producer = None
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.pool.close(), 10)
            self.pool = None
        if self.workers is not None:
            await asyncio.to_thread(self.workers.shutdown, True, cancel_futures=True)
            self.workers = None
        self.stopped.set()

    @property
    def url(self) -> str:
        return f"http://{self.settings.http_host}:{self.port}"

    # -- collaborators ----------------------------------------------------------------------

    async def _publish_chunk(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        """A chunk to the producer (idempotent, acks=all; `intake.spreading` over the
        partitions): the future of its acknowledgement (Intake waits for all of a delivery's
        before recording it)."""
        if self.producer is None:
            raise RuntimeError("ingest is not started")
        return await spreading(self.producer)(topic, key, value, headers)

    async def _project_status(self, body: bytes) -> None:
        """The validation's outcome and findings summary into levering_status (the state
        itself is read from leveringen)."""
        try:
            event = decode_levering_event(body)
            levering_id = uuid.UUID(event.levering_id)
            occurred = datetime.fromisoformat(event.occurred_at)
            event_id = uuid.UUID(event.event_id)
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            log.warning("status: an unreadable lifecycle event skipped (%s)", type(exc).__name__)
            return
        if event.state not in _VALIDATED:  # ontvangen: no findings yet, and later events
            return  # (rapport_gereed, goedgekeurd, ...) carry none: the validation's stay
        assert self.pool is not None
        await self.pool.execute(
            """
            INSERT INTO levering_status (levering_id, state, bevindingen, occurred_at, event_id)
            SELECT $1, $2, $3::jsonb, $4, $5 WHERE EXISTS (SELECT 1 FROM leveringen WHERE id = $1)
            ON CONFLICT (levering_id) DO UPDATE
               SET state = EXCLUDED.state, bevindingen = EXCLUDED.bevindingen,
                   occurred_at = EXCLUDED.occurred_at, event_id = EXCLUDED.event_id
             WHERE levering_status.occurred_at <= EXCLUDED.occurred_at
            """,
            levering_id,
            event.state,
            msgspec.json.encode(event.bevindingen).decode(),
            occurred,
            event_id,
        )


def create_app(settings: IngestSettings | None = None, **overrides: Any) -> IngestService:
    """The service, configured but not started. `overrides` replace settings fields."""
    settings = settings or IngestSettings()
    if overrides:
        settings = settings.model_copy(update=overrides)
    return IngestService(settings)


async def serve(settings: IngestSettings | None = None) -> int:
    """Run until SIGTERM/SIGINT (exit 0); exit 1 when it cannot start."""
    try:
        service = create_app(settings)
    except MissingPseudonymKey as exc:
        log.error("ingest: %s", exc)
        print(f"ingest: {exc}", file=sys.stderr)
        return 1
    return await serve_service(service)


def main() -> int:
    settings = IngestSettings()
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return asyncio.run(serve(settings))


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["IngestService", "create_app", "main", "serve"]
