"""Notifications of a delivery's milestones (report ready, approved, withdrawn, published,
replaced): an e-mail to the delivery's contact persons and a signed webhook POST to each
webhook its organisations configured. Used by the report and the publish services.

Writing (`enqueue`, in the caller's transaction, so that a notification exists exactly when the
change it tells about does): one row per recipient in `notificaties` (migration 0006), each with
a fixed `bericht_id` that is the webhook's `webhook-id` and the e-mail's Message-ID.

Sending (`Sender`, a task per service; several may run, in several processes):

1. claim due rows with `FOR UPDATE SKIP LOCKED` under a lease (a sender that dies leaves its
   rows to be claimed again when the lease runs out);
2. send them side by side: the e-mail over SMTP (aiosmtplib; TLS and credentials from
   `NotifySettings`), the webhook as a POST (httpx) signed the Standard Webhooks way:
   `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 over
   "id.timestamp.body">` with the webhook's secret (`whsec_<base64>`);
3. mark each sent row `verzonden`; a row that failed is due again after a capped exponential
   backoff, and after `max_attempts` it is `mislukt`, with the reason, and counted
   (`ddas_notify_mislukt_total`).

Delivery is at least once: a sender that dies after sending and before marking sends the row
again after the lease, with the same `webhook-id` (and Message-ID), so that the receiver can
deduplicate. A receiver verifies with `verify` (signature, and a timestamp within `tolerance`
seconds so that an old message cannot be replayed; pass `seen` to refuse a webhook-id twice).

No personal data of clients is ever in a notification: the callers pass counts and ids.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hmac
import logging
import secrets
import time
import uuid
from collections.abc import Mapping, MutableSet
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import aiosmtplib
import asyncpg
import httpx
import msgspec
from prometheus_client import Counter
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from standardwebhooks.webhooks import Webhook

from ddas.outbox import pause

__all__ = [
    "SENT",
    "FAILED",
    "NotifySettings",
    "Sender",
    "WebhookReplayError",
    "WebhookSignatureError",
    "WebhookTimestampError",
    "WebhookVerificationError",
    "add_webhook",
    "enqueue",
    "new_secret",
    "sign",
    "verify",
]

log = logging.getLogger("ddas.notify")

SENT = Counter("ddas_notify_verzonden", "Notifications sent, by channel", ["kanaal"])
RETRIED = Counter(
    "ddas_notify_opnieuw", "Notification attempts that failed and will be retried", ["kanaal"]
)
FAILED = Counter(
    "ddas_notify_mislukt", "Notifications given up after their last attempt", ["kanaal"]
)

_encoder: Final = msgspec.json.Encoder()


class NotifySettings(BaseSettings):
    """How notifications are sent: DDAS_NOTIFY_* (the SMTP server, the retries)."""

    model_config = SettingsConfigDict(env_prefix="DDAS_NOTIFY_", extra="ignore")

    smtp_host: str = "127.0.0.1"
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 25
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    """none: plain SMTP (a relay on the same host); starttls: upgrade on the submission port
    (587); tls: implicit TLS (465)."""
    smtp_user: str | None = None
    smtp_password: str | None = Field(default=None, repr=False)
    smtp_password_file: str | None = None
    """A file holding the password (a Docker or Kubernetes secret); wins over smtp_password."""
    mail_from: str = "DDAS <noreply@ddas.localhost>"
    max_attempts: Annotated[int, Field(ge=1)] = 8
    """Attempts per notification before it is `mislukt`."""
    backoff_base_s: Annotated[float, Field(ge=0)] = 10.0
    """Wait after the first failed attempt; doubled after each next one, up to the cap."""
    backoff_cap_s: Annotated[float, Field(ge=0)] = 3600.0
    smtp_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    webhook_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    lease_s: Annotated[float, Field(gt=0)] = 120.0
    """How long a claimed row is the sender's; must exceed the longest send (the timeouts)."""
    batch_size: Annotated[int, Field(ge=1)] = 20
    poll_s: Annotated[float, Field(gt=0)] = 1.0

    def password(self) -> str | None:
        if self.smtp_password_file:
            return Path(self.smtp_password_file).read_text(encoding="utf-8").strip()
        return self.smtp_password

    def backoff(self, attempts: int) -> float:
        """Seconds before a row that failed `attempts` times is due again."""
        return float(min(self.backoff_cap_s, self.backoff_base_s * 2 ** max(0, attempts - 1)))


# -- writing ---------------------------------------------------------------------------------


async def enqueue(
    conn: asyncpg.Connection,
    levering_id: uuid.UUID,
    soort: str,
    *,
    onderwerp: str,
    tekst: str,
    data: Mapping[str, Any],
    link: str | None = None,
) -> int:
    """In the caller's transaction: an e-mail to each contact address of the delivery
    (`levering_contacten`) and a webhook to each active webhook of each of its organisations
    (`levering_organisaties`). Returns the number of notifications enqueued."""
    levering_id = uuid.UUID(str(levering_id))
    emails = [
        r["email"]
        for r in await conn.fetch(
            "SELECT DISTINCT email FROM levering_contacten WHERE levering_id = $1 ORDER BY email",
            levering_id,
        )
    ]
    hooks = await conn.fetch(
        "SELECT DISTINCT w.id, w.url FROM webhooks w "
        "JOIN levering_organisaties o ON o.organisatie = w.organisatie "
        "WHERE o.levering_id = $1 AND w.actief ORDER BY w.id",
        levering_id,
    )
    body = _encoder.encode(
        {
            "type": f"levering.{soort}",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "data": {"levering_id": str(levering_id), **data},
        }
    ).decode()
    mail_text = tekst if link is None else f"{tekst}\n\n{link}\n"
    rows: list[tuple[Any, ...]] = [
        (
            levering_id,
            soort,
            "email",
            email,
            None,
            f"<{uuid.uuid4()}@ddas>",
            onderwerp,
            mail_text,
            None,
        )
        for email in emails
    ]
    rows += [
        (
            levering_id,
            soort,
            "webhook",
            h["url"],
            h["id"],
            f"msg_{uuid.uuid4().hex}",
            onderwerp,
            tekst,
            body,
        )
        for h in hooks
    ]
    if rows:
        await conn.executemany(
            "INSERT INTO notificaties (levering_id, soort, kanaal, ontvanger, webhook, "
            "bericht_id, onderwerp, tekst, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            rows,
        )
    return len(rows)


def new_secret() -> str:
    """A webhook secret in the Standard Webhooks form: `whsec_` and 24 random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


async def add_webhook(conn: asyncpg.Connection, organisatie: str, url: str) -> tuple[int, str]:
    """Configure a webhook for an organisation; returns its id and its (new) secret."""
    organisatie = organisatie.strip()
    if not (organisatie.isascii() and organisatie.isdigit() and len(organisatie) in (4, 8)):
        raise ValueError(f"{organisatie!r} is geen KvK-nummer (8 cijfers) of gemeentecode (4)")
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{url!r} is geen http(s)-adres")
    secret = new_secret()
    webhook_id: int = await conn.fetchval(
        "INSERT INTO webhooks (organisatie, url, secret) VALUES ($1, $2, $3) RETURNING id",
        organisatie,
        url,
        secret,
    )
    return webhook_id, secret


# -- signing and verifying (Standard Webhooks) ----------------------------------------------


class WebhookVerificationError(Exception):
    """A webhook that must not be trusted."""


class WebhookSignatureError(WebhookVerificationError):
    """Missing headers, or no signature that matches the body (forged or tampered)."""


class WebhookTimestampError(WebhookVerificationError):
    """The timestamp is missing, malformed, too old or too far ahead (a replay)."""


class WebhookReplayError(WebhookVerificationError):
    """This webhook-id was seen before."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value (`v1,<base64>`) for a message."""
    when = dt.datetime.fromtimestamp(int(timestamp), dt.UTC)
    return Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode("utf-8"))


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = 300,
    seen: MutableSet[str] | None = None,
    now: float | None = None,
) -> None:
    """Raise a `WebhookVerificationError` unless `body` was signed with `secret` no more than
    `tolerance` seconds from now. With `seen`, a webhook-id already in it is refused too (and a
    verified one is added)."""
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not signatures:
        raise WebhookSignatureError("webhook-id of webhook-signature ontbreekt")
    try:
        timestamp = int(stamp or "")
    except ValueError:
        raise WebhookTimestampError("webhook-timestamp ontbreekt of is geen getal") from None
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookTimestampError("webhook-timestamp is te oud (mogelijk een herhaling)")
    if timestamp > current + tolerance:
        raise WebhookTimestampError("webhook-timestamp ligt te ver in de toekomst")
    try:
        expected = sign(secret, msg_id, timestamp, body).partition(",")[2].encode()
    except UnicodeDecodeError:
        raise WebhookSignatureError("de body is geen UTF-8") from None
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected):
            break
    else:
        raise WebhookSignatureError("geen handtekening klopt bij deze body")
    if seen is not None:
        if msg_id in seen:
            raise WebhookReplayError(f"webhook-id {msg_id} is al eerder ontvangen")
        seen.add(msg_id)


# -- sending ---------------------------------------------------------------------------------

_CLAIM: Final = """
UPDATE notificaties n
   SET lease_token = $1, leased_until = now() + $2::interval, pogingen = n.pogingen + 1
  FROM (SELECT id FROM notificaties
         WHERE status = 'wachtend' AND volgende_poging <= now()
           AND (leased_until IS NULL OR leased_until < now())
         ORDER BY volgende_poging, id
         LIMIT $3
         FOR UPDATE SKIP LOCKED) due
 WHERE n.id = due.id
RETURNING n.id, n.kanaal, n.ontvanger, n.bericht_id, n.onderwerp, n.tekst, n.body, n.pogingen,
          n.aangemaakt_op, (SELECT w.secret FROM webhooks w WHERE w.id = n.webhook) AS secret
"""
_SENT: Final = """
UPDATE notificaties SET status = 'verzonden', verzonden_op = now(), lease_token = NULL,
                        leased_until = NULL, laatste_fout = NULL
 WHERE id = $1 AND lease_token = $2
"""
_RETRY: Final = """
UPDATE notificaties SET lease_token = NULL, leased_until = NULL, laatste_fout = $3,
                        volgende_poging = now() + $4::interval
 WHERE id = $1 AND lease_token = $2
"""
_FAILED: Final = """
UPDATE notificaties SET status = 'mislukt', lease_token = NULL, leased_until = NULL,
                        laatste_fout = $3
 WHERE id = $1 AND lease_token = $2
"""


class SendError(Exception):
    """A notification could not be delivered (the message says why, without its content)."""


class Sender:
    """Sends due notifications (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, settings: NotifySettings) -> None:
        self.pool = pool
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look for due rows now (a writer in this process calls it after its commit)."""
        self._wake.set()

    async def send_due(self) -> int:
        """Claim, send and mark one batch. Returns how many rows were claimed (0: none due)."""
        s = self.settings
        token = uuid.uuid4()
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_CLAIM, token, dt.timedelta(seconds=s.lease_s), s.batch_size)
        if not rows:
            return 0
        outcomes = await asyncio.gather(*(self._send(row) for row in rows), return_exceptions=True)
        async with self.pool.acquire() as conn:
            for row, outcome in zip(rows, outcomes, strict=True):
                kanaal = row["kanaal"]
                if not isinstance(outcome, BaseException):
                    await conn.execute(_SENT, row["id"], token)
                    SENT.labels(kanaal).inc()
                    continue
                reason = _reason(outcome)
                if row["pogingen"] >= s.max_attempts:
                    await conn.execute(_FAILED, row["id"], token, reason)
                    FAILED.labels(kanaal).inc()
                    log.error(
                        "notification %d (%s) failed after %d attempts: %s",
                        row["id"],
                        kanaal,
                        row["pogingen"],
                        reason,
                    )
                else:
                    wait = s.backoff(row["pogingen"])
                    await conn.execute(_RETRY, row["id"], token, reason, dt.timedelta(seconds=wait))
                    RETRIED.labels(kanaal).inc()
                    log.warning(
                        "notification %d (%s) attempt %d failed (%s); again in %.1f s",
                        row["id"],
                        kanaal,
                        row["pogingen"],
                        reason,
                        wait,
                    )
        return len(rows)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop` is set; a database error is logged and retried after a backoff."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    claimed = await self.send_due()
                    failures = 0
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                    failures += 1
                    wait = min(30.0, 0.5 * 2**failures)
                    log.warning("notify: database error (%s), retrying in %.1fs", exc, wait)
                    claimed = 0
                else:
                    wait = self.settings.poll_s
                if claimed < self.settings.batch_size:
                    await pause(stop, self._wake, wait)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- the channels ---------------------------------------------------------------------

    async def _send(self, row: Any) -> None:
        if row["kanaal"] == "email":
            await self._email(row)
        else:
            await self._webhook(row)

    async def _email(self, row: Any) -> None:
        s = self.settings
        msg = EmailMessage()
        msg["From"] = s.mail_from
        msg["To"] = row["ontvanger"]
        msg["Subject"] = row["onderwerp"]
        msg["Message-ID"] = row["bericht_id"]
        msg["Date"] = formatdate(row["aangemaakt_op"].timestamp(), localtime=False)
        msg.set_content(row["tekst"])
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_user,
                password=s.password() if s.smtp_user else None,
                use_tls=s.smtp_tls == "tls",
                start_tls=s.smtp_tls == "starttls",
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPException as exc:
            raise SendError(f"SMTP: {type(exc).__name__}: {exc}") from exc

    async def _webhook(self, row: Any) -> None:
        secret = row["secret"]
        if secret is None:
            raise SendError("de webhook bestaat niet meer")
        if self._http is None:
            self._http = httpx.AsyncClient(
                timeout=self.settings.webhook_timeout_s, follow_redirects=False
            )
        body = row["body"].encode()
        stamp = int(time.time())
        response = await self._http.post(
            row["ontvanger"],
            content=body,
            headers={
                "content-type": "application/json",
                "webhook-id": row["bericht_id"],
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(secret, row["bericht_id"], stamp, body),
                "user-agent": "ddas-notify/1",
            },
        )
        if not 200 <= response.status_code < 300:
            raise SendError(f"HTTP {response.status_code}")


def _reason(exc: BaseException) -> str:
    # The class and the message: transport errors never hold the notification's content.
    text = str(exc) if isinstance(exc, SendError) else f"{type(exc).__name__}: {exc}"
    return text[:500]
