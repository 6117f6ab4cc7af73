"""The delivery lifecycle (ddas.lifecycle): the state machine itself, and `transition` on the real
database: a guarded update, its event in the outbox and an audit row, all in the caller's
transaction; of two processes racing for one transition exactly one wins."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path

import asyncpg
import pytest

from ddas import lifecycle
from ddas.db.migrate import MIGRATIONS_DIR
from ddas.lifecycle import FINAL, STATES, TRANSITIONS, IllegalTransition, StateConflict
from ddas.pipeline import topics
from ddas.pipeline.events import Bevindingen, LeveringEvent, decode_levering_event
from ddas.settings import DatabaseSettings
from tests.conftest import insert_levering

ARCHITECTURE = Path(__file__).resolve().parents[2] / "shared/docs/architecture.md"


def test_the_states_are_those_of_the_database_check() -> None:
    sql = (MIGRATIONS_DIR / "0001_leveringen_outbox_processed_events.sql").read_text()
    check = sql[sql.index("CONSTRAINT leveringen_state_check") :]
    check = check[: check.index("))")]
    assert set(re.findall(r"'([a-z_]+)'", check)) == set(STATES)
    assert set(TRANSITIONS) == set(STATES)


def test_the_transitions_follow_the_architecture() -> None:
    forward = {
        ("ontvangen", "gevalideerd"),
        ("ontvangen", "afgekeurd"),
        ("gevalideerd", "rapport_gereed"),
        ("afgekeurd", "rapport_gereed"),
        ("rapport_gereed", "goedgekeurd"),
        ("rapport_gereed", "ingetrokken"),
        ("goedgekeurd", "gepubliceerd"),
        ("goedgekeurd", "ingetrokken"),
    }
    # "any not-yet-published delivery becomes vervangen"
    replaced = {(s, "vervangen") for s in STATES if s not in FINAL}
    assert {(a, b) for a, nxt in TRANSITIONS.items() for b in nxt} == forward | replaced
    assert {"gepubliceerd", "vervangen"} == FINAL
    assert not TRANSITIONS["gepubliceerd"] and not TRANSITIONS["vervangen"]
    text = ARCHITECTURE.read_text()
    assert "`ontvangen` → `gevalideerd` or `afgekeurd` → `rapport_gereed`" in text


@pytest.mark.integration
async def test_a_transition_writes_the_state_the_event_and_the_audit_row_together(
    db: asyncpg.Connection,
) -> None:
    levering_id = await insert_levering(db)
    summary = Bevindingen(fouten=1, waarschuwingen=2, per_code={"a": 1, "b": 2})
    event = LeveringEvent(
        event_id=str(uuid.uuid4()),
        levering_id=str(levering_id),
        state="gevalideerd",
        occurred_at="2026-01-01T00:00:00+00:00",
        bevindingen=summary,
    )
    async with db.transaction():
        returned = await lifecycle.transition(
            db,
            levering_id,
            "ontvangen",
            "gevalideerd",
            actor="service:validate",
            event=event,
            details={"trajecten": 750},
        )
    assert returned == event
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id) == (
        "gevalideerd"
    )
    row = await db.fetchrow("SELECT event_id, topic, message_key, payload FROM outbox")
    assert (row["topic"], row["message_key"]) == (topics.LEVERINGEN, str(levering_id))
    assert row["event_id"] == uuid.UUID(event.event_id)
    assert decode_levering_event(row["payload"]) == event
    audit = await db.fetchrow("SELECT actor, actie, levering_id, uitkomst, details FROM audit_log")
    assert dict(audit, details=json.loads(audit["details"])) == {
        "actor": "service:validate",
        "actie": "levering.gevalideerd",
        "levering_id": levering_id,
        "uitkomst": "ok",
        "details": {
            "van": "ontvangen",
            "naar": "gevalideerd",
            "event_id": event.event_id,
            "trajecten": 750,
        },
    }

    # A default event is built when none is given; a rolled back transition leaves nothing.
    async with db.transaction():
        built = await lifecycle.transition(
            db, levering_id, "gevalideerd", "rapport_gereed", actor="service:report"
        )
    assert (built.state, built.levering_id, built.bevindingen) == (
        "rapport_gereed",
        str(levering_id),
        Bevindingen(),
    )
    with pytest.raises(RuntimeError, match="boom"):
        async with db.transaction():
            await lifecycle.transition(
                db, levering_id, "rapport_gereed", "goedgekeurd", actor="organisatie:0503"
            )
            raise RuntimeError("boom")
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id) == (
        "rapport_gereed"
    )
    assert await db.fetchval("SELECT count(*) FROM outbox") == 2
    assert await db.fetchval("SELECT count(*) FROM audit_log") == 2


@pytest.mark.integration
async def test_the_guard_lets_exactly_one_of_two_racing_transitions_through(
    db_settings: DatabaseSettings, db: asyncpg.Connection
) -> None:
    levering_id = await insert_levering(db)
    conns = [await asyncpg.connect(**db_settings.to_asyncpg_params()) for _ in range(2)]
    try:

        async def attempt(conn: asyncpg.Connection, new: str) -> str:
            async with conn.transaction():
                try:
                    await lifecycle.transition(
                        conn, levering_id, "ontvangen", new, actor="service:validate"
                    )
                except StateConflict as exc:
                    assert exc.expected == "ontvangen" and exc.actual in STATES
                    return "refused"
                await asyncio.sleep(0.05)  # hold the row lock a while
                return "moved"

        results = await asyncio.gather(
            attempt(conns[0], "gevalideerd"), attempt(conns[1], "afgekeurd")
        )
    finally:
        for conn in conns:
            await conn.close()
    assert sorted(results) == ["moved", "refused"]
    winner, loser = (
        ("gevalideerd", "afgekeurd") if results[0] == "moved" else ("afgekeurd", "gevalideerd")
    )
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id) == winner
    assert await db.fetchval("SELECT array_agg(payload->>'state') FROM outbox") == [winner]
    audit = await db.fetch("SELECT actie, uitkomst, details FROM audit_log ORDER BY id")
    assert {(a["actie"], a["uitkomst"]) for a in audit} == {
        (f"levering.{winner}", "ok"),
        (f"levering.{loser}", "geweigerd"),
    }


@pytest.mark.integration
async def test_what_the_state_machine_does_not_allow_is_refused(db: asyncpg.Connection) -> None:
    levering_id = await insert_levering(db)
    with pytest.raises(RuntimeError, match="inside the caller's transaction"):
        await lifecycle.transition(db, levering_id, "ontvangen", "gevalideerd", actor="t")
    async with db.transaction():
        with pytest.raises(IllegalTransition, match="no transition from ontvangen to gepubliceerd"):
            await lifecycle.transition(db, levering_id, "ontvangen", "gepubliceerd", actor="t")
        with pytest.raises(IllegalTransition, match="names the delivery that replaces it"):
            await lifecycle.transition(db, levering_id, "ontvangen", "vervangen", actor="t")
        with pytest.raises(StateConflict, match="is unknown"):
            await lifecycle.transition(db, uuid.uuid4(), "ontvangen", "gevalideerd", actor="t")
        with pytest.raises(StateConflict, match="is ontvangen, not gevalideerd"):
            await lifecycle.transition(db, levering_id, "gevalideerd", "rapport_gereed", actor="t")
    assert await db.fetchval("SELECT count(*) FROM outbox") == 0


@pytest.mark.integration
async def test_a_replaced_delivery_names_its_successor(db: asyncpg.Connection) -> None:
    old, new = await insert_levering(db, "rapport_gereed"), await insert_levering(db)
    async with db.transaction():
        event = await lifecycle.transition(
            db, old, "rapport_gereed", "vervangen", actor="service:ingest", vervangen_door=new
        )
    row = await db.fetchrow("SELECT state, vervangen_door FROM leveringen WHERE id = $1", old)
    assert (row["state"], row["vervangen_door"], event.state) == ("vervangen", new, "vervangen")
    async with db.transaction():
        with pytest.raises(IllegalTransition):
            await lifecycle.transition(
                db, old, "vervangen", "vervangen", actor="service:ingest", vervangen_door=new
            )


@pytest.mark.integration
async def test_a_received_delivery_is_announced_in_the_outbox(db: asyncpg.Connection) -> None:
    """Ingest records a delivery in its first state by INSERT; `received` puts the `ontvangen`
    event for the later stages (publish's supersede) into the outbox, in the same transaction."""
    levering_id = await insert_levering(db)
    with pytest.raises(RuntimeError, match="transaction"):
        await lifecycle.received(db, levering_id)
    async with db.transaction():
        event = await lifecycle.received(db, levering_id)
    assert (event.state, event.levering_id) == ("ontvangen", str(levering_id))
    row = await db.fetchrow("SELECT event_id, topic, message_key, payload FROM outbox")
    assert (row["topic"], row["message_key"]) == (topics.LEVERINGEN, str(levering_id))
    assert decode_levering_event(row["payload"]) == event
