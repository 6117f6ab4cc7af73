"""`ddas webhook ...`: an organisation's webhooks for the notifications (ddas.notify), in the
database (DATABASE_URL, DATABASE_SEARCH_PATH).

    ddas webhook add ORG URL      a webhook; prints its signing secret, once
    ddas webhook list [ORG]
    ddas webhook remove ID        no more notifications to it
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ddas.cli._db import run_on_database

_T = TypeVar("_T")


def _run(action: Callable[[Any], Awaitable[_T]]) -> _T:
    return run_on_database("webhook", action)


@click.group(name="webhook")
def command() -> None:
    """Manage the organisations' webhooks."""


@command.command()
@click.argument("organisatie", metavar="ORG")
@click.argument("url")
def add(organisatie: str, url: str) -> None:
    """Add a webhook URL for organisation ORG (KvK number or gemeentecode)."""
    from ddas.notify import add_webhook

    webhook_id, secret = _run(lambda conn: add_webhook(conn, organisatie, url))
    click.echo(secret)
    click.echo(
        f"ddas webhook: webhook {webhook_id} toegevoegd. Bewaar dit geheim nu: het ondertekent "
        "de berichten (webhook-signature) en wordt niet meer getoond.",
        err=True,
    )


@command.command(name="list")
@click.argument("organisatie", metavar="ORG", required=False)
def list_(organisatie: str | None) -> None:
    """List the webhooks (of ORG)."""

    async def rows(conn: Any) -> list[Any]:
        return list(
            await conn.fetch(
                "SELECT id, organisatie, url, actief FROM webhooks "
                "WHERE $1::text IS NULL OR organisatie = $1 ORDER BY id",
                organisatie,
            )
        )

    for r in _run(rows):
        click.echo(
            f"{r['id']:>6}  {r['organisatie']:<8}  {'actief' if r['actief'] else 'uit   '}  {r['url']}"
        )


@command.command()
@click.argument("webhook_id", metavar="ID", type=int)
def remove(webhook_id: int) -> None:
    """Stop notifications to webhook ID."""

    async def off(conn: Any) -> None:
        done = await conn.execute("UPDATE webhooks SET actief = false WHERE id = $1", webhook_id)
        if done == "UPDATE 0":
            raise LookupError(f"webhook {webhook_id} bestaat niet")

    _run(off)
    click.echo(f"ddas webhook: webhook {webhook_id} uitgezet", err=True)
