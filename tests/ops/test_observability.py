"""ddas.observability on the real database and broker: the platform's gauges say what the
tables and the cluster hold, exactly one process exports them (and another takes over when it
stops), and every lifecycle transition is counted with its durations."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client import REGISTRY, CollectorRegistry

from ddas import lifecycle, observability, outbox
from ddas.messaging import create_topics, delete_topics
from ddas.observability import ObservabilitySettings, Observer, database_metrics
from ddas.settings import DatabaseSettings, KafkaSettings, ServiceSettings
from tests.conftest import insert_levering

pytestmark = pytest.mark.integration


def samples(metrics: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metrics for s in m.samples}


def of(found: dict[Any, float], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


async def test_the_database_gauges_are_what_the_tables_hold(db: asyncpg.Connection) -> None:
    old = await insert_levering(db, "ontvangen")
    await insert_levering(db, "ontvangen")
    await insert_levering(db, "rapport_gereed")
    await insert_levering(db, "gepubliceerd")
    await db.execute(
        "UPDATE leveringen SET bijgewerkt_op = now() - interval '2 hours' WHERE id = $1", old
    )
    async with db.transaction():
        await outbox.enqueue(db, "t-een", "k", {"a": 1})
        await outbox.enqueue(db, "t-een", "k", {"a": 2})
        await outbox.enqueue(db, "t-twee", "k", {"a": 3})
    await db.execute("UPDATE outbox SET created_at = now() - interval '5 minutes' "
                     "WHERE topic = 't-twee'")  # fmt: skip
    await db.execute("UPDATE outbox SET published_at = now() WHERE payload->>'a' = '2'")
    await db.execute(
        "INSERT INTO validatie (levering_id, chunks, klaar, root, voltooid_op, uitkomst, "
        "samenvatting) VALUES ($1, 1, 1, '{}', now(), 'gevalideerd', $2::jsonb)",
        old,
        '{"fouten": 3, "waarschuwingen": 1, "per_code": {"R001": 2, "R002": 1, "W7": 1}}',
    )
    for status, kanaal in (("wachtend", "email"), ("mislukt", "email"), ("verzonden", "webhook")):
        await db.execute(
            "INSERT INTO notificaties (levering_id, soort, kanaal, ontvanger, bericht_id, "
            "onderwerp, tekst, body, status, aangemaakt_op) "
            "VALUES ($1, 'rapport', $2, 'x', $3, 's', 't', $4, $5, now() - interval '1 hour')",
            old, kanaal, uuid.uuid4().hex, "{}" if kanaal == "webhook" else None, status,
        )  # fmt: skip

    found = samples(await database_metrics(db))
    states = {dict(k)["state"]: v for k, v in of(found, "ddas_leveringen").items()}
    assert states == {s: 0 for s in lifecycle.STATES} | {
        "ontvangen": 2, "rapport_gereed": 1, "gepubliceerd": 1,
    }  # fmt: skip
    ages = {dict(k)["state"]: v for k, v in of(found, "ddas_leveringen_oldest_age_seconds").items()}
    assert set(ages) == {"ontvangen", "gevalideerd", "afgekeurd", "rapport_gereed", "goedgekeurd"}
    assert 7200 <= ages["ontvangen"] < 7300
    assert 0 <= ages["rapport_gereed"] < 60 and ages["gevalideerd"] == 0
    pending = {dict(k)["topic"]: v for k, v in of(found, "ddas_outbox_pending_messages").items()}
    assert pending == {"t-een": 1, "t-twee": 1}
    assert 300 <= found[("ddas_outbox_oldest_pending_age_seconds", ())] < 400
    codes = {dict(k)["code"]: v for k, v in of(found, "ddas_findings").items()}
    assert codes == {"R001": 2, "R002": 1, "W7": 1}
    notes = {tuple(dict(k).values()): v for k, v in of(found, "ddas_notificaties").items()}
    assert notes == {(k, s): 0 for k in ("email", "webhook")
                     for s in ("wachtend", "verzonden", "mislukt")} | {
        ("email", "wachtend"): 1, ("email", "mislukt"): 1, ("webhook", "verzonden"): 1,
    }  # fmt: skip
    assert 3600 <= found[("ddas_notificaties_oldest_waiting_age_seconds", ())] < 3700
    # Nothing identifying in any label: states, topics, codes and channels only.
    for _name, labels in found:
        for _key, value in labels:
            assert str(old) not in value


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_a_transition_is_counted_with_its_durations(db: asyncpg.Connection) -> None:
    levering = await insert_levering(db, "gevalideerd")
    await db.execute(
        "UPDATE leveringen SET ontvangen_op = now() - interval '100 seconds', "
        "bijgewerkt_op = now() - interval '40 seconds' WHERE id = $1",
        levering,
    )
    step = {"from_state": "gevalideerd", "to_state": "rapport_gereed"}
    before = (
        _value("ddas_transitions_total", **step),
        _value("ddas_stage_duration_seconds_count", **step),
        _value("ddas_stage_duration_seconds_bucket", **step, le="30.0"),
        _value("ddas_stage_duration_seconds_bucket", **step, le="60.0"),
        _value("ddas_submission_to_report_seconds_bucket", le="60.0"),
        _value("ddas_submission_to_report_seconds_bucket", le="120.0"),
    )
    async with db.transaction():
        await lifecycle.transition(db, levering, "gevalideerd", "rapport_gereed", actor="test")
    after = (
        _value("ddas_transitions_total", **step),
        _value("ddas_stage_duration_seconds_count", **step),
        _value("ddas_stage_duration_seconds_bucket", **step, le="30.0"),
        _value("ddas_stage_duration_seconds_bucket", **step, le="60.0"),
        _value("ddas_submission_to_report_seconds_bucket", le="60.0"),
        _value("ddas_submission_to_report_seconds_bucket", le="120.0"),
    )
    # 40 s in gevalideerd (over 30, within 60), 100 s since receipt (over 60, within 120).
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 0, 1, 0, 1]

    decided = _value("ddas_report_to_decision_seconds_count", decision="ingetrokken")
    async with db.transaction():
        await lifecycle.transition(db, levering, "rapport_gereed", "ingetrokken", actor="test")
    assert _value("ddas_report_to_decision_seconds_count", decision="ingetrokken") == decided + 1

    # A refused transition (another process moved it first) is not counted.
    count = _value("ddas_transitions_total", from_state="rapport_gereed", to_state="goedgekeurd")
    with pytest.raises(lifecycle.StateConflict):
        async with db.transaction():
            await lifecycle.transition(db, levering, "rapport_gereed", "goedgekeurd", actor="t")
    assert _value("ddas_transitions_total", from_state="rapport_gereed",
                  to_state="goedgekeurd") == count  # fmt: skip


def _observer(
    pool: asyncpg.Pool, db_settings: DatabaseSettings, kafka: KafkaSettings, prefix: str
) -> tuple[Observer, CollectorRegistry]:
    registry = CollectorRegistry()
    settings = ServiceSettings(kafka=kafka, database=db_settings)
    config = ObservabilitySettings(lag_group_prefix=prefix, interval_s=60)
    observer = Observer(pool, settings, service="test", config=config, registry=registry)
    observability._collector(registry).observers.append(observer)
    return observer, registry


def _exported(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return samples(registry.collect())


async def test_one_process_exports_the_platform_gauges_and_another_takes_over(
    db: asyncpg.Connection, db_settings: DatabaseSettings, kafka_settings: KafkaSettings,
    new_topic: Any,
) -> None:  # fmt: skip
    await insert_levering(db, "ontvangen")
    prefix = f"obs-{uuid.uuid4().hex[:8]}-"
    topic = await new_topic(partitions=2)
    dlq = f"{topic}.dlq"
    other = await new_topic()
    await create_topics([dlq], settings=kafka_settings)

    producer = AIOKafkaProducer(**kafka_settings.to_aiokafka_params())
    await producer.start()
    try:
        for i in range(5):
            await producer.send_and_wait(topic, f"m{i}".encode(), partition=i % 2)
        await producer.send_and_wait(other, b"x")
        for _ in range(2):
            await producer.send_and_wait(dlq, b"dood")
    finally:
        await producer.stop()
    # The group committed 2 of the 3 messages of partition 0 and none of partition 1's two
    # (a committed 0), and all of `other`.
    consumer = AIOKafkaConsumer(**kafka_settings.to_aiokafka_params(), group_id=f"{prefix}g",
                                enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        offsets = {TopicPartition(topic, 0): 2, TopicPartition(topic, 1): 0,
                   TopicPartition(other, 0): 1}  # fmt: skip
        consumer.assign(list(offsets))
        await consumer.commit(offsets)
    finally:
        await consumer.stop()

    pool = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=1, max_size=4)
    first, first_registry = _observer(pool, db_settings, kafka_settings, prefix)
    second, second_registry = _observer(pool, db_settings, kafka_settings, prefix)
    try:
        await first.refresh()
        await second.refresh()
        assert (first.leader, second.leader) == (True, False)
        exported = _exported(first_registry)
        assert exported[("ddas_leveringen", (("state", "ontvangen"),))] == 1
        lag = {dict(k)["topic"]: v for k, v in of(exported, "ddas_consumer_lag_messages").items()
               if dict(k)["group"] == f"{prefix}g"}  # fmt: skip
        assert lag == {topic: 1 + 2, other: 0}
        dead = {dict(k)["topic"]: v for k, v in of(exported, "ddas_dead_letter_messages_total")
                .items()}  # fmt: skip
        assert dead[dlq] == 2
        assert dead[f"{other}.dlq"] == 0  # watched before its first dead letter
        assert not of(_exported(second_registry), "ddas_leveringen")  # not twice

        # The exporting process stops: the other takes over at its next refresh.
        await first.close()
        await second.refresh()
        assert second.leader
        assert of(_exported(second_registry), "ddas_leveringen")
        assert not of(_exported(first_registry), "ddas_leveringen")
    finally:
        await first.close()
        await second.close()
        await pool.close()
        await delete_topics([dlq], settings=kafka_settings)


async def test_install_runs_until_the_pool_closes(
    db_settings: DatabaseSettings, kafka_settings: KafkaSettings
) -> None:
    pool = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=1, max_size=2)
    registry = CollectorRegistry()
    settings = ServiceSettings(kafka=kafka_settings, database=db_settings)
    observer = observability.install(
        pool, settings, service="test", registry=registry,
        config=ObservabilitySettings(interval_s=0.2),
    )  # fmt: skip
    try:
        for _ in range(100):
            if of(_exported(registry), "ddas_leveringen"):
                break
            await asyncio.sleep(0.1)
        assert observer.leader and of(_exported(registry), "ddas_leveringen")
    finally:
        await pool.close()
    assert observer._task is not None
    await asyncio.wait_for(asyncio.shield(observer._task), 5)  # ends by itself
    assert not observer.leader and not of(_exported(registry), "ddas_leveringen")
