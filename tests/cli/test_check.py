"""`ddas check` as a supplier runs it: the installed command, its output and its exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
DDAS = Path(sys.executable).parent / "ddas"
EXAMPLES = SHARED / "ddas/examples/ddas-app"
SPEC = SHARED / "ddas/spec/schuldhulpverlening-v1.0"


def ddas(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DDAS), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_text_output_shows_the_seed_tables_as_aligned_rows() -> None:
    proc = ddas("check", EXAMPLES / "testbestand_schuldhulpverlening_750.json")
    assert proc.returncode in (0, 1), proc.stderr
    lines = [" ".join(line.split()) for line in proc.stdout.splitlines()]
    assert "Rapportageperiode: 1 januari 2025 - 31 december 2025" in lines
    for row in (
        "0503 167 197 125",
        "0518 171 190 115",
        "0546 225 265 166",
        "0599 187 223 133",
        "Totaal 750 875 539",
        "0503 7 11 4 21 24 22 36 72 197",
        "Totaal 27 68 20 61 120 102 141 336 875",
    ):
        assert row in lines, row
    # aligned: every row of table 1 has its numbers ending in the same columns
    start = proc.stdout.splitlines().index(
        next(line for line in proc.stdout.splitlines() if line.startswith("Gemeentecode"))
    )
    table = proc.stdout.splitlines()[start : start + 7]
    assert len({len(line) for line in table[2:]}) == 1, table


def test_json_output_has_the_agreed_shape() -> None:
    proc = ddas("check", "--json", EXAMPLES / "testbestand_schuldhulpverlening_750.json")
    doc = json.loads(proc.stdout)
    assert doc["periode"] == {"start": "2025-01-01", "eind": "2025-12-31"}
    first = doc["gemeenten"][0]
    assert first == {
        "gemeentecode": "0503",
        "trajecten": 167,
        "unieke_bsn": 197,
        "unieke_actieve_bsn": 125,
        "laatste_stap": {
            "aanmelding": 7,
            "intake": 11,
            "stabilisatie": 4,
            "schuldregeling": 21,
            "oplossing": 24,
            "nazorg": 22,
            "uitstroom": 36,
            "onbekend": 72,
        },
    }
    assert doc["totaal"]["trajecten"] == 750 and doc["totaal"]["unieke_bsn"] == 875
    assert doc["totaal"]["unieke_actieve_bsn"] == 539
    b = doc["bevindingen"]
    assert set(b) >= {"fouten", "waarschuwingen", "per_regel"}
    assert b["fouten"] + b["waarschuwingen"] == sum(r["aantal"] for r in b["per_regel"])
    for regel in b["per_regel"]:
        assert set(regel) >= {"code", "ernst", "aantal", "voorbeelden"}
        assert regel["ernst"] in ("fout", "waarschuwing")
        assert all(v.startswith("/") for v in regel["voorbeelden"])
    assert proc.returncode == (1 if b["fouten"] else 0)


def test_defects_of_the_extended_official_example_exit_1_with_findings() -> None:
    proc = ddas("check", "--json", SPEC / "UitgebreidMeervoudigVoorbeeld.json")
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    codes = {r["code"] for r in doc["bevindingen"]["per_regel"]}
    assert any(c.startswith("schema.") for c in codes), codes
    assert doc["bevindingen"]["fouten"] > 0


@pytest.mark.parametrize(
    "path",
    sorted(EXAMPLES.glob("*.json"))
    + [p for p in sorted(SPEC.glob("*.json")) if p.name != "json_schema_Uitwisselmodel.json"],
    ids=lambda p: p.name,
)
def test_every_real_file_is_read(path: Path) -> None:
    proc = ddas("check", "--json", path)
    assert proc.returncode in (0, 1), proc.stderr
    assert json.loads(proc.stdout)["totaal"]["trajecten"] > 0


def test_a_clean_generated_file_exits_0_and_a_flawed_one_exits_1(tmp_path: Path) -> None:
    clean, flawed = tmp_path / "clean.json", tmp_path / "flawed.json"
    assert ddas("generate", "--trajecten", "300", "--seed", "3", "-o", clean).returncode == 0
    assert (
        ddas(
            "generate", "--trajecten", "300", "--seed", "3", "--fouten", "0.1", "-o", flawed
        ).returncode
        == 0
    )
    ok = ddas("check", "--json", clean)
    assert ok.returncode == 0, ok.stdout[-2000:]
    assert json.loads(ok.stdout)["bevindingen"]["fouten"] == 0
    bad = ddas("check", flawed)
    assert bad.returncode == 1
    assert "Overzicht aantal trajecten" in bad.stdout  # the tables are still printed


UNREADABLE = {
    "missing": (None, "niet gevonden"),
    "not_utf8": (b'{"leveringen": ["\xff\xfe"]}', "geen geldige UTF-8"),
    "not_json": (b"startdatumLevering: 2025-01-01\n", "geen geldige JSON"),
    "truncated": (
        b'{"startdatumLevering": "2025-01-01", "leveringen": [{"teller": 1',
        "afgebroken",
    ),
    "array": (b"[]", "geen object"),
    "string": (b'"hallo"', "geen object"),
    "empty": (b"", "leeg"),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_input_exits_2_with_one_line_and_no_traceback(case: str, tmp_path: Path) -> None:
    content, expected = UNREADABLE[case]
    path = tmp_path / f"{case}.json"
    if content is not None:
        path.write_bytes(content)
    for args in (("check", path), ("check", "--json", path)):
        proc = ddas(*args)
        assert proc.returncode == 2, (case, proc.stdout, proc.stderr)
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert expected.lower() in lines[0].lower(), lines[0]
