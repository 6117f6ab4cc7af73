"""The Prometheus configuration, the alert rules and the Grafana dashboards, checked offline
with Prometheus's own tools (`promtool`, Debian's prometheus package):

- both configurations (compose's static targets, the tests' file discovery) are valid, scrape
  the same four jobs and load the same rules;
- the rules are valid, and each alert fires on its condition and not short of it (promtool's
  rule unit tests, deploy/prometheus/tests/alerts.yml, which must cover every alert);
- every dashboard expression is valid PromQL (fed to promtool as a rules file) and every panel
  queries the provisioned data source by its fixed uid.

The live checks (a real Prometheus scraping the running services) are in test_prometheus.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.ingest.settings import IngestSettings
from services.publish.settings import PublishSettings
from services.report.settings import ReportSettings
from services.validate.settings import ValidateSettings

from .helpers import (
    DEPLOY,
    PROMTOOL,
    SERVICES,
    dashboard_expressions,
    dashboards,
    grafana_to_promql,
    metric_names,
    panels,
    prometheus_config,
    rule_groups,
)

PORTS = {
    "ingest": IngestSettings.model_fields["http_port"].default,
    "validate": ValidateSettings.model_fields["http_port"].default,
    "report": ReportSettings.model_fields["http_port"].default,
    "publish": PublishSettings.model_fields["http_port"].default,
}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    if not Path(PROMTOOL).exists():
        pytest.fail("promtool is missing: apt-get install prometheus", pytrace=False)
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid() -> None:
    files = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))
    assert {f.name for f in files} == {"ddas.yml", "thresholds.yml"}
    result = promtool("check", "rules", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_alert_fires_on_its_condition_in_promtools_unit_tests() -> None:
    tests = DEPLOY / "prometheus" / "tests" / "alerts.yml"
    result = promtool("test", "rules", str(tests))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
    tested = {
        expected["alertname"]
        for case in yaml.safe_load(tests.read_text())["tests"]
        for expected in case["alert_rule_test"]
        if expected.get("exp_alerts")
    }
    alerts = {r["alert"] for g in rule_groups()["ddas.yml"] for r in g["rules"] if "alert" in r}
    # Each alert has a case in which it fires (DdasNotificatiesVertraagd: see below).
    assert alerts - tested == {"DdasNotificatiesVertraagd"}


def test_every_alert_is_labelled_and_explained() -> None:
    required = {
        "DdasDeadLetters", "DdasStapStilgevallen", "DdasConsumerLagGroeit",
        "DdasGoedkeuringAchterstand", "DdasNotificatiesMislukt", "DdasServiceOnbereikbaar",
    }  # fmt: skip
    alerts = [r for g in rule_groups()["ddas.yml"] for r in g["rules"] if "alert" in r]
    assert required <= {r["alert"] for r in alerts}
    for rule in alerts:
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), rule["alert"]
        assert {"summary", "description"} <= set(rule["annotations"]), rule["alert"]
    # The approval backlog's threshold is configurable in one place, in days.
    thresholds = {r["record"]: r["expr"] for g in rule_groups()["thresholds.yml"]
                  for r in g["rules"]}  # fmt: skip
    assert re.fullmatch(r"vector\(\d+\)", thresholds["ddas:approval_backlog_max_age:days"])
    backlog = next(r for r in alerts if r["alert"] == "DdasGoedkeuringAchterstand")
    assert "ddas:approval_backlog_max_age:days" in backlog["expr"]


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def test_both_configurations_are_valid_and_scrape_the_four_services(tmp_path: Path) -> None:
    static = _load(DEPLOY / "prometheus" / "prometheus.yml")
    discovered = _load(DEPLOY / "prometheus" / "prometheus.file_sd.yml")
    assert static["rule_files"] == discovered["rule_files"] == ["rules/*.yml"]
    jobs = {j["job_name"] for j in static["scrape_configs"]} - {"prometheus"}
    assert jobs == {j["job_name"] for j in discovered["scrape_configs"]} == set(SERVICES)
    # compose's targets: the service's name and its settings' default port.
    targets = {job["job_name"]: t for job in static["scrape_configs"]
               for c in job["static_configs"] for t in c["targets"]}  # fmt: skip
    assert {name: targets[name] for name in SERVICES} == {
        name: f"{name}:{port}" for name, port in PORTS.items()
    }
    for job in discovered["scrape_configs"]:
        assert job["file_sd_configs"] == [{"files": [f"targets/{job['job_name']}.json"]}]

    copy = tmp_path / "static"
    shutil.copytree(DEPLOY / "prometheus", copy)
    result = promtool("check", "config", str(copy / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 rule files found" in result.stdout
    (tmp_path / "sd").mkdir()
    config = prometheus_config(tmp_path / "sd", dict.fromkeys(SERVICES, 1))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr  # every target file is there


def test_every_dashboard_expression_is_valid_promql(tmp_path: Path) -> None:
    expressions = dashboard_expressions()
    assert len(expressions) >= 25
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:expr_{i}", "expr": grafana_to_promql(expr)}
                    for i, (_where, expr) in enumerate(expressions)
                ],
            }
        ]
    }
    path = tmp_path / "dashboards.yml"
    path.write_text(yaml.safe_dump(rules))
    result = promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    # Each selects a metric of ours, FastStream's or Prometheus's (the live test checks that
    # the services export each of them).
    for where, expr in expressions:
        names = metric_names(grafana_to_promql(expr))
        assert names, where
        assert all(re.match(r"(ddas_|faststream_|process_|up$|ALERTS$)", n) for n in names), (
            where, names)  # fmt: skip


def test_a_broken_expression_is_caught(tmp_path: Path) -> None:
    """The check above can fail: promtool refuses a bad expression, and the lexer finds the
    metric names of a real one."""
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "x", "rules": [
        {"record": "x:y", "expr": "sum by (state (ddas_leveringen)"}]}]}))  # fmt: skip
    assert promtool("check", "rules", str(path)).returncode != 0
    assert metric_names(
        'max by (state) (ddas_leveringen{state="ontvangen"}) > on() group_left() '
        "ddas:stage_max_wait:seconds and rate(up[5m] offset 1h) or vector(1)"
    ) == {"ddas_leveringen", "ddas:stage_max_wait:seconds", "up"}


def test_the_dashboards_use_the_provisioned_data_source() -> None:
    sources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    (uid,) = [s["uid"] for s in sources if s["type"] == "prometheus"]
    found = dashboards()
    assert set(found) == {"pipeline.json", "service.json"}
    uids = [d["uid"] for d in found.values()]
    assert len(set(uids)) == len(uids)
    for name, dashboard in found.items():
        ids = []
        for panel in panels(dashboard):
            ids.append(panel["id"])
            assert panel["datasource"] == {"type": "prometheus", "uid": uid}, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == uid
        assert len(set(ids)) == len(ids), name
    # The per-service view picks the service by its job; the overview needs no variable.
    (variable,) = found["service.json"]["templating"]["list"]
    assert variable["name"] == "job"
    queries = [e for w, e in dashboard_expressions()
               if w.startswith("service.json") and "variable" not in w]  # fmt: skip
    assert queries and all('job="$job"' in e for e in queries)
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "ddas.yml").read_text()
    )["providers"]
    assert [p["options"]["path"] for p in provider] == ["/etc/grafana/dashboards"]
