"""The report built from what validate stored, on the real database: the 750 file's OOR holds the
seed's two tables number for number, every figure equals the independent slow count
(tests/domain/oor_slow.py) also on generated files full of flaws, and the report's transaction
does what it must (version, state, outbox messages, audit, notifications, idempotence)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable

import asyncpg
import msgspec
import pytest

from ddas.domain.oor import Oor
from ddas.domain.pseudonym import TEST_KEY, pseudonymise_bytes
from ddas.domain.tables import Periode
from ddas.pipeline.events import decode_levering_event, decode_rapport
from services.report.build import PartsMissing, naam
from services.report.store import Handled, handle_event
from tests.domain.oor_slow import assert_matches_independent
from tests.domain.test_tables import (
    FILE_750,
    assert_seed_tables,
)
from tests.report.conftest import (
    NINE_DIGITS,
    Delivery,
    bsns_in,
    generated,
    levering_event,
    trajecten_of,
)

pytestmark = pytest.mark.integration

BASE = "https://ddas.example"


async def report(db: asyncpg.Connection, levering_id: uuid.UUID) -> dict:
    event = decode_levering_event(await levering_event(db, levering_id))
    outcome = await handle_event(db, event, base_url=BASE)
    assert outcome.handled is Handled.REPORTED
    oor: str = await db.fetchval(
        "SELECT oor::text FROM rapporten WHERE levering_id = $1 AND versie = 1", levering_id
    )
    return json.loads(oor)


async def test_750_file_report_has_the_seed_tables_and_the_independent_figures(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]]
) -> None:
    raw = FILE_750.read_bytes()
    delivery = await validated(raw, contacts=("a@gemeente.example", "b@gemeente.example"))
    oor = await report(db, delivery.id)

    tables = oor["tabellen"]
    assert_seed_tables(tables)

    doc = json.loads(raw)
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    assert_matches_independent(oor, trajecten_of(raw), p)
    assert oor["totaal"]["instroom"]["clienten"] > 0
    assert oor["totaal"]["begeleiding"]["clienten"] > 0
    assert oor["periode"] == {"start": "2025-01-01", "eind": "2025-12-31"}
    assert oor["levering"]["trajecten"] == 750
    assert [r["naam"] for r in oor["gemeenten"]] == [
        "Delft",
        "'s-Gravenhage",
        "Leiden",
        "Rotterdam",
    ]

    # the verdict and the findings per rule are validate's
    summary = json.loads(
        await db.fetchval(
            "SELECT samenvatting::text FROM validatie WHERE levering_id = $1", delivery.id
        )
    )
    v = oor["validatie"]
    assert v["uitkomst"] == "gevalideerd"
    assert (v["fouten"], v["waarschuwingen"]) == (summary["fouten"], summary["waarschuwingen"])
    assert {r["code"]: r["aantal"] for r in v["per_regel"]} == summary["per_code"]
    assert v["op_orde"] == (summary["fouten"] == 0)

    # the state, the events for the next stage, the audit row and the notifications
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", delivery.id) == (
        "rapport_gereed"
    )
    rows_out = await db.fetch(
        "SELECT topic, coalesce(payload::text, convert_from(body, 'UTF8')) AS payload "
        "FROM outbox WHERE message_key = $1 "
        "AND topic IN ('ddas.rapporten.v1', 'ddas.leveringen.v1') ORDER BY id",
        str(delivery.id),
    )
    states = [
        decode_levering_event(r["payload"]).state
        for r in rows_out
        if r["topic"] == "ddas.leveringen.v1"
    ]
    assert states[-1] == "rapport_gereed"
    (rapport_row,) = [r for r in rows_out if r["topic"] == "ddas.rapporten.v1"]
    rapport = decode_rapport(rapport_row["payload"])
    assert rapport.levering_id == str(delivery.id) and rapport.versie == 1
    assert rapport.organisatie == "0503"
    assert (rapport.periode.start, rapport.periode.eind) == ("2025-01-01", "2025-12-31")
    assert rapport.oor == oor
    audit = await db.fetchval(
        "SELECT count(*) FROM audit_log WHERE levering_id = $1 AND actie = 'levering.rapport_gereed' "
        "AND actor = 'service:report' AND uitkomst = 'ok'",
        delivery.id,
    )
    assert audit == 1
    mails = await db.fetch(
        "SELECT ontvanger, onderwerp, tekst FROM notificaties WHERE levering_id = $1 "
        "AND kanaal = 'email' ORDER BY ontvanger",
        delivery.id,
    )
    assert [m["ontvanger"] for m in mails] == ["a@gemeente.example", "b@gemeente.example"]
    assert (
        "750" in mails[0]["tekst"]
        and f"{BASE}/v1/leveringen/{delivery.id}/rapport" in (mails[0]["tekst"])
    )

    # no raw BSN anywhere in what the report wrote
    bsns = bsns_in(raw)
    assert bsns
    written = rapport_row["payload"].encode() + "".join(m["tekst"] for m in mails).encode()
    assert not {m.group() for m in NINE_DIGITS.finditer(written)} & bsns


async def test_an_event_handled_twice_is_reported_once(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]]
) -> None:
    delivery = await validated(generated(trajecten=200, seed=5))
    event = decode_levering_event(await levering_event(db, delivery.id))
    first = await handle_event(db, event, base_url=BASE)
    again = await handle_event(db, event, base_url=BASE)
    assert (first.handled, again.handled) == (Handled.REPORTED, Handled.DUPLICATE)
    # another event of the same state (a replay under a new id): the delivery has moved on
    replay = decode_levering_event(await levering_event(db, delivery.id))
    replay.event_id = str(uuid.uuid4())
    assert (await handle_event(db, replay, base_url=BASE)).handled is Handled.SKIPPED
    assert (
        await db.fetchval("SELECT count(*) FROM rapporten WHERE levering_id = $1", delivery.id) == 1
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = 'ddas.rapporten.v1' AND message_key = $1",
            str(delivery.id),
        )
        == 1
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_generated_files_with_flaws_equal_the_independent_count(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]], seed: int
) -> None:
    raw = generated(trajecten=2500, seed=seed, fouten=0.2, leveringen=2)
    delivery = await validated(raw)
    oor = await report(db, delivery.id)
    doc = json.loads(raw)
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    assert_matches_independent(oor, trajecten_of(raw), p)
    assert oor["validatie"]["fouten"] > 0 and not oor["validatie"]["op_orde"]
    assert oor["totaal"]["schulden"]["totaal_bedrag"] > 0


async def test_a_rejected_delivery_gets_a_report_that_says_why(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]]
) -> None:
    doc = json.loads(generated(trajecten=50, seed=9))
    doc["einddatumLevering"] = "2024-01-01"  # before the start: an empty period
    raw = json.dumps(doc).encode()
    delivery = await validated(raw)
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", delivery.id) == (
        "afgekeurd"
    )
    oor = await report(db, delivery.id)
    assert oor["validatie"]["uitkomst"] == "afgekeurd"
    assert oor["validatie"]["afkeuring"] == "periode_omgedraaid"
    assert oor["validatie"]["op_orde"] is False
    assert oor["tabellen"]["totaal"]["trajecten"] == 50
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", delivery.id) == (
        "rapport_gereed"
    )


async def test_a_delivery_whose_chunks_lack_their_oor_parts_is_refused_clearly(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]]
) -> None:
    # As a chunk stored before migration 0010 (or by an older validate) is: no part.
    delivery = await validated(generated(trajecten=1200, seed=6))
    await db.execute(
        "UPDATE validatie_chunks SET oor = NULL WHERE levering_id = $1 AND chunk = 1", delivery.id
    )
    event = decode_levering_event(await levering_event(db, delivery.id))
    with pytest.raises(PartsMissing, match=r"1 of its 3 chunks have no OOR part"):
        await handle_event(db, event, base_url=BASE)
    # nothing of the failed attempt stays: no report, the state as it was, the event not taken
    assert (
        await db.fetchval("SELECT count(*) FROM rapporten WHERE levering_id = $1", delivery.id) == 0
    )
    assert await db.fetchval("SELECT state FROM leveringen WHERE id = $1", delivery.id) == (
        "gevalideerd"
    )
    assert (
        await db.fetchval(
            "SELECT count(*) FROM processed_events WHERE consumer = 'report' AND event_id = $1",
            uuid.UUID(event.event_id),
        )
        == 0
    )


@pytest.mark.parametrize("source", ["750", "generated"])
async def test_the_merged_parts_give_the_json_of_one_pass_over_the_stored_trajectories(
    db: asyncpg.Connection, validated: Callable[..., Awaitable[Delivery]], source: str
) -> None:
    # What the report was before validate counted the parts: `Oor(periode)` over the
    # pseudonymised trajectories in file order. The same JSON, key order included.
    if source == "750":
        raw = FILE_750.read_bytes()
    else:
        raw = generated(trajecten=2200, seed=11, fouten=0.2, leveringen=3)
    delivery = await validated(raw)
    oor = await report(db, delivery.id)
    doc = msgspec.json.decode(pseudonymise_bytes(raw, TEST_KEY))
    one_pass = Oor(Periode(doc["startdatumLevering"], doc["einddatumLevering"]))
    for lev in doc["leveringen"]:
        for t in lev["schuldhulptrajecten"]:
            one_pass.add(t)
    expected = one_pass.result().as_dict()
    for rij in (*expected["gemeenten"], *expected["tabellen"]["gemeenten"]):
        rij["naam"] = naam(rij["gemeentecode"])
    got = {k: oor[k] for k in ("periode", "tabellen", "gemeenten", "totaal")}
    assert json.dumps(got) == json.dumps(expected)
    assert oor["levering"]["trajecten"] == expected["tabellen"]["totaal"]["trajecten"]
