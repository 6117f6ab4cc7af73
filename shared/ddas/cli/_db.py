"""What the commands that work on the database directly share (`ddas supplier`, `ddas webhook`,
`ddas demo`): a migrated database from DATABASE_URL (and DATABASE_SEARCH_PATH), one action on
one connection, errors as one line on stderr."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

_T = TypeVar("_T")


async def on_database(action: Callable[[Any], Awaitable[_T]], url: str | None = None) -> _T:
    """`action(conn)` on the migrated database (`url`, else DATABASE_URL)."""
    import asyncpg

    from ddas.db.migrate import migrate_database
    from ddas.settings import DatabaseSettings

    settings = DatabaseSettings() if url is None else DatabaseSettings(url=url)
    await migrate_database(settings)
    conn = await asyncpg.connect(**settings.to_asyncpg_params())
    try:
        return await action(conn)
    finally:
        await conn.close()


def run_on_database(command: str, action: Callable[[Any], Awaitable[_T]]) -> _T:
    """`on_database` for `ddas <command>`: a refusal (ValueError, LookupError) exits 1, an
    unreachable or failing database 2, each with one line on stderr."""
    import asyncpg

    try:
        return asyncio.run(on_database(action))
    except (ValueError, LookupError) as exc:
        click.echo(f"ddas {command}: {exc}", err=True)
        sys.exit(1)
    except (OSError, asyncpg.PostgresError) as exc:
        click.echo(f"ddas {command}: database: {exc}", err=True)
        sys.exit(2)
