"""Fixtures of the report tests: a delivery as ingest records it (supplier, organisation,
contacts) and validated by validate's own code (its chunks, pseudonymised with the test key,
checked and stored by services.validate), so that the report is built from real stored facts."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import io
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import asyncpg
import pytest
import uvicorn
from aiosmtpd.controller import Controller

from ddas import notify
from ddas.domain.pseudonym import TEST_KEY, pseudonymise_bytes
from ddas.generate import Options, generate
from ddas.registry import add_organisation_token, add_supplier
from services.validate.chunks import check_chunk
from services.validate.store import store_chunk
from tests.validate.helpers import encoded_chunks

NINE_DIGITS = re.compile(rb"(?<![0-9])[0-9]{9}(?![0-9])")


def generated(**options: Any) -> bytes:
    out = io.BytesIO()
    generate(out, Options(**options))
    return out.getvalue()


def bsns_in(raw: bytes) -> set[bytes]:
    """Every client BSN (as 9 digits, trimmed) of a raw document."""
    doc = json.loads(raw)
    found = set()
    for lev in doc.get("leveringen", []):
        for t in lev.get("schuldhulptrajecten", []) if isinstance(lev, dict) else []:
            clients = t.get("client") if isinstance(t, dict) else None
            for c in clients if isinstance(clients, list) else []:
                bsn = c.get("Burgerservicenummer") if isinstance(c, dict) else None
                if isinstance(bsn, str) and re.fullmatch(r"\s*[0-9]{9}\s*", bsn):
                    found.add(bsn.strip().encode())
    return found


def trajecten_of(raw: bytes) -> list[Any]:
    doc = json.loads(raw)
    return [t for lev in doc["leveringen"] for t in lev["schuldhulptrajecten"]]


@dataclass
class Delivery:
    id: uuid.UUID
    supplier_token: str
    org_token: str
    organisatie: str
    contacts: list[str] = field(default_factory=list)


async def record_delivery(
    db: asyncpg.Connection,
    raw: bytes,
    *,
    organisatie: str = "0503",
    contacts: tuple[str, ...] = ("contact@gemeente.example",),
    leverancier: str | None = None,
) -> Delivery:
    """The rows ingest writes for a delivery (state `ontvangen`), with tokens for its supplier
    and its organisation."""
    leverancier = leverancier or f"LEV{uuid.uuid4().hex[:6]}"
    supplier_token = await add_supplier(db, leverancier, "Testleverancier", [organisatie])
    org_token = await add_organisation_token(db, organisatie)
    doc = json.loads(raw)
    levering_id = uuid.uuid4()
    start, eind = doc.get("startdatumLevering"), doc.get("einddatumLevering")
    valid = all(isinstance(d, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", d) for d in (start, eind))
    await db.execute(
        "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
        "startdatum_levering, einddatum_levering, content_hash, leverancier) "
        "VALUES ($1, 'shv', $2, $3, $4::text::date, $5::text::date, $6, $2)",
        levering_id,
        leverancier,
        organisatie,
        start if valid else None,
        eind if valid else None,
        uuid.uuid4().hex,
    )
    await db.execute(
        "INSERT INTO levering_organisaties (levering_id, organisatie) VALUES ($1, $2)",
        levering_id,
        organisatie,
    )
    await db.executemany(
        "INSERT INTO levering_contacten (levering_id, levering_index, email) VALUES ($1, 0, $2)",
        [(levering_id, c) for c in contacts],
    )
    return Delivery(levering_id, supplier_token, org_token, organisatie, list(contacts))


async def validate(db: asyncpg.Connection, raw: bytes, levering_id: uuid.UUID) -> str:
    """Validate a delivery with validate's own code; returns its state afterwards."""
    pseudo = pseudonymise_bytes(raw, TEST_KEY)
    for _key, value in encoded_chunks(pseudo, levering_id, chunk_size=500):
        await store_chunk(db, check_chunk(value))
    state: str = await db.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id)
    return state


@pytest.fixture
def validated(
    db: asyncpg.Connection,
) -> Callable[..., Awaitable[Delivery]]:
    async def make(raw: bytes, **kwargs: Any) -> Delivery:
        delivery = await record_delivery(db, raw, **kwargs)
        await validate(db, raw, delivery.id)
        return delivery

    return make


async def levering_event(db: asyncpg.Connection, levering_id: uuid.UUID) -> bytes:
    """The LeveringEvent validate wrote into the outbox for this delivery (its JSON)."""
    payload: str = await db.fetchval(
        "SELECT payload::text FROM outbox WHERE topic = 'ddas.leveringen.v1' "
        "AND message_key = $1 AND payload->>'state' IN ('gevalideerd', 'afgekeurd')",
        str(levering_id),
    )
    assert payload is not None
    return payload.encode()


@pytest.fixture
async def pool(db_settings: Any) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(**db_settings.to_asyncpg_params(), min_size=1, max_size=4)
    try:
        yield p
    finally:
        await p.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a real SMTP server ------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps every message it gets."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    """aiosmtpd on a free local port, with the Inbox it delivers to."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller, inbox
    finally:
        controller.stop()


# -- a real webhook receiver -------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    verified: str | None  # None, or the class name of the verification error


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers (pytest owns them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebhookReceiver:
    """A real HTTP server (uvicorn) that receives webhooks and verifies them with our `verify`.
    `status` is what it answers; `delay` how long it waits before answering."""

    def __init__(self, secret: str | None = None) -> None:
        self.secret = secret
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.status = 200
        self.delay = 0.0
        self.got_one = asyncio.Event()
        self.port = free_port()
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        verified: str | None = None
        secrets = [self.secret] if self.secret is not None else self.secrets
        for secret in secrets:  # one of the webhooks' secrets must verify it
            try:
                notify.verify(secret, headers, body)
            except notify.WebhookVerificationError as exc:
                verified = type(exc).__name__
            else:
                verified = None
                break
        self.received.append(Received(headers, body, verified))
        self.got_one.set()
        if self.delay:
            await asyncio.sleep(self.delay)
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    r = WebhookReceiver()
    await r.start()
    try:
        yield r
    finally:
        await r.stop()
