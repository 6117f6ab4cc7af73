"""Ingest killed (SIGKILL) in the middle of a submission, then the supplier's retry (issue 4,
docs/pipeline.md "A submission").

Ingest publishes a delivery's chunks while it is still pseudonymising, and records the delivery
only once every chunk is acknowledged. `python -m services.ingest` and
`python -m services.validate` run as real processes on the real broker and database; ingest is
killed as soon as the first chunks of a 30,000-trajectory delivery are on the topic. Then:

- nothing of that submission is validated or counted: no delivery row, no completed
  validation, no lifecycle event, no audit row, only staged chunks that nothing reads;
- the supplier submits the same file again to a restarted ingest: that is one delivery, with the
  id the chunks were staged under, and its stored figures are exactly `ddas check`'s (no chunk
  lost, none counted twice).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from ddas.domain.check import check_file
from ddas.generate import Options, generate
from ddas.pipeline import topics
from ddas.registry import add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from tests.e2e.test_no_raw_bsn import run_topics, services  # noqa: F401 (fixtures)
from tests.processes import Process
from tests.validate.conftest import stored_facts

pytestmark = pytest.mark.integration

TRAJECTEN = 30_000
CHUNK_SIZE = 100


async def _chunks_on_topic(kafka: KafkaSettings, topic: str) -> int:
    """How many messages the topic holds (the sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(**kafka.to_aiokafka_params(), enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(3)]  # run_topics: 3 partitions
        return sum((await consumer.end_offsets(parts)).values())
    finally:
        await consumer.stop()


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


async def test_ingest_killed_mid_submission_leaves_nothing_counted_and_the_retry_is_one_delivery(
    tmp_path: Path,
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    run_topics: dict[str, str],  # noqa: F811
    services: list[Process],  # noqa: F811
) -> None:
    out = io.BytesIO()
    generate(out, Options(trajecten=TRAJECTEN, seed=12, fouten=0.01, leveringen=2))
    path = tmp_path / "levering.json"
    path.write_bytes(out.getvalue())
    raw = path.read_bytes()
    orgs = sorted({lev["aanleverende_organisatie"]["KvK-nummer"]
                   for lev in json.loads(raw)["leveringen"]})  # fmt: skip
    # A supplier of this run's own: a delivery's id follows from its supplier and content, and
    # the lifecycle topic is shared with earlier runs (in other schemas) of this very test.
    token = await add_supplier(db, f"crash-{run_topics['tag']}", "Crash", orgs)

    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))
    }
    base |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DATABASE_URL": db_settings.url,
        "DATABASE_SEARCH_PATH": db_settings.search_path,
        "DDAS_TEST_MODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    tag = run_topics["tag"]
    ingest_env = base | {
        "DDAS_INGEST_HTTP_PORT": "0",
        "DDAS_INGEST_KAFKA_INBOUND": "false",
        "DDAS_INGEST_CHUNK_TOPIC": run_topics["chunks"],
        "DDAS_INGEST_CONSUMER_GROUP": f"crash-ingest-{tag}",
        "DDAS_INGEST_CHUNK_SIZE": str(CHUNK_SIZE),
        "DDAS_INGEST_WORKERS": "0",
        "DDAS_INGEST_RELAY_POLL_S": "0.05",
        "DDAS_INGEST_GRACEFUL_TIMEOUT_S": "5",
    }
    validate = Process(
        "validate",
        base
        | {
            "DDAS_VALIDATE_HTTP_PORT": "0",
            "DDAS_VALIDATE_TOPIC": run_topics["chunks"],
            "DDAS_VALIDATE_CONSUMER_GROUP": f"crash-validate-{tag}",
            "DDAS_VALIDATE_GRACEFUL_TIMEOUT_S": "5",
            "DDAS_VALIDATE_SWEEP_INTERVAL_S": "0.5",
        },
        tmp_path / "validate.log",
    )
    first = Process("ingest", ingest_env, tmp_path / "ingest-1.log")
    services.extend([first.start(), validate.start()])
    url = await first.ready()
    await validate.ready()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    # -- the submission, and ingest killed once its first chunks are on the topic -------------
    async def post() -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            return await client.post("/v1/leveringen", content=raw, headers=headers)

    submission = asyncio.ensure_future(post())
    await _until(
        lambda: _published_some(kafka_settings, run_topics["chunks"]),
        60,
        "the first chunks on the topic",
    )
    assert first.proc is not None
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    with pytest.raises(httpx.TransportError):
        await submission  # no answer: the supplier does not know it was taken in (it was not)
    published = await _chunks_on_topic(kafka_settings, run_topics["chunks"])
    assert 0 < published < TRAJECTEN // CHUNK_SIZE, published

    # Validate stores what was published, staged, and then nothing more happens to it.
    async def all_staged() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM validatie_chunks") == published)

    await _until(all_staged, 60, "validate stored the published chunks")
    await asyncio.sleep(1.5)  # three sweeps
    assert await db.fetchval("SELECT count(*) FROM leveringen") == 0
    staged = await db.fetchrow("SELECT levering_id, klaar, chunks, voltooid_op FROM validatie")
    assert staged["voltooid_op"] is None and staged["klaar"] == published
    assert staged["chunks"] >= TRAJECTEN // CHUNK_SIZE > published  # 2 leveringen: 301
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0  # no lifecycle event
    assert await db.fetchval("SELECT count(*) FROM audit_log WHERE levering_id IS NOT NULL") == 0
    assert len(await stored_facts(db)) == published * CHUNK_SIZE

    # -- the supplier tries again, at a restarted ingest --------------------------------------
    second = Process("ingest", ingest_env, tmp_path / "ingest-2.log")
    services.append(second.start())
    url = await second.ready()
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        response = await client.post("/v1/leveringen", content=raw, headers=headers)
        assert response.status_code == 202, response.text
        levering_id = uuid.UUID(response.json()["id"])
        assert levering_id == staged["levering_id"]  # the same delivery, the same chunks

        async def validated() -> bool:
            status = (await client.get(f"/v1/leveringen/{levering_id}", headers=headers)).json()
            return bool(status["state"] == "gevalideerd" and status["bevindingen"] is not None)

        await _until(validated, 90, "the retried delivery validated")
    assert second.stop() == 0
    assert validate.stop() == 0

    expected = check_file(path)
    assert await db.fetchval("SELECT count(*) FROM leveringen") == 1
    row = await db.fetchrow(
        "SELECT l.state, v.uitkomst, v.tabellen, v.klaar, v.chunks FROM leveringen l "
        "JOIN validatie v ON v.levering_id = l.id WHERE l.id = $1",
        levering_id,
    )
    assert row["state"] == row["uitkomst"] == "gevalideerd"
    assert row["klaar"] == row["chunks"] == staged["chunks"]
    assert json.loads(row["tabellen"]) == json.loads(json.dumps(expected.totalen.as_dict()))
    assert len(await stored_facts(db)) == TRAJECTEN
    findings = await db.fetch(
        "SELECT code, ernst, pointer, message FROM bevindingen WHERE levering_id = $1 "
        "ORDER BY fase, levering_index, traject_index, volgnummer",
        levering_id,
    )
    assert [tuple(f) for f in findings] == [
        (f.code, str(f.ernst), f.pointer, f.message) for f in expected.findings
    ]
    # One announcement and one validation event for the one delivery.
    events = await db.fetch(
        "SELECT payload->>'state' AS state FROM outbox WHERE topic = $1 ORDER BY id",
        topics.LEVERINGEN,
    )
    assert [e["state"] for e in events] == ["ontvangen", "gevalideerd"]


async def _published_some(kafka: KafkaSettings, topic: str) -> bool:
    return await _chunks_on_topic(kafka, topic) >= 3
