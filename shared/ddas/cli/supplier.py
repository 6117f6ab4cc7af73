"""`ddas supplier ...`: suppliers, their rights and tokens, in the database (DATABASE_URL,
DATABASE_SEARCH_PATH). A token is printed once, on stdout; only its SHA-256 is stored.

    ddas supplier add CODE [--naam N] --org KVK_OR_GEMEENTECODE ...   a supplier and a token
    ddas supplier token CODE                                          another token (rotation)
    ddas supplier organisation KVK_OR_GEMEENTECODE                    an organisation's token
    ddas supplier revoke TOKEN_OR_HASH
    ddas supplier list
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from ddas.cli._db import run_on_database

_T = TypeVar("_T")


def _run(action: Callable[[Any], Awaitable[_T]]) -> _T:
    return run_on_database("supplier", action)


def _print_token(token: str) -> None:
    click.echo(token)
    click.echo(
        "ddas supplier: bewaar dit token nu; het wordt alleen als hash opgeslagen.", err=True
    )


@click.group(name="supplier")
def command() -> None:
    """Manage suppliers, organisations and their tokens."""


@command.command()
@click.argument("code")
@click.option("--naam", default="", help="Display name (default: the code).")
@click.option("--org", "orgs", multiple=True, help="KvK number or gemeentecode it delivers for.")
def add(code: str, naam: str, orgs: tuple[str, ...]) -> None:
    """Add supplier CODE (or extend its rights) and print a new token."""
    from ddas.registry import add_supplier

    _print_token(_run(lambda conn: add_supplier(conn, code, naam, orgs)))


@command.command()
@click.argument("code")
def token(code: str) -> None:
    """Print another token for supplier CODE."""
    from ddas.registry import add_supplier_token

    _print_token(_run(lambda conn: add_supplier_token(conn, code)))


@command.command()
@click.argument("organisatie")
def organisation(organisatie: str) -> None:
    """Print a token with which an organisation reads its deliveries' status."""
    from ddas.registry import add_organisation_token

    _print_token(_run(lambda conn: add_organisation_token(conn, organisatie)))


@command.command()
@click.argument("token_or_hash")
def revoke(token_or_hash: str) -> None:
    """Revoke a token (the token itself or its SHA-256)."""
    from ddas.registry import revoke_token

    if not _run(lambda conn: revoke_token(conn, token_or_hash)):
        click.echo("ddas supplier: geen actief token gevonden", err=True)
        sys.exit(1)
    click.echo("ingetrokken")


@command.command(name="list")
def list_() -> None:
    """List the suppliers with their rights and number of active tokens."""

    async def fetch(conn: Any) -> list[Any]:
        rows: list[Any] = await conn.fetch(
            """
            SELECT l.code, l.naam,
                   (SELECT string_agg(organisatie, ' ' ORDER BY organisatie)
                      FROM leverancier_rechten r WHERE r.leverancier = l.code) AS rechten,
                   (SELECT count(*) FROM tokens t
                     WHERE t.leverancier = l.code AND t.ingetrokken_op IS NULL) AS tokens
              FROM leveranciers l ORDER BY l.code
            """
        )
        return rows

    for row in _run(fetch):
        click.echo(f"{row['code']:<20} {row['tokens']} token(s)  {row['rechten'] or '-'}")
