"""Fixtures of the ingest tests: a running ingest service (real uvicorn on a free port, real
broker and database) per test module, in a database schema and with topics of its own."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import orjson
import pytest

from ddas.db.migrate import migrate
from ddas.generate import Options, generate
from ddas.messaging import create_topics, delete_topics
from ddas.registry import add_supplier
from ddas.settings import DatabaseSettings, KafkaSettings
from services.ingest.main import IngestService, create_app
from services.ingest.settings import IngestSettings

EXAMPLES = Path(__file__).resolve().parents[3] / "shared/ddas/examples/ddas-app"
APP_750 = EXAMPLES / "testbestand_schuldhulpverlening_750.json"


def organisations(raw: bytes) -> list[str]:
    """The KvK numbers and gemeentecodes of a file's organisations (to grant rights for)."""
    doc = orjson.loads(raw)
    out = []
    for lev in doc.get("leveringen", []):
        org = lev.get("aanleverende_organisatie", {}) if isinstance(lev, dict) else {}
        if isinstance(org.get("KvK-nummer"), str):
            out.append(org["KvK-nummer"])
    return out


def generated(n: int, seed: int, fouten: float = 0.05, **kw: object) -> bytes:
    out = io.BytesIO()
    generate(out, Options(trajecten=n, seed=seed, fouten=fouten, **kw))  # type: ignore[arg-type]
    return out.getvalue()


class Collect(logging.Handler):
    """Every log record of the process, formatted (with exception text)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class Ingest:
    service: IngestService
    db: asyncpg.Connection
    schema: str
    database: DatabaseSettings
    kafka: KafkaSettings
    inbound_topic: str
    chunk_topic: str
    status_topic: str
    logs: Collect
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.service.url

    async def supplier(self, code: str, organisaties: Iterable[str]) -> str:
        token = await add_supplier(self.db, code, code.title(), organisaties)
        self.tokens[code] = token
        return token


@pytest.fixture(scope="module")
async def ingest(
    request: pytest.FixtureRequest, database_url: str, kafka_bootstrap_servers: str
) -> AsyncIterator[Ingest]:
    """One ingest service for the module, in a fresh schema with fresh topics (4 partitions
    for the chunks). Its log records are collected for the privacy checks."""
    tag = uuid.uuid4().hex[:10]
    name = Path(str(request.node.fspath)).stem.replace("test_", "")[:20]
    schema = f"ingest_{name}_{tag}"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap_servers)
    inbound, chunks, status = (f"ingest-{name}-{kind}-{tag}" for kind in ("in", "chunks", "st"))
    await create_topics([inbound, f"{inbound}.dlq", status], settings=kafka)
    await create_topics([chunks], partitions=4, settings=kafka)
    conn = await asyncpg.connect(database_url)
    await migrate(conn, schema=schema)
    await conn.execute(f'SET search_path TO "{schema}"')
    database = DatabaseSettings(url=database_url, search_path=schema)
    settings = IngestSettings(
        kafka=kafka,
        database=database,
        test_mode=True,
        http_port=0,
        inbound_topic=inbound,
        chunk_topic=chunks,
        status_topic=status,
        chunk_size=250,
        max_bytes=8 * 1024 * 1024,
        max_trajecten=5_000,
        relay_poll_s=0.05,
        graceful_timeout_s=5.0,
        log_level="DEBUG",
    )
    logs = Collect()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    service = create_app(settings)
    await service.start()
    try:
        yield Ingest(service, conn, schema, database, kafka, inbound, chunks, status, logs)
    finally:
        await service.stop()
        root.removeHandler(logs)
        root.setLevel(previous)
        await delete_topics([inbound, f"{inbound}.dlq", chunks, status], settings=kafka)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
