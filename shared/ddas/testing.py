"""The broker and database for integration tests (and benchmarks), found in this order:

1. KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL when set: use what runs there;
2. else testcontainers, when a Docker daemon answers (checked quickly);
3. else the local processes of `ddas.infra` (the same code as `ddas infra up`).

What this module started, it stops; what it found running, it leaves running. When nothing can
be had it raises `Unavailable` with a message that says how to provide one: integration tests
fail with it, they never skip.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

from ddas import infra
from ddas.infra import _process
from ddas.infra._process import run_sync
from ddas.infra.kafka import wait_ready

# Same images as docker-compose.yml.
KAFKA_IMAGE = "apache/kafka:4.1.1"
POSTGRES_IMAGE = "postgres:17-alpine"

HOW_TO_KAFKA = (
    "set KAFKA_BOOTSTRAP_SERVERS=host:port to use a running broker, or make `ddas infra up` "
    "work (it needs Java 17 and Maven), or start a Docker daemon"
)
HOW_TO_POSTGRES = (
    "set DATABASE_URL=postgresql://user@host:port/db to use a running server, or make "
    "`ddas infra up` work (it needs PostgreSQL's server programs), or start a Docker daemon"
)


class Unavailable(Exception):
    """No broker or database could be found or started; the message says how to provide one."""


def docker_available(timeout: float = 3.0) -> bool:
    """Whether a Docker daemon answers a ping within `timeout` (False fast without a socket)."""
    if os.environ.get("DDAS_TEST_DOCKER", "").lower() in ("0", "false", "no"):
        return False
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    try:
        import docker

        docker.from_env(timeout=int(timeout)).ping()
    except Exception:  # any failure (no daemon, no permission, no SDK) means: not usable
        return False
    return True


def _docker_host() -> str:
    parsed = urlparse(os.environ.get("DOCKER_HOST", ""))
    return parsed.hostname if parsed.scheme == "tcp" and parsed.hostname else "127.0.0.1"


@contextmanager
def provide_kafka() -> Iterator[str]:
    """Bootstrap servers of a usable Kafka broker for the duration of the block."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        try:
            wait_ready(given, timeout=30)
        except infra.InfraError as exc:
            raise Unavailable(f"KAFKA_BOOTSTRAP_SERVERS={given}: {exc}") from None
        yield given
    elif docker_available():
        with _kafka_container() as bootstrap:
            yield bootstrap
    else:
        try:
            state = infra.up(only=("kafka",))
        except infra.InfraError as exc:
            raise Unavailable(f"no Kafka broker: {exc}. To provide one, {HOW_TO_KAFKA}") from None
        assert state.kafka is not None
        try:
            yield state.kafka.bootstrap_servers
        finally:
            if state.kafka.started:
                infra.down(only=("kafka",))


@contextmanager
def provide_postgres() -> Iterator[str]:
    """URL of a usable PostgreSQL database for the duration of the block."""
    given = os.environ.get("DATABASE_URL")
    if given:
        try:
            run_sync(_check_database(given))
        except (OSError, asyncpg.PostgresError) as exc:
            raise Unavailable(f"DATABASE_URL={given}: cannot connect ({exc})") from None
        yield given
    elif docker_available():
        with _postgres_container() as url:
            yield url
    else:
        try:
            state = infra.up(only=("postgres",))
        except infra.InfraError as exc:
            raise Unavailable(f"no PostgreSQL: {exc}. To provide one, {HOW_TO_POSTGRES}") from None
        assert state.postgres is not None
        try:
            yield state.postgres.database_url
        finally:
            if state.postgres.started:
                infra.down(only=("postgres",))


async def _check_database(url: str) -> None:
    conn = await asyncpg.connect(url, timeout=10)
    await conn.close()


@contextmanager
def _kafka_container() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    host, port = _docker_host(), _process.free_port()
    # The advertised listener must be the address the tests reach, so the host port is fixed
    # before the start rather than picked by Docker.
    container = (
        DockerContainer(KAFKA_IMAGE)
        .with_bind_ports(9092, port)
        .with_env("KAFKA_NODE_ID", "1")
        .with_env("KAFKA_PROCESS_ROLES", "broker,controller")
        .with_env("KAFKA_CONTROLLER_QUORUM_VOTERS", "1@localhost:9093")
        .with_env("KAFKA_LISTENERS", "PLAINTEXT://0.0.0.0:9092,CONTROLLER://localhost:9093")
        .with_env("KAFKA_ADVERTISED_LISTENERS", f"PLAINTEXT://{host}:{port}")
        .with_env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .with_env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        )
        .with_env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .with_env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
    )
    try:
        container.start()
        bootstrap = f"{host}:{port}"
        wait_ready(bootstrap, timeout=120)
    except Exception as exc:  # image pull, daemon or start-up failure: one message
        with contextlib.suppress(Exception):
            container.stop()
        raise Unavailable(
            f"Kafka container ({KAFKA_IMAGE}) failed: {exc}. {HOW_TO_KAFKA}"
        ) from None
    try:
        yield bootstrap
    finally:
        container.stop()


@contextmanager
def _postgres_container() -> Iterator[str]:
    from testcontainers.community.postgres import PostgresContainer

    container = PostgresContainer(POSTGRES_IMAGE, driver=None)
    try:
        container.start()
        url = container.get_connection_url()
        run_sync(_check_database(url))
    except Exception as exc:  # image pull, daemon or start-up failure: one message
        with contextlib.suppress(Exception):
            container.stop()
        raise Unavailable(f"PostgreSQL container failed: {exc}. {HOW_TO_POSTGRES}") from None
    try:
        yield url
    finally:
        container.stop()


# -- the shared folder and the DDAS-app peer (tests and benchmarks) -------------------------

#: `../shared` beside the repository: the official schema, the real test files, the peer.
SHARED_DIR = Path(os.environ.get("DDAS_SHARED_DIR", Path(__file__).resolve().parents[3] / "shared"))
PEER_SCHEMA = SHARED_DIR / "ddas/spec/schuldhulpverlening-v1.0/json_schema_Uitwisselmodel.json"


def shared_dir() -> Path:
    """The shared folder; raises when it is missing (tests fail on it, they never skip)."""
    if not (SHARED_DIR / "ddas").is_dir():
        raise FileNotFoundError(
            f"{SHARED_DIR}/ddas not found: the tests and benchmarks need the shared folder beside "
            "the repository (or DDAS_SHARED_DIR pointing at it)"
        )
    return SHARED_DIR


def ensure_peer(cache: Path | None = None) -> Path:
    """The DDAS-app peer (Node.js + ajv) ready to run: a copy of ../shared/bench/ddas-app-peer
    with its pinned npm dependencies installed under .cache/. Returns the path of peer.js."""
    import shutil
    import subprocess

    peer = (cache or Path(__file__).resolve().parents[2] / ".cache") / "ddas-app-peer"
    if not (peer / "node_modules/ajv-formats").is_dir():
        if shutil.which("npm") is None:
            raise FileNotFoundError("node and npm are needed to run the DDAS-app peer")
        shutil.rmtree(peer, ignore_errors=True)
        shutil.copytree(shared_dir() / "bench/ddas-app-peer", peer)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--silent"],
            cwd=peer,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return peer / "peer.js"


def peer_result(peer_stdout: bytes | str) -> dict[str | None, dict[str, object]]:
    """The peer's tables in `ddas check --json`'s shape, keyed by gemeentecode (None: absent).

    One deliberate difference: we normalise a code such as `GM111` or `599` to its four digits
    (with a warning, domain.md) before grouping, where the app shows the raw code as a row of
    its own; the peer's rows are renamed the same way here (and must not collide).
    """
    import json

    from ddas.domain.tables import groep

    rows = json.loads(peer_stdout)
    result = {
        (None if code == "onbekend*" else groep(code)): {
            "trajecten": r["trajecten"],
            "unieke_bsn": r["unieke_bsn"],
            "unieke_actieve_bsn": r["unieke_actieve_bsn"],
            "laatste_stap": {
                ("onbekend" if k == "onbekend*" else k): v for k, v in r["laatste_stap"].items()
            },
        }
        for code, r in rows.items()
    }
    if len(result) != len(rows):
        raise ValueError("two of the peer's raw codes normalise to one: compare by hand")
    return result


def check_result(check_json: dict[str, object]) -> dict[str | None, dict[str, object]]:
    """`ddas check --json`'s tables keyed by gemeentecode, to compare with `peer_result`."""
    rows = check_json["gemeenten"]
    assert isinstance(rows, list)
    return {r["gemeentecode"]: {k: v for k, v in r.items() if k != "gemeentecode"} for r in rows}
