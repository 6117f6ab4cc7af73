"""The collector's configuration and periods (services/ingest/collect/config.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.ingest.collect.config import ConfigError, Periode, load_config, parse_periode
from tests.collector.conftest import endpoint, write_config


@pytest.mark.parametrize(
    ("kind", "today", "start", "eind"),
    [
        ("halfjaar", dt.date(2026, 11, 29), dt.date(2026, 1, 1), dt.date(2026, 6, 30)),
        ("halfjaar", dt.date(2026, 1, 1), dt.date(2025, 7, 1), dt.date(2025, 12, 31)),
        ("halfjaar", dt.date(2026, 6, 30), dt.date(2025, 7, 1), dt.date(2025, 12, 31)),
        ("kwartaal", dt.date(2026, 4, 1), dt.date(2026, 1, 1), dt.date(2026, 3, 31)),
        ("kwartaal", dt.date(2026, 2, 15), dt.date(2025, 10, 1), dt.date(2025, 12, 31)),
        ("maand", dt.date(2026, 3, 1), dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        ("maand", dt.date(2026, 1, 31), dt.date(2025, 12, 1), dt.date(2025, 12, 31)),
    ],
)
def test_the_last_completed_period(
    kind: str, today: dt.date, start: dt.date, eind: dt.date
) -> None:
    assert Periode.last_completed(kind, today) == Periode(start, eind)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "start", "eind"),
    [
        ("2025", "2025-01-01", "2025-12-31"),
        ("2025H2", "2025-07-01", "2025-12-31"),
        ("2025-Q1", "2025-01-01", "2025-03-31"),
        ("2024M02", "2024-02-01", "2024-02-29"),
        ("2025-11", "2025-11-01", "2025-11-30"),
        ("2025-03-01..2025-03-15", "2025-03-01", "2025-03-15"),
    ],
)
def test_periods_by_name(text: str, start: str, eind: str) -> None:
    assert parse_periode(text) == Periode(dt.date.fromisoformat(start), dt.date.fromisoformat(eind))


@pytest.mark.parametrize("text", ["25", "2025H3", "2025Q5", "2025M13", "2025-06-30..2025-01-01"])
def test_bad_periods_say_why(text: str) -> None:
    with pytest.raises(ValueError, match="periode"):
        parse_periode(text)


def test_a_configuration_with_its_secret_in_a_file(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", [endpoint("acme", "ACME", "http://x")],
                        period="kwartaal", page_size=200)  # fmt: skip
    config = load_config(path)
    assert config.period == "kwartaal" and config.page_size == 200
    (e,) = config.endpoints
    assert e.client_secret() == "geheim-van-de-test-0123456789"


def test_a_secret_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    e = endpoint("acme", "ACME", "http://x", client_secret_env="ACME_GEHEIM")
    del e["secret"]
    config = load_config(write_config(tmp_path / "c.toml", [e]))
    with pytest.raises(ConfigError, match="leeg"):
        config.endpoints[0].client_secret()
    monkeypatch.setenv("ACME_GEHEIM", "s3")
    assert config.endpoints[0].client_secret() == "s3"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"client_secret": "letterlijk"}, "client_secret hoort niet in het bestand"),
        ({"page_size": 25_001}, "page_size"),
        ({"period": "jaar"}, "period"),
        ({"url": "ftp://x"}, "url"),
    ],
)
def test_bad_configurations_say_why(tmp_path: Path, extra: dict[str, object], message: str) -> None:
    path = write_config(tmp_path / "c.toml", [{**endpoint("a", "A", "http://x"), **extra}])
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_a_missing_or_broken_file_says_why(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "weg.toml")
    (tmp_path / "kapot.toml").write_text("[collector\n")
    with pytest.raises(ConfigError, match="geen geldige TOML"):
        load_config(tmp_path / "kapot.toml")


def test_the_commands_say_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from ddas.cli import main

    monkeypatch.delenv("DDAS_COLLECTOR_CONFIG", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["collect", "now"])
    assert result.exit_code == 2 and "DDAS_COLLECTOR_CONFIG" in result.output
    path = write_config(tmp_path / "c.toml", [endpoint("acme", "ACME", "http://x")])
    result = runner.invoke(main, ["collect", "now", "--config", str(path), "--periode", "2025H3"])
    assert result.exit_code == 2 and "periode '2025H3'" in result.output
    result = runner.invoke(main, ["collect", "now", "--config", str(path), "--supplier", "nee"])
    assert result.exit_code == 2 and "geen endpoint 'nee'" in result.output
    (tmp_path / "leeg.json").write_text("")
    result = runner.invoke(main, ["supplier-api", "serve", str(tmp_path / "leeg.json")])
    assert result.exit_code == 2 and "het bestand is leeg" in result.output
