"""Suppliers, organisations, their rights and their tokens (tables of migration 0002).

- A **supplier** (leverancier) has a code, a name and rights: the organisations it may deliver
  for, each an organisation's KvK number (8 digits) or a municipality's gemeentecode (4 digits).
  A levering is allowed when its `aanleverende_organisatie` has a KvK-nummer or gemeentecode the
  supplier has a right for.
- An **organisation** (KvK number or gemeentecode) may have tokens of its own: they read the
  status of the deliveries made for it.
- **Tokens** are random (`secrets.token_urlsafe(32)`), shown once, and stored as their SHA-256.

`Registry.load()` reads every active token with its owner's rights into memory at start;
`authenticate(token)` answers from memory, and on a miss looks in the database (a supplier added
with `ddas supplier add` after the start works at once). `refresh()` (run periodically by the
service) picks up revoked tokens and changed rights.

The Kafka way in has no bearer token on the wire: an event carries a JWT (HS256) that the
supplier signs with the SHA-256 of its token as the key (see services/ingest/inbound.py).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal

import asyncpg

__all__ = [
    "Principal",
    "Registry",
    "add_organisation_token",
    "add_supplier",
    "add_supplier_token",
    "hash_token",
    "new_token",
    "revoke_token",
]

ORGANISATIE: Final = re.compile(r"^([0-9]{8}|[0-9]{4})$")
LEVERANCIER: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 as 64 hex characters."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a token belongs to: a supplier with its rights, or an organisation."""

    soort: Literal["leverancier", "organisatie"]
    code: str
    rechten: frozenset[str] = frozenset()
    token_hash: str = ""

    @property
    def actor(self) -> str:
        return f"{self.soort}:{self.code}"

    @property
    def is_leverancier(self) -> bool:
        return self.soort == "leverancier"

    def may_deliver_for(self, organisatie: str) -> bool:
        return self.is_leverancier and organisatie in self.rechten


def _tokens(where: str = "") -> str:
    return f"""
SELECT t.token_hash, t.leverancier, t.organisatie,
       COALESCE(array_agg(r.organisatie) FILTER (WHERE r.organisatie IS NOT NULL),
                ARRAY[]::text[]) AS rechten
  FROM tokens t LEFT JOIN leverancier_rechten r ON r.leverancier = t.leverancier
 WHERE t.ingetrokken_op IS NULL {where}
 GROUP BY t.token_hash, t.leverancier, t.organisatie
"""


def _principal(row: Any) -> Principal:
    if row["leverancier"] is not None:
        return Principal(
            "leverancier", row["leverancier"], frozenset(row["rechten"]), row["token_hash"]
        )
    return Principal("organisatie", row["organisatie"], frozenset(), row["token_hash"])


class Registry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._by_hash: dict[str, Principal] = {}

    async def load(self) -> int:
        """(Re)load every active token; returns how many."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_tokens())
        self._by_hash = {row["token_hash"]: _principal(row) for row in rows}
        return len(self._by_hash)

    refresh = load

    async def authenticate(self, token: str | None) -> Principal | None:
        """The token's owner, or None for a missing, unknown or revoked token."""
        if not token:
            return None
        digest = hash_token(token)
        found = self._by_hash.get(digest)
        if found is not None:
            return found
        return await self.by_hash(digest)

    async def by_hash(self, digest: str) -> Principal | None:
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(_tokens("AND t.token_hash = $1"), digest)
        if row is None:
            return None
        principal = _principal(row)
        self._by_hash[digest] = principal
        return principal

    async def supplier_keys(self, leverancier: str) -> list[Principal]:
        """The active tokens of a supplier (their hashes are the keys of its signed tokens)."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(_tokens("AND t.leverancier = $1"), leverancier)
        return [_principal(row) for row in rows]


# -- administration (the `ddas supplier` command) ---------------------------------------------


def _check_organisations(organisaties: Iterable[str]) -> list[str]:
    out = []
    for org in organisaties:
        org = org.strip()
        if not ORGANISATIE.match(org):
            raise ValueError(
                f"organisatie {org!r}: een KvK-nummer (8 cijfers) of een gemeentecode (4 cijfers)"
            )
        out.append(org)
    return out


async def add_supplier(
    conn: asyncpg.Connection,
    code: str,
    naam: str,
    organisaties: Iterable[str] = (),
    *,
    omschrijving: str = "",
) -> str:
    """Create a supplier (or extend an existing one's rights) and a new token for it. Returns
    the token: it is not stored, only its hash."""
    if not LEVERANCIER.match(code):
        raise ValueError(f"leverancierscode {code!r}: letters, cijfers, '_', '.', '-'")
    orgs = _check_organisations(organisaties)
    token = new_token()
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO leveranciers (code, naam) VALUES ($1, $2) "
            "ON CONFLICT (code) DO UPDATE SET naam = EXCLUDED.naam",
            code,
            naam or code,
        )
        await conn.executemany(
            "INSERT INTO leverancier_rechten (leverancier, organisatie) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            [(code, org) for org in orgs],
        )
        await conn.execute(
            "INSERT INTO tokens (token_hash, leverancier, omschrijving) VALUES ($1, $2, $3)",
            hash_token(token),
            code,
            omschrijving,
        )
    return token


async def add_supplier_token(conn: asyncpg.Connection, code: str, *, omschrijving: str = "") -> str:
    """Another token for an existing supplier (e.g. to rotate). Raises LookupError."""
    if await conn.fetchval("SELECT 1 FROM leveranciers WHERE code = $1", code) is None:
        raise LookupError(f"leverancier {code!r} bestaat niet")
    token = new_token()
    await conn.execute(
        "INSERT INTO tokens (token_hash, leverancier, omschrijving) VALUES ($1, $2, $3)",
        hash_token(token),
        code,
        omschrijving,
    )
    return token


async def add_organisation_token(
    conn: asyncpg.Connection, organisatie: str, *, omschrijving: str = ""
) -> str:
    """A token with which an organisation reads the status of its deliveries."""
    (org,) = _check_organisations([organisatie])
    token = new_token()
    await conn.execute(
        "INSERT INTO tokens (token_hash, organisatie, omschrijving) VALUES ($1, $2, $3)",
        hash_token(token),
        org,
        omschrijving,
    )
    return token


async def revoke_token(conn: asyncpg.Connection, token_or_hash: str) -> bool:
    """Revoke a token (given as itself or as its hash). True when one was revoked."""
    digest = token_or_hash if re.fullmatch("[0-9a-f]{64}", token_or_hash) else ""
    result: str = await conn.execute(
        "UPDATE tokens SET ingetrokken_op = now() "
        "WHERE token_hash IN ($1, $2) AND ingetrokken_op IS NULL",
        digest,
        hash_token(token_or_hash),
    )
    return result != "UPDATE 0"
