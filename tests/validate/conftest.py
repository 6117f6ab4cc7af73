"""Fixtures of the validate tests: deliveries in the database, the stored outcome, documents."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ddas.domain.oor import Oor, OorDeel
from ddas.domain.tables import Periode, Totalen
from ddas.generate import Options, generate
from ddas.messaging import create_topics, delete_topics
from ddas.pipeline import topics
from ddas.pipeline.topics import dead_letter
from ddas.settings import KafkaSettings
from ddas.testing import shared_dir
from services.validate.chunks import KortFeit, decode_kort
from tests.conftest import insert_levering

EXAMPLES = shared_dir() / "ddas/examples/ddas-app"
APP_750 = EXAMPLES / "testbestand_schuldhulpverlening_750.json"


@pytest.fixture
def new_levering(db: asyncpg.Connection) -> Callable[..., Awaitable[uuid.UUID]]:
    """Insert a delivery in state `ontvangen` (what ingest does before it publishes chunks)."""

    async def make(state: str = "ontvangen") -> uuid.UUID:
        return await insert_levering(db, state)

    return make


async def stored_facts(
    conn: asyncpg.Connection, levering_id: uuid.UUID | None = None
) -> list[tuple[int, KortFeit]]:
    """The facts validate stored of a delivery's trajectories (of every delivery: None), in
    file order, each with its levering index: the chunks' MessagePack values, decoded."""
    rows = await conn.fetch(
        "SELECT levering_index, feiten FROM validatie_chunks "
        "WHERE $1::uuid IS NULL OR levering_id = $1 ORDER BY levering_id, levering_index, eerste",
        levering_id,
    )
    return [(r["levering_index"], feit) for r in rows for feit in decode_kort(r["feiten"])]


async def stored_result(conn: asyncpg.Connection, levering_id: uuid.UUID) -> dict[str, Any]:
    """What validate stored of a delivery: state, outcome, tables, findings in order."""
    row = await conn.fetchrow(
        "SELECT l.state, v.uitkomst, v.afkeuring, v.klaar, v.chunks, v.tabellen, v.samenvatting "
        "FROM leveringen l LEFT JOIN validatie v ON v.levering_id = l.id WHERE l.id = $1",
        levering_id,
    )
    assert row is not None
    findings = await conn.fetch(
        "SELECT code, ernst, pointer, message FROM bevindingen WHERE levering_id = $1 "
        "ORDER BY fase, levering_index, traject_index, volgnummer",
        levering_id,
    )
    facts = len(await stored_facts(conn, levering_id))
    return {
        "state": row["state"],
        "uitkomst": row["uitkomst"],
        "afkeuring": row["afkeuring"],
        "klaar": row["klaar"],
        "chunks": row["chunks"],
        "tabellen": json.loads(row["tabellen"]) if row["tabellen"] else None,
        "samenvatting": json.loads(row["samenvatting"]) if row["samenvatting"] else None,
        "findings": [tuple(r) for r in findings],
        "facts": facts,
    }


async def stored_oor(conn: asyncpg.Connection, levering_id: uuid.UUID) -> dict[str, Any]:
    """The OOR the report makes of what validate stored: the chunks' parts merged, with the
    stored tables (as `OorResultaat.as_dict()`)."""
    row = await conn.fetchrow(
        "SELECT periode_start, periode_eind, tabellen::text AS tabellen, chunks FROM validatie "
        "WHERE levering_id = $1",
        levering_id,
    )
    delen = await conn.fetch("SELECT oor FROM validatie_chunks WHERE levering_id = $1", levering_id)
    assert row is not None and len(delen) == row["chunks"]
    oor = Oor(Periode(row["periode_start"], row["periode_eind"]), tabellen=False)
    for deel in delen:
        oor.voeg_toe(OorDeel.decode(deel["oor"]))
    return oor.result(Totalen.from_dict(json.loads(row["tabellen"]))).as_dict()


def one_pass_oor(document: bytes) -> dict[str, Any]:
    """The OOR of a document counted in one pass over its trajectories (`ddas check`'s way)."""
    doc = json.loads(document)
    oor = Oor(Periode(doc["startdatumLevering"], doc["einddatumLevering"]))
    for lev in doc["leveringen"]:
        for t in lev["schuldhulptrajecten"]:
            oor.add(t)
    return oor.result().as_dict()


def generated_document(**options: Any) -> bytes:
    out = io.BytesIO()
    generate(out, Options(**options))
    return out.getvalue()


@pytest.fixture(scope="session")
def large_document(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated delivery of 20,000 trajectories with flaws of every kind (one file per
    session): 40 chunks of 500."""
    path = tmp_path_factory.mktemp("validate") / "groot.json"
    path.write_bytes(generated_document(trajecten=20_000, seed=4, fouten=0.01, leveringen=2))
    return path


@pytest.fixture
async def chunk_topic(
    new_topic: Callable[..., Awaitable[str]], kafka_settings: KafkaSettings
) -> AsyncIterator[Callable[[int], Awaitable[str]]]:
    """Make a chunks topic of this test's own with its dead-letter twin (both deleted at the
    end); the shared events topic is made to exist too."""
    twins: list[str] = []

    async def make(partitions: int = 1) -> str:
        name = await new_topic(partitions)
        await create_topics([dead_letter(name), topics.LEVERINGEN], settings=kafka_settings)
        twins.append(dead_letter(name))
        return name

    yield make
    await delete_topics(twins, settings=kafka_settings)
