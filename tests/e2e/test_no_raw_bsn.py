"""No raw BSN, nor any other identifying value of a delivery, outside ingest's memory (issue 4).

`python -m services.ingest` and `python -m services.validate` run as real processes on the real
broker and database, with their output in log files. The DDAS-app's 750-trajectory file is
submitted over HTTP and followed until `gevalideerd`. Then everything the run left behind is
collected:

- every message on every topic the run used (the supplier topic, the chunks, the lifecycle events
  and the dead-letter twin of each), read from the beginning: key, value and headers, with the
  values decompressed and decoded as a consumer does;
- every row of every table in the run's database schema, as the row's text and with each bytea
  value decompressed and decoded;
- the two services' logs, and the API's answers.

None of it may hold a BSN of the input (as delivered, normalised, or in its 8-digit form), a
Geboortedatum, a Postcode (with or without its Huisnummer), or a contact person's name, job title
or phone number, the organisation's name or postcode, or the pseudonym key. The contact persons'
e-mail addresses may be in exactly one place, `levering_contacten` (kept there for the OOR
notifications, docs/pipeline.md), and nowhere else. The stored tables and findings are those of
`ddas check`. A planted leak of each kind is then found by the same collector, so the test
cannot pass by looking in the wrong place.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gzip
import json
import os
import re
import secrets
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from ddas.domain import bsn as bsn_mod
from ddas.domain.check import check_file
from ddas.messaging import create_topics, delete_topics, kafka_admin
from ddas.pipeline import topics
from ddas.pipeline.topics import dead_letter
from ddas.registry import add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from ddas.testing import shared_dir
from tests.processes import Process, kill_all
from tests.validate.conftest import stored_facts

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
APP_750 = "ddas/examples/ddas-app/testbestand_schuldhulpverlening_750.json"

# -- what must not leak ---------------------------------------------------------------------


@dataclass
class Needles:
    """The identifying values of a document: `digits` are matched as whole runs of digits (a BSN
    inside a longer number is another number), `texts` as substrings (case-sensitive: the
    hexadecimal of pseudonyms and ids is lower case)."""

    digits: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)

    def add(self, value: Any, kind: str) -> None:
        if type(value) is not str or len(value.strip()) < 4:
            return  # absent, blank, or too short to be anyone's (a house number alone)
        value = value.strip()
        if value.isdigit():
            self.digits[value] = kind
        else:
            self.texts[value] = kind
            digits = re.sub(r"\D", "", value)
            if kind != "Geboortedatum" and len(digits) >= 8:  # a phone number or BSN with dots
                self.digits[digits] = kind

    def add_bsn(self, value: Any) -> None:
        if type(value) is not str:
            return
        self.add(value, "BSN")
        b = bsn_mod.normalise(value)
        if len(b) == 9:
            self.digits[b] = "BSN"
            if b.startswith("0"):
                self.digits[b[1:]] = "BSN (8 digits)"

    def add_postcode(self, postcode: Any, huisnummer: Any) -> None:
        if type(postcode) is not str or not postcode.strip():
            return
        for pc in {postcode.strip(), postcode.replace(" ", "").upper()}:
            self.add(pc, "Postcode")
            if type(huisnummer) is str and huisnummer.strip():
                self.add(f"{pc} {huisnummer.strip()}", "Postcode+Huisnummer")
                self.add(f"{pc}{huisnummer.strip()}", "Postcode+Huisnummer")

    def all(self) -> Iterator[str]:
        yield from self.digits
        yield from self.texts
        yield from self.emails


_ORGANISATIE = {"(Statutaire) Naam": "organisation name", "postcode": "organisation postcode"}
_CONTACT = {"naam": "contact name", "functietitel": "contact job title",
            "telefoonnummer": "contact phone number"}  # fmt: skip
_SCHULDEISER = {"naam": "creditor name", "Naam": "creditor name", "kvknummer": "creditor KvK",
                "postcode": "creditor postcode"}  # fmt: skip


def identifying_values(doc: dict[str, Any]) -> Needles:
    """Every identifying value of a SHV document (see the module docstring)."""
    n = Needles()
    for lev in doc.get("leveringen") or []:
        if not isinstance(lev, dict):
            continue
        org = lev.get("aanleverende_organisatie") or {}
        for key, kind in _ORGANISATIE.items():
            n.add(org.get(key), kind)
        for persoon in org.get("contactpersonen") or []:
            for key, kind in _CONTACT.items():
                n.add(persoon.get(key), kind)
            if isinstance(email := persoon.get("email"), str) and email.strip():
                n.emails[email.strip()] = "contact e-mail"
        for t in lev.get("schuldhulptrajecten") or []:
            if not isinstance(t, dict):
                continue
            n.add(t.get("omschrijving"), "omschrijving")
            n.add((t.get("uitstroom") or {}).get("omschrijving"), "uitstroom omschrijving")
            for schuld in t.get("schulden") or []:
                for key, kind in _SCHULDEISER.items():
                    n.add((schuld.get("schuldeiser") or {}).get(key), kind)
            for c in t.get("client") or []:
                n.add_bsn(c.get("Burgerservicenummer"))
                n.add(c.get("Geboortedatum"), "Geboortedatum")
                n.add_postcode(c.get("Postcode"), c.get("Huisnummer"))
    return n


def ordinary_strings(doc: Any, needles: Needles) -> Iterator[str]:
    """The document's strings that are no needle: dates, codes, enum values, the KvK-nummer."""
    own = set(needles.all())
    stack = [doc]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, str) and v.strip() not in own:
            yield v


# -- the collector ------------------------------------------------------------------------


def decoded(data: bytes) -> str:
    """Bytes as a consumer would read them: decompressed (gzip, zlib) and decoded (JSON,
    MessagePack, else UTF-8); the raw bytes' text follows, so nothing is lost to a decoder."""
    raw = data
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:1] == b"\x78":
        with contextlib.suppress(zlib.error):
            data = zlib.decompress(data)
    parts = []
    for decode in (msgspec.json.decode, msgspec.msgpack.decode):
        try:
            parts.append(json.dumps(decode(data), ensure_ascii=False, default=str))
            break
        except (msgspec.DecodeError, TypeError, ValueError):
            continue
    parts.append(data.decode("utf-8", "replace"))
    if data is not raw:
        parts.append(raw.decode("latin-1"))
    return "\n".join(parts)


def text_of(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return decoded(bytes(value))
    return str(value)


async def read_topics(
    settings: KafkaSettings, names: Iterable[str]
) -> dict[str, list[ConsumerRecord]]:
    """Every message of every partition of the topics, from the beginning to the end (aiokafka
    undoes the producer's compression, as the services' consumers do)."""
    names = list(names)
    consumer = AIOKafkaConsumer(
        **settings.to_aiokafka_params(),
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=128 * 1024 * 1024,
    )
    await consumer.start()
    out: dict[str, list[ConsumerRecord]] = {name: [] for name in names}
    try:
        parts = [
            TopicPartition(name, p)
            for name in names
            for p in sorted(
                consumer.partitions_for_topic(name) or await _partitions(consumer, name)
            )
        ]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        end = await consumer.end_offsets(parts)
        deadline = time.monotonic() + 30
        while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
            assert time.monotonic() < deadline, "the topics were not read to their end"
            for tp, records in (await consumer.getmany(*parts, timeout_ms=500)).items():
                out[tp.topic].extend(records)
    finally:
        await consumer.stop()
    return out


def record_text(r: ConsumerRecord) -> str:
    """A message's key, value and headers as text (decompressed and decoded)."""
    headers = " ".join(f"{k}={decoded(v)}" for k, v in r.headers)
    key = decoded(r.key) if r.key is not None else ""
    value = decoded(r.value) if r.value is not None else ""
    return f"{key}\n{value}\n{headers}"


async def _partitions(consumer: AIOKafkaConsumer, name: str) -> set[int]:
    await consumer._client.force_metadata_update()
    found = consumer.partitions_for_topic(name)
    assert found, f"topic {name} does not exist"
    return set(found)


async def table_texts(conn: asyncpg.Connection, schema: str) -> dict[str, list[str]]:
    """Every row of every table of the schema: the row cast to text, then each value on its own
    (bytea decompressed and decoded, not in its hex form)."""
    tables = await conn.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name",
        schema,
    )
    out: dict[str, list[str]] = {}
    for (table,) in tables:
        rows = await conn.fetch(f'SELECT t::text AS "row text", t.* FROM "{schema}"."{table}" t')
        out[table] = ["\n".join(text_of(v) for v in row.values()) for row in rows]
    return out


def leaks(corpus: dict[str, str], needles: Needles) -> list[tuple[str, str, str]]:
    """(place, kind, value) for every needle found in a place of the corpus; e-mail addresses
    are allowed in `table levering_contacten` only."""
    found = []
    for place, text in corpus.items():
        runs = set(re.findall(r"\d+", text))
        for value, kind in needles.digits.items():
            if value in runs:
                found.append((place, kind, value))
        for value, kind in needles.texts.items():
            if value in text:
                found.append((place, kind, value))
        if place != "table levering_contacten":
            for value, kind in needles.emails.items():
                if value in text:
                    found.append((place, kind, value))
    return found


async def collect(
    conn: asyncpg.Connection,
    schema: str,
    kafka: KafkaSettings,
    topic_names: Iterable[str],
    logs: Iterable[Path],
) -> dict[str, str]:
    """The corpus: one text per topic, per table and per log."""
    records = await read_topics(kafka, topic_names)
    corpus = {f"topic {t}": "\n".join(map(record_text, rs)) for t, rs in records.items()}
    corpus |= {f"table {t}": "\n".join(r) for t, r in (await table_texts(conn, schema)).items()}
    corpus |= {f"log {p.name}": p.read_bytes().decode("utf-8", "replace") for p in logs}
    return corpus


# -- the services as processes -------------------------------------------------------------


@pytest.fixture
async def run_topics(kafka_settings: KafkaSettings) -> AsyncIterator[dict[str, str]]:
    """The run's own topics (the supplier topic, the chunks) with their dead-letter twins, and
    the shared lifecycle topic with its twin; the run's own are deleted afterwards."""
    tag = uuid.uuid4().hex[:10]
    own = {"inbound": f"e2e-in-{tag}", "chunks": f"e2e-chunks-{tag}"}
    await create_topics([own["inbound"], dead_letter(own["inbound"])], settings=kafka_settings)
    await create_topics([own["chunks"]], partitions=3, settings=kafka_settings)
    await create_topics([dead_letter(own["chunks"])], settings=kafka_settings)
    await create_topics(
        [topics.LEVERINGEN, dead_letter(topics.LEVERINGEN)], settings=kafka_settings
    )
    yield {**own, "tag": tag}
    await delete_topics(
        [t for name in own.values() for t in (name, dead_letter(name))], settings=kafka_settings
    )


@pytest.fixture
def services(tmp_path: Path) -> Iterator[list[Process]]:
    made: list[Process] = []
    yield made
    kill_all(made)


# -- the test ---------------------------------------------------------------------------------


async def test_no_identifying_value_leaves_ingest(
    tmp_path: Path,
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    run_topics: dict[str, str],
    services: list[Process],
) -> None:
    path = shared_dir() / APP_750
    raw = path.read_bytes()
    doc = json.loads(raw)
    needles = identifying_values(doc)
    key = secrets.token_hex(32)
    needles.texts[key] = "pseudonym key"
    # The needles are meaningful: the 720 distinct BSNs of the 750 file's 953 clients, and none of its ordinary values
    # (dates, codes) is also a needle, so a find is a leak.
    assert len([k for k in needles.digits.values() if k == "BSN"]) == 720
    assert {"Geboortedatum", "Postcode", "contact name", "contact phone number"} <= set(
        needles.texts.values()
    ) | set(needles.digits.values())
    assert needles.emails
    ordinary = "\n".join(ordinary_strings(doc, needles))
    assert not leaks({"the input's ordinary values": ordinary}, needles)

    schema = db_settings.search_path
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))
    }
    base |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DATABASE_URL": db_settings.url,
        "DATABASE_SEARCH_PATH": schema,
        "DDAS_PSEUDONYM_KEY": key,  # a deployment's key: no test mode
        "PYTHONUNBUFFERED": "1",
    }
    tag = run_topics["tag"]
    ingest = Process(
        "ingest",
        base
        | {
            "DDAS_INGEST_LOG_LEVEL": "DEBUG",
            "DDAS_INGEST_HTTP_PORT": "0",
            "DDAS_INGEST_INBOUND_TOPIC": run_topics["inbound"],
            "DDAS_INGEST_CHUNK_TOPIC": run_topics["chunks"],
            "DDAS_INGEST_STATUS_TOPIC": topics.LEVERINGEN,
            "DDAS_INGEST_CONSUMER_GROUP": f"e2e-ingest-{tag}",
            "DDAS_INGEST_CHUNK_SIZE": "200",
            "DDAS_INGEST_RELAY_POLL_S": "0.05",
            "DDAS_INGEST_GRACEFUL_TIMEOUT_S": "5",
        },
        tmp_path / "ingest.log",
    )
    validate = Process(
        "validate",
        base
        | {
            "DDAS_VALIDATE_LOG_LEVEL": "DEBUG",
            "DDAS_VALIDATE_HTTP_PORT": "0",
            "DDAS_VALIDATE_TOPIC": run_topics["chunks"],
            "DDAS_VALIDATE_CONSUMER_GROUP": f"e2e-validate-{tag}",
            "DDAS_VALIDATE_GRACEFUL_TIMEOUT_S": "5",
        },
        tmp_path / "validate.log",
    )
    services.extend([ingest.start(), validate.start()])
    url = await ingest.ready()
    await validate.ready()

    token = await add_supplier(db, "E2E", "End to end", ["10000001"])
    answers = []
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.post(
            "/v1/leveringen", content=raw, headers={**headers, "Content-Type": "application/json"}
        )
        answers.append(response.text)
        assert response.status_code == 202, response.text
        assert response.json()["chunks"] == 4
        levering_id = uuid.UUID(response.json()["id"])
        deadline = time.monotonic() + 45
        status: dict[str, Any] = {}
        while time.monotonic() < deadline:
            response = await client.get(f"/v1/leveringen/{levering_id}", headers=headers)
            status = response.json()
            if status["bevindingen"] is not None:
                answers.append(response.text)
                break
            await asyncio.sleep(0.1)
    assert status["state"] == "gevalideerd", status
    assert ingest.stop() == 0
    assert validate.stop() == 0

    # What validate stored is `ddas check`'s outcome on the raw file.
    expected = check_file(path)
    row = await db.fetchrow(
        "SELECT l.state, v.uitkomst, v.tabellen FROM leveringen l "
        "JOIN validatie v ON v.levering_id = l.id WHERE l.id = $1",
        levering_id,
    )
    assert row["state"] == row["uitkomst"] == "gevalideerd"
    assert json.loads(row["tabellen"]) == json.loads(json.dumps(expected.totalen.as_dict()))
    findings = await db.fetch(
        "SELECT code, ernst, pointer, message FROM bevindingen WHERE levering_id = $1 "
        "ORDER BY fase, levering_index, traject_index, volgnummer",
        levering_id,
    )
    assert [tuple(f) for f in findings] == [
        (f.code, str(f.ernst), f.pointer, f.message) for f in expected.findings
    ]

    # Everything the run left behind.
    used = [run_topics["inbound"], run_topics["chunks"], topics.LEVERINGEN]
    topic_names = [t for name in used for t in (name, dead_letter(name))]
    async with kafka_admin(kafka_settings) as admin:
        assert not {t for t in await admin.list_topics() if tag in t} - set(topic_names)
    corpus = await collect(db, schema, kafka_settings, topic_names, [ingest.log, validate.log])
    corpus["the API's answers"] = "\n".join(answers)

    # The collector saw the run: 4 chunks with 750 pseudonymised trajectories (953 clients),
    # the lifecycle event, the stored facts, the logs.
    chunks = (await read_topics(kafka_settings, [run_topics["chunks"]]))[run_topics["chunks"]]
    chunk_values = [json.loads(r.value) for r in chunks]
    assert len(chunk_values) == 4
    assert sum(len(c["trajecten"]) for c in chunk_values) == 750
    assert corpus["topic ddas.leveringen.v1"].count(str(levering_id)) >= 1
    # The 750 trajectories' facts, in the chunks' rows, decoded: every pseudonym among them.
    facts = await stored_facts(db, levering_id)
    assert len(facts) == 750
    assert all(bsn in corpus["table validatie_chunks"] for _, feit in facts for bsn in feit[2])
    assert "gevalideerd" in corpus["log validate.log"]
    assert all(e in corpus["table levering_contacten"] for e in needles.emails)

    assert leaks(corpus, needles) == []

    # The collector finds a planted leak of each kind, wherever it is put.
    await plant_and_find(db, schema, kafka_settings, tmp_path, needles, doc)


async def plant_and_find(
    conn: asyncpg.Connection,
    schema: str,
    kafka: KafkaSettings,
    tmp_path: Path,
    needles: Needles,
    doc: dict[str, Any],
) -> None:
    client = doc["leveringen"][0]["schuldhulptrajecten"][0]["client"][0]
    bsn = client["Burgerservicenummer"]
    contact = doc["leveringen"][0]["aanleverende_organisatie"]["contactpersonen"][0]
    topic = f"e2e-plant-{uuid.uuid4().hex[:10]}"
    await create_topics([topic], settings=kafka)
    try:
        producer = AIOKafkaProducer(**kafka.to_aiokafka_params(), compression_type="gzip")
        await producer.start()
        try:  # a gzip-compressed MessagePack value inside a gzip-compressed batch
            body = gzip.compress(msgspec.msgpack.encode({"bsn": int(bsn)}))
            await producer.send_and_wait(topic, body, key=b"k", headers=[("h", b"x")])
        finally:
            await producer.stop()
        await conn.execute(f'CREATE TABLE "{schema}".zz_plant (body bytea, datum date)')
        await conn.execute(
            f'INSERT INTO "{schema}".zz_plant VALUES ($1, $2)',
            gzip.compress(json.dumps({"naam": contact["naam"]}).encode()),
            datetime.date.fromisoformat(client["Geboortedatum"]),
        )
        log = tmp_path / "planted.log"
        log.write_text(f"INFO something: postcode={client['Postcode']} mail={contact['email']}\n")
        corpus = await collect(conn, schema, kafka, [topic], [log])
        found = {(place, kind) for place, kind, _ in leaks(corpus, needles)}
        assert {
            (f"topic {topic}", "BSN"),
            ("table zz_plant", "contact name"),
            ("table zz_plant", "Geboortedatum"),
            ("log planted.log", "Postcode"),
            ("log planted.log", "contact e-mail"),
        } <= found, found
        # A BSN inside a longer number is another number; in its 8-digit form it is a leak.
        eight = Needles()
        eight.add_bsn("012345672")
        assert leaks({"x": "id 9012345672 and 12345672"}, eight) == [
            ("x", "BSN (8 digits)", "12345672")
        ]
    finally:
        await conn.execute(f'DROP TABLE IF EXISTS "{schema}".zz_plant')
        await delete_topics([topic], settings=kafka)
