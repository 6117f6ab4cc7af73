"""docker-compose.yml's structure (no Docker engine runs here, so the file is checked, not run):
the services, KRaft settings, health checks, mounted files that exist, declared volumes, and
images that match the local broker and the testcontainers fallback."""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ddas import testing
from ddas.settings import DEFAULT_KAFKA_PORT, DEFAULT_PG_PORT

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def test_the_stack_has_kafka_postgres_prometheus_and_grafana(compose: dict[str, Any]) -> None:
    assert {"kafka", "postgres", "prometheus", "grafana"} <= set(compose["services"])
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name


def test_kafka_is_the_official_image_in_kraft_mode(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = _env(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert not any(key.startswith("KAFKA_ZOOKEEPER") for key in env)
    node = env["KAFKA_NODE_ID"]
    assert re.fullmatch(rf"{node}@kafka:\d+", env["KAFKA_CONTROLLER_QUORUM_VOTERS"])
    assert len(base64.urlsafe_b64decode(env["CLUSTER_ID"] + "==")) == 16  # a Kafka Uuid

    # Every listener has a protocol, the controller's is named, and the host can reach one.
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    listeners = [entry.split("://")[0] for entry in env["KAFKA_LISTENERS"].split(",")]
    assert set(listeners) == set(protocols)
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] in listeners
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    assert f"127.0.0.1:{DEFAULT_KAFKA_PORT}" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert any(p.endswith(f"{DEFAULT_KAFKA_PORT}:{DEFAULT_KAFKA_PORT}") for p in kafka["ports"])
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert "healthcheck" in kafka


def test_images_match_the_local_broker_and_the_testcontainers_fallback(
    compose: dict[str, Any],
) -> None:
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    match = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    assert match
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{match.group(1)}"
    assert compose["services"]["kafka"]["image"] == testing.KAFKA_IMAGE
    assert compose["services"]["postgres"]["image"] == testing.POSTGRES_IMAGE


def test_postgres_has_a_database_a_health_check_and_the_local_port(
    compose: dict[str, Any],
) -> None:
    postgres = compose["services"]["postgres"]
    env = _env(postgres)
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"} <= set(env)
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert any(p.endswith(f"{DEFAULT_PG_PORT}:5432") for p in postgres["ports"])


def test_mounted_files_exist_and_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in declared, f"{name} uses undeclared volume {source}"
        for dependency in service.get("depends_on", []):
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"


def test_prometheus_and_grafana_are_wired_together(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["scrape_configs"]
    assert all(job["job_name"] and job["static_configs"] for job in config["scrape_configs"])

    datasources = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
    sources = [
        source
        for path in datasources.glob("*.yml")
        for source in yaml.safe_load(path.read_text())["datasources"]
    ]
    assert [s["url"] for s in sources if s["type"] == "prometheus"] == ["http://prometheus:9090"]
    assert "prometheus" in compose["services"]["grafana"]["depends_on"]
