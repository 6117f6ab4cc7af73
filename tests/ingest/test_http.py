"""The upload API on a real uvicorn server, with the real broker and database.

What is shown: a delivery is accepted (202) and published as chunks spread over the partitions;
the same delivery submitted twice, and a supplier's retry after a client timeout, give one
delivery; every error case answers its status with an RFC 7807 problem document and is
audit-logged; the status is readable by the supplier and the organisation concerned only; no raw
BSN (or other identifying value) is left anywhere after ingest: chunk messages, every table,
logs.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from ddas.domain.check import check_document
from ddas.domain.reader import parse_document
from ddas.pipeline.events import Bevindingen, LeveringEvent, decode_chunk, encode
from ddas.registry import add_organisation_token
from tests.ingest.conftest import APP_750, Ingest, generated, organisations
from tests.ingest.helpers import (
    JSON,
    assert_problem,
    auth,
    read_topic,
    table_texts,
    wait_published,
)

pytestmark = pytest.mark.integration

RAW_750 = APP_750.read_bytes()


async def _post(ingest: Ingest, body: bytes, token: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        return await client.post("/v1/leveringen", content=body, headers=auth(token, **JSON), **kw)


async def test_a_delivery_is_accepted_and_published_in_chunks_over_the_partitions(
    ingest: Ingest,
) -> None:
    token = await ingest.supplier("allegro", organisations(RAW_750))
    response = await _post(ingest, RAW_750, token)
    assert response.status_code == 202, response.text
    body = response.json()
    levering_id = body["id"]
    assert body["state"] == "ontvangen" and body["nieuw"] is True
    assert body["trajecten"] == 750 and body["chunks"] == 3  # chunk_size 250
    assert response.headers["location"] == body["status_url"]
    assert body["status_url"] == f"{ingest.url}/v1/leveringen/{levering_id}"

    row = await ingest.db.fetchrow("SELECT * FROM leveringen WHERE id = $1", uuid.UUID(levering_id))
    assert row["state"] == "ontvangen" and row["leverancier"] == "allegro"
    assert row["ontvangen_via"] == "http" and row["trajecten"] == 750 and row["chunks"] == 3
    assert str(row["startdatum_levering"]) == "2025-01-01"

    await wait_published(ingest.db)
    records = [r for r in await read_topic(ingest.kafka, ingest.chunk_topic, 3)
               if r.key.startswith(levering_id.encode())]  # fmt: skip
    assert sorted(r.key.decode() for r in records) == [f"{levering_id}:{i}" for i in range(3)]
    assert len({r.partition for r in records}) > 1, "a delivery spreads over the partitions"
    chunks = sorted((decode_chunk(r.value) for r in records), key=lambda c: c.chunk)
    assert [(c.chunk, c.chunks, c.eerste, len(c.trajecten)) for c in chunks] == [
        (0, 3, 0, 250),
        (1, 3, 250, 250),
        (2, 3, 500, 250),
    ]
    # The chunks put together are the pseudonymised file: same findings and tables as the raw.
    doc = {**chunks[0].root, "leveringen": [{**chunks[0].levering, "schuldhulptrajecten": [
        t for c in chunks for t in c.trajecten]}]}  # fmt: skip
    raw_check = check_document(parse_document(RAW_750))
    pseudo_check = check_document(parse_document(orjson.dumps(doc)))
    assert [(f.code, f.pointer) for f in pseudo_check.findings] == [
        (f.code, f.pointer) for f in raw_check.findings
    ]
    assert pseudo_check.totalen == raw_check.totalen
    audit = await ingest.db.fetch(
        "SELECT actor, actie, uitkomst FROM audit_log WHERE levering_id = $1",
        uuid.UUID(levering_id),
    )
    assert [tuple(a) for a in audit] == [
        ("leverancier:allegro", "levering.aangeboden", "ontvangen")
    ]


async def test_the_same_delivery_submitted_twice_is_one_delivery(ingest: Ingest) -> None:
    raw = generated(300, seed=21)
    token = await ingest.supplier("twice", organisations(raw))
    first = await _post(ingest, raw, token)
    second = await _post(ingest, raw, token)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["id"] == second.json()["id"]
    assert second.json()["nieuw"] is False and second.json()["chunks"] == 2
    count = await ingest.db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'twice'")
    assert count == 1
    records = [r for r in await read_topic(ingest.kafka, ingest.chunk_topic, 1)
               if r.key.startswith(first.json()["id"].encode())]  # fmt: skip
    assert sorted(r.key.decode() for r in records) == [f"{first.json()['id']}:{i}" for i in (0, 1)]
    # Another supplier with the same bytes makes a delivery of its own.
    other = await ingest.supplier("other", organisations(raw))
    third = await _post(ingest, raw, other)
    assert third.status_code == 202 and third.json()["id"] != first.json()["id"]


async def test_a_retry_after_a_client_timeout_is_the_same_delivery(ingest: Ingest) -> None:
    raw = generated(400, seed=22)
    token = await ingest.supplier("retry", organisations(raw))
    intake = ingest.service.intake
    assert intake is not None
    intake.after_prepare = lambda prepared: time.sleep(1.5)  # the server is slow this time
    try:
        with pytest.raises(httpx.ReadTimeout):
            await _post(ingest, raw, token, timeout=0.5)
        intake.after_prepare = None
        retry = await _post(ingest, raw, token)  # the supplier tries again: the same request
    finally:
        intake.after_prepare = None
    assert retry.status_code in (200, 202)
    await asyncio.sleep(1.5)  # let the first request finish its transaction
    rows = await ingest.db.fetch("SELECT id, chunks FROM leveringen WHERE leverancier = 'retry'")
    assert len(rows) == 1 and str(rows[0]["id"]) == retry.json()["id"]
    assert rows[0]["chunks"] == 2
    # Both attempts published their chunks, and they are the very same chunks: the same keys,
    # event ids and contents (validate stores a chunk once per event id), and no other.
    records = await read_topic(ingest.kafka, ingest.chunk_topic, 4)
    mine = [r for r in records if r.key.startswith(retry.json()["id"].encode())]
    assert len(mine) == 4
    by_key: dict[bytes, set[bytes]] = {}
    for r in mine:
        by_key.setdefault(r.key, set()).add(r.value)
    assert sorted(by_key) == [f"{retry.json()['id']}:{i}".encode() for i in (0, 1)]
    assert all(len(values) == 1 for values in by_key.values())
    event_ids = {decode_chunk(r.value).event_id for r in mine}
    assert event_ids == {dict(r.headers)["ddas-event-id"].decode() for r in mine}
    assert len(event_ids) == 2
    # One announcement of the delivery: the winner's `ontvangen` event, in the outbox.
    assert (
        await ingest.db.fetchval(
            "SELECT count(*) FROM outbox WHERE message_key = $1", retry.json()["id"]
        )
        == 1
    )


# -- every error case ---------------------------------------------------------------------------


def _doc(**root: Any) -> bytes:
    base = orjson.loads(RAW_750)
    base.update(root)
    return orjson.dumps(base)


async def test_every_http_error_answers_its_status_with_a_problem_document(
    ingest: Ingest,
) -> None:
    token = await ingest.supplier("errors", ["10000001"])
    org_token = await add_organisation_token(ingest.db, "10000001")
    stranger = await ingest.supplier("stranger", ["99999999"])
    deep = b'{"leveringen": [{"teller": 1, "x": ' + b"[" * 40 + b"]" * 40 + b"}]}"
    many = generated(5_001, seed=3, fouten=0.0)  # max_trajecten is 5,000 here
    many_token = await ingest.supplier("many", organisations(many))
    big = b" " * (8 * 1024 * 1024 + 1)
    lev = orjson.loads(RAW_750)["leveringen"][0]
    no_org = _doc(leveringen=[{**lev, "aanleverende_organisatie": {"naam": "x"}}])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"content": b"{niet json", "headers": auth(token, **JSON)}, 400, "geen-json"),
        ({"content": b"[1, 2]", "headers": auth(token, **JSON)}, 400, "geen-json"),
        ({"content": b'{"a": 1}', "headers": auth(token, **JSON)}, 400, "geen-ddas"),
        ({"content": _doc(leveringen=[]), "headers": auth(token, **JSON)}, 400, "geen-leveringen"),
        ({"content": _doc(leveringen=[5]), "headers": auth(token, **JSON)}, 400,
         "levering-geen-object"),
        ({"content": deep, "headers": auth(token, **JSON)}, 400, "te-diep"),
        ({"content": RAW_750, "headers": JSON}, 401, "niet-geauthenticeerd"),
        ({"content": RAW_750, "headers": auth("not-a-token", **JSON)}, 401,
         "niet-geauthenticeerd"),
        ({"content": RAW_750, "headers": {"Authorization": "Basic eDp5", **JSON}}, 401,
         "niet-geauthenticeerd"),
        ({"content": RAW_750, "headers": auth(stranger, **JSON)}, 403, "geen-recht"),
        ({"content": RAW_750, "headers": auth(org_token, **JSON)}, 403, "geen-leverancier"),
        ({"content": no_org, "headers": auth(token, **JSON)}, 403, "organisatie-onbekend"),
        ({"content": big, "headers": auth(token, **JSON)}, 413, "te-groot"),
        ({"content": many, "headers": auth(many_token, **JSON)}, 413, "te-veel-trajecten"),
        ({"content": RAW_750, "headers": auth(token, **{"Content-Type": "text/plain"})}, 415,
         "geen-json-type"),
        ({"content": RAW_750, "headers": auth(token)}, 415, "geen-json-type"),
    ]  # fmt: skip
    before = await ingest.db.fetchval("SELECT count(*) FROM leveringen")
    async with httpx.AsyncClient(base_url=ingest.url, timeout=30) as client:
        for kwargs, status, slug in cases:
            response = await client.post("/v1/leveringen", **kwargs)
            doc = assert_problem(response, status, slug)
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
            assert "BSN" not in doc["detail"] or status == 400

        # 413 while streaming: no Content-Length, the body is cut off at the limit.
        async def stream() -> Any:
            for _ in range(9):
                yield b" " * (1024 * 1024)

        response = await client.post(
            "/v1/leveringen", content=stream(), headers=auth(token, **JSON)
        )
        assert "content-length" not in response.request.headers
        assert_problem(response, 413, "te-groot")
        # Unknown routes and methods are problems too.
        assert_problem(await client.get("/v1/onbekend"), 404)
        assert_problem(await client.delete("/v1/leveringen"), 405)
    assert await ingest.db.fetchval("SELECT count(*) FROM leveringen") == before
    refused = await ingest.db.fetch(
        "SELECT actor, details->>'status' AS status FROM audit_log WHERE uitkomst = 'geweigerd'"
    )
    assert {r["status"] for r in refused} >= {"400", "401", "403", "413", "415"}
    assert any(r["actor"] == "anoniem" for r in refused)


async def test_the_status_is_for_the_supplier_and_the_organisation_only(ingest: Ingest) -> None:
    raw = generated(120, seed=23)
    orgs = organisations(raw)
    token = await ingest.supplier("status", orgs)
    other = await ingest.supplier("nosy", orgs)
    own_org = await add_organisation_token(ingest.db, orgs[0])
    other_org = await add_organisation_token(ingest.db, "0599")
    levering_id = (await _post(ingest, raw, token)).json()["id"]
    path = f"/v1/leveringen/{levering_id}"
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        mine = await client.get(path, headers=auth(token))
        assert mine.status_code == 200
        assert mine.json()["state"] == "ontvangen" and mine.json()["bevindingen"] is None
        assert mine.json()["organisaties"] == orgs
        assert (await client.get(path, headers=auth(own_org))).status_code == 200
        assert_problem(await client.get(path, headers=auth(other)), 403, "geen-toegang")
        assert_problem(await client.get(path, headers=auth(other_org)), 403, "geen-toegang")
        assert_problem(await client.get(path), 401)
        assert_problem(await client.get(f"/v1/leveringen/{uuid.uuid4()}", headers=auth(token)), 404)
        assert_problem(await client.get("/v1/leveringen/geen-uuid", headers=auth(token)), 404)

        # Validate's lifecycle event on ddas.leveringen.v1 brings the findings summary.
        from ddas.messaging import build_broker

        broker = build_broker(ingest.kafka)
        await broker.start()
        try:
            event = LeveringEvent(
                event_id=str(uuid.uuid4()),
                levering_id=levering_id,
                state="gevalideerd",
                occurred_at="2026-01-01T12:00:00+00:00",
                bevindingen=Bevindingen(fouten=0, waarschuwingen=3, per_code={"bsn.elfproef": 3}),
            )
            await broker.publish(encode(event), ingest.status_topic, key=levering_id.encode())
        finally:
            await broker.stop()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            body = (await client.get(path, headers=auth(token))).json()
            if body["bevindingen"] is not None:
                break
            await asyncio.sleep(0.1)
        assert body["bevindingen"] == {
            "fouten": 0,
            "waarschuwingen": 3,
            "per_code": {"bsn.elfproef": 3},
        }


async def test_openapi_health_readiness_and_metrics(ingest: Ingest) -> None:
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        spec = (await client.get("/openapi.json")).json()
        assert {"/v1/leveringen", "/v1/leveringen/{levering_id}"} <= spec["paths"].keys()
        post = spec["paths"]["/v1/leveringen"]["post"]
        assert {"202", "400", "401", "403", "413", "415"} <= post["responses"].keys()
        assert "application/json" in post["requestBody"]["content"]
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "kafka": True,
            "database": True,
        }
        metrics = (await client.get("/metrics")).text
        assert "ddas_ingest_leveringen_total" in metrics


# -- privacy ------------------------------------------------------------------------------------

_RUN = re.compile(rb"(?<![0-9])[0-9]{8,9}(?![0-9])")


async def test_no_raw_bsn_anywhere_after_ingest(ingest: Ingest) -> None:
    raw = generated(1000, seed=24, fouten=0.1)
    doc = orjson.loads(raw)
    bsns = {
        c["Burgerservicenummer"].strip()
        for lev in doc["leveringen"]
        for t in lev["schuldhulptrajecten"]
        for c in t.get("client", [])
        if isinstance(c, dict) and isinstance(c.get("Burgerservicenummer"), str)
    }
    digits = {re.sub("[^0-9]", "", b) for b in bsns} | {b.zfill(9) for b in bsns if b.isdigit()}
    needles = {b for b in bsns | digits if len(b) >= 8}
    assert len(needles) > 1000
    births = {
        c["Geboortedatum"]
        for lev in doc["leveringen"]
        for t in lev["schuldhulptrajecten"]
        for c in t.get("client", [])
        if isinstance(c, dict) and isinstance(c.get("Geboortedatum"), str)
    }
    token = await ingest.supplier("privacy", organisations(raw))
    levering_id = (await _post(ingest, raw, token)).json()["id"]
    await wait_published(ingest.db)
    records = await read_topic(ingest.kafka, ingest.chunk_topic, 1, timeout=5)
    texts: list[bytes] = [
        r.value + (r.key or b"") + b"".join(v for _, v in r.headers)
        for r in records
        if r.key.startswith(levering_id.encode())
    ]
    assert len(texts) >= 4
    for table, rows in (await table_texts(ingest.db, ingest.schema)).items():
        texts += [f"{table}: {row}".encode() for row in rows]
    texts += [line.encode() for line in ingest.logs.lines]
    for text in texts:
        found = {m.decode() for m in _RUN.findall(text)} & needles
        assert not found, (text[:200], found)
    chunk_text = b"".join(r.value for r in records if r.key.startswith(levering_id.encode()))
    assert not [b for b in births if b.encode() in chunk_text and b < "1990-01-01"]


async def test_kafka_refusing_the_chunks_answers_503_and_records_nothing(ingest: Ingest) -> None:
    """The 202 promises that every chunk is on Kafka: when the broker refuses them, the
    supplier hears so (503, try again) and no delivery is recorded."""
    raw = generated(300, seed=25)
    token = await ingest.supplier("kafkaweg", organisations(raw))
    intake = ingest.service.intake
    assert intake is not None
    publish = intake.publish

    async def refused(*args: Any) -> Any:
        raise KafkaConnectionError("de broker is weg")

    intake.publish = refused
    try:
        response = await _post(ingest, raw, token)
    finally:
        intake.publish = publish
    assert_problem(response, 503, "niet-beschikbaar")
    assert not await ingest.db.fetchval(
        "SELECT count(*) FROM leveringen WHERE leverancier = 'kafkaweg'"
    )
    # The broker back: the same submission is taken in.
    assert (await _post(ingest, raw, token)).status_code == 202
