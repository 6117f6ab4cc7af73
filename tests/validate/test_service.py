"""The validate service in this process, on the real broker and database: chunks in, the
delivery `gevalideerd` with `ddas check`'s tables and findings, poison messages on the
dead-letter topic with their origin (and the partition flowing on), health and readiness."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import orjson
import pytest

from ddas.deadletter import HEADERS
from ddas.domain.check import check_file
from ddas.messaging import kafka_admin
from ddas.pipeline import topics
from ddas.pipeline.events import LeveringEvent, decode_levering_event, encode
from ddas.pipeline.topics import dead_letter
from ddas.settings import DatabaseSettings, KafkaSettings
from services.validate.main import ValidateService, create_app
from services.validate.settings import ValidateSettings

from .conftest import APP_750, stored_result
from .helpers import chunks_of, encoded_chunks
from .kafka_helpers import publish, read_all, read_keyed, wait_for_state

# The real broker and/or database: `make test-unit` leaves these out.
pytestmark = pytest.mark.integration
NewLevering = Callable[..., Awaitable[uuid.UUID]]


@pytest.fixture
async def topic(chunk_topic: Callable[[int], Awaitable[str]]) -> str:
    return await chunk_topic(1)


@pytest.fixture
async def service(
    kafka_settings: KafkaSettings, db_settings: DatabaseSettings, topic: str
) -> AsyncIterator[ValidateService]:
    app = create_app(
        ValidateSettings(
            kafka=kafka_settings,
            database=db_settings,
            topic=topic,
            consumer_group=f"validate-{uuid.uuid4().hex[:8]}",
            http_port=0,
            retry_attempts=3,
            retry_backoff_s=0.05,
        )
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    response = await reader.read()
    writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def test_the_750_file_through_kafka_is_validated_with_the_tables_of_ddas_check(
    service: ValidateService,
    kafka_settings: KafkaSettings,
    topic: str,
    db: asyncpg.Connection,
    new_levering: NewLevering,
) -> None:
    levering_id = await new_levering()
    await publish(kafka_settings, topic, encoded_chunks(APP_750, levering_id, 100))
    assert await wait_for_state(db, levering_id) == "gevalideerd"

    expected = check_file(APP_750)
    result = await stored_result(db, levering_id)
    assert result["tabellen"] == json.loads(json.dumps(expected.totalen.as_dict()))
    assert result["findings"] == [
        (f.code, str(f.ernst), f.pointer, f.message) for f in expected.findings
    ]
    assert result["facts"] == 750

    # The service's relay publishes the LeveringEvent: on to report, keyed by the delivery.
    record = await read_keyed(kafka_settings, topics.LEVERINGEN, str(levering_id))
    event = decode_levering_event(record.value)
    assert (event.state, event.levering_id) == ("gevalideerd", str(levering_id))
    assert event.bevindingen.fouten == expected.fouten
    assert dict(record.headers)["ddas-event-id"] == event.event_id.encode()
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NOT NULL") == 1


async def test_poison_messages_go_to_the_dead_letter_topic_and_the_partition_flows_on(
    service: ValidateService,
    kafka_settings: KafkaSettings,
    topic: str,
    db: asyncpg.Connection,
    new_levering: NewLevering,
) -> None:
    good_id = await new_levering()
    template = orjson.loads(encode(chunks_of(APP_750, good_id, 1000)[0]))
    poison: list[tuple[str | None, bytes]] = [
        ("x", b"\x00\xff dit is geen JSON"),  # not JSON at all
        ("y", orjson.dumps({**template, "trajecten": {"0": {}}})),  # not a chunk
        ("z", orjson.dumps({**template, "root": ["geen object"]})),  # does not hold together
        # A valid envelope whose numbers the database refuses (beyond its integer columns).
        (None, orjson.dumps({**template, "eerste": 2**40})),
    ]
    await publish(kafka_settings, topic, poison, partition=0)
    # A header that is not UTF-8 (FastStream's parser would choke on it) and a value that is
    # not even text.
    binary = [("x-binair", b"\xff\xfe")]
    await publish(kafka_settings, topic, [("w", b"\xff" * 10)], partition=0, headers=binary)
    await publish(kafka_settings, topic, encoded_chunks(APP_750, good_id, 1000), partition=0)

    assert await wait_for_state(db, good_id) == "gevalideerd"
    dead = await read_all(kafka_settings, dead_letter(topic), 5)
    assert [(r.key, r.value) for r in dead] == [
        *((k.encode() if k else None, v) for k, v in poison),
        (b"w", b"\xff" * 10),
    ]
    headers = [dict(r.headers) for r in dead]
    assert [h["ddas-origin-offset"] for h in headers] == [b"0", b"1", b"2", b"3", b"4"]
    assert [h["ddas-error-class"] for h in headers] == [
        b"msgspec.DecodeError",
        b"msgspec.ValidationError",
        b"services.validate.chunks.ChunkError",
        b"asyncpg.exceptions.DataError",
        b"msgspec.DecodeError",
    ]
    for h in headers:
        assert h["ddas-origin-topic"] == topic.encode()
        assert h["ddas-origin-partition"] == b"0"
        assert h["ddas-attempts"] == b"3"
    # Their own headers and the dead-letter headers, nothing else: no message text, no data.
    assert all(set(h) == {*HEADERS} for h in headers[:4])
    assert set(headers[4]) == {*HEADERS, "x-binair"} and headers[4]["x-binair"] == b"\xff\xfe"
    # Nothing of the poison stayed behind.
    assert await db.fetchval("SELECT count(*) FROM processed_events") == 1


async def test_health_and_readiness(
    service: ValidateService, kafka_settings: KafkaSettings, topic: str
) -> None:
    port = service.http.port
    assert await http_get(port, "/healthz") == (200, b"ok\n")
    assert await http_get(port, "/readyz") == (200, b"kafka: ok\ndatabase: ok\n")
    status, body = await http_get(port, "/metrics")
    assert status == 200 and b"ddas_validate_chunks_total" in body
    assert (await http_get(port, "/nope"))[0] == 404

    # The database goes away: not ready (and still alive).
    assert service.pool is not None
    pool, service.pool = service.pool, None
    try:
        assert await http_get(port, "/readyz") == (503, b"kafka: ok\ndatabase: unavailable\n")
        assert (await http_get(port, "/healthz"))[0] == 200
    finally:
        service.pool = pool


async def test_a_graceful_stop_finishes_the_chunk_in_hand_and_commits_its_offset(
    kafka_settings: KafkaSettings,
    db_settings: DatabaseSettings,
    topic: str,
    db: asyncpg.Connection,
    new_levering: NewLevering,
) -> None:
    group = f"validate-{uuid.uuid4().hex[:8]}"
    app = create_app(
        ValidateSettings(
            kafka=kafka_settings,
            database=db_settings,
            topic=topic,
            consumer_group=group,
            http_port=0,
            graceful_timeout_s=10,
        )
    )
    in_hand = asyncio.Event()
    handle = app.handle

    async def slow_handle(data: bytes):  # type: ignore[no-untyped-def]
        in_hand.set()
        await asyncio.sleep(0.5)  # SIGTERM arrives now
        return await handle(data)

    app.handle = slow_handle  # type: ignore[method-assign]
    await app.start()
    try:
        levering_id = await new_levering()
        await publish(kafka_settings, topic, encoded_chunks(APP_750, levering_id, 1000))
        await asyncio.wait_for(in_hand.wait(), 30)
    finally:
        await app.stop()
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id) == (
        "gevalideerd"
    )
    async with kafka_admin(kafka_settings) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    assert {tp.partition: meta.offset for tp, meta in offsets.items()} == {0: 1}


async def test_a_delivery_recorded_after_its_last_chunk_is_completed_on_its_ontvangen_event(
    kafka_settings: KafkaSettings,
    db_settings: DatabaseSettings,
    db: asyncpg.Connection,
    topic: str,
    new_topic: Callable[..., Awaitable[str]],
) -> None:
    """Ingest records a delivery only when all its chunks are on Kafka, so validate may have
    stored them all before: nothing is completed until then, and ingest's `ontvangen` event
    completes it (the sweep is set far off here, so that it is the event that does)."""
    levering_topic = await new_topic(1)
    app = create_app(
        ValidateSettings(
            kafka=kafka_settings,
            database=db_settings,
            topic=topic,
            levering_topic=levering_topic,
            consumer_group=f"validate-{uuid.uuid4().hex[:8]}",
            http_port=0,
            sweep_interval_s=3600,
        )
    )
    await app.start()
    try:
        levering_id = uuid.uuid4()
        await publish(kafka_settings, topic, encoded_chunks(APP_750, levering_id, 200))
        deadline = asyncio.get_running_loop().time() + 30
        while await db.fetchval("SELECT klaar FROM validatie") != 4:
            assert asyncio.get_running_loop().time() < deadline, "the chunks were not stored"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        assert await db.fetchval("SELECT voltooid_op FROM validatie") is None
        assert await db.fetchval("SELECT count(*) FROM outbox") == 0

        # What ingest does: the row, then (through its outbox) the `ontvangen` event.
        await db.execute(
            "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
            "startdatum_levering, einddatum_levering, content_hash) "
            "VALUES ($1, 'shv', 'TEST', '0503', '2025-01-01', '2025-12-31', 'x')",
            levering_id,
        )
        event = LeveringEvent(
            event_id=str(uuid.uuid4()),
            levering_id=str(levering_id),
            state="ontvangen",
            occurred_at="2026-11-29T00:00:00+00:00",
        )
        await publish(kafka_settings, levering_topic, [(str(levering_id), encode(event))])
        assert await wait_for_state(db, levering_id, timeout=20) == "gevalideerd"
    finally:
        await app.stop()
    result = await stored_result(db, levering_id)
    assert result["tabellen"] == json.loads(json.dumps(check_file(APP_750).totalen.as_dict()))
    assert result["facts"] == 750
