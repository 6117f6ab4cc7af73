"""Ingest and validate together on the real broker and database: the contract of docs/pipeline.md
holds end to end. A delivery submitted over HTTP is pseudonymised, chunked, relayed, checked by
validate chunk by chunk, and completed: validate's stored findings are exactly those of
`ddas check` on the raw file, and its lifecycle event brings the findings summary to the status
endpoint."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import httpx
import pytest

from ddas.domain.check import check_document
from ddas.domain.reader import parse_document
from ddas.messaging import create_topics
from ddas.pipeline import topics
from ddas.registry import add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from services.ingest.main import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.validate.main import create_app as validate_app
from tests.ingest.conftest import EXAMPLES
from tests.ingest.helpers import JSON, auth

pytestmark = pytest.mark.integration


async def test_ingest_then_validate_gives_the_findings_of_ddas_check(
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    new_topic: Callable[..., Awaitable[str]],
) -> None:
    raw = (EXAMPLES / "testbestand_schuldhulpverlening_1500.json").read_bytes()
    chunks = await new_topic(partitions=3)
    await create_topics([f"{chunks}.dlq", topics.LEVERINGEN], settings=kafka_settings)
    tag = uuid.uuid4().hex[:8]
    # A supplier of this run's own: a delivery's id follows from its supplier and content, and
    # the lifecycle topic is shared with earlier runs (in other schemas) of this very test.
    token = await add_supplier(db, f"pipeline-{tag}", "Pipeline", ["10000001"])
    ingest = ingest_app(
        IngestSettings(
            kafka=kafka_settings,
            database=db_settings,
            test_mode=True,
            http_port=0,
            chunk_topic=chunks,
            chunk_size=400,
            kafka_inbound=False,
            consumer_group=f"pipeline-ingest-{tag}",
            relay_poll_s=0.05,
        )
    )
    validate = validate_app(
        kafka=kafka_settings,
        database=db_settings,
        topic=chunks,
        http_port=0,
        consumer_group=f"pipeline-validate-{tag}",
    )
    await ingest.start()
    await validate.start()
    try:
        async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
            response = await client.post("/v1/leveringen", content=raw, headers=auth(token, **JSON))
            assert response.status_code == 202 and response.json()["chunks"] == 4
            levering_id = uuid.UUID(response.json()["id"])
            deadline = time.monotonic() + 60
            status: dict[str, object] = {}
            while time.monotonic() < deadline:
                status = (await client.get(f"/v1/leveringen/{levering_id}",
                                           headers=auth(token))).json()  # fmt: skip
                if status["bevindingen"] is not None:
                    break
                await asyncio.sleep(0.2)
        expected = check_document(parse_document(raw))
        assert status["state"] == "gevalideerd"
        assert status["bevindingen"] == {
            "fouten": expected.fouten,
            "waarschuwingen": expected.waarschuwingen,
            "per_code": {r.code: r.aantal for r in expected.per_regel()},
        }
        stored = await db.fetch(
            "SELECT code, ernst, pointer FROM bevindingen WHERE levering_id = $1", levering_id
        )
        assert sorted(tuple(r) for r in stored) == sorted(
            (f.code, str(f.ernst), f.pointer) for f in expected.findings
        )
    finally:
        await validate.stop()
        await ingest.stop()
