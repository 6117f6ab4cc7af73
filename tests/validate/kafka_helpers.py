"""Publishing to and reading from the real broker in the validate tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from ddas.settings import KafkaSettings


async def publish(
    settings: KafkaSettings,
    topic: str,
    messages: Iterable[tuple[str | bytes | None, bytes]],
    *,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """Publish (key, value) pairs (with the same headers) and wait until the broker has them."""
    producer = AIOKafkaProducer(
        **settings.to_aiokafka_params(), acks="all", max_request_size=4 * 1024 * 1024
    )
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=value,
                key=key.encode() if isinstance(key, str) else key,
                partition=partition,
                headers=headers,
            )
            for key, value in messages
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_all(
    settings: KafkaSettings, topic: str, expected: int, timeout: float = 30.0
) -> list[ConsumerRecord]:
    """The first `expected` records of a topic (fails after `timeout` with what it got)."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.to_aiokafka_params(),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                records.extend(part)
    finally:
        await consumer.stop()
    assert len(records) >= expected, f"{len(records)} of {expected} records on {topic}"
    return records


async def wait_for_state(
    conn: asyncpg.Connection,
    levering_id: uuid.UUID,
    *,
    not_state: str = "ontvangen",
    timeout: float = 60.0,
) -> str:
    """Wait until the delivery leaves `not_state`; its new state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = await conn.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id)
        if state != not_state:
            return str(state)
        await asyncio.sleep(0.1)
    klaar = await conn.fetchval(
        "SELECT klaar || '/' || chunks FROM validatie WHERE levering_id = $1", levering_id
    )
    raise AssertionError(f"delivery {levering_id} still {not_state} after {timeout} s ({klaar})")


async def read_keyed(
    settings: KafkaSettings, topic: str, key: str, timeout: float = 30.0
) -> ConsumerRecord:
    """The first record of a (shared) topic with this key."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.to_aiokafka_params(),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for part in batch.values():
                for record in part:
                    if record.key == key.encode():
                        return record
    finally:
        await consumer.stop()
    raise AssertionError(f"no record with key {key} on {topic} within {timeout} s")
