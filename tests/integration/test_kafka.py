"""FastStream on the real broker: a consumer group that commits only after processing, and a
second member of the group that takes the partition over when the first stops."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker

from ddas.messaging import build_broker, check_ack_policies, kafka_admin
from ddas.settings import KafkaSettings

pytestmark = pytest.mark.integration

WAIT = 30.0  # seconds: generous for a 2-core CI machine, never reached when things work


async def _committed(settings: KafkaSettings, group: str, topic: str) -> int | None:
    async with kafka_admin(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    meta = offsets.get(TopicPartition(topic, 0))
    return None if meta is None or meta.offset < 0 else meta.offset


async def _until(condition: Callable[[], bool], what: str) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        pytest.fail(f"timed out after {WAIT:.0f}s waiting for {what}")


def _member(
    settings: KafkaSettings, topic: str, group: str, seen: list[str], *, fail_on: str | None = None
) -> KafkaBroker:
    """One consumer of `group` that records what it processed (and keeps failing `fail_on`)."""
    broker = build_broker(settings, client_id=f"member-{uuid.uuid4().hex[:6]}")

    @broker.subscriber(topic, group_id=group, auto_offset_reset="earliest")
    async def handle(body: str) -> None:
        if body == fail_on:
            await asyncio.sleep(0.2)  # a crash mid-processing, again and again
            raise RuntimeError(f"cannot process {body}")
        seen.append(body)

    check_ack_policies(broker)
    return broker


async def test_group_commits_after_processing_and_a_second_member_takes_over(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await new_topic(partitions=1)
    group = f"g-{uuid.uuid4().hex[:10]}"

    producer = build_broker(kafka_settings)
    await producer.start()
    try:
        for body in ("m1", "m2", "m3"):
            await producer.publish(body, topic, key=b"levering-1")

        # The first member processes m1 and m2; its handler fails on m3 every time.
        first_seen: list[str] = []
        first = _member(kafka_settings, topic, group, first_seen, fail_on="m3")
        await first.start()
        await _until(lambda: first_seen == ["m1", "m2"], "the first member to process m1, m2")
        # Committed after processing: up to m2, and never past the message whose handler failed.
        await _until_committed(kafka_settings, group, topic, 2)

        # A second member joins; then the first stops. The partition (one only) moves to the
        # second member, which resumes from the committed offset: m3 (never finished), then m4.
        second_seen: list[str] = []
        second = _member(kafka_settings, topic, group, second_seen)
        await second.start()
        await asyncio.sleep(0.5)
        await first.stop()
        await producer.publish("m4", topic, key=b"levering-1")

        await _until(lambda: second_seen == ["m3", "m4"], "the second member to take over")
        await _until_committed(kafka_settings, group, topic, 4)
        await second.stop()
    finally:
        await producer.stop()

    assert first_seen == ["m1", "m2"]  # nothing processed twice, nothing skipped
    assert second_seen == ["m3", "m4"]


async def _until_committed(settings: KafkaSettings, group: str, topic: str, offset: int) -> None:
    committed: int | None = None
    deadline = asyncio.get_running_loop().time() + WAIT
    while asyncio.get_running_loop().time() < deadline:
        committed = await _committed(settings, group, topic)
        if committed == offset:
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"group {group} committed offset {committed}, expected {offset}")


async def test_the_idempotent_producer_writes_to_kafka_4(
    kafka_settings: KafkaSettings, new_topic: Callable[..., Awaitable[str]]
) -> None:
    # build_broker's producer is idempotent with acks=all: it needs the broker to hand out a
    # producer id (InitProducerId), which this round trip proves against the real broker.
    topic = await new_topic()
    broker = build_broker(kafka_settings)
    await broker.start()
    try:
        first = await broker.publish({"hello": "kafka"}, topic, key=b"k")
        second = await broker.publish({"hello": "again"}, topic, key=b"k")
    finally:
        await broker.stop()
    assert (first.topic, first.offset, second.offset) == (topic, 0, 1)
