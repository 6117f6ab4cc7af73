"""The transactional outbox: events written in the same transaction as the change that causes
them, and a relay that publishes them to Kafka.

Writing (in the caller's transaction, so that the event exists exactly when the change does)::

    async with conn.transaction():
        await conn.execute("UPDATE leveringen ...")
        await enqueue(conn, topics.LEVERINGEN, key, payload)          # one event
        await enqueue_many(conn, [OutboxMessage(...), ...])            # many, by COPY

`payload` is bytes (stored as `body` bytea: the chunks, megabytes of JSON that jsonb would parse
for nothing) or a JSON value (a str of JSON, a dict, or a msgspec Struct: stored as jsonb).

Relaying (`run_relay(pool, broker)`, a task per service; several may run, in several processes):

1. claim up to `batch_size` rows that are due (`available_at <= now()`) and not leased, with
   `FOR UPDATE SKIP LOCKED` (concurrent relays never claim the same row), under a lease
   (`lease_token`, `leased_until`): a relay that dies leaves its rows to be claimed again when
   the lease runs out;
2. publish them with the broker's idempotent producer (`acks=all`, see `ddas.messaging`), all of
   the batch in flight at once, then wait for every acknowledgement;
3. mark each acknowledged row published (only while this relay still holds its lease) and drop
   its `body` (the message is in Kafka now; the row stays as the record of it). A row whose
   publication failed gets `last_error` and becomes due again after a capped exponential backoff.

Delivery is at least once: a relay that dies between the acknowledgement and the mark publishes
the row again after the lease. Consumers are idempotent on `event_id` (the `ddas-event-id`
header, also in the payload) and so a duplicate is harmless. Rows are claimed in `id` order; with
one relay the messages of a key keep their order, with several (or after a retry) they may not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

import asyncpg
import msgspec

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

__all__ = [
    "EVENT_ID_HEADER",
    "OutboxMessage",
    "RelayStats",
    "enqueue",
    "enqueue_many",
    "relay_once",
    "run_relay",
]

log = logging.getLogger("ddas.outbox")

EVENT_ID_HEADER: Final = "ddas-event-id"
_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message to publish: `payload` bytes go as they are; anything else is JSON."""

    topic: str
    key: str | None
    payload: Any
    headers: Mapping[str, str] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


def _columns(payload: Any) -> tuple[str | None, bytes | None]:
    """(payload as JSON text for jsonb, body as bytes): exactly one is set."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return None, bytes(payload)
    if isinstance(payload, str):
        return payload, None
    return _encoder.encode(payload).decode(), None


async def enqueue(
    conn: asyncpg.Connection,
    topic: str,
    key: str | None,
    payload: Any,
    headers: Mapping[str, str] | None = None,
    *,
    event_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write one message into the outbox on `conn` (in the caller's transaction). Returns its
    event id (a new UUID unless given)."""
    event_id = event_id or uuid.uuid4()
    text, body = _columns(payload)
    await conn.execute(
        "INSERT INTO outbox (event_id, topic, message_key, payload, body, headers) "
        "VALUES ($1, $2, $3, $4::jsonb, $5, $6::jsonb)",
        event_id,
        topic,
        key,
        text,
        body,
        _encoder.encode(dict(headers or {})).decode(),
    )
    return event_id


async def enqueue_many(conn: asyncpg.Connection, messages: Iterable[OutboxMessage]) -> int:
    """Write many messages with one COPY (in the caller's transaction). Returns how many.

    Messages with bytes payloads go by COPY; JSON payloads (rare in bulk) one by one."""
    rows = []
    count = 0
    for m in messages:
        text, body = _columns(m.payload)
        if body is None:
            await enqueue(conn, m.topic, m.key, text, m.headers, event_id=m.event_id)
        else:
            rows.append(
                (m.event_id, m.topic, m.key, body, _encoder.encode(dict(m.headers)).decode())
            )
        count += 1
    if rows:
        await conn.copy_records_to_table(
            "outbox",
            records=rows,
            columns=("event_id", "topic", "message_key", "body", "headers"),
            schema_name=await _schema(conn),
        )
    return count


async def _schema(conn: asyncpg.Connection) -> str:
    # copy_records_to_table quotes the table name, so it needs the schema the search path
    # resolves `outbox` to (tests give each test a schema of its own).
    schema: str = await conn.fetchval("SELECT current_schema()")
    return schema


# -- the relay --------------------------------------------------------------------------------


@dataclass(slots=True)
class RelayStats:
    published: int = 0
    failed: int = 0
    batches: int = 0


_CLAIM: Final = """
UPDATE outbox o
   SET lease_token = $1, leased_until = now() + $2::interval, attempts = o.attempts + 1
  FROM (SELECT id FROM outbox
         WHERE published_at IS NULL AND available_at <= now()
           AND (leased_until IS NULL OR leased_until < now())
         ORDER BY available_at, id
         LIMIT $3
         FOR UPDATE SKIP LOCKED) due
 WHERE o.id = due.id
RETURNING o.id, o.event_id, o.topic, o.message_key, o.payload::text AS payload, o.body,
          o.headers::text AS headers, o.attempts
"""
_DONE: Final = """
UPDATE outbox SET published_at = now(), lease_token = NULL, leased_until = NULL,
                  last_error = NULL, body = NULL
 WHERE id = ANY($1::bigint[]) AND lease_token = $2
"""
_FAILED: Final = """
UPDATE outbox SET lease_token = NULL, leased_until = NULL, last_error = $3,
                  available_at = now() + $4::interval
 WHERE id = $1 AND lease_token = $2
"""


def backoff(attempts: int, base: float = 0.5, cap: float = 60.0) -> float:
    """Seconds before a row that failed `attempts` times is due again: doubling, capped."""
    return float(min(cap, base * 2 ** max(0, attempts - 1)))


async def relay_once(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    *,
    batch_size: int = 16,
    lease: float = 60.0,
    max_backoff: float = 60.0,
    stats: RelayStats | None = None,
) -> int:
    """Claim, publish and mark one batch. Returns how many rows were claimed (0: none due)."""
    token = uuid.uuid4()
    async with pool.acquire() as conn:
        rows = await conn.fetch(_CLAIM, token, timedelta(seconds=lease), batch_size)
    if not rows:
        return 0
    rows = sorted(rows, key=lambda r: r["id"])
    futures = []
    for row in rows:
        headers = msgspec.json.decode(row["headers"]) if row["headers"] else {}
        headers = {str(k): str(v) for k, v in headers.items()}
        headers.setdefault(EVENT_ID_HEADER, str(row["event_id"]))
        body = row["body"] if row["body"] is not None else row["payload"].encode()
        if row["body"] is None:
            headers.setdefault("content-type", "application/json")
        key = row["message_key"].encode() if row["message_key"] is not None else None
        try:
            futures.append(
                await broker.publish(
                    body, topic=row["topic"], key=key, headers=headers, no_confirm=True
                )
            )
        except Exception as exc:  # not even handed to the producer
            futures.append(_failed(exc))
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    done = [row["id"] for row, out in zip(rows, outcomes, strict=True) if not _is_error(out)]
    async with pool.acquire() as conn:
        if done:
            await conn.execute(_DONE, done, token)
        for row, out in zip(rows, outcomes, strict=True):
            if _is_error(out):
                wait = backoff(row["attempts"], cap=max_backoff)
                log.warning(
                    "outbox: publishing event %s to %s failed (attempt %d, again in %.1fs): %s",
                    row["event_id"],
                    row["topic"],
                    row["attempts"],
                    wait,
                    type(out).__name__,
                )
                await conn.execute(
                    _FAILED, row["id"], token, _error_text(out), timedelta(seconds=wait)
                )
    if stats is not None:
        stats.batches += 1
        stats.published += len(done)
        stats.failed += len(rows) - len(done)
    return len(rows)


def _is_error(outcome: object) -> bool:
    return isinstance(outcome, BaseException)


def _error_text(exc: object) -> str:
    # The class and the message: a producer's error never holds message contents.
    return f"{type(exc).__name__}: {exc}"[:500]


def _failed(exc: BaseException) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


async def run_relay(
    pool: asyncpg.Pool,
    broker: KafkaBroker,
    *,
    stop: asyncio.Event | None = None,
    wake: asyncio.Event | None = None,
    batch_size: int = 16,
    lease: float = 60.0,
    poll_interval: float = 0.2,
    max_backoff: float = 60.0,
    error_backoff: float = 1.0,
    stats: RelayStats | None = None,
) -> None:
    """Relay due outbox rows until `stop` is set (or the task is cancelled).

    Between empty polls it sleeps `poll_interval`, or less when `wake` is set (an in-process
    writer sets it after its commit). A database error is logged and retried after a capped
    backoff: the relay survives a database restart.
    """
    stop = stop or asyncio.Event()
    failures = 0
    while not stop.is_set():
        try:
            claimed = await relay_once(
                pool,
                broker,
                batch_size=batch_size,
                lease=lease,
                max_backoff=max_backoff,
                stats=stats,
            )
            failures = 0
        except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
            failures += 1
            wait = backoff(failures, base=error_backoff, cap=max_backoff)
            log.warning("outbox relay: database error (%s), retrying in %.1fs", exc, wait)
            await pause(stop, None, wait)
            continue
        if claimed < batch_size:
            await pause(stop, wake, poll_interval)


async def pause(stop: asyncio.Event, wake: asyncio.Event | None, seconds: float) -> None:
    """Sleep up to `seconds`, less once `stop` or `wake` is set; `wake` is cleared after (the
    relay's and the notification sender's wait between rounds)."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await w
    if wake is not None:
        wake.clear()
