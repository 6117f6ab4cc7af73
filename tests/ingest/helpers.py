"""Reading the broker and the database in the ingest tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from ddas.settings import KafkaSettings

JSON = {"Content-Type": "application/json"}


def auth(token: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **headers}


async def read_topic(
    settings: KafkaSettings, topic: str, expected: int, timeout: float = 20.0
) -> list[ConsumerRecord]:
    """The first `expected` records of a topic, then anything else already there (so that a
    duplicate would show)."""
    consumer = AIOKafkaConsumer(
        topic,
        **settings.to_aiokafka_params(),
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for part in (await consumer.getmany(timeout_ms=300)).values():
                records.extend(part)
        for part in (await consumer.getmany(timeout_ms=500)).values():
            records.extend(part)
    finally:
        await consumer.stop()
    assert len(records) >= expected, f"{len(records)} of {expected} records on {topic}"
    return records


async def wait_published(db: asyncpg.Connection, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not await db.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the outbox was not emptied")


async def table_texts(db: asyncpg.Connection, schema: str) -> dict[str, list[str]]:
    """Every row of every table of the schema, as text (bytea decoded as UTF-8)."""
    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = $1 AND table_type = 'BASE TABLE'",
        schema,
    )
    out: dict[str, list[str]] = {}
    for (table,) in tables:
        rows = await db.fetch(f'SELECT * FROM "{schema}"."{table}"')
        out[table] = [" ".join(_text(v) for v in row.values()) for row in rows]
    return out


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """An RFC 7807 problem document with this status (and problem type)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    doc: dict[str, Any] = response.json()
    assert doc["status"] == status
    assert {"type", "title", "status", "detail"} <= doc.keys()
    assert all(isinstance(doc[k], str) and doc[k] for k in ("type", "title", "detail"))
    assert "Traceback" not in response.text
    if slug is not None:
        assert doc["type"] == f"urn:ddas:probleem:{slug}", doc
    return doc
