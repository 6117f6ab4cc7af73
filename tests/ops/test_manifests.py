"""docker-compose.yml and the Kubernetes manifests (deploy/k8s), checked for structure (no Docker
engine or cluster runs here): every environment variable they give a service is one that the
service reads (its settings class with its nested connection and notification settings, and
ddas.observability's DDAS_METRICS_*), and the service's settings read from exactly that
environment say what the deployment needs (the connections, listening on all interfaces at the
port that the probes, the Service and Prometheus use)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from ddas.observability import ObservabilitySettings
from services.ingest.settings import IngestSettings
from services.publish.settings import PublishSettings
from services.report.settings import ReportSettings
from services.validate.settings import ValidateSettings

from .helpers import DEPLOY, ROOT, SERVICES, env_names

SETTINGS: dict[str, type[BaseSettings]] = {
    "ingest": IngestSettings,
    "validate": ValidateSettings,
    "report": ReportSettings,
    "publish": PublishSettings,
}


def readable(service: str) -> set[str]:
    """The environment variables `service` reads."""
    return env_names(SETTINGS[service]) | env_names(ObservabilitySettings)


def unread(service: str, names: set[str]) -> set[str]:
    return {n for n in names if n.upper() not in readable(service)}


def _clean_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith(("DDAS_", "KAFKA_", "DATABASE_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def test_the_reader_of_names_knows_prefixes_aliases_and_nested_settings() -> None:
    ingest = readable("ingest")
    assert {"DDAS_INGEST_HTTP_PORT", "DDAS_PSEUDONYM_KEY", "DDAS_PSEUDONYM_KEY_FILE",
            "KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL", "DATABASE_SEARCH_PATH",
            "DDAS_METRICS_INTERVAL_S", "DDAS_INGEST_LOG_LEVEL"} <= ingest  # fmt: skip
    assert "DDAS_NOTIFY_SMTP_HOST" not in ingest  # ingest sends no notifications
    assert {"DDAS_NOTIFY_SMTP_HOST", "DDAS_NOTIFY_SMTP_PASSWORD_FILE"} <= readable("report")
    # A misspelt variable is caught.
    assert unread("validate", {"DDAS_VALIDATE_HTTP_PROT", "DDAS_VALIDATE_HTTP_PORT"}) == {
        "DDAS_VALIDATE_HTTP_PROT"
    }


# -- docker-compose.yml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def _compose_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    # ${VAR:-default} as compose fills it in without the variable set; ${VAR} as empty.
    return {
        k: re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m.group(1) or "", str(v))
        for k, v in env.items()
    }


@pytest.mark.parametrize("name", SERVICES)
def test_compose_sets_only_what_each_service_reads(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert name in compose["services"], f"docker-compose.yml has no {name}"
    env = _compose_env(compose["services"][name])
    assert not unread(name, set(env)), f"{name}: not read by the service: {unread(name, set(env))}"
    _clean_env(monkeypatch, env)
    if name == "ingest":
        monkeypatch.setenv("DDAS_PSEUDONYM_KEY", "k" * 32)  # ${DDAS_PSEUDONYM_KEY} is required
    settings: Any = SETTINGS[name]()
    assert settings.kafka.servers == ["kafka:9092"]
    assert settings.database.url.endswith("@postgres:5432/ddas")
    assert settings.http_host == "0.0.0.0"
    port = SETTINGS[name].model_fields["http_port"].default
    assert settings.http_port == port
    assert any(str(p).endswith(f":{port}") for p in compose["services"][name]["ports"])


# -- Kubernetes -----------------------------------------------------------------------------

K8S = DEPLOY / "k8s"


@pytest.fixture(scope="module")
def manifests() -> dict[tuple[str, str], dict[str, Any]]:
    """(kind, name) -> document, of the files the kustomization lists."""
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    assert sorted(listed) == sorted(p.name for p in K8S.glob("*.yaml")
                                    if p.name != "kustomization.yaml")  # fmt: skip
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for name in listed:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            assert {"apiVersion", "kind", "metadata"} <= set(doc), name
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in found, key
            found[key] = doc
    assert [i["name"] for i in kustomization["images"]] == ["ddas-pipeline"]
    return found


def _container(manifests: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    deployment = manifests[("Deployment", f"ddas-{name}")]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def _quantity(value: str | int) -> float:
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for unit, factor in units.items():
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor
    return float(text)


@pytest.mark.parametrize("name", SERVICES)
def test_a_deployment_runs_replicas_with_probes_and_resources(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str
) -> None:
    deployment = manifests[("Deployment", f"ddas-{name}")]
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    container = _container(manifests, name)
    assert container["image"] == "ddas-pipeline"
    assert container["command"] == ["python", "-m", f"services.{name}"]
    port = SETTINGS[name].model_fields["http_port"].default
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    probes = {kind: container[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    assert probes == {
        "livenessProbe": {"path": "/healthz", "port": "http"},
        "readinessProbe": {"path": "/readyz", "port": "http"},
    }
    resources = container["resources"]
    for kind in ("cpu", "memory"):
        assert _quantity(resources["requests"][kind]) <= _quantity(resources["limits"][kind])
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["terminationGracePeriodSeconds"] > 30  # the services' graceful_timeout_s
    service = manifests[("Service", f"ddas-{name}")]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"] == [{"name": "http", "port": port, "targetPort": "http"}]


def _k8s_env(
    manifests: dict[tuple[str, str], dict[str, Any]], name: str, tmp_path: Path
) -> dict[str, str]:
    """The container's environment as Kubernetes gives it: the ConfigMaps of envFrom, the
    values and secretKeyRefs of env; files named by *_FILE variables must be a key of a secret
    mounted at the file's directory (written to tmp_path for the settings to read)."""
    container = _container(manifests, name)
    pod = manifests[("Deployment", f"ddas-{name}")]["spec"]["template"]["spec"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        assert set(source) == {"configMapRef"}, source  # no secret wholesale
        env |= manifests[("ConfigMap", source["configMapRef"]["name"])]["data"]
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = manifests[("Secret", ref["name"])]["stringData"][ref["key"]]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
    for key, value in list(env.items()):
        if key.endswith("_FILE"):
            directory, _, filename = value.rpartition("/")
            secret = mounts[directory]["secret"]["secretName"]
            content = manifests[("Secret", secret)]["stringData"][filename]
            path = tmp_path / f"{key}.txt"
            path.write_text(content)
            env[key] = str(path)
    return env


@pytest.mark.parametrize("name", SERVICES)
def test_a_deployment_sets_only_what_its_service_reads(
    manifests: dict[tuple[str, str], dict[str, Any]],
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = _k8s_env(manifests, name, tmp_path)
    assert not unread(name, set(env)), f"{name}: not read by the service: {unread(name, set(env))}"
    _clean_env(monkeypatch, env)
    settings: Any = SETTINGS[name]()
    config = manifests[("ConfigMap", "ddas-common")]["data"]
    assert settings.kafka.bootstrap_servers == config["KAFKA_BOOTSTRAP_SERVERS"]
    secret = manifests[("Secret", "ddas-database")]["stringData"]["url"]
    assert settings.database.url == secret
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == _container(manifests, name)["ports"][0]["containerPort"]
    if name == "ingest":
        assert len(settings.key()) >= 32  # from the mounted secret, no test mode
        assert not settings.test_mode
    if name in ("report", "publish"):
        smtp = manifests[("Secret", "ddas-smtp")]["stringData"]["password"]
        assert settings.notify.password() == smtp
    metrics = ObservabilitySettings()
    assert metrics.lag_group_prefix == config["DDAS_METRICS_LAG_GROUP_PREFIX"]
    assert settings.consumer_group.startswith(metrics.lag_group_prefix)  # its lag is measured


def test_only_ingest_gets_the_pseudonym_key(
    manifests: dict[tuple[str, str], dict[str, Any]],
) -> None:
    for name in SERVICES:
        text = yaml.safe_dump(manifests[("Deployment", f"ddas-{name}")])
        assert ("ddas-pseudonym" in text) == (name == "ingest"), name
