"""The approval gate and the publication, on the real broker and database: the publish service
runs in-process with its real HTTP server; the earlier stages are played by the test (a
delivery row in `rapport_gereed`, its `Rapport` on the reports topic, computed from the
DDAS-app's 750 file by ddas.domain.oor).

What must hold:
- only the organisation concerned decides: 401 without a token, 403 for the supplier and for
  another organisation, 404 for an unknown id, 409 before the report; each refusal audited
  with who, what and the outcome;
- approval publishes: state `gepubliceerd`, the statistics in the table, in the event and in
  the API equal to the disclosure-protected figures of the OOR; a replayed approval answers the
  same and publishes nothing twice;
- notifications of the decision and of the publication are written (ddas.notify).
"""

from __future__ import annotations

import csv
import io
import json
import uuid

import httpx
import pytest

from ddas.domain.disclosure import AFRONDING, GEPUBLICEERD, MIN_CEL
from services.publish import statistiek
from services.publish.model import decode_statistieken

from .conftest import APP_750, ORG, Env, decode, oor_of, read_topic, until

pytestmark = pytest.mark.integration

PERIODE = ("2025-01-01", "2025-06-30")


def expected_cells(*oors: dict) -> dict[tuple[str, str, str], tuple[float | None, str]]:
    """The disclosure-protected figures of the OORs, summed per municipality."""
    per_gemeente: dict[str, list] = {}
    for oor in oors:
        for code, cijfers in statistiek.bijdragen(oor).items():
            per_gemeente.setdefault(code, []).append(cijfers)
    cells = statistiek.beveilig_periode(
        {code: statistiek.optellen(d) for code, d in per_gemeente.items()}
    )
    return {
        (c.gemeentecode, c.tabel, c.kolom): (
            None if c.cel.waarde is None else float(c.cel.waarde),
            c.cel.status,
        )
        for c in cells
    }


async def audit_rows(env: Env, levering_id: uuid.UUID | None = None) -> list[dict]:
    rows = await env.db.fetch(
        "SELECT actor, actie, uitkomst, levering_id, details::text AS details, at "
        "FROM audit_log WHERE $1::uuid IS NULL OR levering_id = $1 ORDER BY id",
        levering_id,
    )
    return [{**dict(r), "details": json.loads(r["details"])} for r in rows]


async def test_only_the_organisation_decides_and_every_refusal_is_audited(env: Env) -> None:
    levering_id = await env.levering("rapport_gereed")
    oor = oor_of(APP_750)
    await env.rapport(levering_id, oor)

    # no token, a bad token: 401, audited as anoniem
    r = await env.post(levering_id, "goedkeuring", None)
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert (await env.post(levering_id, "goedkeuring", "nonsense")).status_code == 401
    # the supplier submits, it does not decide; another organisation does not either
    r = await env.post(levering_id, "goedkeuring", env.tokens["leverancier"])
    assert r.status_code == 403
    assert r.json()["type"] == "urn:ddas:probleem:geen-toegang"
    assert (await env.post(levering_id, "intrekking", env.tokens["andere"])).status_code == 403
    # unknown, malformed
    assert (await env.post(uuid.uuid4(), "goedkeuring", env.tokens["org"])).status_code == 404
    assert (await env.post("niet-een-id", "goedkeuring", env.tokens["org"])).status_code == 404
    assert await env.state(levering_id) == "rapport_gereed"

    refused = [r for r in await audit_rows(env) if r["uitkomst"] == "geweigerd"]
    by_actor = [(r["actor"], r["details"]["status"], r["levering_id"]) for r in refused]
    assert by_actor == [
        ("anoniem", 401, None),
        ("anoniem", 401, None),
        ("leverancier:LEV", 403, levering_id),
        ("organisatie:87654321", 403, levering_id),
        (f"organisatie:{ORG}", 404, None),
        (f"organisatie:{ORG}", 404, None),
    ]
    assert all(r["actie"].startswith("POST /v1/leveringen/") for r in refused)
    assert [r["details"]["besluit"] for r in refused][2:4] == ["goedkeuring", "intrekking"]
    assert all(r["at"] is not None for r in refused)


async def test_not_yet_reported_is_409_and_audited(env: Env) -> None:
    for state in ("ontvangen", "gevalideerd", "afgekeurd"):
        levering_id = await env.levering(state)
        r = await env.post(levering_id, "goedkeuring", env.tokens["org"])
        assert r.status_code == 409, state
        assert state in r.json()["detail"]
        assert (await env.post(levering_id, "intrekking", env.tokens["org"])).status_code == 409
        assert await env.state(levering_id) == state
        rows = await audit_rows(env, levering_id)
        assert [(r["uitkomst"], r["details"]["status"]) for r in rows] == [("geweigerd", 409)] * 2


async def test_approval_publishes_the_protected_oor_figures_once(env: Env) -> None:
    levering_id = await env.levering("rapport_gereed", periode=PERIODE)
    oor = oor_of(APP_750)
    await env.rapport(levering_id, oor)

    r = await env.post(levering_id, "goedkeuring", env.tokens["org"], reden="klopt")
    assert r.status_code == 200
    assert r.json() == {"id": str(levering_id), "state": "goedgekeurd", "nieuw": True}
    await env.wait_state(levering_id, "gepubliceerd")

    # a replay: the same answer, nothing new
    again = await env.post(levering_id, "goedkeuring", env.tokens["org"])
    assert again.status_code == 200
    assert again.json() == {"id": str(levering_id), "state": "gepubliceerd", "nieuw": False}

    # the table holds exactly the protected figures of the OOR
    expected = expected_cells(oor)
    stored = await env.stored_cells(*PERIODE)
    assert stored == expected
    # they are protected: sanity of what was published, and something was suppressed
    published = {k: v for k, v in stored.items() if v[1] == GEPUBLICEERD}
    assert published and len(published) < len(stored)
    for (_, tabel, _), (waarde, _) in published.items():
        if not tabel.startswith("schuldsoorten_aandeel") and tabel != "schulden":
            assert waarde is not None and waarde >= MIN_CEL and waarde % AFRONDING == 0
    # the seed's 750 file: 0503 has 197 unique clients (Table 1), published rounded
    assert stored[("0503", "laatste_fase", "totaal")] == (195.0, GEPUBLICEERD)
    assert stored[("totaal", "trajecten", "trajecten")] == (750.0, GEPUBLICEERD)

    # one event on the statistics topic, with the same cells
    records = await until(lambda: read_topic(env.kafka, env.statistieken))
    assert len({r.headers and dict(r.headers).get("ddas-event-id") for r in records}) == 1
    event = decode_statistieken(records[0].value)
    assert event.aanleiding == str(levering_id) and event.versie == 1
    assert records[0].key.decode() == "2025-01-01/2025-06-30"
    assert {
        (c.gemeentecode, c.tabel, c.kolom): (
            None if c.waarde is None else float(c.waarde),
            c.status,
        )
        for c in event.cellen
    } == expected

    # the public API: JSON and CSV, no token
    async with httpx.AsyncClient(base_url=env.url) as client:
        j = await client.get("/v1/statistieken", params={"periode": "2025-01-01/2025-06-30"})
        assert j.status_code == 200
        body = j.json()
        assert body["versie"] == 1
        api = {
            (g["gemeentecode"], t, k): (
                None if c["waarde"] is None else float(c["waarde"]),
                c["status"],
            )
            for g in body["gemeenten"]
            for t, kolommen in g["tabellen"].items()
            for k, c in kolommen.items()
        }
        assert api == expected
        c = await client.get(
            "/v1/statistieken",
            params={"periode": "2025-01-01/2025-06-30", "gemeentecode": "0503"},
            headers={"Accept": "text/csv"},
        )
        assert c.status_code == 200 and c.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(c.text)))
        assert {r["gemeentecode"] for r in rows} == {"0503"}
        assert {
            ("0503", r["tabel"], r["kolom"]): (
                float(r["waarde"]) if r["waarde"] else None,
                r["status"],
            )
            for r in rows
        } == {k: v for k, v in expected.items() if k[0] == "0503"}
        assert (await client.get("/v1/statistieken", params={"periode": "2024"})).status_code == 400
        missing = await client.get("/v1/statistieken", params={"periode": "2024-01-01/2024-06-30"})
        assert missing.status_code == 404
        assert (await client.get("/v1/statistieken/perioden")).json() == [
            {"periode": "2025-01-01/2025-06-30", "versie": 1}
        ]

    # audited: the approval by the organisation, the publication by the service, the replay
    rows = [(r["actor"], r["actie"], r["uitkomst"]) for r in await audit_rows(env, levering_id)]
    assert rows == [
        (f"organisatie:{ORG}", "levering.goedgekeurd", "ok"),
        ("service:publish", "levering.gepubliceerd", "ok"),
        (f"organisatie:{ORG}", "levering.goedkeuring", "dubbel"),
    ]
    # the lifecycle events are in the outbox, and the organisation is told twice (a contact)
    states = await env.db.fetch(
        "SELECT payload->>'state' AS s FROM outbox WHERE message_key = $1 ORDER BY id",
        str(levering_id),
    )
    assert [r["s"] for r in states if r["s"] is not None][:2] == ["goedgekeurd", "gepubliceerd"]
    soorten = await env.db.fetch(
        "SELECT soort, kanaal, ontvanger FROM notificaties WHERE levering_id = $1 ORDER BY id",
        levering_id,
    )
    assert [tuple(r) for r in soorten] == [
        ("goedgekeurd", "email", "contact@example.org"),
        ("gepubliceerd", "email", "contact@example.org"),
    ]
    assert decode(records[0])["periode"] == {"start": "2025-01-01", "eind": "2025-06-30"}


async def test_two_organisations_for_one_municipality_are_summed(env: Env) -> None:
    # The 750 file split in two halves, delivered by two organisations: the published figures
    # are those of the sum (as the tables' total row sums), not of either half.
    first = oor_of(APP_750, keep=lambda i: i % 2 == 0)
    second = oor_of(APP_750, keep=lambda i: i % 2 == 1)
    a = await env.levering("rapport_gereed", periode=PERIODE)
    await env.rapport(a, first)
    assert (await env.post(a, "goedkeuring", env.tokens["org"])).status_code == 200
    await env.wait_state(a, "gepubliceerd")
    assert await env.stored_cells(*PERIODE) == expected_cells(first)

    b = await env.levering("rapport_gereed", organisatie="87654321", periode=PERIODE)
    await env.rapport(b, second)
    assert (await env.post(b, "goedkeuring", env.tokens["andere"])).status_code == 200
    await env.wait_state(b, "gepubliceerd")
    assert await env.stored_cells(*PERIODE) == expected_cells(first, second)
    whole = expected_cells(first, second)
    assert whole[("totaal", "trajecten", "trajecten")] == (750.0, GEPUBLICEERD)
    versions = await env.db.fetch(
        "SELECT versie, aanleiding FROM statistiek_versies ORDER BY versie"
    )
    assert [(r["versie"], r["aanleiding"]) for r in versions] == [(1, a), (2, b)]


async def test_a_malformed_reason_is_refused_and_audited(env: Env) -> None:
    levering_id = await env.levering("rapport_gereed")
    async with httpx.AsyncClient(base_url=env.url) as client:
        r = await client.post(
            f"/v1/leveringen/{levering_id}/goedkeuring",
            headers={"Authorization": f"Bearer {env.tokens['org']}"},
            content=b"{not json",
        )
        assert r.status_code == 400
        assert r.json()["type"] == "urn:ddas:probleem:ongeldig-besluit"
        spec = (await client.get("/openapi.json")).json()
    assert await env.state(levering_id) == "rapport_gereed"
    rows = await audit_rows(env, levering_id)
    assert [(r["uitkomst"], r["details"]["status"]) for r in rows] == [("geweigerd", 400)]
    body = spec["paths"]["/v1/leveringen/{levering_id}/goedkeuring"]["post"]["requestBody"]
    assert body["required"] is False


async def test_an_unreadable_report_is_dead_lettered_and_the_next_one_is_kept(env: Env) -> None:
    from ddas.pipeline import events
    from ddas.pipeline.topics import dead_letter

    from .conftest import publish

    levering_id = await env.levering("rapport_gereed")
    await publish(env.kafka, env.rapporten, [(str(levering_id), b'{"niet": "een rapport"}')])
    zonder_cijfers = events.Rapport(
        event_id=str(uuid.uuid4()),
        levering_id=str(levering_id),
        versie=1,
        organisatie=ORG,
        periode=events.RapportPeriode(),
        oor={"tabellen": {}},
    )
    await publish(env.kafka, env.rapporten, [(str(levering_id), events.encode(zonder_cijfers))])
    await env.rapport(levering_id, oor_of(APP_750))  # behind the poison message: still handled
    assert (
        await env.db.fetchval(
            "SELECT versie FROM publicatie_rapporten WHERE levering_id = $1", levering_id
        )
        == 1
    )
    dead = await until(lambda: read_topic(env.kafka, dead_letter(env.rapporten)))
    assert [r.value for r in dead] == [b'{"niet": "een rapport"}', events.encode(zonder_cijfers)]
    headers = [dict(r.headers) for r in dead]
    assert headers[0]["ddas-origin-topic"] == env.rapporten.encode()
    assert [h["ddas-error-class"] for h in headers] == [
        b"msgspec.ValidationError",
        b"services.publish.statistiek.OorOnleesbaar",
    ]
