"""Any service's outbox relay publishes any outbox row, ingest's large chunks included.

Regression: validate's relay once ran on a broker with aiokafka's default 1 MB request size, so
every 2 MB chunk it claimed failed (MessageSizeTooLargeError) and was backed off for up to a
minute. Each relaying broker is built here exactly as its service builds it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import asyncpg
import pytest
from faststream.kafka import KafkaBroker

from ddas.outbox import enqueue, relay_once
from ddas.settings import DatabaseSettings, KafkaSettings
from services.ingest.main import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.validate.main import create_app as validate_app
from tests.ingest.helpers import read_topic

pytestmark = pytest.mark.integration

CHUNK = 2 * 1024 * 1024 + 17  # a chunk of 2,000 trajectories is about 1.7 to 2.1 MB


def _ingest_broker(kafka: KafkaSettings, database: DatabaseSettings) -> KafkaBroker:
    return ingest_app(IngestSettings(kafka=kafka, database=database, test_mode=True)).broker


def _validate_broker(kafka: KafkaSettings, database: DatabaseSettings) -> KafkaBroker:
    return validate_app(kafka=kafka, database=database).broker


@pytest.mark.parametrize("service", [_ingest_broker, _validate_broker], ids=["ingest", "validate"])
async def test_a_services_relay_publishes_a_large_chunk(
    service: Callable[[KafkaSettings, DatabaseSettings], KafkaBroker],
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    new_topic: Callable[..., Awaitable[str]],
) -> None:
    topic = await new_topic()
    # Chunk-like JSON: over the producer's default request size (1 MB) before compression, under
    # the broker's message limit after it, as real chunks are.
    row = b'{"gemeentecode":"0599","client":[{"Burgerservicenummer":"%064x"}]},'
    body = b"[" + b"".join(row % i for i in range(CHUNK // len(row) + 1))[:-1] + b"]"
    assert len(body) > CHUNK
    async with db.transaction():
        await enqueue(db, topic, "levering:0", body)
    pool = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=1, max_size=2)
    broker = service(kafka_settings, db_settings)
    await broker.start()
    try:
        assert await relay_once(pool, broker) == 1
    finally:
        await broker.stop()
        await pool.close()
    row = await db.fetchrow("SELECT published_at, attempts, last_error FROM outbox")
    assert row["published_at"] is not None, row["last_error"]
    (record,) = await read_topic(kafka_settings, topic, 1)
    assert record.value == body
