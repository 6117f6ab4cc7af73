"""The Kafka plumbing without a broker: the ack policy guard, the producer's settings, and a
handler run on FastStream's in-memory TestKafkaBroker."""

from __future__ import annotations

import pytest
from faststream.kafka import KafkaRouter, TestKafkaBroker

from ddas.messaging import (
    COMMIT_AFTER_PROCESSING,
    UnsafeAckPolicy,
    build_broker,
    build_router,
    check_ack_policies,
)
from ddas.settings import KafkaSettings


def test_subscribers_of_build_broker_and_build_router_commit_after_processing() -> None:
    broker = build_broker(KafkaSettings(bootstrap_servers="kafka:9092"))
    router = build_router()

    @broker.subscriber("a", group_id="g")
    async def on_a(body: str) -> None: ...

    @router.subscriber("b", group_id="g")
    async def on_b(body: str) -> None: ...

    broker.include_router(router)
    check_ack_policies(broker)
    assert {s.ack_policy for s in broker.subscribers} == {COMMIT_AFTER_PROCESSING}


def test_a_plain_router_would_commit_first_and_is_refused() -> None:
    # FastStream fixes auto-commit when the subscriber is declared: the broker's policy does not
    # reach a subscriber of a plain KafkaRouter. The guard catches it before start-up.
    broker = build_broker()
    router = KafkaRouter()

    @router.subscriber("c", group_id="g")
    async def on_c(body: str) -> None: ...

    broker.include_router(router)
    with pytest.raises(UnsafeAckPolicy, match="on_c. of c commits offsets before processing"):
        check_ack_policies(broker)


def test_the_producer_is_idempotent_and_waits_for_all_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9092")
    broker = build_broker()
    # FastStream keeps the producer's keyword arguments here until connect().
    params = broker._connection_kwargs
    assert params["acks"] == "all"
    assert params["enable_idempotence"] is True
    assert params["bootstrap_servers"] == ["kafka-1:9092"]


async def test_a_handler_runs_in_memory_with_test_kafka_broker() -> None:
    broker = build_broker()
    seen: list[dict[str, str]] = []

    @broker.subscriber("ddas.test.v1", group_id="g")
    async def handle(body: dict[str, str]) -> None:
        seen.append(body)

    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish({"levering": "1"}, "ddas.test.v1")
        handle.mock.assert_called_once_with({"levering": "1"})
    assert seen == [{"levering": "1"}]
