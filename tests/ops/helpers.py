"""Helpers of the operations tests: the services and Prometheus as real processes, PromQL's
metric names, the dashboards' and rules' expressions, and the environment variables that a
settings class reads."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from tests.processes import Process

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SERVICES = ("ingest", "validate", "report", "publish")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- processes --------------------------------------------------------------------------------


READY = {
    "ingest": r"ingest: ready on http://[\d.]+:(\d+)",
    "validate": r"validate: ready on http://[\d.]+:(\d+)",
    "report": r"report: ready on http://[\d.]+:(\d+)",
    "publish": r"publish: ready on http://[\d.]+:(\d+)",
}
"""What each service prints when it is up, with its HTTP port (/metrics) as the group."""


def prometheus_config(directory: Path, targets: dict[str, int], interval: str = "1s") -> Path:
    """deploy/prometheus/prometheus.file_sd.yml with its rules, in `directory`, scraping and
    evaluating every `interval`, with a target file per service."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.file_sd.yml").read_text())
    config["global"] = {
        "scrape_interval": interval,
        "scrape_timeout": interval,
        "evaluation_interval": interval,
    }
    shutil.copytree(DEPLOY / "prometheus" / "rules", directory / "rules")
    (directory / "targets").mkdir()
    for job in config["scrape_configs"]:
        port = targets.get(job["job_name"])
        entries = [{"targets": [f"127.0.0.1:{port}"]}] if port else []
        (directory / "targets" / f"{job['job_name']}.json").write_text(json.dumps(entries))
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


class Prometheus:
    """/usr/bin/prometheus on a free port, and its HTTP API."""

    def __init__(self, config: Path, directory: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = Process(
            "prometheus",
            env,
            directory / "prometheus.log",
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
        )

    async def start(self) -> None:
        self.process.start()
        async with httpx.AsyncClient(base_url=self.url) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if (await client.get("/-/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                assert self.process.proc is not None and self.process.proc.poll() is None, (
                    self.process.log.read_text()
                )
                await asyncio.sleep(0.2)
        raise AssertionError("prometheus did not become ready")

    async def api(self, path: str, **params: str) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.get(f"/api/v1/{path}", params=params)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", body
        return body["data"]

    async def query(self, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
        """An instant query: {sorted labels: value}."""
        data = await self.api("query", query=expr)
        assert data["resultType"] == "vector", data
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in data["result"]}

    async def until(
        self, expr: str, expected: Any, timeout: float = 60.0, transform: Any = None
    ) -> Any:
        """Poll an instant query until its result (transformed) equals `expected`."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            result = await self.query(expr)
            last = transform(result) if transform else result
            if last == expected:
                return last
            await asyncio.sleep(0.5)
        raise AssertionError(f"{expr}: {last!r}, expected {expected!r}")

    async def parse_error(self, expr: str) -> str | None:
        """Prometheus's own parser: None when the expression is valid, else the error."""
        async with httpx.AsyncClient(base_url=self.url, timeout=10) as client:
            response = await client.get("/api/v1/query", params={"query": expr})
        if response.status_code == 200:
            return None
        body = response.json()
        return f"{body.get('errorType')}: {body.get('error')}"


def by(label: str, result: dict[tuple[tuple[str, str], ...], float]) -> dict[str, float]:
    """A query result keyed by one label's value."""
    return {dict(labels).get(label, ""): value for labels, value in result.items()}


def scalar(result: dict[tuple[tuple[str, str], ...], float]) -> float | None:
    values = list(result.values())
    return values[0] if len(values) == 1 else None


# -- PromQL ---------------------------------------------------------------------------------

KEYWORDS = frozenset(
    [
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENT = re.compile(r"(?<![\w:.])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a small lexer: strings, label matchers, ranges
    and grouping clauses removed, then every identifier that is no function or keyword)."""
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub(" ", text)
    text = re.sub(r"\b(\d+(ms|s|m|h|d|w|y))+\b", " ", text)  # durations (offset 1h)
    text = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", " ", text)  # numbers (and 1e3)
    names = set()
    for match in _IDENT.finditer(text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in KEYWORDS:
            continue
        names.add(name)
    return names


GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "${__rate_interval}": "1m",
    "$job": "validate",
    "${job}": "validate",
    "$instance": ".*",
    "${instance}": ".*",
}


def grafana_to_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables as Prometheus would get them."""
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr!r}"
    return expr


def dashboards() -> dict[str, dict[str, Any]]:
    folder = DEPLOY / "grafana" / "dashboards"
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = list(dashboard.get("panels", []))
    while stack:
        panel = stack.pop(0)
        yield panel
        stack.extend(panel.get("panels", []))


def dashboard_expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every query of every dashboard and of its template variables."""
    found = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                if "expr" in target:
                    found.append((f"{name}: {panel.get('title')}", target["expr"]))
        for variable in dashboard.get("templating", {}).get("list", []):
            if variable.get("type") == "query":
                query = variable.get("query")
                query = query.get("query") if isinstance(query, dict) else query
                if m := re.fullmatch(r"label_values\((.*),\s*\w+\)", query or ""):
                    found.append((f"{name}: variable {variable['name']}", m.group(1)))
    return found


def rule_groups() -> dict[str, list[dict[str, Any]]]:
    folder = DEPLOY / "prometheus" / "rules"
    return {p.name: yaml.safe_load(p.read_text())["groups"] for p in sorted(folder.glob("*.yml"))}


def rule_expressions() -> list[tuple[str, str]]:
    return [
        (f"{name}: {rule.get('alert') or rule.get('record')}", rule["expr"])
        for name, groups in rule_groups().items()
        for group in groups
        for rule in group["rules"]
    ]


def recorded_names() -> set[str]:
    return {
        rule["record"]
        for groups in rule_groups().values()
        for group in groups
        for rule in group["rules"]
        if "record" in rule
    }


PROMETHEUS_OWN = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds"})


# -- settings and the environment ---------------------------------------------------------------


def env_names(settings: type[BaseSettings]) -> set[str]:
    """Every environment variable a settings class reads (upper case), its nested settings'
    (fields whose default is a settings class reading its own prefix) included."""
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, info in settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseSettings):
            names |= env_names(annotation)
            continue
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {str(choice).upper() for choice in alias.choices}
        elif isinstance(alias, str):
            names.add(alias.upper())
        else:
            names.add(f"{prefix}{name}".upper())
    return names
