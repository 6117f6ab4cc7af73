"""Kill -9 the report service (a real `python -m services.report` process) while it sends the
notifications: after a restart every notification has been received, each webhook always under
its own fixed webhook-id and each e-mail under its own Message-ID, so that a receiver can
deduplicate the resends; the report itself is made once."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiosmtpd.controller import Controller

from ddas import notify
from ddas.messaging import create_topics
from ddas.pipeline import topics
from ddas.pipeline.topics import dead_letter
from ddas.settings import DatabaseSettings, KafkaSettings
from tests.processes import Process
from tests.report.conftest import Delivery, Inbox, WebhookReceiver, generated, levering_event
from tests.validate.kafka_helpers import publish, wait_for_state

pytestmark = pytest.mark.integration


async def test_kill_9_while_sending_then_every_notification_arrives_under_its_own_id(
    kafka_settings: KafkaSettings,
    db_settings: DatabaseSettings,
    new_topic: Callable[..., Awaitable[str]],
    db: asyncpg.Connection,
    validated: Callable[..., Awaitable[Delivery]],
    receiver: WebhookReceiver,
    smtp: tuple[Controller, Inbox],
    tmp_path: Path,
) -> None:
    controller, inbox = smtp
    topic = await new_topic(1)
    await create_topics(
        [dead_letter(topic), topics.RAPPORTEN, topics.LEVERINGEN], settings=kafka_settings
    )
    delivery = await validated(generated(trajecten=300, seed=8), contacts=("a@gem.example",))
    secrets = {(await notify.add_webhook(db, "0503", receiver.url))[1] for _ in range(3)}
    assert len(secrets) == 3
    receiver.secrets = sorted(secrets)
    receiver.delay = 8.0  # the first deliveries hang: the service is killed while sending
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_settings.bootstrap_servers,
        "DATABASE_URL": db_settings.url,
        "DATABASE_SEARCH_PATH": db_settings.search_path,
        "DDAS_REPORT_TOPIC": topic,
        "DDAS_REPORT_CONSUMER_GROUP": f"report-{uuid.uuid4().hex[:8]}",
        "DDAS_REPORT_HTTP_PORT": "0",
        "DDAS_REPORT_SESSION_TIMEOUT_MS": "6000",
        "DDAS_NOTIFY_SMTP_PORT": str(controller.port),
        "DDAS_NOTIFY_LEASE_S": "3",
        "DDAS_NOTIFY_POLL_S": "0.2",
        "DDAS_NOTIFY_WEBHOOK_TIMEOUT_S": "20",
    }
    service = Process("report", {**os.environ, **env}, tmp_path / "report.log")
    service.start()
    try:
        await publish(
            kafka_settings, topic, [(str(delivery.id), await levering_event(db, delivery.id))]
        )
        assert await wait_for_state(db, delivery.id, not_state="gevalideerd") == "rapport_gereed"
        await asyncio.wait_for(receiver.got_one.wait(), 60)
        await asyncio.sleep(0.5)  # the other webhooks of the batch are in flight too
        service.kill()  # mid-send: the webhooks wait for their answers, nothing is marked yet
        in_flight = len(receiver.received)
        assert in_flight >= 1
        assert (
            await db.fetchval("SELECT count(*) FROM notificaties WHERE status = 'verzonden'") == 0
        )

        receiver.delay = 0.0
        service.start()  # a new process; the lease of the dead one runs out, then it resends
        deadline = time.monotonic() + 90
        while await db.fetchval("SELECT count(*) FROM notificaties WHERE status <> 'verzonden'"):
            assert time.monotonic() < deadline, (tmp_path / "report.log").read_text()[-3000:]
            await asyncio.sleep(0.2)
    finally:
        service.stop()

    rows = await db.fetch("SELECT kanaal, bericht_id FROM notificaties ORDER BY id")
    assert sorted(r["kanaal"] for r in rows) == ["email", "webhook", "webhook", "webhook"]
    hook_ids = {r["bericht_id"] for r in rows if r["kanaal"] == "webhook"}
    got: dict[str, list[Any]] = {}
    for r in receiver.received:
        got.setdefault(r.headers["webhook-id"], []).append(r)
    assert set(got) == hook_ids  # every webhook arrived, under no other id
    assert all(r.verified is None for r in receiver.received)  # every copy validly signed
    assert sum(len(v) for v in got.values()) > len(hook_ids)  # some were sent twice...
    assert len(receiver.received) == len(hook_ids) + in_flight  # ...exactly the in-flight ones
    for copies in got.values():  # a resend is the same message (same body) under the same id
        assert len({c.body for c in copies}) == 1
    mail_ids = [msg["Message-ID"] for _, _, msg in inbox.messages]
    (mail_row,) = [r for r in rows if r["kanaal"] == "email"]
    assert set(mail_ids) == {mail_row["bericht_id"]}  # once, or again under the same id
    # the report was made once, though its event may have been delivered again
    assert await db.fetchval("SELECT count(*) FROM rapporten") == 1
