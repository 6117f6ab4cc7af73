"""Publish's PostgreSQL side (tables in migration 0007_publish.sql): every change is one
transaction, with its lifecycle transition (`ddas.lifecycle.transition`: guarded update, outbox
event, audit row), its notifications (`ddas.notify.enqueue`) and, for the consumers, the
processed-event row that makes a redelivery a no-op.

- `store_rapport`: a delivery's OOR figures from its `Rapport` (the newest version wins; none
  are kept for a withdrawn or superseded delivery).
- `supersede`: an `ontvangen` delivery replaces the older deliveries of the same organisation,
  soort and period that are not published yet (`vervangen`, with `vervangen_door`).
- `decide`: an organisation's approval (`rapport_gereed -> goedgekeurd`) or withdrawal
  (`rapport_gereed | goedgekeurd -> ingetrokken`, and its figures and trajectory facts go).
  Asking again for what was granted answers the same and changes nothing (audited `dubbel`).
- `publish_due`: one approved delivery whose report is known and whose cooling-off time
  (`bedenktijd`) has passed is published: its figures become the period's contribution, the
  period's statistics are recomputed and protected, replaced in `statistieken` and put in the
  outbox (`Statistieken`), and the delivery becomes `gepubliceerd`, all in one transaction. The
  delivery's row is locked (`FOR UPDATE SKIP LOCKED`) and the transition is guarded, so two
  publishers, or a publisher and a withdrawal, never both act; a crash before the commit leaves
  the delivery `goedgekeurd`, and it is published after the restart, once.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import asyncpg
import msgspec

from ddas import lifecycle, notify, outbox
from ddas.audit import audit
from ddas.pipeline.events import LeveringEvent, Rapport

from . import statistiek
from .model import Cel, Periode, Statistieken

log = logging.getLogger(__name__)

ACTOR: Final = "service:publish"
CONSUMER_RAPPORTEN: Final = "publish-rapporten"
CONSUMER_LEVERINGEN: Final = "publish-leveringen"

_json: Final = msgspec.json.Encoder()

Soort = Literal["goedkeuring", "intrekking"]


class Conflict(Exception):
    """The delivery's state does not allow the decision."""

    def __init__(self, huidig: str) -> None:
        super().__init__(huidig)
        self.huidig = huidig


@dataclass(frozen=True, slots=True)
class Besluit:
    state: str
    nieuw: bool  # False: the same decision was taken before (a replay)


# -- reports ---------------------------------------------------------------------------------


async def store_rapport(conn: asyncpg.Connection, rapport: Rapport) -> str:
    """Keep a delivery's OOR figures. Returns `opgeslagen`, `dubbel` (this event, or a newer
    version, was stored before), `overgeslagen` (withdrawn or superseded: nothing of it may be
    kept) or `onbekend` (no such delivery here). Raises `statistiek.OorOnleesbaar` for an OOR
    without the figures."""
    levering_id = uuid.UUID(rapport.levering_id)
    # An OOR without the figures could never be published: refused here (the consumer
    # dead-letters it) rather than found by the publisher, where it would hold up the queue.
    statistiek.bijdragen(rapport.oor)
    async with conn.transaction():
        state = await conn.fetchval(
            "SELECT state FROM leveringen WHERE id = $1 FOR SHARE", levering_id
        )
        if state is None:  # another deployment's (or test schema's) delivery: nothing to keep
            return "onbekend"
        if not await _first(conn, CONSUMER_RAPPORTEN, rapport.event_id):
            return "dubbel"
        if state in ("ingetrokken", "vervangen"):
            return "overgeslagen"
        stored = await conn.fetchval(
            """
            INSERT INTO publicatie_rapporten AS p (levering_id, versie, event_id, oor)
            VALUES ($1, $2, $3, $4::jsonb)
            ON CONFLICT (levering_id) DO UPDATE
               SET versie = EXCLUDED.versie, event_id = EXCLUDED.event_id, oor = EXCLUDED.oor,
                   ontvangen_op = now()
             WHERE p.versie < EXCLUDED.versie
            RETURNING true
            """,
            levering_id,
            rapport.versie,
            uuid.UUID(rapport.event_id),
            _json.encode(rapport.oor).decode(),
        )
        return "opgeslagen" if stored else "dubbel"


async def _first(conn: asyncpg.Connection, consumer: str, event_id: str) -> bool:
    return bool(
        await conn.fetchval(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true",
            consumer,
            uuid.UUID(event_id),
        )
    )


# -- supersede -------------------------------------------------------------------------------

_OLDER: Final = """
SELECT o.id, o.state FROM leveringen o, leveringen n
 WHERE n.id = $1 AND o.id <> n.id
   AND o.organisatie = n.organisatie AND o.soort = n.soort
   AND o.startdatum_levering = n.startdatum_levering
   AND o.einddatum_levering = n.einddatum_levering
   AND (o.ontvangen_op, o.id) < (n.ontvangen_op, n.id)
   AND o.state NOT IN ('gepubliceerd', 'vervangen')
 ORDER BY o.ontvangen_op, o.id
   FOR UPDATE OF o
"""


async def supersede(conn: asyncpg.Connection, event: LeveringEvent) -> list[uuid.UUID]:
    """Handle a lifecycle event: for `ontvangen`, replace the older unpublished deliveries of
    the same organisation, soort and period. Returns the replaced deliveries."""
    if event.state != "ontvangen":
        return []
    nieuw = uuid.UUID(event.levering_id)
    async with conn.transaction():
        if not await conn.fetchval("SELECT true FROM leveringen WHERE id = $1", nieuw):
            return []  # another deployment's (or test schema's) delivery
        if not await _first(conn, CONSUMER_LEVERINGEN, event.event_id):
            return []
        replaced = []
        for row in await conn.fetch(_OLDER, nieuw):
            await _replace(conn, row["id"], row["state"], nieuw)
            replaced.append(row["id"])
        return replaced


async def _replace(conn: asyncpg.Connection, oud: uuid.UUID, state: str, nieuw: uuid.UUID) -> None:
    await lifecycle.transition(conn, oud, state, "vervangen", actor=ACTOR, vervangen_door=nieuw)
    await notify.enqueue(
        conn,
        oud,
        "vervangen",
        onderwerp="DDAS: levering vervangen door een nieuwere",
        tekst=(
            f"Levering {oud} is vervangen door levering {nieuw} van dezelfde organisatie voor "
            "dezelfde periode. Alleen de nieuwste levering kan worden goedgekeurd en "
            "gepubliceerd."
        ),
        data={"vervangen_door": str(nieuw), "vorige_state": state},
    )


# -- decisions -------------------------------------------------------------------------------


async def decide(
    conn: asyncpg.Connection,
    levering_id: uuid.UUID,
    soort: Soort,
    *,
    actor: str,
    reden: str | None = None,
    link: str | None = None,
) -> Besluit:
    """An organisation's approval or withdrawal (see the module docstring); raises `Conflict`
    when the state does not allow it (the caller audits the refusal)."""
    async with conn.transaction():
        state = await conn.fetchval(
            "SELECT state FROM leveringen WHERE id = $1 FOR UPDATE", levering_id
        )
        if state is None:
            raise LookupError(str(levering_id))
        details = {"reden": reden} if reden else {}
        if soort == "goedkeuring":
            if state in ("goedgekeurd", "gepubliceerd"):
                await audit(
                    conn, actor, "levering.goedkeuring", "dubbel", levering_id, huidig=state
                )
                return Besluit(state, False)
            if state != "rapport_gereed":
                raise Conflict(state)
            await lifecycle.transition(
                conn, levering_id, state, "goedgekeurd", actor=actor, details=details
            )
            await notify.enqueue(
                conn,
                levering_id,
                "goedgekeurd",
                onderwerp="DDAS: levering goedgekeurd",
                tekst=(
                    f"Levering {levering_id} is goedgekeurd. De cijfers worden gepubliceerd "
                    "als beveiligde statistiek; u krijgt bericht zodra dat is gebeurd."
                ),
                data={"door": actor, **details},
                link=link,
            )
            return Besluit("goedgekeurd", True)

        if state == "ingetrokken":
            await audit(conn, actor, "levering.intrekking", "dubbel", levering_id, huidig=state)
            return Besluit(state, False)
        if state not in ("rapport_gereed", "goedgekeurd"):
            raise Conflict(state)
        await lifecycle.transition(
            conn, levering_id, state, "ingetrokken", actor=actor, details=details
        )
        weg = await _remove_facts(conn, levering_id)
        await audit(conn, actor, "levering.feiten_verwijderd", "ok", levering_id, **weg)
        await notify.enqueue(
            conn,
            levering_id,
            "ingetrokken",
            onderwerp="DDAS: levering ingetrokken",
            tekst=(
                f"Levering {levering_id} is ingetrokken. Haar gegevens worden niet "
                "gepubliceerd; het op-orde-rapport en de bevindingen blijven bewaard."
            ),
            data={"door": actor, **details},
        )
        return Besluit("ingetrokken", True)


async def _remove_facts(conn: asyncpg.Connection, levering_id: uuid.UUID) -> dict[str, int]:
    """Everything of a withdrawn delivery that could be published: its figures here and its
    trajectory facts (validate's chunks, `validatie_chunks`: the facts of each trajectory and
    the OOR parts, which hold the clients' pseudonyms too). Findings and the audit trail
    stay."""
    rapporten = await conn.execute(
        "DELETE FROM publicatie_rapporten WHERE levering_id = $1", levering_id
    )
    bijdragen = await conn.execute(
        "DELETE FROM publicatie_bijdragen WHERE levering_id = $1", levering_id
    )
    chunks = await conn.execute("DELETE FROM validatie_chunks WHERE levering_id = $1", levering_id)
    return {
        "rapporten": _count(rapporten),
        "bijdragen": _count(bijdragen),
        "validatie_chunks": _count(chunks),
    }


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


# -- publication -----------------------------------------------------------------------------

_DUE: Final = """
SELECT l.id, l.organisatie, l.soort, l.startdatum_levering AS start,
       l.einddatum_levering AS eind, l.ontvangen_op, r.oor::text AS oor
  FROM leveringen l JOIN publicatie_rapporten r ON r.levering_id = l.id
 WHERE l.state = 'goedgekeurd' AND l.bijgewerkt_op <= now() - $1::interval
 ORDER BY l.bijgewerkt_op, l.id
 LIMIT 1
   FOR UPDATE OF l SKIP LOCKED
"""
_NEWER: Final = """
SELECT n.id FROM leveringen n
 WHERE n.organisatie = $1 AND n.soort = $2 AND n.startdatum_levering = $3
   AND n.einddatum_levering = $4 AND (n.ontvangen_op, n.id) > ($5, $6)
 ORDER BY n.ontvangen_op DESC, n.id DESC LIMIT 1
"""


@dataclass(slots=True)
class Publicatie:
    levering_id: uuid.UUID
    state: str  # gepubliceerd, or vervangen (a newer delivery had arrived meanwhile)
    periode: tuple[str, str] | None = None
    versie: int | None = None
    vervangt: list[uuid.UUID] = field(default_factory=list)


async def publish_due(
    conn: asyncpg.Connection,
    *,
    bedenktijd: float = 0.0,
    topic: str,
    link: str | None = None,
) -> Publicatie | None:
    """Publish one approved delivery that is due (see the module docstring); None when none is."""
    async with conn.transaction():
        row = await conn.fetchrow(_DUE, dt.timedelta(seconds=bedenktijd))
        if row is None:
            return None
        levering_id = row["id"]
        if row["start"] is None or row["eind"] is None:
            # Rejected for its period: nothing can be placed in the statistics.
            await lifecycle.transition(
                conn, levering_id, "goedgekeurd", "gepubliceerd", actor=ACTOR,
                details={"periode": None, "bijdragen": 0},
            )  # fmt: skip
            return Publicatie(levering_id, "gepubliceerd")
        # A newer delivery for the same period arrived before its supersede event was handled:
        # the older one is replaced now rather than published.
        newer = await conn.fetchval(
            _NEWER,
            row["organisatie"],
            row["soort"],
            row["start"],
            row["eind"],
            row["ontvangen_op"],
            levering_id,
        )
        if newer is not None:
            await _replace(conn, levering_id, "goedgekeurd", newer)
            return Publicatie(levering_id, "vervangen")

        start, eind = row["start"], row["eind"]
        periode = (start.isoformat(), eind.isoformat())
        # One publication per period at a time: each recomputes the period's whole table.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
            "ddas-publicatie:" + "/".join(periode),
        )
        bijdragen = statistiek.bijdragen(msgspec.json.decode(row["oor"]))
        await conn.executemany(
            "INSERT INTO publicatie_bijdragen (levering_id, gemeentecode, periode_start, "
            "periode_eind, cijfers) VALUES ($1, $2, $3, $4, $5::jsonb)",
            [
                (levering_id, code, start, eind, _json.encode(cijfers).decode())
                for code, cijfers in bijdragen.items()
            ],
        )
        vervangt = [
            r["levering_id"]
            for r in await conn.fetch(
                """
                WITH vervangen AS (
                    UPDATE publicatie_bijdragen b SET vervangen_door = $1
                      FROM leveringen o
                     WHERE b.levering_id = o.id AND o.id <> $1 AND b.vervangen_door IS NULL
                       AND o.organisatie = $2 AND o.soort = $3
                       AND o.startdatum_levering = $4 AND o.einddatum_levering = $5
                    RETURNING b.levering_id)
                SELECT DISTINCT levering_id FROM vervangen ORDER BY levering_id
                """,
                levering_id,
                row["organisatie"],
                row["soort"],
                start,
                eind,
            )
        ]
        versie = await _republish(conn, start, eind, levering_id, topic)
        await lifecycle.transition(
            conn,
            levering_id,
            "goedgekeurd",
            "gepubliceerd",
            actor=ACTOR,
            details={
                "periode": "/".join(periode),
                "versie": versie,
                "gemeenten": len(bijdragen),
                "vervangt": [str(v) for v in vervangt],
            },
        )
        await notify.enqueue(
            conn,
            levering_id,
            "gepubliceerd",
            onderwerp="DDAS: cijfers gepubliceerd",
            tekst=(
                f"De cijfers van levering {levering_id} zijn gepubliceerd in de beveiligde "
                f"statistiek van de periode {periode[0]} tot en met {periode[1]} (versie {versie})."
                + (
                    " Zij vervangen die van de eerdere levering(en) "
                    + ", ".join(str(v) for v in vervangt)
                    + "."
                    if vervangt
                    else ""
                )
            ),
            data={"periode": {"start": periode[0], "eind": periode[1]}, "versie": versie},
            link=link,
        )
        return Publicatie(levering_id, "gepubliceerd", periode, versie, vervangt)


async def _republish(
    conn: asyncpg.Connection, start: dt.date, eind: dt.date, aanleiding: uuid.UUID, topic: str
) -> int:
    """Recompute, protect and replace the period's statistics; the new version's event goes in
    the outbox. Returns the version."""
    rows = await conn.fetch(
        "SELECT gemeentecode, cijfers::text AS cijfers FROM publicatie_bijdragen "
        "WHERE periode_start = $1 AND periode_eind = $2 AND vervangen_door IS NULL",
        start,
        eind,
    )
    per_gemeente: dict[str, list[Any]] = {}
    for r in rows:
        per_gemeente.setdefault(r["gemeentecode"], []).append(msgspec.json.decode(r["cijfers"]))
    cellen = statistiek.beveilig_periode(
        {code: statistiek.optellen(delen) for code, delen in per_gemeente.items()}
    )
    versie: int = await conn.fetchval(
        "SELECT COALESCE(max(versie), 0) + 1 FROM statistiek_versies "
        "WHERE periode_start = $1 AND periode_eind = $2",
        start,
        eind,
    )
    await conn.execute(
        "DELETE FROM statistieken WHERE periode_start = $1 AND periode_eind = $2", start, eind
    )
    await conn.executemany(
        "INSERT INTO statistieken (periode_start, periode_eind, gemeentecode, tabel, kolom, "
        "waarde, status, versie) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [
            (start, eind, c.gemeentecode, c.tabel, c.kolom, c.cel.waarde, c.cel.status, versie)
            for c in cellen
        ],
    )
    event = Statistieken(
        event_id=str(uuid.uuid4()),
        periode=Periode(start=start.isoformat(), eind=eind.isoformat()),
        versie=versie,
        aanleiding=str(aanleiding),
        gepubliceerd_op=dt.datetime.now(dt.UTC).isoformat(),
        cellen=[
            Cel(
                gemeentecode=c.gemeentecode,
                tabel=c.tabel,
                kolom=c.kolom,
                waarde=c.cel.waarde,
                status=c.cel.status,
            )
            for c in cellen
        ],
    )
    event_id = uuid.UUID(event.event_id)
    await outbox.enqueue(conn, topic, event.key(), event, event_id=event_id)
    await conn.execute(
        "INSERT INTO statistiek_versies (periode_start, periode_eind, versie, aanleiding, "
        "event_id) VALUES ($1, $2, $3, $4, $5)",
        start,
        eind,
        versie,
        aanleiding,
        event_id,
    )
    return versie


# -- reading ---------------------------------------------------------------------------------


async def statistieken(
    conn: asyncpg.Connection | asyncpg.Pool,
    start: dt.date,
    eind: dt.date,
    gemeentecode: str | None = None,
) -> tuple[Any, list[Any]] | None:
    """The period's current version (its row in statistiek_versies) and its cells, or None
    when nothing is published for it."""
    versie = await conn.fetchrow(
        "SELECT versie, gepubliceerd_op FROM statistiek_versies "
        "WHERE periode_start = $1 AND periode_eind = $2 ORDER BY versie DESC LIMIT 1",
        start,
        eind,
    )
    if versie is None:
        return None
    cellen = await conn.fetch(
        "SELECT gemeentecode, tabel, kolom, waarde, status FROM statistieken "
        "WHERE periode_start = $1 AND periode_eind = $2 "
        "AND ($3::text IS NULL OR gemeentecode = $3) "
        "ORDER BY gemeentecode = 'totaal', gemeentecode, tabel, kolom = 'totaal', kolom",
        start,
        eind,
        gemeentecode,
    )
    return versie, list(cellen)


async def perioden(conn: asyncpg.Connection | asyncpg.Pool) -> list[Any]:
    """The periods with published statistics, with their current version."""
    return list(
        await conn.fetch(
            "SELECT periode_start, periode_eind, max(versie) AS versie FROM statistiek_versies "
            "GROUP BY periode_start, periode_eind ORDER BY periode_start, periode_eind"
        )
    )
