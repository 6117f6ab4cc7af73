"""`ddas.infra` without starting anything: settings from the environment, the broker's
configuration, and errors that reach the user as one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ddas.infra import InfraConfig, kafka

DDAS = str(Path(sys.executable).with_name("ddas"))


def test_ports_and_folders_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DDAS_CACHE_DIR", raising=False)
    monkeypatch.delenv("DDAS_KAFKA_CONTROLLER_PORT", raising=False)
    monkeypatch.setenv("DDAS_KAFKA_PORT", "29092")
    monkeypatch.setenv("DDAS_PG_PORT", "25432")
    monkeypatch.setenv("DDAS_RUN_DIR", str(tmp_path))
    cfg = InfraConfig()
    assert (cfg.kafka_port, cfg.kafka_controller_port, cfg.pg_port) == (29092, 29093, 25432)
    assert cfg.kafka_run_dir == tmp_path / "kafka"
    assert cfg.kafka_pom.is_file()  # the checkout's deploy/kafka/pom.xml
    assert cfg.kafka_libs == cfg.project_root / ".cache" / "kafka" / "libs"


def test_broker_settings_are_tuned_for_one_node_and_fast_tests(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DDAS_KAFKA_CONTROLLER_PORT", raising=False)  # the default: port + 1
    cfg = InfraConfig(kafka_port=29092, run_dir=tmp_path)
    props = dict(
        line.split("=", 1)
        for line in kafka._server_properties(cfg, tmp_path / "data").splitlines()
        if "=" in line and not line.startswith("#")
    )
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:29093"
    assert props["offsets.topic.num.partitions"] == "1"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["log.dirs"] == str(tmp_path / "data")


def test_cluster_ids_are_kafka_uuids() -> None:
    ids = {kafka._random_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)


def _ddas_infra(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DDAS_")}
    return subprocess.run(
        [DDAS, "infra", *args], env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_a_missing_java_is_one_clear_line(tmp_path: Path) -> None:
    result = _ddas_infra(
        "up", "--only", "kafka", JAVA_HOME="/nonexistent", DDAS_RUN_DIR=str(tmp_path)
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("ddas infra: Java 17+ is needed")
    assert len(result.stderr.strip().splitlines()) == 1  # no traceback


def test_a_bad_port_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = _ddas_infra("up", DDAS_PG_PORT="fifteen", DDAS_RUN_DIR=str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("ddas infra: DDAS_PG_PORT:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_status_without_anything_running_says_so(tmp_path: Path) -> None:
    result = _ddas_infra("status", DDAS_RUN_DIR=str(tmp_path))
    assert result.returncode == 3
    assert result.stdout == ""
    assert "kafka: stopped" in result.stderr and "postgres: stopped" in result.stderr
