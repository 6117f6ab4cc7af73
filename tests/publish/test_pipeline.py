"""The whole path with the four real services as processes (`python -m services.<name>`) on the
real broker and database:

- submit (ingest) -> gevalideerd (validate) -> rapport_gereed (report) -> goedgekeurd (the
  organisation, publish's API) -> gepubliceerd (publish), in that order in the audit log, with
  the published statistics (table, API, event) equal to the disclosure-protected figures of the
  OOR that report made;
- a second delivery of the same organisation for the same period, submitted while the first
  waits for approval, supersedes it (ingest's `ontvangen` event): the first can no longer be
  approved, and the published statistics hold the second only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import asyncpg
import httpx
import pytest

from ddas.messaging import create_topics, delete_topics
from ddas.pipeline import topics
from ddas.pipeline.topics import dead_letter
from ddas.registry import add_organisation_token, add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from services.publish.model import decode_statistieken
from tests.processes import Process, clean_environment

from .conftest import APP_750, read_topic, until
from .test_gate import expected_cells

pytestmark = pytest.mark.integration

KVK = "10000001"  # the 750 file's organisation


async def test_submit_to_publication_with_the_four_services(
    tmp_path: Path,
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    processes: list[Process],
) -> None:
    tag = uuid.uuid4().hex[:10]
    own = {
        "inbound": f"pp-in-{tag}",
        "chunks": f"pp-chunks-{tag}",
        "statistieken": f"pp-stat-{tag}",
    }
    every = [t for n in own.values() for t in (n, dead_letter(n))]
    await create_topics(every, settings=kafka_settings)
    shared = [topics.LEVERINGEN, topics.RAPPORTEN]
    await create_topics([*shared, *map(dead_letter, shared)], settings=kafka_settings)
    base = clean_environment() | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DATABASE_URL": db_settings.url,
        "DATABASE_SEARCH_PATH": db_settings.search_path,
        "DDAS_TEST_MODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    env = {
        "ingest": {
            "DDAS_INGEST_HTTP_PORT": "0",
            "DDAS_INGEST_INBOUND_TOPIC": own["inbound"],
            "DDAS_INGEST_CHUNK_TOPIC": own["chunks"],
            "DDAS_INGEST_CONSUMER_GROUP": f"pp-ingest-{tag}",
            "DDAS_INGEST_CHUNK_SIZE": "250",
            "DDAS_INGEST_RELAY_POLL_S": "0.05",
            "DDAS_INGEST_WORKERS": "0",
        },
        "validate": {
            "DDAS_VALIDATE_HTTP_PORT": "0",
            "DDAS_VALIDATE_TOPIC": own["chunks"],
            "DDAS_VALIDATE_CONSUMER_GROUP": f"pp-validate-{tag}",
        },
        "report": {
            "DDAS_REPORT_HTTP_PORT": "0",
            "DDAS_REPORT_CONSUMER_GROUP": f"pp-report-{tag}",
            "DDAS_REPORT_NOTIFICATIONS": "false",
        },
        "publish": {
            "DDAS_PUBLISH_HTTP_PORT": "0",
            "DDAS_PUBLISH_CONSUMER_GROUP": f"pp-publish-{tag}",
            "DDAS_PUBLISH_STATISTIEKEN_TOPIC": own["statistieken"],
            "DDAS_PUBLISH_PUBLISH_POLL_S": "0.2",
            "DDAS_PUBLISH_NOTIFICATIONS": "false",
        },
    }
    try:
        for name, extra in env.items():
            processes.append(Process(name, base | extra, tmp_path / f"{name}.log").start())
        ingest, _, report, publish = [
            await p.ready() if p.name != "validate" else "" for p in processes
        ]
        await _validate_ready(tmp_path / "validate.log")

        supplier = await add_supplier(db, "PP", "Pipeline", [KVK])
        org = await add_organisation_token(db, KVK)
        raw_a = APP_750.read_bytes()
        doc = json.loads(raw_a)
        doc["leveringen"][0]["schuldhulptrajecten"].pop()  # a corrected second delivery
        raw_b = json.dumps(doc).encode()

        async with httpx.AsyncClient(timeout=60) as client:

            async def submit(raw: bytes) -> uuid.UUID:
                r = await client.post(
                    f"{ingest}/v1/leveringen",
                    content=raw,
                    headers={
                        "Authorization": f"Bearer {supplier}",
                        "Content-Type": "application/json",
                    },
                )
                assert r.status_code == 202, r.text
                return uuid.UUID(r.json()["id"])

            async def state(levering_id: uuid.UUID) -> str:
                s: str = await db.fetchval(
                    "SELECT state FROM leveringen WHERE id = $1", levering_id
                )
                return s

            async def wait(levering_id: uuid.UUID, wanted: str) -> None:
                async def check() -> bool:
                    return await state(levering_id) == wanted

                await until(check, 120)

            def as_org() -> dict[str, str]:
                return {"Authorization": f"Bearer {org}"}

            a = await submit(raw_a)
            await wait(a, "rapport_gereed")

            # the second delivery supersedes the first, which can then not be approved
            b = await submit(raw_b)
            await wait(a, "vervangen")
            assert await db.fetchval("SELECT vervangen_door FROM leveringen WHERE id = $1", a) == b
            r = await client.post(f"{publish}/v1/leveringen/{a}/goedkeuring", headers=as_org())
            assert r.status_code == 409, r.text
            await wait(b, "rapport_gereed")

            # the supplier cannot approve; the organisation can
            r = await client.post(
                f"{publish}/v1/leveringen/{b}/goedkeuring",
                headers={"Authorization": f"Bearer {supplier}"},
            )
            assert r.status_code == 403
            r = await client.post(f"{publish}/v1/leveringen/{b}/goedkeuring", headers=as_org())
            assert r.status_code == 200 and r.json()["state"] in ("goedgekeurd", "gepubliceerd")
            await wait(b, "gepubliceerd")

            # the report that report made, and the statistics: its protected figures
            r = await client.get(f"{report}/v1/leveringen/{b}/rapport", headers=as_org())
            assert r.status_code == 200
            expected = expected_cells(r.json())
            r = await client.get(
                f"{publish}/v1/statistieken", params={"periode": "2025-01-01/2025-12-31"}
            )
            assert r.status_code == 200
            api = {
                (g["gemeentecode"], t, k): (
                    None if c["waarde"] is None else float(c["waarde"]),
                    c["status"],
                )
                for g in r.json()["gemeenten"]
                for t, kolommen in g["tabellen"].items()
                for k, c in kolommen.items()
            }
            assert api == expected
            assert expected[("totaal", "trajecten", "trajecten")] == (750.0, "gepubliceerd")  # 749

        # the path, in order, in the audit log
        path = await db.fetch(
            "SELECT actie FROM audit_log WHERE levering_id = $1 AND uitkomst IN ('ok', 'ontvangen') "
            "AND actie LIKE 'levering.%' ORDER BY id",
            b,
        )
        assert [r["actie"] for r in path] == [
            "levering.aangeboden",
            "levering.gevalideerd",
            "levering.rapport_gereed",
            "levering.goedgekeurd",
            "levering.gepubliceerd",
        ]
        records = await until(lambda: read_topic(kafka_settings, own["statistieken"]))
        assert len(records) == 1
        event = decode_statistieken(records[0].value)
        assert event.aanleiding == str(b)
        assert {
            (c.gemeentecode, c.tabel, c.kolom): (
                None if c.waarde is None else float(c.waarde),
                c.status,
            )
            for c in event.cellen
        } == expected
        for p in processes:
            assert p.stop() == 0, p.name
    finally:
        await delete_topics(every, settings=kafka_settings)


async def _validate_ready(log: Path, timeout: float = 90) -> None:
    async def ready() -> bool:
        return "validate: ready" in log.read_text(errors="replace")

    await until(ready, timeout)
    await asyncio.sleep(0)
