"""Withdrawal and supersede, on the real broker and database (the publish service in-process).

- Withdrawn before approval: its figures and its trajectory facts are gone, its findings and
  audit trail stay, the organisation is told, approving it afterwards is 409, a report that
  arrives later is not kept, and nothing of it is ever published.
- A second delivery of the same organisation for the same period supersedes the first (which
  can then no longer be approved); the published statistics hold the second only, also when the
  first had been published already.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

import pytest

from .conftest import APP_750, ORG, Env, oor_of, read_topic
from .test_gate import PERIODE, expected_cells

pytestmark = pytest.mark.integration


async def add_facts(env: Env, levering_id: uuid.UUID) -> None:
    """A chunk with its trajectories' facts, and a finding, as validate stores them."""
    await env.db.execute(
        "INSERT INTO validatie_chunks (levering_id, chunk, event_id, levering_index, eerste, "
        "trajecten, feiten) VALUES ($1, 0, $2, 0, 0, 1, '\\x00')",
        levering_id,
        uuid.uuid4(),
    )
    await env.db.execute(
        "INSERT INTO bevindingen (levering_id, fase, levering_index, traject_index, volgnummer, "
        "code, ernst, pointer, message) VALUES ($1, 1, 0, 0, 0, 'X', 'fout', '/x', 'm')",
        levering_id,
    )


async def test_withdrawn_before_approval_is_never_published(env: Env) -> None:
    levering_id = await env.levering("rapport_gereed", periode=PERIODE)
    await add_facts(env, levering_id)
    oor = oor_of(APP_750)
    await env.rapport(levering_id, oor)
    assert await env.db.fetchval("SELECT count(*) FROM publicatie_rapporten") == 1

    # someone else cannot withdraw it
    assert (await env.post(levering_id, "intrekking", env.tokens["andere"])).status_code == 403
    r = await env.post(levering_id, "intrekking", env.tokens["org"], reden="verkeerd bestand")
    assert r.status_code == 200
    assert r.json() == {"id": str(levering_id), "state": "ingetrokken", "nieuw": True}
    # withdrawing again: the same answer
    again = await env.post(levering_id, "intrekking", env.tokens["org"])
    assert (again.status_code, again.json()["state"], again.json()["nieuw"]) == (
        200,
        "ingetrokken",
        False,
    )

    # its facts are gone from everything that could be published; findings and audit stay
    count = "SELECT count(*) FROM {} WHERE levering_id = $1"
    assert await env.db.fetchval(count.format("publicatie_rapporten"), levering_id) == 0
    assert await env.db.fetchval(count.format("validatie_chunks"), levering_id) == 0
    assert await env.db.fetchval(count.format("bevindingen"), levering_id) == 1

    # approve after withdraw: 409, audited; a report arriving now is not kept
    r = await env.post(levering_id, "goedkeuring", env.tokens["org"])
    assert r.status_code == 409
    assert "ingetrokken" in r.json()["detail"]
    await env.rapport(levering_id, oor, versie=2)
    assert await env.db.fetchval(count.format("publicatie_rapporten"), levering_id) == 0
    await asyncio.sleep(1.0)  # give the publisher a chance to do what it must not
    assert await env.state(levering_id) == "ingetrokken"
    assert await env.db.fetchval("SELECT count(*) FROM statistieken") == 0
    assert await env.db.fetchval("SELECT count(*) FROM publicatie_bijdragen") == 0
    assert await read_topic(env.kafka, env.statistieken) == []

    audit = await env.db.fetch(
        "SELECT actor, actie, uitkomst, details::text AS d FROM audit_log "
        "WHERE levering_id = $1 ORDER BY id",
        levering_id,
    )
    rows = [(r["actor"], r["actie"], r["uitkomst"]) for r in audit]
    assert rows == [
        ("organisatie:87654321", f"POST /v1/leveringen/{levering_id}/intrekking", "geweigerd"),
        (f"organisatie:{ORG}", "levering.ingetrokken", "ok"),
        (f"organisatie:{ORG}", "levering.feiten_verwijderd", "ok"),
        (f"organisatie:{ORG}", "levering.intrekking", "dubbel"),
        (f"organisatie:{ORG}", f"POST /v1/leveringen/{levering_id}/goedkeuring", "geweigerd"),
    ]
    assert json.loads(audit[1]["d"])["reden"] == "verkeerd bestand"
    assert json.loads(audit[2]["d"]) == {
        "rapporten": 1,
        "bijdragen": 0,
        "validatie_chunks": 1,
    }
    notified = await env.db.fetch(
        "SELECT soort FROM notificaties WHERE levering_id = $1", levering_id
    )
    assert [r["soort"] for r in notified] == ["ingetrokken"]


async def test_withdrawn_during_the_cooling_off_time_is_not_published(
    make_env: Callable[..., Awaitable[Env]],
) -> None:
    env = await make_env(bedenktijd_s=2.0)
    levering_id = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(levering_id, oor_of(APP_750))
    assert (await env.post(levering_id, "goedkeuring", env.tokens["org"])).status_code == 200
    r = await env.post(levering_id, "intrekking", env.tokens["org"])
    assert r.json()["state"] == "ingetrokken"
    await asyncio.sleep(3.0)
    assert await env.state(levering_id) == "ingetrokken"
    assert await env.db.fetchval("SELECT count(*) FROM statistieken") == 0


async def test_a_second_delivery_supersedes_the_first(env: Env) -> None:
    first_oor = oor_of(APP_750, keep=lambda i: i < 500)
    second_oor = oor_of(APP_750)
    first = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(first, first_oor)
    await env.ontvangen(first)  # its own arrival replaces nothing
    assert await env.state(first) == "rapport_gereed"
    # another organisation's delivery, and another period of this organisation, stay as well
    other_org = await env.levering("rapport_gereed", organisatie="87654321", periode=PERIODE)
    other_period = await env.levering("rapport_gereed", periode=("2025-07-01", "2025-12-31"))

    second = await env.levering("ontvangen", periode=PERIODE)
    await env.ontvangen(second)
    assert await env.state(first) == "vervangen"
    assert (
        await env.db.fetchval("SELECT vervangen_door FROM leveringen WHERE id = $1", first)
        == second
    )
    assert await env.state(other_org) == "rapport_gereed"
    assert await env.state(other_period) == "rapport_gereed"
    notified = await env.db.fetch("SELECT soort FROM notificaties WHERE levering_id = $1", first)
    assert [r["soort"] for r in notified] == ["vervangen"]

    # the superseded one can no longer be approved
    r = await env.post(first, "goedkeuring", env.tokens["org"])
    assert r.status_code == 409 and "vervangen" in r.json()["detail"]

    # the second goes through: its figures only are published
    await env.db.execute("UPDATE leveringen SET state = 'rapport_gereed' WHERE id = $1", second)
    await env.rapport(second, second_oor)
    assert (await env.post(second, "goedkeuring", env.tokens["org"])).status_code == 200
    await env.wait_state(second, "gepubliceerd")
    assert await env.stored_cells(*PERIODE) == expected_cells(second_oor)
    assert expected_cells(second_oor) != expected_cells(first_oor, second_oor)


async def test_a_published_delivery_is_replaced_by_the_newer_ones_publication(env: Env) -> None:
    first_oor = oor_of(APP_750, keep=lambda i: i < 500)
    second_oor = oor_of(APP_750, keep=lambda i: i >= 200)
    first = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(first, first_oor)
    assert (await env.post(first, "goedkeuring", env.tokens["org"])).status_code == 200
    await env.wait_state(first, "gepubliceerd")
    assert await env.stored_cells(*PERIODE) == expected_cells(first_oor)

    second = await env.levering("ontvangen", periode=PERIODE)
    await env.ontvangen(second)
    assert await env.state(first) == "gepubliceerd"  # final: it stays, its figures will go
    await env.db.execute("UPDATE leveringen SET state = 'rapport_gereed' WHERE id = $1", second)
    await env.rapport(second, second_oor)
    assert (await env.post(second, "goedkeuring", env.tokens["org"])).status_code == 200
    await env.wait_state(second, "gepubliceerd")

    assert await env.stored_cells(*PERIODE) == expected_cells(second_oor)
    replaced = await env.db.fetch(
        "SELECT DISTINCT vervangen_door FROM publicatie_bijdragen WHERE levering_id = $1", first
    )
    assert [r["vervangen_door"] for r in replaced] == [second]
    events = await read_topic(env.kafka, env.statistieken)
    assert len(events) == 2  # version 1 (the first), version 2 (the second only)


async def test_an_older_delivery_approved_after_a_newer_arrived_is_replaced_not_published(
    env: Env,
) -> None:
    # The newer delivery's arrival event has not been handled yet (publish lags behind); the
    # publisher sees the newer delivery itself and replaces the older instead of publishing it.
    first = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(first, oor_of(APP_750))
    second = await env.levering("ontvangen", periode=PERIODE)
    assert (await env.post(first, "goedkeuring", env.tokens["org"])).status_code == 200
    await env.wait_state(first, "vervangen")
    assert await env.db.fetchval("SELECT count(*) FROM statistieken") == 0
    assert (
        await env.db.fetchval("SELECT vervangen_door FROM leveringen WHERE id = $1", first)
        == second
    )
