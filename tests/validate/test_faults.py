"""The validate service as real processes (`python -m services.validate`) on the real broker and
database, under faults: killed with SIGKILL in the middle of a large delivery and started again,
and two processes in one consumer group sharing a delivery. What must hold: the delivery
completes with exactly the figures and findings of `ddas check` (nothing lost, nothing counted
twice), once, and with the op-orde-rapport figures of one pass over the file (the chunks' OOR
parts, each stored once)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ddas.domain.check import CheckResult, check_file
from ddas.messaging import kafka_admin
from ddas.settings import DatabaseSettings, KafkaSettings
from tests.processes import Process, kill_all

from .conftest import one_pass_oor, stored_oor, stored_result
from .helpers import encoded_chunks
from .kafka_helpers import publish, wait_for_state

# The real broker and/or database: `make test-unit` leaves these out.
pytestmark = pytest.mark.integration
NewLevering = Callable[..., Awaitable[uuid.UUID]]


async def metric(process: Process, name: str) -> float:
    """The sum of a counter's samples on a running service's /metrics."""
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    body = (await reader.read()).decode()
    writer.close()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


@pytest.fixture
def processes(
    tmp_path: Path,
    kafka_settings: KafkaSettings,
    db_settings: DatabaseSettings,
) -> Iterator[Callable[[str, str], Process]]:
    """Make validate processes on a topic and group; all stopped at the end."""
    made: list[Process] = []

    def make(topic: str, group: str) -> Process:
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
            "DATABASE_URL": db_settings.url,
            "DATABASE_SEARCH_PATH": db_settings.search_path,
            "DDAS_VALIDATE_TOPIC": topic,
            "DDAS_VALIDATE_CONSUMER_GROUP": group,
            "DDAS_VALIDATE_HTTP_PORT": "0",
            "DDAS_VALIDATE_SESSION_TIMEOUT_MS": "6000",
            "DDAS_VALIDATE_HEARTBEAT_INTERVAL_MS": "1000",
            "DDAS_VALIDATE_RETRY_BACKOFF_S": "0.05",
            "DDAS_VALIDATE_GRACEFUL_TIMEOUT_S": "10",
        }
        process = Process("validate", env, tmp_path / f"validate-{len(made)}.log")
        made.append(process)
        return process

    yield make
    kill_all(made)


@pytest.fixture(scope="module")
def expected_large(large_document: Path) -> CheckResult:
    return check_file(large_document)


@pytest.fixture(scope="module")
def expected_oor_large(large_document: Path) -> dict[str, Any]:
    return one_pass_oor(large_document.read_bytes())


def assert_as_ddas_check(result: dict[str, Any], expected: CheckResult, trajecten: int) -> None:
    assert result["state"] == result["uitkomst"] == "gevalideerd"
    assert result["klaar"] == result["chunks"]
    assert result["facts"] == trajecten  # every trajectory once: none lost, none twice
    assert result["tabellen"] == json.loads(json.dumps(expected.totalen.as_dict()))
    assert result["findings"] == [
        (f.code, str(f.ernst), f.pointer, f.message) for f in expected.findings
    ]


async def wait_for_stable_group(
    settings: KafkaSettings, group: str, members: int, timeout: float = 60.0
) -> None:
    deadline = time.monotonic() + timeout
    async with kafka_admin(settings) as admin:
        while time.monotonic() < deadline:
            (response,) = await admin.describe_consumer_groups([group])
            _error, _group, state, _ptype, _protocol, found, *_ = response.groups[0]
            if state == "Stable" and len(found) == members:
                return
            await asyncio.sleep(0.2)
    raise AssertionError(f"group {group} did not settle with {members} members")


async def test_killed_mid_delivery_and_restarted_it_completes_with_exactly_the_figures(
    processes: Callable[[str, str], Process],
    chunk_topic: Callable[[int], Awaitable[str]],
    kafka_settings: KafkaSettings,
    db: asyncpg.Connection,
    new_levering: NewLevering,
    large_document: Path,
    expected_large: CheckResult,
    expected_oor_large: dict[str, Any],
) -> None:
    topic = await chunk_topic(2)
    group = f"validate-{uuid.uuid4().hex[:8]}"
    levering_id = await new_levering()
    chunks = encoded_chunks(large_document, levering_id, 500)
    n = len(chunks)
    assert n > 30

    first = processes(topic, group).start()
    await first.ready()
    await publish(kafka_settings, topic, chunks[:30])
    deadline = time.monotonic() + 60
    while (
        klaar := await db.fetchval(
            "SELECT klaar FROM validatie WHERE levering_id = $1", levering_id
        )
    ) is None or klaar < 10:
        assert time.monotonic() < deadline, "validate stored too few chunks"
        await asyncio.sleep(0.02)
    first.kill()  # SIGKILL: no goodbye, mid-chunk most likely
    klaar = await db.fetchval("SELECT klaar FROM validatie WHERE levering_id = $1", levering_id)
    assert 10 <= klaar < n
    assert (await stored_result(db, levering_id))["state"] == "ontvangen"

    await publish(kafka_settings, topic, chunks[30:])
    second = processes(topic, group).start()
    await second.ready()
    assert await wait_for_state(db, levering_id, timeout=90) == "gevalideerd"
    assert_as_ddas_check(await stored_result(db, levering_id), expected_large, 20_000)
    # the report's figures too: each chunk's OOR part stored once, none lost
    assert await stored_oor(db, levering_id) == expected_oor_large
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1
    assert second.stop() == 0  # SIGTERM: a graceful stop


async def test_two_processes_in_one_group_share_a_delivery_and_give_the_result_of_one(
    processes: Callable[[str, str], Process],
    chunk_topic: Callable[[int], Awaitable[str]],
    kafka_settings: KafkaSettings,
    db: asyncpg.Connection,
    new_levering: NewLevering,
    large_document: Path,
    expected_large: CheckResult,
    expected_oor_large: dict[str, Any],
) -> None:
    topic = await chunk_topic(4)
    group = f"validate-{uuid.uuid4().hex[:8]}"
    levering_id = await new_levering()
    pair = [processes(topic, group).start() for _ in range(2)]
    for process in pair:
        await process.ready()
    await wait_for_stable_group(kafka_settings, group, 2)

    chunks = encoded_chunks(large_document, levering_id, 500)
    await publish(kafka_settings, topic, chunks)
    assert await wait_for_state(db, levering_id, timeout=90) == "gevalideerd"
    assert_as_ddas_check(await stored_result(db, levering_id), expected_large, 20_000)
    assert await stored_oor(db, levering_id) == expected_oor_large

    stored = [await metric(p, 'ddas_validate_chunks_total{outcome="stored"}') for p in pair]
    completed = [await metric(p, 'ddas_validate_chunks_total{outcome="completed"}') for p in pair]
    assert all(n > 0 for n in stored), f"one process did all the work: {stored}"
    assert sum(stored) + sum(completed) == len(chunks) and sum(completed) == 1
    assert [p.stop() for p in pair] == [0, 0]
