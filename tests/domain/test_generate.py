"""`ddas generate`: deterministic, realistic, schema-valid and rule-clean without flaws, and with
`--fouten RATE` about RATE of the trajectories carrying exactly one flaw that the checks catch."""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator, FormatChecker

from ddas.cli.generate import command
from ddas.domain import gemeenten
from ddas.domain.bsn import is_valid
from ddas.domain.rules import check_document
from ddas.generate import FLAWS, Options, Stats, generate

SCHEMA = (
    Path(__file__).resolve().parents[3]
    / "shared/ddas/spec/schuldhulpverlening-v1.0/json_schema_Uitwisselmodel.json"
)


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(
        json.loads(SCHEMA.read_text(encoding="utf-8")), format_checker=FormatChecker()
    )


def make(n: int, seed: int = 1, **kw: Any) -> tuple[bytes, Stats]:
    out = io.BytesIO()
    stats = generate(out, Options(trajecten=n, seed=seed, **kw))
    return out.getvalue(), stats


def trajecten(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for lev in doc["leveringen"] for t in lev["schuldhulptrajecten"]]


def index_of(doc: dict[str, Any]) -> dict[tuple[int, int], int]:
    """(levering, trajectory in levering) -> trajectory number in the file."""
    pos, n = {}, 0
    for i, lev in enumerate(doc["leveringen"]):
        for j in range(len(lev["schuldhulptrajecten"])):
            pos[(i, j)] = n
            n += 1
    return pos


def test_the_same_seed_gives_the_same_file_and_another_seed_another() -> None:
    a, _ = make(400, seed=7, fouten=0.1)
    b, _ = make(400, seed=7, fouten=0.1)
    c, _ = make(400, seed=8, fouten=0.1)
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"leveringen": 4, "gemeenten": 4},  # one municipality per levering: municipal organisations
        {"leveringen": 2, "gemeenten": 7},  # regional organisations
        {"periode": (date(2025, 9, 7), date(2025, 10, 7))},  # a short period, as Enschede's
    ],
    ids=["default", "per-gemeente", "regionaal", "korte-periode"],
)
def test_without_flaws_the_file_is_schema_valid_and_rule_clean(kw: dict[str, Any]) -> None:
    data, stats = make(1500, seed=3, **kw)
    doc = orjson.loads(data)
    assert list(validator().iter_errors(doc)) == []
    assert check_document(doc) == []
    assert stats.trajecten == len(trajecten(doc)) == 1500
    assert stats.met_fout == 0


def test_the_file_looks_like_a_real_delivery() -> None:
    data, stats = make(3000, seed=11)
    doc = orjson.loads(data)
    ts = trajecten(doc)
    clients = [c for t in ts for c in t["client"]]
    assert {len(t["client"]) for t in ts} == {1, 2}
    assert 0.1 < sum(len(t["client"]) == 2 for t in ts) / len(ts) < 0.4
    assert stats.clienten == len(clients)
    assert all(is_valid(c["Burgerservicenummer"]) for c in clients)
    # as in the DDAS-app test file: gender M/V/O (sometimes missing), postcode "1234 AB"
    assert {c.get("Geslachtsaanduiding") for c in clients} == {"M", "V", "O", None}
    assert all(re.fullmatch(r"[1-9]\d{3} ?[A-Z]{2}", c["Postcode"]) for c in clients)
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", c["Geboortedatum"]) for c in clients)
    # BSNs come back in later trajectories, also in another municipality
    per_bsn: dict[str, set[str]] = {}
    for t in ts:
        for c in t["client"]:
            per_bsn.setdefault(c["Burgerservicenummer"], set()).add(t["gemeentecode"])
    seen = Counter(c["Burgerservicenummer"] for c in clients)
    assert 0.01 < sum(n > 1 for n in seen.values()) / len(seen) < 0.2
    assert stats.hergebruikt > 0
    assert any(len(codes) > 1 for codes in per_bsn.values())
    # several municipalities of the reference list
    codes = Counter(t["gemeentecode"] for t in ts)
    assert len(codes) >= 3 and set(codes) <= gemeenten.codes()
    # phases, outflow, begeleiding, debts; equal dates now and then; the period's edges
    share = {
        k: sum(k in t for t in ts) / len(ts)
        for k in (
            "aanmelding",
            "intake",
            "stabilisatie",
            "schuldregeling",
            "oplossing",
            "nazorg",
            "uitstroom",
            "begeleiding",
            "schulden",
            "planVanAanpak",
        )
    }
    assert all(v > 0.05 for v in share.values()), share
    assert Counter(t["uitstroom"]["reden"] for t in ts if "uitstroom" in t)["Afgerond"] > 0
    assert any(
        t.get("intake", {}).get("startdatum") == t.get("intake", {}).get("einddatum") for t in ts
    )
    all_dates = {v for t in ts for v in _dates(t)}
    assert {"2025-01-01", "2025-12-31", "2024-12-31"} <= all_dates
    assert max(all_dates) <= doc["aanleverdatumEnTijd"][:10]
    assert len(data) / len(ts) > 500  # realistic size per trajectory (~150 MB per 200,000)


def _dates(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [d for k, v in value.items() if k != "Geboortedatum" for d in _dates(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dates(v)]
    return [value] if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) else []


def test_with_flaws_about_rate_of_the_trajectories_carry_exactly_the_planted_flaws() -> None:
    n, rate = 1200, 0.2
    clean, _ = make(n, seed=5, leveringen=3)
    flawed, stats = make(n, seed=5, leveringen=3, fouten=rate)
    a, b = orjson.loads(clean), orjson.loads(flawed)
    # the flawed file is the clean one with flaws planted, trajectory for trajectory
    differ = {i for i, (x, y) in enumerate(zip(trajecten(a), trajecten(b), strict=True)) if x != y}
    assert len(differ) == stats.met_fout
    assert abs(len(differ) - n * rate) < 5 * (n * rate * (1 - rate)) ** 0.5
    assert set(stats.fouten) == set(FLAWS)  # schema and rule flaws, all kinds
    # every flawed trajectory is caught by the schema or the rules, and nothing else is
    pos = index_of(b)
    caught: set[int] = set()
    for err in validator().iter_errors(b):
        path = list(err.absolute_path)
        assert path[:1] == ["leveringen"] and path[2:3] == ["schuldhulptrajecten"], path
        caught.add(pos[(path[1], path[3])])
    schema_caught = set(caught)
    for f in check_document(b):
        parts = f.pointer.split("/")
        assert parts[1] == "leveringen" and parts[3] == "schuldhulptrajecten", f
        caught.add(pos[(int(parts[2]), int(parts[4]))])
    assert caught == differ
    assert schema_caught and schema_caught != differ  # both kinds of check are needed


def test_the_cli_writes_a_file_or_stdout(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "shv.json"
    res = runner.invoke(
        command, ["--trajecten", "50", "--seed", "2", "--fouten", "0.1", "-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "50 trajecten" in res.stderr
    assert out.read_bytes() == make(50, seed=2, fouten=0.1)[0]
    assert list(tmp_path.iterdir()) == [out]  # no temporary file left behind
    res = runner.invoke(command, ["-n", "5", "--seed", "2", "--periode", "2025-07-01:2025-12-31"])
    assert res.exit_code == 0
    doc = orjson.loads(res.stdout_bytes)
    assert (doc["startdatumLevering"], doc["einddatumLevering"]) == ("2025-07-01", "2025-12-31")


@pytest.mark.parametrize(
    "args",
    [
        ["-n", "5", "--periode", "2025-12-31"],
        ["-n", "5", "--periode", "2025-12-31:2025-01-01"],
        ["-n", "5", "--fouten", "1.5"],
        ["-n", "-1"],
        [],
    ],
)
def test_the_cli_refuses_bad_options_in_one_usage_line(args: list[str]) -> None:
    res = CliRunner().invoke(command, args)
    assert res.exit_code == 2
    assert "Traceback" not in res.output and "Error:" in res.output


def test_the_cli_reports_an_unwritable_output_in_one_line(tmp_path: Path) -> None:
    res = CliRunner().invoke(command, ["-n", "5", "-o", str(tmp_path / "nope" / "x.json")])
    assert res.exit_code == 1
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert len(res.output.strip().splitlines()) == 1 and "Error:" in res.output
