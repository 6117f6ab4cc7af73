"""Kafka plumbing for the services: FastStream brokers and routers built from settings with the
platform's delivery guarantees, a start-up guard for them, and topic administration.

The guarantee: a consumer commits a message's offset only after its handler finished without an
error. FastStream's default (ACK_FIRST: auto-commit on receipt) would lose a message whose handler
crashes; with NACK_ON_ERROR a failed message is sought back to and delivered again, to this
consumer or to the group member that takes its partition over.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable
from typing import Any

from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaRouter
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from prometheus_client import REGISTRY

from ddas.settings import KafkaSettings

COMMIT_AFTER_PROCESSING = AckPolicy.NACK_ON_ERROR
"""The ack policy of every subscriber: commit after success, redeliver after an error."""

RELAY_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The largest (uncompressed) message an outbox relay publishes."""


def relay_producer_params(max_message_bytes: int = RELAY_MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """Producer settings for every broker that runs an outbox relay (`build_broker(...,
    **relay_producer_params())`). Any service's relay publishes any outbox row, large ones
    included. (Ingest's chunks, 2,000 trajectories or about 1.7 MB of JSON each, once went
    through the outbox; now ingest publishes them itself, docs/pipeline.md.) A message over
    aiokafka's default request size (1 MB) or, uncompressed, over the broker's default
    `message.max.bytes` (1 MB) fails with MessageSizeTooLargeError and is backed off: that once
    cost a 200,000-trajectory delivery two minutes.

    zstd rather than gzip: aiokafka compresses gzip at level 9, about 60 ms per 2 MB chunk on
    this machine, in the relay's event loop (a 200,000-trajectory delivery: 6 s of CPU, taken
    from validate on two cores); zstd (level 3) takes 8 ms for the same size on the wire, and
    decompresses faster too. Kafka keeps the producer's compression (`compression.type=producer`)
    and every consumer here decodes it (cramjam, aiokafka's `zstd` extra)."""
    return {"compression_type": "zstd", "max_request_size": max_message_bytes}


class UnsafeAckPolicy(RuntimeError):
    """A subscriber would commit offsets before its handler finished."""


def build_broker(settings: KafkaSettings | None = None, **overrides: Any) -> KafkaBroker:
    """A KafkaBroker for `settings` whose subscribers commit after processing and whose producer
    is idempotent and waits for all in-sync replicas (no duplicates or losses on retries)."""
    params: dict[str, Any] = {
        **(settings or KafkaSettings()).to_faststream_params(),
        "ack_policy": COMMIT_AFTER_PROCESSING,
        "acks": "all",
        "enable_idempotence": True,
    }
    params.update(overrides)
    # FastStream's message metrics (faststream_*) into the process's registry, served on
    # /metrics with the rest (ddas.observability); one middleware per broker.
    params["middlewares"] = (
        KafkaPrometheusMiddleware(registry=REGISTRY),
        *params.get("middlewares", ()),
    )
    return KafkaBroker(**params)


def build_router(**kwargs: Any) -> KafkaRouter:
    """A KafkaRouter with the same ack policy as `build_broker`.

    Needed because FastStream fixes a router subscriber's auto-commit when the subscriber is
    declared, before the router is included: a plain KafkaRouter() subscriber stays ACK_FIRST
    even inside a broker built by `build_broker`.
    """
    kwargs.setdefault("ack_policy", COMMIT_AFTER_PROCESSING)
    return KafkaRouter(**kwargs)


def check_ack_policies(broker: KafkaBroker) -> None:
    """Refuse to start a broker with a subscriber that would commit before processing."""
    for subscriber in broker.subscribers:
        policy = getattr(subscriber, "ack_policy", None)
        auto_commit = getattr(subscriber, "_connection_args", {}).get("enable_auto_commit")
        if policy is AckPolicy.ACK_FIRST or auto_commit:
            handlers = ", ".join(str(call.name) for call in getattr(subscriber, "calls", []))
            topics = ", ".join(
                str(getattr(t, "name", t)) for t in getattr(subscriber, "topics", [])
            )
            raise UnsafeAckPolicy(
                f"subscriber {handlers or subscriber!r} of {topics or '?'} commits offsets "
                "before processing (ACK_FIRST): declare it on build_broker()/build_router() "
                "or pass ack_policy=COMMIT_AFTER_PROCESSING"
            )


@contextlib.asynccontextmanager
async def kafka_admin(settings: KafkaSettings | None = None) -> AsyncIterator[Any]:
    """An aiokafka admin client for topic administration, closed on exit."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**(settings or KafkaSettings()).to_aiokafka_params())
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topics(
    names: Iterable[str],
    *,
    partitions: int = 1,
    replication_factor: int = 1,
    settings: KafkaSettings | None = None,
) -> None:
    """Create topics that do not exist yet (existing ones are left as they are)."""
    from aiokafka.admin import NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    async with kafka_admin(settings) as admin:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process was quicker
                await admin.create_topics(wanted)


async def delete_topics(names: Iterable[str], *, settings: KafkaSettings | None = None) -> None:
    names = list(names)
    if not names:
        return
    async with kafka_admin(settings) as admin:
        present = set(await admin.list_topics())
        doomed = [n for n in names if n in present]
        if doomed:
            await admin.delete_topics(doomed)
