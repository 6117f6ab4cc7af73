"""The local infrastructure: a real Kafka broker and a real PostgreSQL, started without Docker.

`up`, `down` and `status` serve `ddas infra ...`, the test fixtures and the demo alike. All three
are idempotent and serialised by a lock file, so that two callers at once (a developer's shell
and a test session) never start two brokers on one port or stop one mid-start.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from ddas.infra import kafka, postgres
from ddas.infra.config import InfraConfig, InfraError
from ddas.infra.kafka import KafkaStatus
from ddas.infra.postgres import PostgresStatus

Component = Literal["kafka", "postgres"]
COMPONENTS: tuple[Component, ...] = ("kafka", "postgres")

__all__ = [
    "COMPONENTS",
    "InfraConfig",
    "InfraError",
    "InfraStatus",
    "KafkaStatus",
    "PostgresStatus",
    "down",
    "status",
    "up",
]


@dataclass(frozen=True)
class InfraStatus:
    kafka: KafkaStatus | None
    postgres: PostgresStatus | None

    @property
    def env(self) -> dict[str, str]:
        """The settings a service needs to use what runs (KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL)."""
        env: dict[str, str] = {}
        for part in (self.kafka, self.postgres):
            if part is not None:
                env.update(part.env)
        return env

    @property
    def all_running(self) -> bool:
        return all(p.running for p in (self.kafka, self.postgres) if p is not None)


@contextmanager
def _locked(cfg: InfraConfig) -> Iterator[None]:
    assert cfg.run_dir is not None
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    with (cfg.run_dir / "infra.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def up(cfg: InfraConfig | None = None, *, only: tuple[Component, ...] = COMPONENTS) -> InfraStatus:
    """Start what is not running yet and wait until it is usable."""
    cfg = cfg or InfraConfig()
    with _locked(cfg):
        pg = postgres.start(cfg) if "postgres" in only else None
        # Kafka second: its first start may spend a while in Maven, and PostgreSQL is quick.
        kf = kafka.start(cfg) if "kafka" in only else None
    return InfraStatus(kafka=kf, postgres=pg)


def down(cfg: InfraConfig | None = None, *, only: tuple[Component, ...] = COMPONENTS) -> list[str]:
    """Stop what we started and remove its data; the names of what was running."""
    cfg = cfg or InfraConfig()
    stopped: list[str] = []
    with _locked(cfg):
        if "kafka" in only and kafka.stop(cfg):
            stopped.append("kafka")
        if "postgres" in only and postgres.stop(cfg):
            stopped.append("postgres")
    return stopped


def status(cfg: InfraConfig | None = None) -> InfraStatus:
    cfg = cfg or InfraConfig()
    return InfraStatus(kafka=kafka.status(cfg), postgres=postgres.status(cfg))
