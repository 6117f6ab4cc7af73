"""The audit log (table `audit_log`, migration 0001): who did what, to which delivery, and how
it ended ("ok", "geweigerd", "dubbel", ...). Every decision and every refused attempt gets a row.
Never a personal value in `details`."""

from __future__ import annotations

import uuid
from typing import Any, Final

import asyncpg
import msgspec

__all__ = ["audit"]

_encoder: Final = msgspec.json.Encoder()


async def audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    actor: str,
    actie: str,
    uitkomst: str,
    levering_id: uuid.UUID | str | None = None,
    /,
    **details: Any,
) -> None:
    """Write one row of the audit log, in the caller's transaction when `conn` is a connection."""
    await conn.execute(
        "INSERT INTO audit_log (actor, actie, levering_id, uitkomst, details) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        actor,
        actie,
        levering_id
        if levering_id is None or isinstance(levering_id, uuid.UUID)
        else uuid.UUID(str(levering_id)),
        uitkomst,
        _encoder.encode(details).decode(),
    )
