"""A real Prometheus (/usr/bin/prometheus) scrapes the four services, run as real processes
(`python -m services.<name>`) on the real broker and database, with the project's alert rules
(deploy/prometheus/rules) and its file-discovery configuration, scraping and evaluating every
second.

One delivery (the DDAS-app's 750-trajectory file) is submitted over ingest's API, validated,
reported (its e-mail reaches a real SMTP server), approved by its organisation over publish's API
and published. Then Prometheus's HTTP API must answer what happened: the delivery counted in
`gepubliceerd` and nowhere else, each of its four transitions counted once with its stage
duration, 750 trajectories, every service up, one process exporting the platform's gauges, no
consumer lag, the notifications as the database has them, FastStream's message counts.

A poison message on validate's chunk topic is dead-lettered; the dead-letter gauge rises and
the DdasDeadLetters alert fires in that Prometheus (and did not before).

Every expression of the dashboards and the alert rules is valid for Prometheus's own parser,
and every metric name they use is one the running services export (their /metrics, scraped
directly) or a recording rule makes.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaProducer
from aiosmtpd.controller import Controller
from prometheus_client.parser import text_string_to_metric_families

from ddas.db.migrate import migrate
from ddas.messaging import create_topics, delete_topics
from ddas.pipeline import topics
from ddas.pipeline.topics import dead_letter
from ddas.registry import add_organisation_token, add_supplier
from ddas.settings import KafkaSettings
from ddas.testing import shared_dir
from tests.processes import Process

from .helpers import (
    PROMETHEUS_OWN,
    READY,
    SERVICES,
    Prometheus,
    by,
    dashboard_expressions,
    free_port,
    grafana_to_promql,
    metric_names,
    prometheus_config,
    recorded_names,
    rule_expressions,
    scalar,
)

pytestmark = pytest.mark.integration

APP_750 = "ddas/examples/ddas-app/testbestand_schuldhulpverlening_750.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
ORGANISATIE = "10000001"  # the file's aanleverende organisatie (KvK-nummer)


class Inbox:
    """aiosmtpd handler: counts the messages it gets."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


@dataclass
class Stack:
    prometheus: Prometheus
    ports: dict[str, int]
    kafka: KafkaSettings
    database_url: str
    schema: str
    topics: dict[str, str]
    groups: dict[str, str]
    processes: dict[str, Process] = field(default_factory=dict)
    levering_id: uuid.UUID | None = None
    secrets: list[str] = field(default_factory=list)

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(
            self.database_url, server_settings={"search_path": self.schema}
        )


@pytest.fixture(scope="module")
async def stack(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap_servers: str, database_url: str
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("ops")
    tag = uuid.uuid4().hex[:10]
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap_servers)
    schema = f"ops_{tag}"
    conn = await asyncpg.connect(database_url)
    await migrate(conn, schema=schema)
    own = {
        "inbound": f"ops-in-{tag}",
        "chunks": f"ops-chunks-{tag}",
        "statistieken": f"ops-stat-{tag}",
    }
    await create_topics([own["chunks"]], partitions=3, settings=kafka)
    await create_topics(
        [own["inbound"], own["statistieken"], *(dead_letter(t) for t in own.values())],
        settings=kafka,
    )
    await create_topics(
        [
            t
            for shared in (topics.LEVERINGEN, topics.RAPPORTEN)
            for t in (shared, dead_letter(shared))
        ],
        settings=kafka,
    )
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()

    groups = {name: f"ops-{tag}-{name}" for name in SERVICES}
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))
    }
    base |= {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "DATABASE_URL": database_url,
        "DATABASE_SEARCH_PATH": schema,
        "PYTHONUNBUFFERED": "1",
        "DDAS_METRICS_INTERVAL_S": "0.5",
        "DDAS_METRICS_LAG_GROUP_PREFIX": f"ops-{tag}-",
        "DDAS_NOTIFY_SMTP_PORT": str(smtp.port),
        "DDAS_NOTIFY_POLL_S": "0.2",
    }
    env = {
        "ingest": {
            "DDAS_PSEUDONYM_KEY": secrets.token_hex(32),
            "DDAS_INGEST_HTTP_PORT": "0",
            "DDAS_INGEST_INBOUND_TOPIC": own["inbound"],
            "DDAS_INGEST_CHUNK_TOPIC": own["chunks"],
            "DDAS_INGEST_CONSUMER_GROUP": groups["ingest"],
            "DDAS_INGEST_CHUNK_SIZE": "200",
            "DDAS_INGEST_WORKERS": "0",
            "DDAS_INGEST_RELAY_POLL_S": "0.05",
            "DDAS_INGEST_GRACEFUL_TIMEOUT_S": "5",
        },
        "validate": {
            "DDAS_VALIDATE_HTTP_PORT": "0",
            "DDAS_VALIDATE_TOPIC": own["chunks"],
            "DDAS_VALIDATE_CONSUMER_GROUP": groups["validate"],
            "DDAS_VALIDATE_RETRY_ATTEMPTS": "2",
            "DDAS_VALIDATE_RETRY_BACKOFF_S": "0.1",
            "DDAS_VALIDATE_GRACEFUL_TIMEOUT_S": "5",
        },
        "report": {
            "DDAS_REPORT_HTTP_PORT": "0",
            "DDAS_REPORT_CONSUMER_GROUP": groups["report"],
            "DDAS_REPORT_GRACEFUL_TIMEOUT_S": "5",
        },
        "publish": {
            "DDAS_PUBLISH_HTTP_PORT": "0",
            "DDAS_PUBLISH_CONSUMER_GROUP": groups["publish"],
            "DDAS_PUBLISH_STATISTIEKEN_TOPIC": own["statistieken"],
            "DDAS_PUBLISH_BEDENKTIJD_S": "0",
            "DDAS_PUBLISH_PUBLISH_POLL_S": "0.2",
            "DDAS_PUBLISH_GRACEFUL_TIMEOUT_S": "5",
        },
    }
    processes = {
        name: Process(name, base | env[name], tmp / f"{name}.log").start() for name in SERVICES
    }
    prometheus: Prometheus | None = None
    key = env["ingest"]["DDAS_PSEUDONYM_KEY"]
    try:
        ports = {name: int(await processes[name].ready(READY[name])) for name in SERVICES}
        config = prometheus_config(tmp / "prometheus", ports)
        prometheus = Prometheus(config, tmp / "prometheus", base)
        await prometheus.start()
        yield Stack(prometheus, ports, kafka, database_url, schema, own, groups, processes,
                    secrets=[key])  # fmt: skip
    finally:
        for process in processes.values():
            process.stop()
        if prometheus is not None:
            prometheus.process.stop()
        smtp.stop()
        await delete_topics(
            [t for name in own.values() for t in (name, dead_letter(name))], settings=kafka
        )
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()


@pytest.fixture(scope="module")
async def published(stack: Stack) -> Stack:
    """The 750 file submitted, validated, reported, approved and published."""
    conn = await stack.connect()
    try:
        supplier = await add_supplier(conn, "OPS", "Operations", [ORGANISATIE])
        organisation = await add_organisation_token(conn, ORGANISATIE)
    finally:
        await conn.close()
    raw = (shared_dir() / APP_750).read_bytes()
    ingest = f"http://127.0.0.1:{stack.ports['ingest']}"
    publish = f"http://127.0.0.1:{stack.ports['publish']}"
    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.post(
            f"{ingest}/v1/leveringen",
            content=raw,
            headers={"Authorization": f"Bearer {supplier}", "Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
        levering_id = uuid.UUID(response.json()["id"])
        await wait_for_state(stack, levering_id, "rapport_gereed")
        response = await client.post(
            f"{publish}/v1/leveringen/{levering_id}/goedkeuring",
            headers={"Authorization": f"Bearer {organisation}"},
        )
        assert response.status_code == 200, response.text
    await wait_for_state(stack, levering_id, "gepubliceerd")
    stack.levering_id = levering_id
    stack.secrets += [supplier, organisation]
    return stack


async def wait_for_state(stack: Stack, levering_id: uuid.UUID, state: str) -> None:
    conn = await stack.connect()
    try:
        deadline = time.monotonic() + 90
        found = None
        while time.monotonic() < deadline:
            found = await conn.fetchval("SELECT state FROM leveringen WHERE id = $1", levering_id)
            if found == state:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"delivery is {found}, not {state}")
    finally:
        await conn.close()


# -- what Prometheus answers ----------------------------------------------------------------


async def test_prometheus_scrapes_all_four_services(published: Stack) -> None:
    prom = published.prometheus
    assert await prom.until("up", dict.fromkeys(SERVICES, 1.0), transform=lambda r: by("job", r))
    # Exactly one process of the four exports the platform's gauges.
    assert await prom.until("sum(ddas_observability_leader)", 1.0, transform=scalar)
    leaders = by("job", await prom.query("ddas_observability_leader == 1"))
    assert len(leaders) == 1
    # Every service takes part (ddas.observability.install): any of them can take over.
    candidates = await prom.query("count by (job) (ddas_observability_leader)")
    assert by("job", candidates) == dict.fromkeys(SERVICES, 1.0)
    samples = await prom.query("count by (job) (ddas_leveringen)")
    assert by("job", samples) == {next(iter(leaders)): 8.0}  # one state each, one job only


async def test_the_delivery_is_counted_in_gepubliceerd_and_its_transitions_once(
    published: Stack,
) -> None:
    prom = published.prometheus
    expected_states = {
        "ontvangen": 0.0, "gevalideerd": 0.0, "afgekeurd": 0.0, "rapport_gereed": 0.0,
        "goedgekeurd": 0.0, "ingetrokken": 0.0, "gepubliceerd": 1.0, "vervangen": 0.0,
    }  # fmt: skip
    await prom.until(
        "max by (state) (ddas_leveringen)", expected_states, transform=lambda r: by("state", r)
    )
    steps = {
        ("ontvangen", "gevalideerd"): 1.0,
        ("gevalideerd", "rapport_gereed"): 1.0,
        ("rapport_gereed", "goedgekeurd"): 1.0,
        ("goedgekeurd", "gepubliceerd"): 1.0,
    }

    def per_step(result: dict[Any, float]) -> dict[tuple[str, str], float]:
        return {(dict(k)["from_state"], dict(k)["to_state"]): v for k, v in result.items()}

    await prom.until("sum by (from_state, to_state) (ddas_transitions_total)", steps,
                     transform=per_step)  # fmt: skip
    # Each transition observed its stage's duration once, in the process that made it.
    durations = per_step(
        await prom.query("sum by (from_state, to_state) (ddas_stage_duration_seconds_count)")
    )
    assert durations == steps
    makers = await prom.query("sum by (job) (ddas_transitions_total)")
    assert by("job", makers) == {"validate": 1.0, "report": 1.0, "publish": 2.0}
    assert scalar(await prom.query("sum(ddas_submission_to_report_seconds_count)")) == 1.0
    decided = await prom.query("sum by (decision) (ddas_report_to_decision_seconds_count)")
    assert by("decision", decided) == {"goedgekeurd": 1.0}
    # The whole way took less than the 90 s the fixture allows: within the finite buckets.
    within = await prom.query('sum(ddas_submission_to_report_seconds_bucket{le="120.0"})')
    assert scalar(within) == 1.0

    assert scalar(await prom.query("sum(ddas_validate_trajecten_total)")) == 750.0
    ingested = await prom.query("sum by (via, nieuw) (ddas_ingest_leveringen_total)")
    assert list(ingested.values()) == [1.0]
    assert dict(next(iter(ingested))) == {"via": "http", "nieuw": "true"}
    # Nothing waits: the outbox is empty, no delivery is stuck in a waiting state.
    assert scalar(await prom.query("max(ddas_outbox_oldest_pending_age_seconds)")) == 0.0
    assert scalar(await prom.query("sum(ddas_outbox_pending_messages) or vector(0)")) == 0.0
    ages = by("state", await prom.query("max by (state) (ddas_leveringen_oldest_age_seconds)"))
    assert ages == {s: 0.0 for s in ("ontvangen", "gevalideerd", "afgekeurd", "rapport_gereed",
                                     "goedgekeurd")}  # fmt: skip


async def test_consumer_lag_and_faststream_message_counts(published: Stack) -> None:
    prom = published.prometheus
    chunks = published.topics["chunks"]
    validate_group = published.groups["validate"]
    # Every chunk committed: validate's group has no lag on the chunk topic.
    lag = f'max(ddas_consumer_lag_messages{{group="{validate_group}", topic="{chunks}"}})'
    await prom.until(lag, 0.0, transform=scalar)
    groups = by("group", await prom.query("max by (group) (ddas_consumer_lag_messages)"))
    assert validate_group in groups and all(g.startswith(validate_group[:-8]) for g in groups)
    # FastStream's middleware counted validate's four chunks (750 trajectories, 200 a chunk).
    received = await prom.query(
        f'sum(faststream_received_messages_total{{job="validate", handler="{chunks}"}})'
    )
    assert scalar(received) == 4.0
    processed = await prom.query(
        "sum by (status) (faststream_received_processed_messages_total"
        f'{{job="validate", handler="{chunks}"}})'
    )
    assert by("status", processed) == {"acked": 4.0}


async def test_notifications_are_counted_as_the_database_has_them(published: Stack) -> None:
    conn = await published.connect()
    try:
        rows = await conn.fetch(
            "SELECT kanaal, status, count(*) AS n FROM notificaties GROUP BY kanaal, status"
        )
    finally:
        await conn.close()
    expected = {f"{kanaal}/{status}": 0.0 for kanaal in ("email", "webhook")
                for status in ("wachtend", "verzonden", "mislukt")}  # fmt: skip
    expected |= {f"{r['kanaal']}/{r['status']}": float(r["n"]) for r in rows}
    assert expected["email/verzonden"] + expected["email/wachtend"] >= 1  # the report's e-mail

    def per(result: dict[Any, float]) -> dict[str, float]:
        return {f"{dict(k)['kanaal']}/{dict(k)['status']}": v for k, v in result.items()}

    await published.prometheus.until("max by (kanaal, status) (ddas_notificaties)", expected,
                                     transform=per)  # fmt: skip


# -- an alert fires ---------------------------------------------------------------------------


async def firing(prom: Prometheus, alertname: str) -> list[dict[str, Any]]:
    alerts = (await prom.api("alerts"))["alerts"]
    return [a for a in alerts if a["labels"]["alertname"] == alertname and a["state"] == "firing"]


async def test_a_dead_lettered_message_fires_the_dead_letter_alert(published: Stack) -> None:
    prom = published.prometheus
    dlq = dead_letter(published.topics["chunks"])
    selector = f'ddas_dead_letter_messages_total{{topic="{dlq}"}}'
    # The twin is watched before its first message, at 0, and nothing fires for it yet.
    await prom.until(f"max({selector})", 0.0, transform=scalar)
    await asyncio.sleep(2)  # a few evaluations
    assert not [a for a in await firing(prom, "DdasDeadLetters") if a["labels"]["topic"] == dlq]

    producer = AIOKafkaProducer(**published.kafka.to_aiokafka_params())
    await producer.start()
    try:
        await producer.send_and_wait(published.topics["chunks"], b"\x00 geen json", key=b"gif")
    finally:
        await producer.stop()

    await prom.until(f"max({selector})", 1.0, transform=scalar)
    # validate's own counter, in whichever scrape of validate comes first after the message
    # (the topic's count above may come from another process's scrape).
    await prom.until("sum(ddas_validate_dead_lettered_total)", 1.0, transform=scalar)
    deadline = time.monotonic() + 30
    mine: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not mine:
        mine = [a for a in await firing(prom, "DdasDeadLetters") if a["labels"]["topic"] == dlq]
        await asyncio.sleep(0.5)
    assert mine, await prom.api("alerts")
    assert mine[0]["labels"]["severity"] == "warning"
    assert dlq in mine[0]["annotations"]["summary"]
    # The pipeline kept flowing: the poison message is committed, validate's group has no lag.
    lag = (f'max(ddas_consumer_lag_messages{{group="{published.groups["validate"]}", '
           f'topic="{published.topics["chunks"]}"}})')  # fmt: skip
    await prom.until(lag, 0.0, transform=scalar)


# -- the dashboards' and rules' expressions against the live services -------------------------


async def scrape(stack: Stack) -> dict[str, str]:
    """Each service's /metrics, as it serves it."""
    async with httpx.AsyncClient(timeout=10) as client:
        texts = {}
        for name, port in stack.ports.items():
            response = await client.get(f"http://127.0.0.1:{port}/metrics")
            assert response.status_code == 200, name
            texts[name] = response.text
        return texts


async def test_no_delivery_id_token_or_personal_value_in_any_metric(published: Stack) -> None:
    raw = (shared_dir() / APP_750).read_text()
    bsns = set(re.findall(r'"Burgerservicenummer":\s*"(\d{8,9})"', raw))
    assert len(bsns) > 700
    values: set[str] = set()
    for text in (await scrape(published)).values():
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values |= set(sample.labels.values())
    assert any(published.topics["chunks"] in v for v in values)  # the labels were read
    for value in values:
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-", value), value  # no ids
        assert not any(secret in value for secret in published.secrets), value
        assert not set(re.findall(r"\d{8,9}", value)) & bsns, value


async def test_every_expression_parses_and_uses_only_exported_metrics(published: Stack) -> None:
    exported: set[str] = set()
    for text in (await scrape(published)).values():
        for family in text_string_to_metric_families(text):
            # A labelled family without children yet is exported too (its HELP and TYPE).
            exported |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
            exported |= {sample.name for sample in family.samples}
    assert {"ddas_leveringen", "ddas_transitions_total", "faststream_received_messages_total",
            "ddas_dead_letter_messages_total"} <= exported  # fmt: skip
    known = exported | recorded_names() | PROMETHEUS_OWN

    expressions = [(w, grafana_to_promql(e)) for w, e in dashboard_expressions()]
    expressions += rule_expressions()
    assert len(expressions) > 20
    problems = []
    for where, expr in expressions:
        error = await published.prometheus.parse_error(expr)
        if error:
            problems.append(f"{where}: {error}")
        names = metric_names(expr)
        if not names and not expr.startswith("vector("):  # a threshold's constant
            problems.append(f"{where}: selects no metric: {expr}")
        if unknown := names - known:
            problems.append(f"{where}: not exported: {sorted(unknown)}")
    assert not problems, "\n".join(problems)
