"""Where the local infrastructure lives and which ports it uses, from DDAS_* environment variables.

Ports are on loopback and overridable so that two checkouts, a test of `ddas infra` itself, or a
Debian-started PostgreSQL on 5432 never collide with the broker and database the tests use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from ddas.settings import DEFAULT_DATABASE, DEFAULT_KAFKA_PORT, DEFAULT_PG_PORT


class InfraError(Exception):
    """A local broker or database could not be fetched, started, probed or stopped.

    The message is one line a developer can act on; the CLI prints it without a traceback.
    """


def _default_project_root() -> Path:
    # shared/ddas/infra/config.py -> the checkout (an editable install keeps it there).
    return Path(__file__).resolve().parents[3]


class InfraConfig(BaseSettings):
    """`DDAS_KAFKA_PORT`, `DDAS_PG_PORT`, `DDAS_RUN_DIR`, ... with defaults for a checkout."""

    model_config = SettingsConfigDict(env_prefix="DDAS_", extra="ignore")

    project_root: Path = _default_project_root()
    run_dir: Path | None = None
    """Pid files, logs and Kafka's data; default <project_root>/.run (git-ignored)."""
    cache_dir: Path | None = None
    """The broker's jars; default <project_root>/.cache (git-ignored)."""

    kafka_port: int = DEFAULT_KAFKA_PORT
    kafka_controller_port: int | None = None
    """The KRaft controller's listener; default kafka_port + 1."""
    kafka_heap: str = "512m"
    """JVM heap of the broker: small, the machine is shared with the tests."""
    kafka_start_timeout: float = 90.0

    pg_port: int = DEFAULT_PG_PORT
    pg_bin: Path | None = None
    """Directory with initdb and pg_ctl; default the newest /usr/lib/postgresql/*/bin."""
    pg_database: str = DEFAULT_DATABASE

    @model_validator(mode="after")
    def _derive(self) -> InfraConfig:
        self.project_root = self.project_root.resolve()
        if self.run_dir is None:
            self.run_dir = self.project_root / ".run"
        if self.cache_dir is None:
            self.cache_dir = self.project_root / ".cache"
        if self.kafka_controller_port is None:
            self.kafka_controller_port = self.kafka_port + 1
        self.run_dir = self.run_dir.resolve()
        self.cache_dir = self.cache_dir.resolve()
        return self

    @property
    def kafka_run_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "kafka"

    @property
    def pg_run_dir(self) -> Path:
        assert self.run_dir is not None
        return self.run_dir / "postgres"

    @property
    def kafka_pom(self) -> Path:
        return self.project_root / "deploy" / "kafka" / "pom.xml"

    @property
    def kafka_log4j_config(self) -> Path:
        return self.project_root / "deploy" / "kafka" / "log4j2.properties"

    @property
    def kafka_libs(self) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / "kafka" / "libs"
