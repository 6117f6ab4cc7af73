"""The outbox (ddas.outbox) on the real database and broker: written in the caller's transaction,
relayed once per row by concurrent relays (SKIP LOCKED), retried with a capped backoff, and
re-claimed after a dead relay's lease."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from ddas.messaging import build_broker
from ddas.outbox import OutboxMessage, backoff, enqueue, enqueue_many, relay_once, run_relay
from ddas.settings import DatabaseSettings, KafkaSettings
from tests.ingest.helpers import read_topic

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(db_settings: DatabaseSettings) -> Any:
    pool = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=1, max_size=6)
    yield pool
    await pool.close()


async def test_rows_exist_exactly_when_the_transaction_commits(
    db: asyncpg.Connection, pool: asyncpg.Pool, kafka_settings: KafkaSettings,
    new_topic: Callable[..., Awaitable[str]],
) -> None:  # fmt: skip
    topic = await new_topic()
    with pytest.raises(RuntimeError):
        async with db.transaction():
            await enqueue(db, topic, "k", b"lost")
            raise RuntimeError("the change fails")
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0
    async with db.transaction():
        json_id = await enqueue(db, topic, "k1", {"a": 1}, {"x-test": "1"})
        await enqueue_many(
            db, [OutboxMessage(topic, f"k{i}", f"body {i}".encode()) for i in (2, 3)]
        )
    broker = build_broker(kafka_settings)
    await broker.start()
    try:
        assert await relay_once(pool, broker) == 3
        assert await relay_once(pool, broker) == 0
    finally:
        await broker.stop()
    rows = await db.fetch("SELECT * FROM outbox ORDER BY id")
    assert all(r["published_at"] is not None and r["body"] is None for r in rows)
    records = await read_topic(kafka_settings, topic, 3)
    by_key = {r.key: r for r in records}
    assert by_key[b"k1"].value == b'{"a": 1}' or by_key[b"k1"].value == b'{"a":1}'
    assert by_key[b"k2"].value == b"body 2"
    headers = dict(by_key[b"k1"].headers)
    assert headers["ddas-event-id"] == str(json_id).encode() and headers["x-test"] == b"1"


async def test_concurrent_relays_publish_each_row_once(
    db: asyncpg.Connection, pool: asyncpg.Pool, kafka_settings: KafkaSettings,
    new_topic: Callable[..., Awaitable[str]],
) -> None:  # fmt: skip
    topic = await new_topic(partitions=3)
    async with db.transaction():
        await enqueue_many(db, [OutboxMessage(topic, str(i), b"x" * 100) for i in range(120)])
    broker = build_broker(kafka_settings)
    await broker.start()
    stop = asyncio.Event()
    relays = [
        asyncio.create_task(run_relay(pool, broker, stop=stop, batch_size=7, poll_interval=0.02))
        for _ in range(4)
    ]
    try:
        for _ in range(200):
            if not await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.gather(*relays)
        await broker.stop()
    assert await db.fetchval("SELECT max(attempts) FROM outbox") == 1  # nobody claimed twice
    records = await read_topic(kafka_settings, topic, 120)
    assert len(records) == 120
    assert len({dict(r.headers)["ddas-event-id"] for r in records}) == 120


class _Failing:
    """A broker whose publications fail (e.g. the topic does not exist)."""

    def __init__(self) -> None:
        self.calls = 0

    async def publish(self, message: Any, topic: str = "", **kwargs: Any) -> Any:
        self.calls += 1
        raise ConnectionError("broker away")


async def test_a_failure_backs_off_and_a_dead_relays_lease_runs_out(
    db: asyncpg.Connection, pool: asyncpg.Pool, kafka_settings: KafkaSettings,
    new_topic: Callable[..., Awaitable[str]],
) -> None:  # fmt: skip
    topic = await new_topic()
    await enqueue(db, topic, "k", b"v")
    failing = _Failing()
    assert await relay_once(pool, failing, max_backoff=0.4) == 1  # type: ignore[arg-type]
    row = await db.fetchrow("SELECT *, available_at > now() AS later FROM outbox")
    assert row["published_at"] is None and row["attempts"] == 1 and row["later"]
    assert row["last_error"].startswith("ConnectionError") and row["lease_token"] is None
    assert await relay_once(pool, failing) == 0  # not due yet
    assert [backoff(n, base=0.5, cap=60) for n in (1, 2, 3, 10, 20)] == [0.5, 1, 2, 60, 60]

    # A relay that claims and dies: its lease runs out and another relay publishes the row.
    await asyncio.sleep(0.5)
    dead = await db.fetchval(
        "UPDATE outbox SET lease_token = $1, leased_until = now() + interval '0.3 seconds' "
        "RETURNING id",
        uuid.uuid4(),
    )
    assert dead is not None
    broker = build_broker(kafka_settings)
    await broker.start()
    try:
        assert await relay_once(pool, broker) == 0  # still leased
        await asyncio.sleep(0.4)
        assert await relay_once(pool, broker) == 1
    finally:
        await broker.stop()
    assert await db.fetchval("SELECT published_at IS NOT NULL FROM outbox")
    assert len(await read_topic(kafka_settings, topic, 1)) == 1
