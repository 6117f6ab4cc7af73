"""What every service exposes on /metrics besides its own counters (one implementation, issue 7).

Two kinds of metrics, with different aggregation rules:

**Per process** (counters and histograms, registered in the process's default registry): sum
them over replicas.

- `ddas_transitions_total{from_state, to_state}`: lifecycle transitions made by this process
  (`ddas.lifecycle.transition` calls `record_transition`);
- `ddas_stage_duration_seconds{from_state, to_state}`: how long a delivery was in `from_state`
  before it moved to `to_state` (validation: ontvangen -> gevalideerd; the report:
  gevalideerd -> rapport_gereed; the decision: rapport_gereed -> goedgekeurd; ...);
- `ddas_submission_to_report_seconds`: from receipt to `rapport_gereed`;
- `ddas_report_to_decision_seconds{decision}`: from `rapport_gereed` to `goedgekeurd` or
  `ingetrokken`;
- FastStream's `faststream_*` message metrics (`KafkaPrometheusMiddleware`, added to every
  broker by `ddas.messaging.build_broker`).

A transition is counted when it is made in its transaction; should the caller's transaction
roll back afterwards (rare: it failed after the transition), the count stays.

**Of the platform** (gauges read from the database and the Kafka cluster by a refresher task
every `DDAS_METRICS_INTERVAL_S`): facts about shared state, the same whichever process reads
them. Summing them over several processes would multiply them, so *exactly one process* of the
whole deployment exports them: the one that holds a PostgreSQL advisory lock (per database
schema). Every process of every service tries to take it at each refresh; when the holder dies
its session ends, the lock is released and another process takes over at its next refresh.
`ddas_observability_leader` is 1 in the process that exports them (0 elsewhere), so
`sum(ddas_leveringen)` is right in any query; the dashboards still use `max by (...)` to stay
right during a takeover, when the old holder's last scrape and the new holder's first may
overlap for an interval.

- `ddas_leveringen{state}`: deliveries by state (every state, 0 included);
- `ddas_leveringen_oldest_age_seconds{state}`: for the waiting states (ontvangen, gevalideerd,
  afgekeurd, rapport_gereed, goedgekeurd), the age of the oldest delivery in the state since it
  entered it (0: none). `state="rapport_gereed"` is the approval backlog's age, its count is
  `ddas_leveringen{state="rapport_gereed"}`;
- `ddas_outbox_pending_messages{topic}` and `ddas_outbox_oldest_pending_age_seconds`;
- `ddas_notificaties{kanaal, status}` and `ddas_notificaties_oldest_waiting_age_seconds`
  (`ddas.notify`'s table, when it exists);
- `ddas_findings{code}`: findings per rule code over the completed validations;
- `ddas_consumer_lag_messages{group, topic}`: per consumer group (those whose name starts with
  `DDAS_METRICS_LAG_GROUP_PREFIX`) and topic, the messages not yet committed;
- `ddas_dead_letter_messages_total{topic}`: messages ever written to each dead-letter topic
  (the sum of its end offsets), for every existing `*.dlq` topic and the twin of every topic a
  watched group consumes (0 until its first dead letter, so that the first one is an increase).

No label holds a delivery id, a token or a personal value: states, topics, groups, rule codes
and channels only.

Wiring, one call in each service's `start()` once its pool exists::

    observability.install(self.pool, s, service="ingest")

The refresher ends by itself when the pool closes (the service's `stop()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import asyncpg
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ddas.pipeline.topics import dead_letter

if TYPE_CHECKING:
    from ddas.settings import ServiceSettings

__all__ = [
    "DURATION_BUCKETS",
    "Observer",
    "ObservabilitySettings",
    "install",
    "record_transition",
]

log = logging.getLogger("ddas.observability")

WAITING: Final = ("ontvangen", "gevalideerd", "afgekeurd", "rapport_gereed", "goedgekeurd")
"""States a delivery leaves by itself (a service's work) or by a decision (rapport_gereed)."""
KANALEN: Final = ("email", "webhook")
NOTIFICATIE_STATUS: Final = ("wachtend", "verzonden", "mislukt")

DURATION_BUCKETS: Final = (
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
    4 * 3600.0, 12 * 3600.0, 86400.0, 3 * 86400.0, 7 * 86400.0, 30 * 86400.0,
)  # fmt: skip
"""Seconds (a validation) to minutes (a large delivery) to days (an approval)."""


class ObservabilitySettings(BaseSettings):
    """DDAS_METRICS_*: how the platform's gauges are read."""

    model_config = SettingsConfigDict(env_prefix="DDAS_METRICS_", extra="ignore")

    interval_s: float = Field(default=15.0, gt=0)
    """How often the gauges are read (about the scrape interval)."""
    platform: bool = True
    """Take part in exporting the platform's gauges (one process at a time, see above)."""
    lag_group_prefix: str = "ddas-"
    """Consumer groups whose lag is measured (and whose topics' dead-letter twins are watched)."""
    kafka_timeout_s: float = Field(default=10.0, gt=0)


# -- per process ------------------------------------------------------------------------------

TRANSITIONS: Final = Counter(
    "ddas_transitions",
    "Lifecycle transitions made by this process",
    ["from_state", "to_state"],
)
STAGE_SECONDS: Final = Histogram(
    "ddas_stage_duration_seconds",
    "Time a delivery spent in from_state before it moved to to_state",
    ["from_state", "to_state"],
    buckets=DURATION_BUCKETS,
)
SUBMISSION_TO_REPORT: Final = Histogram(
    "ddas_submission_to_report_seconds",
    "Time from a delivery's receipt to its report (rapport_gereed)",
    buckets=DURATION_BUCKETS,
)
REPORT_TO_DECISION: Final = Histogram(
    "ddas_report_to_decision_seconds",
    "Time from a delivery's report to the organisation's decision",
    ["decision"],
    buckets=DURATION_BUCKETS,
)
LEADER: Final = Gauge(
    "ddas_observability_leader",
    "1 in the one process that exports the platform's gauges (database and Kafka), else 0",
)
REFRESH_ERRORS: Final = Counter(
    "ddas_observability_refresh_errors",
    "Failed reads of the platform's gauges, by source",
    ["source"],
)


def record_transition(
    expected: str, new: str, in_state_s: float | None, since_receipt_s: float | None
) -> None:
    """Count a transition and observe its durations (called by ddas.lifecycle.transition)."""
    TRANSITIONS.labels(expected, new).inc()
    if in_state_s is not None:
        STAGE_SECONDS.labels(expected, new).observe(max(0.0, in_state_s))
        if expected == "rapport_gereed" and new in ("goedgekeurd", "ingetrokken"):
            REPORT_TO_DECISION.labels(new).observe(max(0.0, in_state_s))
    if new == "rapport_gereed" and since_receipt_s is not None:
        SUBMISSION_TO_REPORT.observe(max(0.0, since_receipt_s))


# -- the platform's gauges ------------------------------------------------------------------------


@dataclass
class _Snapshot:
    metrics: list[Metric] = field(default_factory=list)


class _PlatformCollector(Collector):
    """Yields the latest snapshot of the leading observer of this process (none: nothing)."""

    def __init__(self) -> None:
        self.observers: list[Observer] = []

    def collect(self) -> Iterable[Metric]:
        for observer in self.observers:
            if observer.leader and observer.snapshot is not None:
                return list(observer.snapshot.metrics)
        return []

    def describe(self) -> Iterable[Metric]:
        return []  # unchecked: the families come and go with the lock


_COLLECTORS: weakref.WeakKeyDictionary[CollectorRegistry, _PlatformCollector] = (
    weakref.WeakKeyDictionary()
)


def _collector(registry: CollectorRegistry) -> _PlatformCollector:
    """The registry's one platform collector (registered on first use)."""
    found = _COLLECTORS.get(registry)
    if found is None:
        found = _COLLECTORS[registry] = _PlatformCollector()
        registry.register(found)
    return found


_LOCK_SQL: Final = (
    "SELECT pg_try_advisory_lock(hashtext('ddas.observability:' || current_schema()))"
)


class Observer:
    """Reads the platform's gauges every `interval_s` while it holds the export lock."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        settings: ServiceSettings,
        *,
        service: str,
        config: ObservabilitySettings | None = None,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.pool = pool
        self.settings = settings
        self.service = service
        self.config = config or ObservabilitySettings()
        self.registry = registry
        self.leader = False
        self.snapshot: _Snapshot | None = None
        self._lock_conn: asyncpg.Connection | None = None
        self._consumer: Any = None
        self._admin: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        _collector(self.registry).observers.append(self)
        self._task = asyncio.create_task(self._run(), name=f"ddas-{self.service}-observability")

    async def close(self) -> None:
        """Stop refreshing and give up the lock (another process takes over)."""
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
            self._task = None
        else:
            await self._release()

    async def _run(self) -> None:
        try:
            while not self._stop.is_set() and not self.pool.is_closing():
                await self.refresh()
                deadline = time.monotonic() + self.config.interval_s
                while time.monotonic() < deadline and not self.pool.is_closing():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), 0.5)
                    if self._stop.is_set():
                        break
        finally:
            await self._release()

    async def _release(self) -> None:
        observers = _collector(self.registry).observers
        if self in observers:
            observers.remove(self)
        self._set_leader(False)
        self.snapshot = None
        for closer in (
            self._consumer.stop if self._consumer is not None else None,
            self._admin.close if self._admin is not None else None,
            self._lock_conn.close if self._lock_conn is not None else None,
        ):
            if closer is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(closer(), 5)
        self._consumer = self._admin = self._lock_conn = None

    def _set_leader(self, leader: bool) -> None:
        self.leader = leader
        LEADER.set(1 if any(o.leader for o in _collector(self.registry).observers) else 0)

    async def refresh(self) -> None:
        """Once: take (or keep) the lock, then read the database and the cluster."""
        if not self.config.platform:
            return
        try:
            if self._lock_conn is None or self._lock_conn.is_closed():
                self._lock_conn = await asyncpg.connect(
                    **self.settings.database.to_asyncpg_params()
                )
                self._set_leader(False)
            if not self.leader:
                self._set_leader(bool(await self._lock_conn.fetchval(_LOCK_SQL)))
            else:  # the lock lives as long as its session: is the session still there?
                await self._lock_conn.fetchval("SELECT 1")
        except Exception as exc:
            REFRESH_ERRORS.labels("lock").inc()
            log.warning("observability: the export lock is unavailable (%s)", type(exc).__name__)
            if self._lock_conn is not None:
                with contextlib.suppress(BaseException):
                    self._lock_conn.terminate()
            self._lock_conn = None
            self._set_leader(False)
            self.snapshot = None
            return
        if not self.leader:
            self.snapshot = None
            return
        metrics: list[Metric] = []
        try:
            async with self.pool.acquire() as conn:
                metrics += await database_metrics(conn)
        except Exception as exc:
            REFRESH_ERRORS.labels("database").inc()
            log.warning("observability: reading the database failed (%s)", type(exc).__name__)
        try:
            metrics += await asyncio.wait_for(self._kafka_metrics(), self.config.kafka_timeout_s)
        except Exception as exc:
            REFRESH_ERRORS.labels("kafka").inc()
            log.warning("observability: reading the Kafka cluster failed (%s)", type(exc).__name__)
            await self._drop_kafka_clients()
        self.snapshot = _Snapshot(metrics)

    # -- Kafka --------------------------------------------------------------------------------

    async def _drop_kafka_clients(self) -> None:
        for closer in (
            self._consumer.stop if self._consumer is not None else None,
            self._admin.close if self._admin is not None else None,
        ):
            if closer is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(closer(), 5)
        self._consumer = self._admin = None

    async def _kafka_metrics(self) -> list[Metric]:
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        params = self.settings.kafka.to_aiokafka_params()
        if self._admin is None:
            admin = AIOKafkaAdminClient(**params)
            await admin.start()
            self._admin = admin
        if self._consumer is None:
            consumer = AIOKafkaConsumer(**params, group_id=None, enable_auto_commit=False)
            await consumer.start()
            self._consumer = consumer
        admin, consumer = self._admin, self._consumer

        prefix = self.config.lag_group_prefix
        groups = sorted(
            g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(prefix)
        )
        committed: dict[str, dict[Any, int]] = {}
        for group in groups:
            offsets = await admin.list_consumer_group_offsets(group)
            committed[group] = {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

        existing = {
            t["topic"]: sorted(p["partition"] for p in t["partitions"])
            for t in await admin.describe_topics()
            if not t.get("error_code")
        }
        consumed = {tp.topic for offsets in committed.values() for tp in offsets}
        watched = sorted({t for t in existing if t.endswith(".dlq")}
                         | {dead_letter(t) for t in consumed if not t.endswith(".dlq")})  # fmt: skip
        partitions = [
            TopicPartition(topic, p)
            for topic in sorted((consumed | set(watched)) & set(existing))
            for p in existing[topic]
        ]
        ends: dict[Any, int] = await consumer.end_offsets(partitions) if partitions else {}

        lag = GaugeMetricFamily(
            "ddas_consumer_lag_messages",
            "Messages of a topic not yet committed by a consumer group",
            labels=["group", "topic"],
        )
        for group in groups:
            per_topic: dict[str, int] = {}
            for tp, offset in committed[group].items():
                if tp in ends:
                    per_topic[tp.topic] = per_topic.get(tp.topic, 0) + max(0, ends[tp] - offset)
            for topic, value in sorted(per_topic.items()):
                lag.add_metric([group, topic], value)
        dead = CounterMetricFamily(
            "ddas_dead_letter_messages",
            "Messages written to a dead-letter topic (the sum of its end offsets)",
            labels=["topic"],
        )
        for topic in watched:
            dead.add_metric([topic], sum(v for tp, v in ends.items() if tp.topic == topic))
        return [lag, dead]


# -- the database ---------------------------------------------------------------------------------


async def database_metrics(conn: asyncpg.Connection) -> list[Metric]:
    """The database's gauges, read in one snapshot (a read-only transaction)."""
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        states = await conn.fetch(
            "SELECT state, count(*) AS n, "
            "extract(epoch FROM now() - min(bijgewerkt_op))::float8 AS age "
            "FROM leveringen GROUP BY state"
        )
        outbox = await conn.fetch(
            "SELECT topic, count(*) AS n, "
            "extract(epoch FROM now() - min(created_at))::float8 AS age "
            "FROM outbox WHERE published_at IS NULL GROUP BY topic"
        )
        findings = await conn.fetch(
            "SELECT c.key AS code, sum(c.value::bigint) AS n "
            "FROM validatie v, jsonb_each_text(v.samenvatting -> 'per_code') c "
            "WHERE v.samenvatting IS NOT NULL GROUP BY c.key"
        )
        notificaties = None
        if await conn.fetchval("SELECT to_regclass('notificaties') IS NOT NULL"):
            notificaties = await conn.fetch(
                "SELECT kanaal, status, count(*) AS n, "
                "extract(epoch FROM now() - min(aangemaakt_op) "
                "    FILTER (WHERE status = 'wachtend'))::float8 AS age "
                "FROM notificaties GROUP BY kanaal, status"
            )
    return list(_families(states, outbox, findings, notificaties))


def _families(
    states: Sequence[asyncpg.Record],
    outbox: Sequence[asyncpg.Record],
    findings: Sequence[asyncpg.Record],
    notificaties: Sequence[asyncpg.Record] | None,
) -> Iterator[Metric]:
    from ddas.lifecycle import STATES  # here: ddas.lifecycle imports this module

    by_state = {r["state"]: r for r in states}
    count = GaugeMetricFamily("ddas_leveringen", "Deliveries by state", labels=["state"])
    age = GaugeMetricFamily(
        "ddas_leveringen_oldest_age_seconds",
        "Age of the oldest delivery in a waiting state since it entered it (0: none)",
        labels=["state"],
    )
    for state in STATES:
        row = by_state.get(state)
        count.add_metric([state], row["n"] if row else 0)
        if state in WAITING:
            age.add_metric([state], max(0.0, row["age"]) if row else 0.0)
    yield count
    yield age

    pending = GaugeMetricFamily(
        "ddas_outbox_pending_messages", "Outbox rows not yet published", labels=["topic"]
    )
    for row in outbox:
        pending.add_metric([row["topic"]], row["n"])
    yield pending
    yield GaugeMetricFamily(
        "ddas_outbox_oldest_pending_age_seconds",
        "Age of the oldest outbox row not yet published (0: none)",
        value=max([0.0, *(r["age"] for r in outbox)]),
    )

    found = GaugeMetricFamily(
        "ddas_findings", "Findings per rule code over the completed validations", labels=["code"]
    )
    for row in sorted(findings, key=lambda r: r["code"]):
        found.add_metric([row["code"]], row["n"])
    yield found

    if notificaties is not None:
        per = {(r["kanaal"], r["status"]): r for r in notificaties}
        notes = GaugeMetricFamily(
            "ddas_notificaties",
            "Notifications by channel and status (wachtend, verzonden, mislukt)",
            labels=["kanaal", "status"],
        )
        for kanaal in KANALEN:
            for status in NOTIFICATIE_STATUS:
                row = per.get((kanaal, status))
                notes.add_metric([kanaal, status], row["n"] if row else 0)
        yield notes
        ages = [r["age"] for r in notificaties if r["age"] is not None]
        yield GaugeMetricFamily(
            "ddas_notificaties_oldest_waiting_age_seconds",
            "Age of the oldest notification waiting to be sent (0: none)",
            value=max([0.0, *ages]),
        )


# -- wiring ---------------------------------------------------------------------------------------


def install(
    pool: asyncpg.Pool,
    settings: ServiceSettings,
    *,
    service: str,
    registry: CollectorRegistry = REGISTRY,
    config: ObservabilitySettings | None = None,
) -> Observer:
    """Start the platform's gauges for a service whose pool is open (in its event loop); the
    refresher stops when the pool closes, or on `await observer.close()`."""
    observer = Observer(pool, settings, service=service, config=config, registry=registry)
    observer.start()
    return observer
