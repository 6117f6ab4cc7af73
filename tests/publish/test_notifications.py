"""The organisation is told of each decision and of the publication: the publish service's own
notification sender (ddas.notify, the report service's mechanism) delivers the e-mails to a real
SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Awaitable, Callable, Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from ddas.notify import NotifySettings

from .conftest import APP_750, Env, oor_of, until
from .test_gate import PERIODE

pytestmark = pytest.mark.integration


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Inbox]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


async def test_decisions_and_publication_are_mailed_to_the_contacts(
    make_env: Callable[..., Awaitable[Env]], smtp: tuple[int, Inbox]
) -> None:
    port, inbox = smtp
    env = await make_env(
        notifications=True,
        notify=NotifySettings(smtp_host="127.0.0.1", smtp_port=port, poll_s=0.1),
    )
    a = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(a, oor_of(APP_750))
    b = await env.levering("rapport_gereed", periode=("2025-07-01", "2025-12-31"))
    assert (await env.post(a, "goedkeuring", env.tokens["org"])).status_code == 200
    assert (await env.post(b, "intrekking", env.tokens["org"])).status_code == 200
    await env.wait_state(a, "gepubliceerd")

    async def three() -> bool:
        return len(inbox.messages) >= 3

    await until(three)
    subjects = sorted(msg["Subject"] for _, msg in inbox.messages)
    assert subjects == [
        "DDAS: cijfers gepubliceerd",
        "DDAS: levering goedgekeurd",
        "DDAS: levering ingetrokken",
    ]
    assert all(rcpt == ["contact@example.org"] for rcpt, _ in inbox.messages)
    published = next(m for _, m in inbox.messages if m["Subject"] == "DDAS: cijfers gepubliceerd")
    text = published.get_content()
    assert str(a) in text and "2025-01-01 tot en met 2025-06-30" in text
    assert f"{env.url}/v1/statistieken" in text

    # The sender marks a row once the server has taken the message: shortly after the inbox
    # has it.
    async def all_sent() -> bool:
        status = await env.db.fetch("SELECT DISTINCT status FROM notificaties")
        return [r["status"] for r in status] == ["verzonden"]

    await until(all_sent)
