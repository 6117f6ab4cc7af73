"""The collector on the real broker and database against the reference supplier server over
real HTTP (issue 8's "What must be shown"):

- the 1,500-trajectory file collected with page size 200 is the same delivery, with the same
  findings and figures, as the file submitted directly; collecting it again is the same delivery;
- every request the collector made and every answer it got conforms to DDAS-SHV.yaml;
- a tampered page, a wrong digest, an untrusted certificate and an expired token are each
  refused with their own logged reason, and nothing of that run is imported;
- `ddas collect now` killed (SIGKILL) after page 3 of 8 resumes at page 4 and imports once;
- two suppliers, one down: the ingest service's schedule collects the other, retries the
  failing one and reports it unhealthy (status, metric, `ddas collect status`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from ddas.db.migrate import migrate
from ddas.domain.check import check_document
from ddas.domain.oor import OorDeel
from ddas.domain.reader import parse_document
from ddas.messaging import create_topics, delete_topics
from ddas.pipeline import topics
from ddas.registry import add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from ddas.supplier_api.pages import Pager
from ddas.supplier_api.pki import make_pki
from ddas.supplier_api.server import Faults
from services.ingest.collect import Collector, load_config, parse_periode
from services.ingest.main import IngestService
from services.ingest.main import create_app as ingest_app
from services.ingest.settings import IngestSettings
from services.validate.main import ValidateService
from services.validate.main import create_app as validate_app
from tests.collector.conftest import FILE_1500, endpoint, wait_for, write_config
from tests.validate.conftest import stored_facts

pytestmark = pytest.mark.integration

ORG = "10000001"  # the 1,500 file's KvK-nummer
PERIODE = parse_periode("2025")
BSN = re.compile(rb'"Burgerservicenummer"\s*:\s*"([0-9]+)"')


@dataclass
class Pipeline:
    ingest: IngestService
    validate: ValidateService
    db: asyncpg.Connection
    schema: str
    database: DatabaseSettings
    kafka: KafkaSettings
    chunks: str


@pytest.fixture(scope="module")
async def pipeline(database_url: str, kafka_bootstrap_servers: str) -> AsyncIterator[Pipeline]:
    """Ingest and validate for the module, in a schema and on chunk topics of their own."""
    tag = uuid.uuid4().hex[:10]
    schema = f"collector_{tag}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap_servers)
    chunks, inbound = f"collector-chunks-{tag}", f"collector-in-{tag}"
    await create_topics([chunks], partitions=3, settings=kafka)
    await create_topics([f"{chunks}.dlq", inbound, f"{inbound}.dlq", topics.LEVERINGEN],
                        settings=kafka)  # fmt: skip
    conn = await asyncpg.connect(database_url)
    await migrate(conn, schema=schema)
    await conn.execute(f'SET search_path TO "{schema}"')
    database = DatabaseSettings(url=database_url, search_path=schema)
    ingest = ingest_app(
        IngestSettings(
            kafka=kafka, database=database, test_mode=True, http_port=0, chunk_topic=chunks,
            inbound_topic=inbound, chunk_size=400, consumer_group=f"collector-ingest-{tag}",
            relay_poll_s=0.05, graceful_timeout_s=5.0, workers=0,
        )
    )  # fmt: skip
    validate = validate_app(kafka=kafka, database=database, topic=chunks, http_port=0,
                            consumer_group=f"collector-validate-{tag}")  # fmt: skip
    await ingest.start()
    await validate.start()
    try:
        yield Pipeline(ingest, validate, conn, schema, database, kafka, chunks)
    finally:
        await validate.stop()
        await ingest.stop()
        await delete_topics([chunks, f"{chunks}.dlq", inbound, f"{inbound}.dlq"], settings=kafka)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


def collector(p: Pipeline, config_path: Path) -> Collector:
    s = p.ingest
    assert s.pool is not None and s.intake is not None
    return Collector(s.pool, s.intake, load_config(config_path), s.key)


def fast(**extra: Any) -> dict[str, Any]:
    """Collector settings for tests: short waits."""
    return {"attempts": 2, "backoff_s": 0.05, "max_backoff_s": 0.2, "timeout_s": 20.0,
            "retry_s": 0.2, "retry_max_s": 1.0, **extra}  # fmt: skip


async def state_of(db: asyncpg.Connection, levering_id: uuid.UUID) -> str:
    return str(await db.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id))


async def validated(db: asyncpg.Connection, levering_id: uuid.UUID) -> None:
    async def done() -> bool:
        return await state_of(db, levering_id) in ("gevalideerd", "afgekeurd")

    await wait_for(done, 90)


async def findings(db: asyncpg.Connection, levering_id: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await db.fetch(
        "SELECT fase, levering_index, traject_index, volgnummer, code, ernst, pointer, message "
        "FROM bevindingen WHERE levering_id = $1 ORDER BY 1, 2, 3, 4",
        levering_id,
    )
    return [tuple(r) for r in rows]


async def facts(db: asyncpg.Connection, levering_id: uuid.UUID) -> list[tuple[Any, ...]]:
    return [(lev, *feit) for lev, feit in await stored_facts(db, levering_id)]


async def chunk_facts(db: asyncpg.Connection, levering_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """Per chunk: where it lies, the completion's facts, and its OOR part (decoded: its client
    sets compare as sets). With the trajectories' facts, what validate keeps of the content."""
    rows = await db.fetch(
        "SELECT chunk, levering_index, eerste, trajecten, feiten, oor FROM validatie_chunks "
        "WHERE levering_id = $1 ORDER BY chunk",
        levering_id,
    )
    return [(*tuple(r)[:-1], OorDeel.decode(r["oor"])) for r in rows]


def no_bsn_in(text: str) -> None:
    raw_bsns = {m.decode() for m in BSN.findall(FILE_1500.read_bytes())}
    leaked = [b for b in raw_bsns if b in text]
    assert not leaked, f"{len(leaked)} raw BSNs in the logs"


async def test_collected_is_the_same_delivery_as_submitted(
    pipeline: Pipeline,
    supplier_api: Any,
    trust_store: Path,
    tmp_path: Path,
    openapi: Callable[..., None],
    caplog: pytest.LogCaptureFixture,
) -> None:
    db = pipeline.db
    direct_token = await add_supplier(db, "direct", "Direct", [ORG])
    await add_supplier(db, "ACME", "Acme", [ORG])
    raw = FILE_1500.read_bytes()
    caplog.set_level(logging.DEBUG)
    async with supplier_api() as server:
        config = write_config(tmp_path / "c.toml",
                              [endpoint("acme", "ACME", server.url, page_size=200)],
                              trust_store=str(trust_store), **fast())  # fmt: skip
        col = collector(pipeline, config)
        (ep,) = col.config.endpoints
        outcome = await col.collect(ep, PERIODE)
        assert outcome.state == "voltooid", outcome
        assert (outcome.pages_done, outcome.pages_total, outcome.records) == (8, 8, 1500)
        assert outcome.nieuw is True and outcome.levering_id is not None
        assert server.pages_served() == list(range(1, 9))
        # the same data fetched again: the same bytes, the same delivery
        again = await col.collect(ep, PERIODE)
        assert again.state == "voltooid" and again.nieuw is False
        assert again.levering_id == outcome.levering_id
        for ex in server.exchanges:
            if ex.path == "/gegevens":
                openapi(ex)
        assert sum(ex.path == "/gegevens" for ex in server.exchanges) == 16
    pulled = outcome.levering_id
    async with httpx.AsyncClient(base_url=pipeline.ingest.url, timeout=30) as client:
        r = await client.post("/v1/leveringen", content=raw,
                              headers={"Authorization": f"Bearer {direct_token}",
                                       "Content-Type": "application/json"})  # fmt: skip
        assert r.status_code == 202
        direct = uuid.UUID(r.json()["id"])
    await validated(db, pulled)
    await validated(db, direct)

    rows = await db.fetch(
        "SELECT id, ontvangen_via, organisatie, startdatum_levering, einddatum_levering, "
        "trajecten, chunks, state FROM leveringen WHERE id = ANY($1::uuid[])",
        [pulled, direct],
    )
    by_id = {r["id"]: dict(r) for r in rows}
    assert by_id[pulled].pop("ontvangen_via") == "pull"
    assert by_id[direct].pop("ontvangen_via") == "http"
    by_id[pulled].pop("id"), by_id[direct].pop("id")
    assert by_id[pulled] == by_id[direct]
    assert by_id[pulled]["trajecten"] == 1500 and by_id[pulled]["chunks"] == 4
    assert await db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'ACME'") == 1

    expected = check_document(parse_document(raw))
    pulled_findings = await findings(db, pulled)
    assert pulled_findings == await findings(db, direct)
    assert sorted((f[4], f[5], f[6]) for f in pulled_findings) == sorted(
        (f.code, str(f.ernst), f.pointer) for f in expected.findings
    )
    pulled_facts = await facts(db, pulled)
    assert len(pulled_facts) == 1500
    assert pulled_facts == await facts(db, direct)
    pulled_chunks = await chunk_facts(db, pulled)
    assert len(pulled_chunks) == 4
    assert pulled_chunks == await chunk_facts(db, direct)
    # the run's pages are gone; no raw value went into the logs
    assert await db.fetchval("SELECT count(*) FROM collect_pages") == 0
    no_bsn_in(caplog.text)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("tampered", "handtekening-onjuist"),
        ("wrong-digest", "digest-onjuist"),
        ("untrusted", "certificaat-niet-vertrouwd"),
        ("expired-token", "ERROR_CODE_ACCESS_TOKEN_EXPIRED"),
    ],
)
async def test_a_bad_page_or_token_imports_nothing(
    pipeline: Pipeline,
    supplier_api: Any,
    trust_store: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    openapi: Callable[..., None],
    fault: str,
    reason: str,
) -> None:
    db = pipeline.db
    code = f"F{uuid.uuid4().hex[:8]}"
    await add_supplier(db, code, code, [ORG])
    kwargs: dict[str, Any] = {}
    if fault == "tampered":
        kwargs["faults"] = Faults(tamper={3})
    elif fault == "wrong-digest":
        kwargs["faults"] = Faults(wrong_digest={5})
    elif fault == "untrusted":
        kwargs["signing"] = make_pki("Onbekende CA")
    else:
        kwargs["token_ttl"] = 0
    caplog.set_level(logging.INFO, logger="services.ingest.collect")
    async with supplier_api(**kwargs) as server:
        config = write_config(tmp_path / "c.toml",
                              [endpoint(code.lower(), code, server.url, page_size=200)],
                              trust_store=str(trust_store), **fast())  # fmt: skip
        col = collector(pipeline, config)
        outcome = await col.collect(col.config.endpoints[0], PERIODE)
        for ex in server.exchanges:
            # the tampered page carries a member the schema does not have: that is the point
            if ex.path == "/gegevens" and not (fault == "tampered" and b'"page":3' in ex.body):
                openapi(ex)
        tokens = sum(ex.path == "/token" for ex in server.exchanges)
    assert outcome.state == "mislukt" and outcome.reden == reason, outcome
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(reason in r.getMessage() and "niets van deze run" in r.getMessage()
               for r in errors)  # fmt: skip
    assert await db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = $1", code) == 0
    run = await db.fetchrow("SELECT * FROM collect_runs WHERE id = $1", outcome.run_id)
    assert run["state"] == "mislukt" and run["reden"] == reason and run["levering_id"] is None
    assert (
        await db.fetchval("SELECT count(*) FROM collect_pages WHERE run_id = $1", outcome.run_id)
        == 0
    )
    health = await db.fetchrow("SELECT * FROM collect_endpoints WHERE endpoint = $1", code.lower())
    assert health["opeenvolgende_fouten"] == 1 and health["laatste_reden"] == reason
    if fault == "tampered":
        assert outcome.pages_done == 2  # pages 1 and 2 were fine, and are dropped all the same
    if fault == "expired-token":
        assert tokens == 2  # told it expired, the collector fetched a new one once
    no_bsn_in(caplog.text)


def _env(p: Pipeline, config: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("DDAS_", "DATABASE_", "KAFKA_"))
    }
    env.update(
        DATABASE_URL=p.database.url,
        DATABASE_SEARCH_PATH=p.schema,
        KAFKA_BOOTSTRAP_SERVERS=p.kafka.bootstrap_servers,
        DDAS_INGEST_CHUNK_TOPIC=p.chunks,
        DDAS_INGEST_CHUNK_SIZE="400",
        DDAS_TEST_MODE="1",
        DDAS_COLLECTOR_CONFIG=str(config),
        DDAS_SHARED_DIR=str(FILE_1500.parents[3]),
    )
    return env


DDAS = [str(Path(sys.executable).with_name("ddas"))]  # the venv's console script


async def test_killed_after_page_3_resumes_at_page_4_and_imports_once(
    pipeline: Pipeline, supplier_api: Any, trust_store: Path, tmp_path: Path
) -> None:
    db = pipeline.db
    await add_supplier(db, "KILL", "Kill", [ORG])
    held = asyncio.Event()
    async with supplier_api(faults=Faults(hold={4: held})) as server:
        config = write_config(tmp_path / "c.toml",
                              [endpoint("kill", "KILL", server.url, page_size=200)],
                              trust_store=str(trust_store), **fast())  # fmt: skip
        env = _env(pipeline, config)
        first = await asyncio.create_subprocess_exec(
            *DDAS, "collect", "now", "--periode", "2025", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip

        async def at_page_4() -> bool:
            done = await db.fetchval("SELECT pages_done FROM collect_runs WHERE endpoint = 'kill'")
            return done == 3 and 4 in server.api.requested

        await wait_for(at_page_4, 60)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        run = await db.fetchrow("SELECT * FROM collect_runs WHERE endpoint = 'kill'")
        assert run["state"] == "bezig" and run["pages_done"] == 3 and run["pages_total"] == 8
        assert await db.fetchval("SELECT count(*) FROM collect_pages WHERE run_id = $1",
                                 run["id"]) == 3  # fmt: skip
        assert await db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'KILL'") == 0
        stored = await db.fetchval("SELECT ciphertext FROM collect_pages LIMIT 1")
        assert b"Burgerservicenummer" not in stored  # the pages are kept encrypted

        held.set()
        before = len(server.api.requested)
        served_before = list(server.pages_served())
        second = await asyncio.create_subprocess_exec(
            *DDAS, "collect", "now", "--periode", "2025", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        out, _ = await asyncio.wait_for(second.communicate(), 120)
        assert second.returncode == 0, out.decode()[-2000:]
        assert "hervat bij pagina 4" in out.decode()
        assert server.api.requested[before:] == [4, 5, 6, 7, 8]
        assert served_before == [1, 2, 3]
    run = await db.fetchrow("SELECT * FROM collect_runs WHERE id = $1", run["id"])
    assert run["state"] == "voltooid" and run["pages_done"] == 8 and run["records_total"] == 1500
    rows = await db.fetch("SELECT id, trajecten FROM leveringen WHERE leverancier = 'KILL'")
    assert len(rows) == 1 and rows[0]["trajecten"] == 1500 and rows[0]["id"] == run["levering_id"]
    assert await db.fetchval("SELECT count(*) FROM collect_pages") == 0
    await validated(db, rows[0]["id"])
    assert len(await facts(db, rows[0]["id"])) == 1500


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_one_supplier_down_does_not_hold_up_the_other(
    pipeline: Pipeline, supplier_api: Any, trust_store: Path, tmp_path: Path
) -> None:
    db = pipeline.db
    await add_supplier(db, "GOED", "Goed", [ORG])
    await add_supplier(db, "STUK", "Stuk", [ORG])
    # the schedule asks for the last completed half-year: a file for that period
    today = dt.date.today()
    periode = parse_periode(f"{today.year}H1" if today.month > 6 else f"{today.year - 1}H2")
    raw = FILE_1500.read_bytes()
    raw = raw.replace(b'"startdatumLevering": "2025-01-01"',
                      f'"startdatumLevering": "{periode.start}"'.encode(), 1)  # fmt: skip
    raw = raw.replace(b'"einddatumLevering": "2025-12-31"',
                      f'"einddatumLevering": "{periode.eind}"'.encode(), 1)  # fmt: skip
    down = f"http://127.0.0.1:{_closed_port()}"
    async with supplier_api(pager=Pager(raw)) as server:
        config = write_config(
            tmp_path / "c.toml",
            [endpoint("stuk", "STUK", down), endpoint("goed", "GOED", server.url, page_size=500)],
            trust_store=str(trust_store), interval_s=0.2, unhealthy_after=2, **fast(),
        )  # fmt: skip
        tag = uuid.uuid4().hex[:8]
        service = ingest_app(
            IngestSettings(
                kafka=pipeline.kafka, database=pipeline.database, test_mode=True, http_port=0,
                chunk_topic=pipeline.chunks, kafka_inbound=False, workers=0,
                consumer_group=f"collector-sched-{tag}", relay_poll_s=0.05,
                graceful_timeout_s=5.0, collector_config=str(config),
            )
        )  # fmt: skip
        await service.start()
        try:

            async def both_seen() -> bool:
                goed = await db.fetchval(
                    "SELECT state FROM collect_runs WHERE endpoint = 'goed' "
                    "AND periode_start = $1 ORDER BY gestart_op DESC LIMIT 1", periode.start)  # fmt: skip
                stuk = await db.fetchrow("SELECT * FROM collect_endpoints WHERE endpoint = 'stuk'")
                return goed == "voltooid" and stuk is not None and stuk["opeenvolgende_fouten"] >= 3

            await wait_for(both_seen, 60)
            async with httpx.AsyncClient(base_url=service.url) as client:
                text = (await client.get("/metrics")).text
            assert 'ddas_collector_endpoint_gezond{endpoint="stuk"} 0.0' in text
            assert 'ddas_collector_endpoint_gezond{endpoint="goed"} 1.0' in text
        finally:
            await service.stop()
    assert server.pages_served() == [1, 2, 3]  # collected once, not again while scheduled
    assert await db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'GOED'") == 1
    assert await db.fetchval("SELECT count(*) FROM leveringen WHERE leverancier = 'STUK'") == 0
    stuk = await db.fetchrow("SELECT * FROM collect_endpoints WHERE endpoint = 'stuk'")
    assert stuk["gezond"] is False and stuk["laatste_reden"] == "verbinding-mislukt"
    runs = await db.fetch("SELECT state FROM collect_runs WHERE endpoint = 'stuk'")
    assert [r["state"] for r in runs] == ["onderbroken"]  # one run, retried (resumable)

    status = await asyncio.create_subprocess_exec(
        *DDAS, "collect", "status", env=_env(pipeline, config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await status.communicate()
    text = out.decode()
    assert status.returncode == 3, text
    assert re.search(
        r"stuk\s+STUK\s+ONGEZOND \(\d+ fout\(en\) op rij, laatste verbinding-mislukt", text
    ), text
    assert re.search(r"goed\s+GOED\s+gezond", text), text
    assert (
        f"laatste run {periode.start}..{periode.eind}: voltooid, 3/3 pagina's, 1500 trajecten"
        in text
    )
    assert "onderbroken, 0/? pagina's" in text
    assert orjson.loads(raw)["startdatumLevering"] == str(periode.start)


async def test_a_transient_failure_is_retried_and_logged_with_its_code(
    pipeline: Pipeline,
    supplier_api: Any,
    trust_store: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await add_supplier(pipeline.db, "WANKEL", "Wankel", [ORG])
    caplog.set_level(logging.INFO, logger="services.ingest.collect")
    async with supplier_api(faults=Faults(unreachable={2: 1})) as server:
        config = write_config(tmp_path / "c.toml",
                              [endpoint("wankel", "WANKEL", server.url, page_size=500)],
                              trust_store=str(trust_store), **fast())  # fmt: skip
        col = collector(pipeline, config)
        outcome = await col.collect(col.config.endpoints[0], PERIODE)
        assert server.api.requested == [1, 2, 2, 3]
    assert outcome.state == "voltooid" and outcome.records == 1500
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("pagina 2: ERROR_CODE_SERVICE_UNREACHABLE" in w and "poging 1 van 2" in w
               for w in warnings)  # fmt: skip
    health = await pipeline.db.fetchrow("SELECT * FROM collect_endpoints WHERE endpoint = 'wankel'")
    assert health["gezond"] is True and health["opeenvolgende_fouten"] == 0


async def test_a_refused_request_fails_the_run_with_the_suppliers_reason(
    pipeline: Pipeline, supplier_api: Any, trust_store: Path, tmp_path: Path
) -> None:
    await add_supplier(pipeline.db, "LATER", "Later", [ORG])
    async with supplier_api() as server:
        config = write_config(tmp_path / "c.toml", [endpoint("later", "LATER", server.url)],
                              trust_store=str(trust_store), **fast())  # fmt: skip
        col = collector(pipeline, config)
        outcome = await col.collect(col.config.endpoints[0], parse_periode("2027H1"))
        assert server.api.requested == []
    assert outcome.state == "mislukt" and outcome.reden == "http-422"
    assert outcome.detail is not None and "Geen gegevens voor deze periode" in outcome.detail
