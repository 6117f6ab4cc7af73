"""Notifications (ddas.notify) with real receivers: a real SMTP server (aiosmtpd) gets the e-mail,
a real HTTP server gets the webhook and verifies its signature with our `verify`; a receiver that
is down gets the retries, then the failure is recorded and counted; a replayed or tampered
webhook fails `verify`."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import asyncpg
import pytest

from ddas import notify
from tests.report.conftest import (
    Delivery,
    WebhookReceiver,
    free_port,
    generated,
    record_delivery,
)

pytestmark = pytest.mark.integration


def settings(**overrides: Any) -> notify.NotifySettings:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": 1,
        "mail_from": "DDAS <noreply@ddas.example>",
        "backoff_base_s": 0.05,
        "backoff_cap_s": 0.2,
        "max_attempts": 4,
        "lease_s": 30,
        "webhook_timeout_s": 2,
        "smtp_timeout_s": 2,
    }
    values.update(overrides)
    return notify.NotifySettings(**values)


@pytest.fixture
async def delivery(db: asyncpg.Connection) -> Delivery:
    return await record_delivery(
        db,
        generated(trajecten=10, seed=1),
        contacts=("een@gemeente.example", "twee@gemeente.example"),
    )


async def enqueue(db: asyncpg.Connection, levering_id: uuid.UUID) -> int:
    async with db.transaction():
        return await notify.enqueue(
            db,
            levering_id,
            "rapport_gereed",
            onderwerp="Op-orde-rapport klaar",
            tekst="Trajecten: 10",
            data={"trajecten": 10, "op_orde": True},
            link=f"https://ddas.example/v1/leveringen/{levering_id}/rapport",
        )


async def send_until_done(
    sender: notify.Sender, db: asyncpg.Connection, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while await db.fetchval("SELECT count(*) FROM notificaties WHERE status = 'wachtend'"):
        assert time.monotonic() < deadline, "notifications still waiting"
        if not await sender.send_due():
            await asyncio.sleep(0.05)


async def test_email_and_webhook_reach_real_receivers(
    db: asyncpg.Connection,
    pool: asyncpg.Pool,
    delivery: Delivery,
    smtp: Any,
    receiver: WebhookReceiver,
) -> None:
    controller, inbox = smtp
    _, secret = await notify.add_webhook(db, delivery.organisatie, receiver.url)
    receiver.secret = secret
    await notify.add_webhook(db, "9999", receiver.url)  # another organisation's: not used
    assert await enqueue(db, delivery.id) == 3  # two contacts, one webhook

    sender = notify.Sender(pool, settings(smtp_port=controller.port))
    await send_until_done(sender, db)
    await sender.close()

    rows = await db.fetch(
        "SELECT kanaal, ontvanger, status, bericht_id, pogingen FROM notificaties ORDER BY id"
    )
    assert [(r["kanaal"], r["status"], r["pogingen"]) for r in rows] == [
        ("email", "verzonden", 1),
        ("email", "verzonden", 1),
        ("webhook", "verzonden", 1),
    ]
    # the e-mails: one per contact, with the fixed Message-ID, the subject, the text and link
    assert sorted(rcpt for _, rcpts, _ in inbox.messages for rcpt in rcpts) == [
        "een@gemeente.example",
        "twee@gemeente.example",
    ]
    by_to = {msg["To"]: msg for _, _, msg in inbox.messages}
    for row in rows[:2]:
        msg = by_to[row["ontvanger"]]
        assert msg["Message-ID"] == row["bericht_id"]
        assert msg["Subject"] == "Op-orde-rapport klaar"
        assert msg["From"] == "DDAS <noreply@ddas.example>"
        body = msg.get_content()
        assert "Trajecten: 10" in body
        assert f"https://ddas.example/v1/leveringen/{delivery.id}/rapport" in body
    # the webhook: signed, verified by the receiver with our verify, the documented body
    (hook,) = receiver.received
    assert hook.verified is None
    assert hook.headers["webhook-id"] == rows[2]["bericht_id"]
    assert abs(int(hook.headers["webhook-timestamp"]) - time.time()) < 60
    assert hook.headers["webhook-signature"].startswith("v1,")
    assert hook.headers["content-type"] == "application/json"
    payload = json.loads(hook.body)
    assert payload["type"] == "levering.rapport_gereed"
    assert payload["data"] == {"levering_id": str(delivery.id), "trajecten": 10, "op_orde": True}
    assert payload["timestamp"].endswith("+00:00")


async def test_a_receiver_that_is_down_gets_the_retries_then_failure_is_recorded(
    db: asyncpg.Connection, pool: asyncpg.Pool, delivery: Delivery, receiver: WebhookReceiver
) -> None:
    await db.execute("DELETE FROM levering_contacten WHERE levering_id = $1", delivery.id)
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    await notify.add_webhook(db, delivery.organisatie, down)
    await notify.add_webhook(db, delivery.organisatie, receiver.url)
    receiver.status = 503  # up, but failing every time
    assert await enqueue(db, delivery.id) == 2
    failed_before = notify.FAILED.labels("webhook")._value.get()

    sender = notify.Sender(pool, settings(max_attempts=3))
    started = time.monotonic()
    await send_until_done(sender, db)
    await sender.close()

    rows = await db.fetch(
        "SELECT ontvanger, status, pogingen, laatste_fout FROM notificaties ORDER BY id"
    )
    assert [(r["ontvanger"], r["status"], r["pogingen"]) for r in rows] == [
        (down, "mislukt", 3),
        (receiver.url, "mislukt", 3),
    ]
    assert "ConnectError" in rows[0]["laatste_fout"]
    assert rows[1]["laatste_fout"] == "HTTP 503"
    assert len(receiver.received) == 3  # every attempt reached it
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one id, retried
    assert notify.FAILED.labels("webhook")._value.get() == failed_before + 2
    assert time.monotonic() - started >= 0.05 + 0.1  # the backoffs were waited


async def test_smtp_down_then_mail_failure_recorded(
    db: asyncpg.Connection, pool: asyncpg.Pool, delivery: Delivery
) -> None:
    assert await enqueue(db, delivery.id) == 2
    sender = notify.Sender(pool, settings(smtp_port=free_port(), max_attempts=2))
    await send_until_done(sender, db)
    await sender.close()
    rows = await db.fetch("SELECT status, pogingen, laatste_fout FROM notificaties")
    assert {(r["status"], r["pogingen"]) for r in rows} == {("mislukt", 2)}
    assert all(r["laatste_fout"].startswith("SMTP") for r in rows)


def signed(
    secret: str, body: bytes, msg_id: str = "msg_1", stamp: int | None = None
) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": notify.sign(secret, msg_id, stamp, body),
    }


def test_verify_accepts_a_good_webhook_and_refuses_tampered_and_replayed_ones() -> None:
    secret = notify.new_secret()
    body = b'{"type":"levering.rapport_gereed","data":{"trajecten":10}}'
    headers = signed(secret, body)
    notify.verify(secret, headers, body)  # good
    notify.verify(secret, {k.upper(): v for k, v in headers.items()}, body)  # any case

    with pytest.raises(notify.WebhookSignatureError):  # the body changed
        notify.verify(secret, headers, body.replace(b"10", b"11"))
    with pytest.raises(notify.WebhookSignatureError):  # another id under the same signature
        notify.verify(secret, {**headers, "webhook-id": "msg_2"}, body)
    with pytest.raises(notify.WebhookSignatureError):  # another secret
        notify.verify(notify.new_secret(), headers, body)
    with pytest.raises(notify.WebhookSignatureError):  # no signature
        notify.verify(secret, {k: v for k, v in headers.items() if k != "webhook-signature"}, body)
    with pytest.raises(notify.WebhookSignatureError):  # garbage signature
        notify.verify(secret, {**headers, "webhook-signature": "v1,@@@ v2"}, body)
    with pytest.raises(notify.WebhookTimestampError):  # the timestamp moved: a replay
        notify.verify(secret, {**headers, "webhook-timestamp": str(int(time.time()) - 3600)}, body)
    old = signed(secret, body, stamp=int(time.time()) - 301)  # validly signed, but old
    with pytest.raises(notify.WebhookTimestampError):
        notify.verify(secret, old, body)
    notify.verify(secret, old, body, tolerance=600)
    future = signed(secret, body, stamp=int(time.time()) + 3600)
    with pytest.raises(notify.WebhookTimestampError):
        notify.verify(secret, future, body)
    with pytest.raises(notify.WebhookTimestampError):
        notify.verify(secret, {**headers, "webhook-timestamp": "gisteren"}, body)
    seen: set[str] = set()
    notify.verify(secret, headers, body, seen=seen)
    with pytest.raises(notify.WebhookReplayError):  # the same message again
        notify.verify(secret, headers, body, seen=seen)
    # several signatures (secret rotation): one that matches is enough
    other = notify.sign(notify.new_secret(), "msg_1", int(headers["webhook-timestamp"]), body)
    notify.verify(
        secret, {**headers, "webhook-signature": f"{other} {headers['webhook-signature']}"}, body
    )


def test_sign_is_the_standard_webhooks_signature() -> None:
    # The example of the Standard Webhooks specification (its reference test vector).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        notify.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


async def test_add_webhook_refuses_bad_input(db: asyncpg.Connection) -> None:
    with pytest.raises(ValueError, match="KvK"):
        await notify.add_webhook(db, "12", "https://x.example/hook")
    with pytest.raises(ValueError, match="http"):
        await notify.add_webhook(db, "0503", "ftp://x.example/hook")
    webhook_id, secret = await notify.add_webhook(db, "0503", "https://x.example/hook")
    assert webhook_id > 0 and secret.startswith("whsec_") and len(secret) > 30
