"""The report service in this process, on the real broker and database: validate's event in, the
report stored, the delivery `rapport_gereed`, the `Rapport` message on ddas.rapporten.v1, the
e-mail at a real SMTP server and the signed webhook at a real HTTP server; the API for the
supplier and the organisation only, in three formats, with problem documents otherwise; the
`ddas report` and `ddas webhook` commands; poison events dead-lettered."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from ddas.deadletter import ERROR_CLASS
from ddas.messaging import create_topics
from ddas.notify import NotifySettings
from ddas.pipeline import topics
from ddas.pipeline.events import decode_rapport
from ddas.pipeline.topics import dead_letter
from ddas.registry import add_organisation_token
from ddas.settings import DatabaseSettings, KafkaSettings
from services.report.main import ReportService, create_app
from services.report.settings import ReportSettings
from tests.domain.test_tables import FILE_750
from tests.report.conftest import (
    Delivery,
    WebhookReceiver,
    free_port,
    generated,
    levering_event,
    record_delivery,
)
from tests.validate.kafka_helpers import publish, read_all, read_keyed, wait_for_state

pytestmark = pytest.mark.integration

DDAS = str(Path(sys.executable).with_name("ddas"))


@pytest.fixture
async def topic(new_topic: Callable[..., Awaitable[str]], kafka_settings: KafkaSettings) -> str:
    name = await new_topic(1)
    await create_topics(
        [dead_letter(name), topics.RAPPORTEN, topics.LEVERINGEN], settings=kafka_settings
    )
    return name


@pytest.fixture
async def service(
    kafka_settings: KafkaSettings, db_settings: DatabaseSettings, topic: str, smtp: Any
) -> AsyncIterator[ReportService]:
    controller, _ = smtp
    app = create_app(
        ReportSettings(
            kafka=kafka_settings,
            database=db_settings,
            topic=topic,
            consumer_group=f"report-{uuid.uuid4().hex[:8]}",
            http_port=0,
            base_url="https://rapport.ddas.example",
            retry_attempts=2,
            retry_backoff_s=0.05,
            notify=NotifySettings(
                smtp_host="127.0.0.1", smtp_port=controller.port, poll_s=0.1, backoff_base_s=0.1
            ),
        )
    )
    await app.start()
    try:
        yield app
    finally:
        await app.stop()


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        DDAS,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


async def test_a_validated_delivery_is_reported_served_and_notified(
    service: ReportService,
    kafka_settings: KafkaSettings,
    db_settings: DatabaseSettings,
    topic: str,
    db: asyncpg.Connection,
    validated: Callable[..., Awaitable[Delivery]],
    receiver: WebhookReceiver,
    smtp: Any,
    tmp_path: Path,
) -> None:
    _, inbox = smtp
    delivery = await validated(FILE_750.read_bytes(), contacts=("oor@delft.example",))
    db_env = {"DATABASE_URL": db_settings.url, "DATABASE_SEARCH_PATH": db_settings.search_path}
    code, secret, err = await run_cli("webhook", "add", "0503", receiver.url, env=db_env)
    assert code == 0, err
    receiver.secret = secret.strip()
    assert "Bewaar dit geheim" in err

    # before the report: 409 with the state
    url = f"{service.url}/v1/leveringen/{delivery.id}/rapport"
    auth = {"Authorization": f"Bearer {delivery.org_token}"}
    async with httpx.AsyncClient(timeout=30) as http:
        early = await http.get(url, headers=auth)
    assert early.status_code == 409
    assert early.headers["content-type"] == "application/problem+json"
    assert "gevalideerd" in early.json()["detail"]

    await publish(
        kafka_settings, topic, [(str(delivery.id), await levering_event(db, delivery.id))]
    )
    assert await wait_for_state(db, delivery.id, not_state="gevalideerd") == "rapport_gereed"

    # the message for publish, relayed to ddas.rapporten.v1
    record = await read_keyed(kafka_settings, topics.RAPPORTEN, str(delivery.id))
    rapport = decode_rapport(record.value)
    assert rapport.versie == 1 and rapport.oor["tabellen"]["totaal"]["trajecten"] == 750

    # the notifications: an e-mail at the SMTP server, a verified webhook at the HTTP server
    async def sent() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) = 2 FROM notificaties WHERE status = 'verzonden' "
                "AND levering_id = $1",
                delivery.id,
            )
        )

    await wait_for(sent)
    ((_, rcpts, mail),) = inbox.messages
    assert rcpts == ["oor@delft.example"]
    assert "Op-orde-rapport klaar voor Delft" in mail["Subject"]
    text = mail.get_content()
    assert "Trajecten:           750" in text
    assert f"https://rapport.ddas.example/v1/leveringen/{delivery.id}/rapport" in text
    (hook,) = receiver.received
    assert hook.verified is None
    body = json.loads(hook.body)
    assert body["type"] == "levering.rapport_gereed"
    assert body["data"]["levering_id"] == str(delivery.id)
    assert body["data"]["trajecten"] == 750 and body["data"]["versie"] == 1

    # the API: the organisation and the supplier, three formats
    async with httpx.AsyncClient(timeout=30) as http:
        as_json = await http.get(url, headers=auth)
        assert as_json.status_code == 200
        assert as_json.headers["content-type"] == "application/json"
        assert as_json.json() == rapport.oor
        assert as_json.headers["x-rapport-versie"] == "1"
        supplier = {"Authorization": f"Bearer {delivery.supplier_token}"}
        html = await http.get(url, headers={**supplier, "Accept": "text/html,*/*;q=0.8"})
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "<svg" in html.text and "Op-orde-rapport" in html.text
        as_csv = await http.get(url, params={"formaat": "csv"}, headers=supplier)
        assert as_csv.headers["content-type"] == "application/zip"
        with zipfile.ZipFile(io.BytesIO(as_csv.content)) as z:
            assert "tabel1_trajecten_clienten.csv" in z.namelist()
        csv_accept = await http.get(url, headers={**supplier, "Accept": "text/csv"})
        assert csv_accept.headers["content-type"] == "application/zip"

        # what is refused, as problem documents
        other = await add_organisation_token(db, "0518")
        cases = [
            (url, {}, 401),
            (url, {"Authorization": "Bearer nope"}, 401),
            (url, {"Authorization": f"Bearer {other}"}, 403),
            (f"{service.url}/v1/leveringen/{uuid.uuid4()}/rapport", auth, 404),
            (f"{service.url}/v1/leveringen/niet-een-id/rapport", auth, 404),
            (f"{url}?formaat=pdf", auth, 400),
            (url, {**auth, "Accept": "image/png"}, 406),
        ]
        for where, headers, status in cases:
            answer = await http.get(where, headers=headers)
            assert answer.status_code == status, (where, headers)
            assert answer.headers["content-type"] == "application/problem+json"
            problem = answer.json()
            assert problem["status"] == status and problem["detail"] and problem["title"]
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await http.get(f"{service.url}{path}")).status_code == 200
        metrics = (await http.get(f"{service.url}/metrics")).text
        assert 'ddas_report_events_total{outcome="reported"}' in metrics
        assert "ddas_notify_verzonden_total" in metrics
    refusals = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE levering_id = $1 AND uitkomst = 'geweigerd'",
        delivery.id,
    )
    assert refusals >= 1  # the 403

    # the CLI against the API
    env = {"DDAS_REPORT_URL": service.url, "DDAS_TOKEN": delivery.org_token}
    code, out, err = await run_cli("report", str(delivery.id), "--json", env=env)
    assert code == 0, err
    assert json.loads(out) == rapport.oor
    page = tmp_path / "oor.html"
    code, out, err = await run_cli("report", str(delivery.id), "--html", str(page), env=env)
    assert code == 0, err
    assert "<svg" in page.read_text(encoding="utf-8")
    code, out, err = await run_cli(
        "report", str(delivery.id), "--csv", str(tmp_path / "csv"), env=env
    )
    assert code == 0, err
    assert (
        (tmp_path / "csv" / "gestarte_fases.csv")
        .read_text(encoding="utf-8-sig")
        .startswith("gemeentecode;gemeente;aanmelding")
    )
    code, out, err = await run_cli("report", str(delivery.id), env=env)
    assert code == 0 and "trajecten         750" in out
    code, out, err = await run_cli("report", str(uuid.uuid4()), env=env)
    assert code == 1 and "404 Levering onbekend" in err
    code, out, err = await run_cli(
        "report",
        str(delivery.id),
        env={**env, "DDAS_REPORT_URL": f"http://127.0.0.1:{free_port()}"},
    )
    assert code == 2 and "niet bereikbaar" in err


async def test_a_poison_event_is_dead_lettered_and_the_partition_flows_on(
    service: ReportService,
    kafka_settings: KafkaSettings,
    topic: str,
    db: asyncpg.Connection,
    validated: Callable[..., Awaitable[Delivery]],
) -> None:
    delivery = await validated(generated(trajecten=100, seed=3))
    await publish(
        kafka_settings,
        topic,
        [
            (b"x", b"{not json"),
            (b"y", b'{"event_id": "1"}'),
            (str(delivery.id), await levering_event(db, delivery.id)),
        ],
    )
    assert await wait_for_state(db, delivery.id, not_state="gevalideerd") == "rapport_gereed"
    dead = await read_all(kafka_settings, dead_letter(topic), 2)
    assert [r.value for r in dead] == [b"{not json", b'{"event_id": "1"}']
    assert all(dict(r.headers)[ERROR_CLASS].startswith(b"msgspec.") for r in dead)


async def test_other_states_are_ignored_and_a_replaced_delivery_is_not_reported(
    service: ReportService,
    kafka_settings: KafkaSettings,
    topic: str,
    db: asyncpg.Connection,
    validated: Callable[..., Awaitable[Delivery]],
) -> None:
    replaced = await validated(generated(trajecten=20, seed=4))
    event = await levering_event(db, replaced.id)
    later = await record_delivery(db, generated(trajecten=20, seed=5))
    await db.execute(
        "UPDATE leveringen SET state = 'vervangen', vervangen_door = $2 WHERE id = $1",
        replaced.id,
        later.id,
    )
    other = json.loads(event)
    other["state"] = "goedgekeurd"
    other["event_id"] = str(uuid.uuid4())
    await publish(
        kafka_settings,
        topic,
        [(str(replaced.id), json.dumps(other).encode()), (str(replaced.id), event)],
    )

    async def handled() -> bool:
        return bool(
            await db.fetchval(
                "SELECT count(*) FROM processed_events WHERE consumer = 'report' AND event_id = $1",
                uuid.UUID(json.loads(event)["event_id"]),
            )
        )

    await wait_for(handled)
    assert await db.fetchval("SELECT count(*) FROM rapporten") == 0
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", replaced.id) == (
        "vervangen"
    )
