"""The publish service as a real process (`python -m services.publish`), killed with SIGKILL
between recording an approval and publishing it: after the restart the statistics are published
exactly once (one version, one set of rows, one event, one audit row), and a further restart
publishes nothing again.

The window between the two is the cooling-off time (`DDAS_PUBLISH_BEDENKTIJD_S`): the approval
is committed (`goedgekeurd`) and answered, and the publication waits for it to pass.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest

from ddas.registry import add_organisation_token, add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from tests.processes import Process, clean_environment

from .conftest import APP_750, ORG, Env, oor_of, read_topic, until
from .test_gate import PERIODE, expected_cells

pytestmark = pytest.mark.integration


async def test_killed_between_approval_and_publication_publishes_once_after_restart(
    tmp_path: Path,
    db: asyncpg.Connection,
    db_settings: DatabaseSettings,
    kafka_settings: KafkaSettings,
    own_topics: dict[str, str],
    processes: list[Process],
) -> None:
    environment = clean_environment() | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DATABASE_URL": db_settings.url,
        "DATABASE_SEARCH_PATH": db_settings.search_path,
        "DDAS_PUBLISH_HTTP_PORT": "0",
        "DDAS_PUBLISH_RAPPORTEN_TOPIC": own_topics["rapporten"],
        "DDAS_PUBLISH_LEVERINGEN_TOPIC": own_topics["leveringen"],
        "DDAS_PUBLISH_STATISTIEKEN_TOPIC": own_topics["statistieken"],
        "DDAS_PUBLISH_CONSUMER_GROUP": f"crash-{db_settings.search_path[-10:]}",
        "DDAS_PUBLISH_BEDENKTIJD_S": "3",
        "DDAS_PUBLISH_PUBLISH_POLL_S": "0.2",
        "DDAS_PUBLISH_NOTIFICATIONS": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "publish.log"
    first = Process("publish", environment, log).start()
    processes.append(first)
    url = await first.ready()

    # the delivery, reported; its report taken in by the running process
    env = Env(None, db, db_settings.search_path, db_settings, kafka_settings,
              own_topics["rapporten"], own_topics["leveringen"], own_topics["statistieken"])  # fmt: skip
    token = await add_organisation_token(db, ORG)
    await add_supplier(db, "LEV", "Leverancier", [ORG])
    levering_id = await env.levering("rapport_gereed", periode=PERIODE)
    oor = oor_of(APP_750)
    await env.rapport(levering_id, oor)

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        r = await client.post(
            f"/v1/leveringen/{levering_id}/goedkeuring",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200 and r.json()["state"] == "goedgekeurd"
    first.kill()  # the approval is recorded; its publication is not

    assert await env.state(levering_id) == "goedgekeurd"
    assert await db.fetchval("SELECT count(*) FROM statistieken") == 0
    assert await db.fetchval("SELECT count(*) FROM statistiek_versies") == 0

    second = Process("publish", environment, log).start()
    processes.append(second)
    await second.ready()
    await env.wait_state(levering_id, "gepubliceerd", timeout=60)

    async def published_once() -> None:
        assert await env.stored_cells(*PERIODE) == expected_cells(oor)
        assert await db.fetchval("SELECT count(*) FROM statistiek_versies") == 1
        gemeenten = len({c[0] for c in expected_cells(oor)}) - 1  # without "totaal"
        assert await db.fetchval("SELECT count(*) FROM publicatie_bijdragen") == gemeenten
        assert (
            await db.fetchval(
                "SELECT count(*) FROM audit_log WHERE actie = 'levering.gepubliceerd' "
                "AND levering_id = $1",
                levering_id,
            )
            == 1
        )
        assert (
            await db.fetchval(
                "SELECT count(*) FROM outbox WHERE topic = $1", own_topics["statistieken"]
            )
            == 1
        )

    await published_once()
    records = await until(lambda: read_topic(kafka_settings, own_topics["statistieken"]))
    assert len({dict(r.headers)["ddas-event-id"] for r in records}) == 1

    # a graceful restart publishes nothing again
    assert second.stop() == 0
    third = Process("publish", environment, log).start()
    processes.append(third)
    await third.ready()
    await asyncio.sleep(2.0)
    await published_once()
    assert third.stop() == 0
