"""Report's PostgreSQL side: one transaction per lifecycle event (tables of migration 0006).

For an event `gevalideerd` or `afgekeurd` of a delivery, in one transaction:
1. the processed-event row (consumer `report`, the event id): when it exists already, the
   event was handled before and this delivery of it is a no-op;
2. the delivery's current state: unless it is still `gevalideerd` or `afgekeurd` (it may have
   been replaced meanwhile, or reported under another event), nothing else is done;
3. the OOR is built (build.py) and stored as the delivery's next `rapporten.versie`;
4. `lifecycle.transition` to `rapport_gereed` (guarded update, `LeveringEvent` in the outbox,
   audit row), the `Rapport` message for publish in the outbox (topic `ddas.rapporten.v1`, key
   the delivery's id), and the notifications (`ddas.notify.enqueue`: e-mail and webhooks).

A crash anywhere before the commit leaves nothing behind: the event is delivered again.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import msgspec

from ddas import lifecycle, notify, outbox
from ddas.pipeline import topics
from ddas.pipeline.events import LeveringEvent, Rapport, RapportPeriode, encode

from .build import FORMAAT, build
from .render import headline_text

log = logging.getLogger(__name__)

CONSUMER: Final = "report"
ACTOR: Final = "service:report"
REPORTED_STATES: Final = ("gevalideerd", "afgekeurd")

_json = msgspec.json.Encoder()


class Handled(enum.Enum):
    IGNORED = "ignored"  # an event of another state
    DUPLICATE = "duplicate"  # handled before
    SKIPPED = "skipped"  # the delivery is unknown or has moved on
    REPORTED = "reported"  # the report is stored and the delivery is rapport_gereed
    STORED = "stored"  # the report is stored; the state had moved on meanwhile


@dataclass(frozen=True, slots=True)
class Outcome:
    handled: Handled
    versie: int | None = None
    trajecten: int = 0
    seconds: float = 0.0
    notificaties: int = 0


def report_link(base_url: str, levering_id: uuid.UUID) -> str:
    return f"{base_url.rstrip('/')}/v1/leveringen/{levering_id}/rapport?formaat=html"


async def handle_event(conn: asyncpg.Connection, event: LeveringEvent, *, base_url: str) -> Outcome:
    """Handle one lifecycle event in a transaction of its own on `conn`."""
    if event.state not in REPORTED_STATES:
        return Outcome(Handled.IGNORED)
    levering_id = uuid.UUID(event.levering_id)
    async with conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO processed_events (consumer, event_id) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING RETURNING true",
            CONSUMER,
            uuid.UUID(event.event_id),
        )
        if not first:
            return Outcome(Handled.DUPLICATE)
        state = await conn.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id)
        if state not in REPORTED_STATES:
            log.info("delivery %s is %s: no report made", levering_id, state)
            return Outcome(Handled.SKIPPED)
        gebouwd = await build(conn, levering_id)
        oor = gebouwd.oor
        versie: int = await conn.fetchval(
            "INSERT INTO rapporten (levering_id, versie, formaat, oor, duur_s) "
            "SELECT $1, coalesce(max(versie), 0) + 1, $2, $3::json, $4 "
            "FROM rapporten WHERE levering_id = $1 RETURNING versie",
            levering_id,
            FORMAAT,
            _json.encode(oor).decode(),
            gebouwd.seconds,
        )
        try:
            await lifecycle.transition(
                conn,
                levering_id,
                state,
                "rapport_gereed",
                actor=ACTOR,
                details={"versie": versie, "trajecten": gebouwd.trajecten},
            )
        except lifecycle.StateConflict as exc:
            log.warning("delivery %s: %s; report stored, state left as it is", levering_id, exc)
            return Outcome(Handled.STORED, versie, gebouwd.trajecten, gebouwd.seconds)
        rapport = Rapport(
            event_id=str(uuid.uuid4()),
            levering_id=str(levering_id),
            versie=versie,
            organisatie=oor["levering"]["organisatie"],
            periode=RapportPeriode(
                start=(oor["periode"] or {}).get("start"), eind=(oor["periode"] or {}).get("eind")
            ),
            oor=oor,
        )
        # As bytes (the outbox's `body`): jsonb would reorder the OOR's members.
        await outbox.enqueue(
            conn,
            topics.RAPPORTEN,
            rapport.key(),
            encode(rapport),
            {"content-type": "application/json"},
            event_id=uuid.UUID(rapport.event_id),
        )
        link = report_link(base_url, levering_id)
        n = await notify.enqueue(
            conn,
            levering_id,
            "rapport_gereed",
            onderwerp=_subject(oor),
            tekst=headline_text(oor),
            data=_webhook_data(oor, versie, link),
            link=link,
        )
    return Outcome(Handled.REPORTED, versie, gebouwd.trajecten, gebouwd.seconds, n)


def _subject(oor: dict[str, Any]) -> str:
    lev = oor["levering"]
    wie = lev["organisatie_naam"] or lev["organisatie"]
    oordeel = "op orde" if oor["validatie"]["op_orde"] else "niet op orde"
    return f"Op-orde-rapport klaar voor {wie}: {oordeel}"


def _webhook_data(oor: dict[str, Any], versie: int, link: str) -> dict[str, Any]:
    """The headline figures: counts only."""
    t = oor["totaal"]
    tab = oor["tabellen"]["totaal"]
    v = oor["validatie"]
    return {
        "state": "rapport_gereed",
        "versie": versie,
        "organisatie": oor["levering"]["organisatie"],
        "periode": oor["periode"],
        "uitkomst": v["uitkomst"],
        "op_orde": v["op_orde"],
        "fouten": v["fouten"],
        "waarschuwingen": v["waarschuwingen"],
        "trajecten": tab["trajecten"],
        "unieke_clienten": tab["unieke_bsn"],
        "actieve_clienten": tab["unieke_actieve_bsn"],
        "instroom": t["instroom"]["clienten"],
        "totaal_schuld": t["schulden"]["totaal_bedrag"],
        "rapport_url": link,
        "gemaakt_op": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


async def latest(
    conn: asyncpg.Connection | asyncpg.Pool, levering_id: uuid.UUID
) -> tuple[int, dict[str, Any]] | None:
    """The latest report of a delivery: (versie, OOR), or None."""
    row = await conn.fetchrow(
        "SELECT versie, oor::text AS oor FROM rapporten WHERE levering_id = $1 "
        "ORDER BY versie DESC LIMIT 1",
        levering_id,
    )
    if row is None:
        return None
    return row["versie"], msgspec.json.decode(row["oor"])
