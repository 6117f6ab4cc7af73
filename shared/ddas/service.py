"""How a pipeline service runs: what report and publish (and any consumer with an HTTP API)
share besides their own handlers.

`PipelineService` owns, in this order on `start()`:

1. the database: migrations applied (`ddas.db.migrate`), a pool;
2. the registry of tokens (`ddas.registry`), loaded, refreshed every `REGISTRY_REFRESH_S`;
3. the dead-letter producer (idempotent, `acks=all`) that `self.retrier` (`ddas.deadletter`)
   sends to, and that gives up the service (`fatal`, exit 1) when a dependency stays away;
4. the FastStream broker with the subclass's subscribers (declared in its `__init__`, commit
   after the work: `ddas.messaging`);
5. the outbox relay (`settings.relay`), woken by `wake_relay()` right after a transaction that
   wrote events; the notification sender (`settings.notifications`, `ddas.notify`);
6. the subclass's own tasks (`on_start`, `spawn`);
7. the HTTP API (`http_app()`, FastAPI on uvicorn; `settings.http_port` 0 lets the system choose).

`stop()` goes the other way round: consuming stops first (the message in hand finishes), then
the HTTP server, the tasks (the relay publishes its batch in flight, the sender marks its batch;
each gets `graceful_timeout_s`), the broker, the producer, the pool.

`run(factory)` runs one around SIGTERM/SIGINT: exit 0 when stopped by a signal, 1 when it cannot
start (the reason on stderr, no traceback) or a dependency stayed away too long.

The settings are an `ApiServiceSettings` (below), with the service's own env prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Annotated, Any, ClassVar, Final, Protocol, TypeVar

import asyncpg
import uvicorn
from aiokafka import AIOKafkaProducer, ConsumerRecord
from fastapi import FastAPI
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from pydantic import Field

from ddas import observability
from ddas.db import database_ready
from ddas.db.migrate import migrate_database
from ddas.deadletter import Outcome as RetryOutcome
from ddas.deadletter import Retrier, RetryPolicy
from ddas.messaging import (
    RELAY_MAX_MESSAGE_BYTES,
    build_broker,
    check_ack_policies,
    relay_producer_params,
)
from ddas.notify import NotifySettings, Sender
from ddas.outbox import run_relay
from ddas.registry import Registry
from ddas.settings import ServiceSettings

__all__ = [
    "ApiServiceSettings",
    "ConsumerSettings",
    "PipelineService",
    "Runnable",
    "ServiceBasics",
    "UvicornServer",
    "raw_body",
    "refresh_registry",
    "run",
    "serve",
]

log = logging.getLogger(__name__)

REGISTRY_REFRESH_S: Final = 30.0


class ConsumerSettings(ServiceSettings):
    """The settings every consuming service has (each under its own prefix, e.g.
    DDAS_VALIDATE_RETRY_ATTEMPTS): its HTTP port, the retries before a dead letter, the relay,
    the graceful stop."""

    http_host: str = "127.0.0.1"
    http_port: int = 0
    """Port of the API (and /healthz, /readyz, /metrics); 0 lets the system choose."""
    retry_attempts: Annotated[int, Field(ge=1)] = 4
    """Tries of a failing message before it goes to the dead-letter topic."""
    retry_backoff_s: Annotated[float, Field(ge=0)] = 0.5
    retry_max_backoff_s: Annotated[float, Field(ge=0)] = 30.0
    outage_s: Annotated[float, Field(ge=0)] = 120.0
    """How long the database or broker may be away before the service gives up and exits."""
    relay: bool = True
    """Run an outbox relay in this process (any service's relay publishes any outbox row)."""
    max_message_bytes: Annotated[int, Field(ge=1024)] = RELAY_MAX_MESSAGE_BYTES
    """The relay's largest (uncompressed) message: as ingest's, since any relay publishes any
    outbox row, chunks included."""
    graceful_timeout_s: float = 30.0
    """On SIGTERM: how long the message and the requests in hand may take to finish."""

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            attempts=self.retry_attempts,
            backoff=self.retry_backoff_s,
            max_backoff=self.retry_max_backoff_s,
            outage=self.outage_s,
        )


class ApiServiceSettings(ConsumerSettings):
    """A `PipelineService`'s settings: a consumer with an API whose links go into
    notifications, and which sends them."""

    base_url: str = ""
    """The API's public URL, for links in notifications (empty: http://host:port)."""
    notifications: bool = True
    """Send the notifications from this process (ddas.notify.Sender; rows are claimed with
    SKIP LOCKED, so any number of processes may)."""
    notify: NotifySettings = Field(default_factory=NotifySettings)


async def raw_body(msg: StreamMessage[Any]) -> bytes:
    """A subscriber's decoder: the value as it came, whatever its content type says."""
    return bytes(msg.body)


class UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handlers: the service owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ServiceBasics:
    """What every service's life cycle needs of its broker, producer and pool, written once:
    the dead-letter send of its retrier, giving up (exit 1) when a dependency stays away, and
    its readiness checks. The class that mixes it in sets these attributes."""

    broker: KafkaBroker
    pool: asyncpg.Pool | None
    producer: AIOKafkaProducer | None
    fatal: BaseException | None
    stopped: asyncio.Event

    async def _dead_letter(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        assert self.producer is not None
        await self.producer.send_and_wait(topic, value=value, key=key, headers=headers)

    def _give_up(self, exc: BaseException) -> None:
        self.fatal = exc
        self.stopped.set()

    async def _kafka_ready(self) -> bool:
        return bool(await self.broker.ping(timeout=2.0))

    async def _database_ready(self) -> bool:
        return await database_ready(self.pool)


async def refresh_registry(registry: Registry) -> None:
    """Every `REGISTRY_REFRESH_S`, the registry's revoked tokens and changed rights (forever:
    cancel the task to stop it)."""
    while True:
        await asyncio.sleep(REGISTRY_REFRESH_S)
        with contextlib.suppress(Exception):
            await registry.refresh()


class PipelineService(ServiceBasics):
    """Base of a service; a subclass sets `name`, declares its subscribers in `__init__` (after
    `super().__init__`), and gives its API in `http_app()`."""

    name: ClassVar[str] = "service"

    def __init__(self, settings: ApiServiceSettings, broker: KafkaBroker | None = None) -> None:
        self.settings = settings
        self.broker = broker or build_broker(
            settings.kafka,
            graceful_timeout=settings.graceful_timeout_s,
            **relay_producer_params(settings.max_message_bytes),
        )
        self.pool: asyncpg.Pool | None = None
        self.registry: Registry | None = None
        self.producer: AIOKafkaProducer | None = None
        self.sender: Sender | None = None
        self.server: UvicornServer | None = None
        self.port: int | None = None
        self.retrier = Retrier(self._dead_letter, settings.retry_policy(), on_outage=self._give_up)
        self.fatal: BaseException | None = None
        self.stopped = asyncio.Event()
        self.stopping = asyncio.Event()
        """Set by `stop()`: long-running tasks end their loop."""
        self._wake_relay = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []

    # -- for subclasses -----------------------------------------------------------------------

    def http_app(self) -> FastAPI:
        """The service's API (with `ddas.api.install` for health, readiness and metrics)."""
        raise NotImplementedError

    async def on_start(self) -> None:
        """Start the service's own tasks (`spawn`), after the relay and before the API."""

    def on_dead_letter(self, outcome: RetryOutcome) -> None:
        """Count a message that went to the dead-letter topic."""

    def describe(self) -> str:
        """What it consumes, for the start-up log line."""
        return "its topics"

    async def consume(self, msg: KafkaMessage, work: Callable[[], Awaitable[Any]]) -> None:
        """Run a subscriber's work under the retrier: retried with backoff, then dead-lettered
        (the handler returns, so that its offset is committed and the partition flows on)."""
        record = msg.raw_message
        assert isinstance(record, ConsumerRecord)
        outcome = await self.retrier.run(record, work)
        if outcome.dead_lettered:
            self.on_dead_letter(outcome)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        self._tasks.append(asyncio.create_task(coro, name=f"ddas-{self.name}-{name}"))

    def wake_relay(self) -> None:
        """Publish the outbox rows just committed now rather than at the relay's next poll."""
        self._wake_relay.set()

    @property
    def url(self) -> str:
        """Where the API listens."""
        return f"http://{self.settings.http_host}:{self.port}"

    @property
    def public_url(self) -> str:
        """The API's URL for links in notifications: `base_url` when set."""
        return (self.settings.base_url or self.url).rstrip("/")

    def ready_checks(self) -> dict[str, Callable[[], Awaitable[bool]]]:
        return {"kafka": self._kafka_ready, "database": self._database_ready}

    # -- start and stop -----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        db = s.database
        check_ack_policies(self.broker)
        await migrate_database(db)
        self.pool = await asyncpg.create_pool(
            **db.to_asyncpg_params(), min_size=db.pool_min_size, max_size=db.pool_max_size
        )
        self.registry = Registry(self.pool)
        observability.install(self.pool, s, service=self.name)  # /metrics: the platform's gauges
        await self.registry.load()
        self.producer = AIOKafkaProducer(
            **s.kafka.to_aiokafka_params(), acks="all", enable_idempotence=True
        )
        await self.producer.start()
        await self.broker.start()
        if s.relay:
            self.spawn(
                run_relay(self.pool, self.broker, stop=self.stopping, wake=self._wake_relay),
                "relay",
            )
        if s.notifications:
            self.sender = Sender(self.pool, s.notify)
            self.spawn(self.sender.run(self.stopping), "notify")
        self.spawn(refresh_registry(self.registry), "registry")
        await self.on_start()
        await self._serve_http()
        log.info("%s: API on %s; consuming %s", self.name, self.url, self.describe())

    async def _serve_http(self) -> None:
        s = self.settings
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((s.http_host, s.http_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.http_app(),
            log_level=s.log_level.lower(),
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=int(s.graceful_timeout_s),
            limit_concurrency=256,
        )
        self.server = UvicornServer(config)
        http = asyncio.create_task(self.server.serve(sockets=[sock]), name=f"ddas-{self.name}-http")
        self._tasks.append(http)
        while not self.server.started:
            if http.done():
                http.result()  # raises the server's start-up error
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        for subscriber in self.broker.subscribers:
            with contextlib.suppress(Exception):
                await subscriber.stop()
        if self.server is not None:
            self.server.should_exit = True
        self.stopping.set()
        for task in self._tasks:
            if task.get_name().endswith("-registry"):
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
        self.stopped.set()


class Runnable(Protocol):
    """What `serve` runs: a `PipelineService`, or a service with the same life cycle."""

    name: ClassVar[str]
    stopped: asyncio.Event
    fatal: BaseException | None

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def serve(service: Runnable) -> int:
    """Run `service` until SIGTERM/SIGINT (0), or until it cannot start or a dependency stays
    away too long (1)."""
    name = service.name
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await service.start()
    except Exception as exc:  # a migration, the database, the broker: say which, exit 1
        log.error("%s: cannot start: %s", name, exc)
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        await service.stop()
        return 1
    print(f"{name}: ready on {service.url}", flush=True)
    waiter = asyncio.ensure_future(stop.wait())
    gave_up = asyncio.ensure_future(service.stopped.wait())
    await asyncio.wait({waiter, gave_up}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    gave_up.cancel()
    log.info("%s: stopping", name)
    fatal = service.fatal
    await service.stop()
    if fatal is not None:
        log.error("%s: a dependency stayed away (%s); exiting", name, type(fatal).__name__)
        return 1
    return 0


S = TypeVar("S", bound=ServiceSettings)


def run(settings: S, factory: Callable[[S], Runnable]) -> int:
    """A service's `main()`: logging from its settings, then `serve` in a new event loop."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def _main() -> int:
        return await serve(factory(settings))

    return asyncio.run(_main())
