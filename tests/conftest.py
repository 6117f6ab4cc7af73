"""Fixtures shared by the whole suite.

Nothing here starts anything until a test asks for it: the unit tests run without a broker or a
database. The first test that needs Kafka or PostgreSQL starts one for the whole session (see
ddas.testing for where it comes from); each test then gets topics and a database schema of its
own, so tests never see each other's messages or rows.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncpg
import pytest

from ddas.db.migrate import migrate
from ddas.messaging import create_topics, delete_topics
from ddas.settings import DatabaseSettings, KafkaSettings
from ddas.testing import Unavailable, provide_kafka, provide_postgres

INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Everything under tests/integration/ needs the real broker and database: mark it, so that
    # `pytest -m "not integration"` runs the fast layer alone.
    for item in items:
        if INTEGRATION_DIR in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def _enter_or_fail(stack: ExitStack, provider: AbstractContextManager[str]) -> str:
    """Enter a provider; when it has nothing to give, fail the test with its one-line reason."""
    try:
        return stack.enter_context(provider)
    except Unavailable as exc:
        reason = str(exc)
    pytest.fail(reason, pytrace=False)  # outside the except: no chained traceback


def _unique(request: pytest.FixtureRequest, prefix: str) -> str:
    # Readable in a broker or psql listing, unique across tests and sessions.
    name = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:30]
    return f"{prefix}_{name}_{uuid.uuid4().hex[:10]}"


# --- Kafka ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap_servers() -> Iterator[str]:
    """A real broker for the session; fails (never skips) with how to provide one."""
    with ExitStack() as stack:
        yield _enter_or_fail(stack, provide_kafka())


@pytest.fixture
def kafka_settings(kafka_bootstrap_servers: str) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers=kafka_bootstrap_servers)


@pytest.fixture
async def new_topic(
    request: pytest.FixtureRequest, kafka_settings: KafkaSettings
) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Create topics with names unique to this test; deleted afterwards."""
    created: list[str] = []

    async def make(partitions: int = 1) -> str:
        name = _unique(request, "t").replace("_", "-")
        await create_topics([name], partitions=partitions, settings=kafka_settings)
        created.append(name)
        return name

    yield make
    await delete_topics(created, settings=kafka_settings)


# --- PostgreSQL ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A real database for the session; fails (never skips) with how to provide one."""
    with ExitStack() as stack:
        yield _enter_or_fail(stack, provide_postgres())


@pytest.fixture
async def db_settings(
    request: pytest.FixtureRequest, database_url: str
) -> AsyncIterator[DatabaseSettings]:
    """Settings for a fresh schema of this test's own, migrated; dropped afterwards."""
    schema = _unique(request, "test")[:63]
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn, schema=schema)
        yield DatabaseSettings(url=database_url, search_path=schema)
    finally:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture
async def db(db_settings: DatabaseSettings) -> AsyncIterator[asyncpg.Connection]:
    """A connection to this test's schema."""
    conn = await asyncpg.connect(**db_settings.to_asyncpg_params())
    try:
        yield conn
    finally:
        await conn.close()


async def insert_levering(db: asyncpg.Connection, state: str = "ontvangen") -> uuid.UUID:
    """A delivery row in `state`, as ingest writes it before it publishes the chunks."""
    levering_id = uuid.uuid4()
    await db.execute(
        "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
        "startdatum_levering, einddatum_levering, content_hash, state) "
        "VALUES ($1, 'shv', 'TEST', '0503', '2025-01-01', '2025-12-31', $2, $3)",
        levering_id,
        uuid.uuid4().hex,
        state,
    )
    return levering_id


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real HTTP server answering with `handler`, on a free port, in a thread: its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
