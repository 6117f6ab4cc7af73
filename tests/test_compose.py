"""docker-compose.yml's structure (no Docker engine runs here, so the file is checked, not run):
the services, KRaft settings, health checks, mounted files that exist, declared volumes, and
images that match the local broker and the testcontainers fallback; the pipeline services (one
image from the Dockerfile, a command each, their settings, health checks and dependencies)."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from ddas import testing
from ddas.settings import DEFAULT_KAFKA_PORT, DEFAULT_PG_PORT
from services.ingest.settings import IngestSettings
from services.publish.settings import PublishSettings
from services.report.settings import ReportSettings
from services.validate.settings import ValidateSettings

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


# -- the pipeline services ------------------------------------------------------------------

PIPELINE = {
    "ingest": ("services.ingest", 8081),
    "validate": ("services.validate", 8082),
    "report": ("services.report", 8083),
    "publish": ("services.publish", 8084),
}


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_a_pipeline_service_runs_its_module_from_the_project_image(
    compose: dict[str, Any], name: str
) -> None:
    module, port = PIPELINE[name]
    service = compose["services"][name]
    build = service["build"]
    context, dockerfile = (build, "Dockerfile") if isinstance(build, str) else (
        build["context"], build.get("dockerfile", "Dockerfile"))  # fmt: skip
    assert (ROOT / context).resolve() == ROOT and dockerfile == "Dockerfile"
    # One image for all of them, each with its own command.
    assert service["image"] == compose["services"]["ingest"]["image"]
    command = service["command"]
    command = command.split() if isinstance(command, str) else command
    assert command == ["python", "-m", module]
    assert any(str(p).endswith(f"{port}:{port}") for p in service["ports"])


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_a_pipeline_service_reaches_kafka_and_postgres_inside_the_stack(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _module, port = PIPELINE[name]
    env = _env(compose["services"][name])
    postgres = _env(compose["services"]["postgres"])
    assert "kafka:9092" in _env(compose["services"]["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    # The service's own settings, read from exactly this environment (compose's ${VAR:-default}
    # as compose would fill it in without the variables set), say what the stack needs.
    for key in [k for k in os.environ if k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value))
    if name == "ingest":
        monkeypatch.setenv("DDAS_PSEUDONYM_KEY", "k" * 32)
    settings = {
        "ingest": IngestSettings,
        "validate": ValidateSettings,
        "report": ReportSettings,
        "publish": PublishSettings,
    }[name]()
    assert settings.kafka.servers == ["kafka:9092"]  # the INTERNAL listener
    user, password, db = (
        postgres[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    )
    password = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", password)
    assert settings.database.url == f"postgresql://{user}:{password}@postgres:5432/{db}"
    assert settings.http_host == "0.0.0.0"  # reachable through the published port
    assert settings.http_port == port


def test_ingest_gets_the_pseudonym_key_from_the_environment(compose: dict[str, Any]) -> None:
    env = _env(compose["services"]["ingest"])
    assert re.fullmatch(r"\$\{DDAS_PSEUDONYM_KEY(:?-)?\}", env["DDAS_PSEUDONYM_KEY"])
    assert "DDAS_TEST_MODE" not in env  # the fixed test key never in a deployment
    assert "DDAS_PSEUDONYM_KEY" not in _env(compose["services"]["validate"])  # no need
    assert "DDAS_PSEUDONYM_KEY" not in _env(compose["services"]["report"])
    assert "DDAS_PSEUDONYM_KEY" not in _env(compose["services"]["publish"])


@pytest.mark.parametrize("name", sorted(PIPELINE))
def test_a_pipeline_service_is_healthy_when_healthz_answers_and_waits_for_its_dependencies(
    compose: dict[str, Any], name: str
) -> None:
    _module, port = PIPELINE[name]
    service = compose["services"][name]
    test = service["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL")
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(test)
    assert "curl" not in " ".join(test) and "wget" not in " ".join(test)  # not in python:slim
    depends = service["depends_on"]
    assert {dep: depends[dep]["condition"] for dep in depends} == {
        "kafka": "service_healthy",
        "postgres": "service_healthy",
    }
    assert "healthcheck" in compose["services"]["kafka"]
    assert "healthcheck" in compose["services"]["postgres"]


def test_prometheus_scrapes_the_pipeline_services(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in config["scrape_configs"] for c in job["static_configs"]
               for t in c["targets"]}  # fmt: skip
    assert {f"{name}:{port}" for name, (_m, port) in PIPELINE.items()} <= targets


def test_the_dockerfile_installs_the_project_on_python_3_11_slim() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines() if line.strip()]
    instructions = [line for line in lines if not line.startswith("#")]
    assert instructions[0] == "FROM python:3.11-slim"
    copied = {part for line in instructions if line.startswith("COPY")
              for part in line.split()[1:-1]}  # fmt: skip
    # Everything `pip install .` needs: the project file, the readme it names, both packages.
    assert {"pyproject.toml", "README.md", "shared", "services"} <= copied
    assert any(
        re.match(r"RUN pip install (--no-cache-dir )?\.( |$)", line) for line in instructions
    )
    assert any(line.startswith("USER ") and "root" not in line for line in instructions)
    # The image's default command is a service, as compose's commands are.
    assert re.search(r'CMD \["python", "-m", "services\.\w+"\]', dockerfile)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv/", ".run/", ".cache/"} <= set(ignored)


def test_prometheus_loads_the_alert_rules_and_grafana_the_dashboards(
    compose: dict[str, Any],
) -> None:
    """The rules and dashboards of deploy/ reach the containers where their configuration
    looks for them (tests/ops checks their content)."""
    prometheus = compose["services"]["prometheus"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in prometheus["volumes"]}
    assert mounts["./deploy/prometheus/prometheus.yml"] == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["rules/*.yml"]  # relative to the configuration file
    assert mounts["./deploy/prometheus/rules"] == "/etc/prometheus/rules"
    assert list((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert "--web.enable-lifecycle" in prometheus["command"]  # reload after a threshold edit
    grafana = compose["services"]["grafana"]
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    providers = yaml.safe_load(
        (ROOT / "deploy" / "grafana" / "provisioning" / "dashboards" / "ddas.yml").read_text()
    )["providers"]
    assert mounts["./deploy/grafana/dashboards"] == providers[0]["options"]["path"]
    assert list((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
    for service in (prometheus, grafana):
        test = " ".join(service["healthcheck"]["test"])
        assert "/-/ready" in test or "/api/health" in test
    assert grafana["depends_on"]["prometheus"]["condition"] == "service_healthy"
