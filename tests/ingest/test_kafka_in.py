"""The Kafka way in: CloudEvents on the inbound topic, with the real broker and database.

What is shown: a delivery event with the document inline (as JSON, or byte for byte in
data_base64) or by URL with its SHA-256 is taken in like an HTTP delivery (and the same bytes
over HTTP are then the same delivery); a wrong digest, a forged, stale or misplaced token and a
message that is not a CloudEvent are refused, audit-logged, and do not stop the consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.server
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from ddas.deadletter import RetryPolicy
from services.ingest.inbound import make_event, sign_event_token
from tests.conftest import http_server
from tests.ingest.conftest import APP_750, Ingest, generated, organisations
from tests.ingest.helpers import JSON, auth, read_topic, wait_published

pytestmark = pytest.mark.integration


async def _send(ingest: Ingest, *values: bytes, key: bytes = b"leverancier") -> None:
    producer = AIOKafkaProducer(
        **ingest.kafka.to_aiokafka_params(),
        acks="all",
        compression_type="gzip",
        max_request_size=16 * 1024 * 1024,
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(ingest.inbound_topic, value=value, key=key)
    finally:
        await producer.stop()


async def _delivery(ingest: Ingest, raw: bytes, timeout: float = 20.0) -> Any:
    digest = hashlib.sha256(raw).hexdigest()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await ingest.db.fetchrow("SELECT * FROM leveringen WHERE content_hash = $1", digest)
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("the delivery did not arrive")


async def _refusal(ingest: Ingest, event_id: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = await ingest.db.fetchrow(
            "SELECT * FROM audit_log WHERE details->>'event_id' = $1", event_id
        )
        if row is not None:
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"no audit row for event {event_id}")


@contextlib.contextmanager
def _file_server(directory: Path) -> Iterator[str]:
    """A plain HTTP server for a directory on a free port, in a thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(directory), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    with http_server(Quiet) as url:
        yield url


async def test_an_inline_delivery_is_taken_in_like_an_http_one(ingest: Ingest) -> None:
    raw = APP_750.read_bytes()
    token = await ingest.supplier("kafka1", organisations(raw))
    await _send(ingest, make_event(token, "kafka1", document=raw))
    row = await _delivery(ingest, raw)
    assert (row["leverancier"], row["ontvangen_via"], row["state"]) == (
        "kafka1",
        "kafka",
        "ontvangen",
    )
    assert (row["trajecten"], row["chunks"]) == (750, 3)
    await wait_published(ingest.db)
    records = await read_topic(ingest.kafka, ingest.chunk_topic, 3)
    assert sorted(r.key.decode() for r in records if r.key.startswith(str(row["id"]).encode())) == [
        f"{row['id']}:{i}" for i in range(3)
    ]
    # The same bytes over HTTP from the same supplier: the same delivery.
    async with httpx.AsyncClient(base_url=ingest.url) as client:
        again = await client.post("/v1/leveringen", content=raw, headers=auth(token, **JSON))
    assert again.status_code == 200 and again.json()["id"] == str(row["id"])
    # And the event delivered again (a supplier's retry): still one.
    await _send(ingest, make_event(token, "kafka1", document=raw))
    await asyncio.sleep(1.0)
    assert (
        await ingest.db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'kafka1'")
        == 1
    )


async def test_base64_and_url_deliveries_and_a_wrong_digest(ingest: Ingest, tmp_path: Path) -> None:
    by_base64 = generated(200, seed=31)
    by_url = generated(300, seed=32)
    wrong = generated(100, seed=33)
    orgs = organisations(by_base64) + organisations(by_url) + organisations(wrong)
    token = await ingest.supplier("kafka2", orgs)
    (tmp_path / "levering.json").write_bytes(by_url)
    (tmp_path / "wrong.json").write_bytes(wrong)
    with _file_server(tmp_path) as base:
        wrong_id = str(uuid.uuid4())
        claimed = hashlib.sha256(b"something else").hexdigest()
        await _send(
            ingest,
            make_event(token, "kafka2", document=by_base64, base64_data=True),
            make_event(
                token,
                "kafka2",
                url=f"{base}/wrong.json",
                sha256=claimed,
                event_id=wrong_id,
            ),
            make_event(
                token,
                "kafka2",
                url=f"{base}/levering.json",
                sha256=hashlib.sha256(by_url).hexdigest(),
            ),
        )
        row_b64 = await _delivery(ingest, by_base64)
        row_url = await _delivery(ingest, by_url)
        refused = await _refusal(ingest, wrong_id)
    assert row_b64["trajecten"] == 200 and row_url["trajecten"] == 300
    assert refused["uitkomst"] == "geweigerd" and refused["actor"] == "leverancier:kafka2"
    assert refused["details"] and orjson.loads(refused["details"])["probleem"] == "digest-onjuist"
    assert (
        await ingest.db.fetchval(
            "SELECT count(*) FROM leveringen WHERE content_hash = $1",
            hashlib.sha256(wrong).hexdigest(),
        )
        == 0
    )


async def test_forged_stale_and_misplaced_tokens_and_junk_are_refused(ingest: Ingest) -> None:
    raw = generated(50, seed=34)
    token = await ingest.supplier("kafka3", organisations(raw))
    digest = hashlib.sha256(raw).hexdigest()

    def event(ddastoken: str, event_id: str) -> bytes:
        value = orjson.loads(make_event(token, "kafka3", document=raw, event_id=event_id))
        value["ddastoken"] = ddastoken
        return orjson.dumps(value)

    ids = {name: str(uuid.uuid4()) for name in ("forged", "stale", "other", "none", "junk")}
    cases = [
        event(sign_event_token("wrong-api-token", "kafka3", ids["forged"], digest), ids["forged"]),
        event(
            sign_event_token(token, "kafka3", ids["stale"], digest, now=time.time() - 7200),
            ids["stale"],
        ),
        event(sign_event_token(token, "kafka3", str(uuid.uuid4()), digest), ids["other"]),
        orjson.dumps({**orjson.loads(event("x", ids["none"])), "ddastoken": None}),
        orjson.dumps(
            {"specversion": "1.0", "id": ids["junk"], "type": "x", "source": "y", "data": {}}
        ),  # fmt: skip
        b"\xff not even json",
    ]
    await _send(ingest, *cases)
    for name in ("forged", "stale", "other"):
        row = await _refusal(ingest, ids[name])
        assert orjson.loads(row["details"])["probleem"] == "token-ongeldig", name
    assert orjson.loads((await _refusal(ingest, ids["junk"]))["details"])["probleem"] == (
        "onbekend-type"
    )
    assert orjson.loads((await _refusal(ingest, ids["none"]))["details"])["probleem"] == (
        "geen-token"
    )
    # The consumer is not stuck: a good event after the junk is taken in.
    await _send(ingest, make_event(token, "kafka3", document=raw))
    row = await _delivery(ingest, raw.strip())
    assert row["leverancier"] == "kafka3"
    assert (
        await ingest.db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'kafka3'")
        == 1
    )


async def test_an_event_that_keeps_failing_goes_to_the_dead_letter_topic(
    ingest: Ingest, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = generated(20, seed=35)
    good = generated(30, seed=36)
    token = await ingest.supplier("kafka4", organisations(raw) + organisations(good))
    monkeypatch.setattr(ingest.service.retrier, "policy", RetryPolicy(attempts=2, backoff=0.01))
    intake = ingest.service.intake
    assert intake is not None
    real_submit = intake.submit

    async def broken(body: bytes, *args: Any) -> Any:
        if body == raw.strip():
            raise RuntimeError("a bug")
        return await real_submit(body, *args)

    monkeypatch.setattr(intake, "submit", broken)
    poison = make_event(token, "kafka4", document=raw)
    await _send(ingest, poison, make_event(token, "kafka4", document=good))
    records = await read_topic(ingest.kafka, f"{ingest.inbound_topic}.dlq", 1)
    assert records[0].value == poison
    headers = dict(records[0].headers)
    assert headers["ddas-error-class"].endswith(b"RuntimeError")
    assert headers["ddas-origin-topic"] == ingest.inbound_topic.encode()
    assert headers["ddas-attempts"] == b"2"
    assert (await _delivery(ingest, good.strip()))["leverancier"] == "kafka4"
