"""Fixtures of the publish tests: a running publish service (real uvicorn on a free port, real
broker and database) in a schema and with topics of its own, deliveries set up as the earlier
stages leave them, and their reports put on the reports topic as report does."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ddas.domain.oor import Oor
from ddas.domain.tables import Periode
from ddas.messaging import create_topics, delete_topics
from ddas.pipeline import events, topics
from ddas.pipeline.topics import dead_letter
from ddas.registry import add_organisation_token, add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from ddas.testing import shared_dir
from services.publish.main import PublishService, create_app
from services.publish.settings import PublishSettings
from tests.processes import Process, kill_all

APP_750 = shared_dir() / "ddas/examples/ddas-app/testbestand_schuldhulpverlening_750.json"
ORG = "12345678"
ANDERE_ORG = "87654321"


def oor_of(path: Path, *, keep: Callable[[int], bool] = lambda i: True) -> dict[str, Any]:
    """The OOR figures of a file (of its trajectories that `keep` keeps, by index), as report
    puts them in a `Rapport`."""
    doc = json.loads(path.read_bytes())
    oor = Oor(Periode(doc["startdatumLevering"], doc["einddatumLevering"]))
    i = 0
    for lev in doc["leveringen"]:
        for t in lev["schuldhulptrajecten"]:
            if keep(i):
                oor.add(t)
            i += 1
    return oor.result().as_dict()


@dataclass
class Env:
    service: PublishService | None  # None: the service runs as a process of its own
    db: asyncpg.Connection
    schema: str
    database: DatabaseSettings
    kafka: KafkaSettings
    rapporten: str
    leveringen: str
    statistieken: str
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        assert self.service is not None
        return self.service.url

    async def levering(
        self,
        state: str = "rapport_gereed",
        *,
        organisatie: str = ORG,
        periode: tuple[str, str] = ("2025-01-01", "2025-06-30"),
        leverancier: str = "LEV",
    ) -> uuid.UUID:
        """A delivery as the earlier stages leave it: in `state`, for `organisatie`, from
        supplier `leverancier`, with a contact address."""
        levering_id = uuid.uuid4()
        await self.db.execute(
            "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
            "startdatum_levering, einddatum_levering, content_hash, state, leverancier) "
            "VALUES ($1, 'shv', $5, $2, $3::text::date, $4::text::date, $6, $7, $5)",
            levering_id,
            organisatie,
            periode[0],
            periode[1],
            leverancier,
            uuid.uuid4().hex,
            state,
        )
        await self.db.execute(
            "INSERT INTO levering_organisaties (levering_id, organisatie) VALUES ($1, $2)",
            levering_id,
            organisatie,
        )
        await self.db.execute(
            "INSERT INTO levering_contacten (levering_id, levering_index, email) "
            "VALUES ($1, 0, 'contact@example.org')",
            levering_id,
        )
        return levering_id

    async def rapport(
        self, levering_id: uuid.UUID, oor: dict[str, Any], *, versie: int = 1, wait: bool = True
    ) -> events.Rapport:
        """Put a delivery's `Rapport` on the reports topic (as report does); with `wait`, until
        publish has taken it in (stored, or skipped)."""
        rapport = events.Rapport(
            event_id=str(uuid.uuid4()),
            levering_id=str(levering_id),
            versie=versie,
            organisatie=ORG,
            periode=events.RapportPeriode(**(oor["periode"] or {})),
            oor=oor,
        )
        await publish(self.kafka, self.rapporten, [(rapport.key(), events.encode(rapport))])
        if wait:
            await until(
                lambda: self.db.fetchval(
                    "SELECT count(*) FROM processed_events WHERE event_id = $1",
                    uuid.UUID(rapport.event_id),
                )
            )
        return rapport

    async def ontvangen(self, levering_id: uuid.UUID, *, wait: bool = True) -> None:
        """The delivery's `ontvangen` event on the lifecycle topic (as ingest writes it)."""
        event = events.LeveringEvent(
            event_id=str(uuid.uuid4()),
            levering_id=str(levering_id),
            state="ontvangen",
            occurred_at=dt.datetime.now(dt.UTC).isoformat(),
        )
        await publish(self.kafka, self.leveringen, [(event.key(), events.encode(event))])
        if wait:
            await until(
                lambda: self.db.fetchval(
                    "SELECT count(*) FROM processed_events WHERE event_id = $1",
                    uuid.UUID(event.event_id),
                )
            )

    async def state(self, levering_id: uuid.UUID) -> str:
        state: str = await self.db.fetchval(
            "SELECT state FROM leveringen WHERE id = $1", levering_id
        )
        return state

    async def wait_state(self, levering_id: uuid.UUID, state: str, timeout: float = 30) -> None:
        async def check() -> bool:
            return await self.state(levering_id) == state

        await until(check, timeout)

    async def post(
        self, levering_id: uuid.UUID | str, besluit: str, token: str | None, **body: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
            return await client.post(
                f"/v1/leveringen/{levering_id}/{besluit}",
                headers=headers,
                json=body or None,
            )

    async def stored_cells(self, start: str, eind: str) -> dict[tuple[str, str, str], Any]:
        rows = await self.db.fetch(
            "SELECT gemeentecode, tabel, kolom, waarde, status FROM statistieken "
            "WHERE periode_start = $1::text::date AND periode_eind = $2::text::date",
            start,
            eind,
        )
        return {
            (r["gemeentecode"], r["tabel"], r["kolom"]): (
                None if r["waarde"] is None else float(r["waarde"]),
                r["status"],
            )
            for r in rows
        }


async def until(check: Callable[[], Awaitable[Any]], timeout: float = 30.0) -> Any:
    """Wait until `check()` is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s")
        await asyncio.sleep(0.1)


async def publish(settings: KafkaSettings, topic: str, messages: list[tuple[str, bytes]]) -> None:
    producer = AIOKafkaProducer(**settings.to_aiokafka_params(), acks="all")
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value=value, key=key.encode())
    finally:
        await producer.stop()


async def read_topic(settings: KafkaSettings, topic: str) -> list[ConsumerRecord]:
    """Every message of the topic, from the beginning to its current end."""
    consumer = AIOKafkaConsumer(
        **settings.to_aiokafka_params(), group_id=None, enable_auto_commit=False
    )
    await consumer.start()
    out: list[ConsumerRecord] = []
    try:
        parts = [TopicPartition(topic, p) for p in sorted(await _partitions(consumer, topic))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        deadline = time.monotonic() + 30
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            assert time.monotonic() < deadline, "the topic was not read to its end"
            for records in (await consumer.getmany(*parts, timeout_ms=500)).values():
                out.extend(records)
    finally:
        await consumer.stop()
    return out


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    found = consumer.partitions_for_topic(topic)
    assert found, f"topic {topic} does not exist"
    return set(found)


def decode(record: ConsumerRecord) -> Any:
    return msgspec.json.decode(record.value)


@pytest.fixture
async def own_topics(kafka_settings: KafkaSettings) -> AsyncIterator[dict[str, str]]:
    tag = uuid.uuid4().hex[:10]
    names = {
        "rapporten": f"publish-rapporten-{tag}",
        "leveringen": f"publish-leveringen-{tag}",
        "statistieken": f"publish-statistieken-{tag}",
    }
    every = [t for n in names.values() for t in (n, dead_letter(n))]
    await create_topics(every, settings=kafka_settings)
    await create_topics([topics.LEVERINGEN], settings=kafka_settings)
    yield names
    await delete_topics(every, settings=kafka_settings)


def settings_for(
    db_settings: DatabaseSettings, kafka_settings: KafkaSettings, names: dict[str, str], **kw: Any
) -> PublishSettings:
    return PublishSettings(
        kafka=kafka_settings,
        database=db_settings,
        http_port=0,
        consumer_group=f"publish-test-{uuid.uuid4().hex[:8]}",
        rapporten_topic=names["rapporten"],
        leveringen_topic=names["leveringen"],
        statistieken_topic=names["statistieken"],
        publish_poll_s=0.2,
        graceful_timeout_s=5.0,
        retry_backoff_s=0.05,
        **kw,
    )


@pytest.fixture
async def make_env(
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    own_topics: dict[str, str],
) -> AsyncIterator[Callable[..., Awaitable[Env]]]:
    """Start a publish service of this test's own (settings overridden by keywords), with an
    organisation and its token, its supplier with a token, and another organisation with a
    token; stopped at the end."""
    started: list[PublishService] = []

    async def make(**overrides: Any) -> Env:
        overrides.setdefault("notifications", False)
        service = create_app(settings_for(db_settings, kafka_settings, own_topics, **overrides))
        await service.start()
        started.append(service)
        e = Env(
            service,
            db,
            db_settings.search_path,
            db_settings,
            kafka_settings,
            own_topics["rapporten"],
            own_topics["leveringen"],
            own_topics["statistieken"],
        )
        e.tokens["org"] = await add_organisation_token(db, ORG)
        e.tokens["andere"] = await add_organisation_token(db, ANDERE_ORG)
        e.tokens["leverancier"] = await add_supplier(db, "LEV", "Leverancier", [ORG])
        return e

    yield make
    for service in started:
        await service.stop()


@pytest.fixture
async def env(make_env: Callable[..., Awaitable[Env]]) -> Env:
    """A publish service of this test's own (see make_env)."""
    return await make_env()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    """Processes a test started; any still running at its end are killed."""
    made: list[Process] = []
    yield made
    kill_all(made)
