"""The formats (date, time, date-time, email) decide exactly as ajv-formats 3 does in the DDAS-app.

data/ajv_formats_cases.json holds ajv-formats 3.0.1's own verdicts (computed with node from its
fullFormats) for hand-picked tricky strings and a sample of fuzzed ones. A second test fuzzes
further against the live ajv-formats of the DDAS-app peer (installed under .cache/ with npm).
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from ddas.domain.schema.formats import FORMATS, format_checker
from ddas.testing import ensure_peer

CASES = json.loads((Path(__file__).parent / "data" / "ajv_formats_cases.json").read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_formats_equal_ajv_formats(name: str) -> None:
    mismatches = [(s, expected) for s, expected in CASES[name] if FORMATS[name](s) is not expected]
    assert not mismatches
    assert any(v for _, v in CASES[name]) and not all(v for _, v in CASES[name])


@pytest.mark.parametrize(
    ("name", "value", "valid"),
    [
        ("date", "2024-02-29", True),
        ("date", "2025-02-29", False),
        ("date", "0000-01-01", True),  # ajv takes year 0000; Python's date cannot
        ("date", "20250101", False),  # date.fromisoformat would take it
        ("date", "2025-01-01\n", False),  # Python's $ would take it
        ("date", "\uff12\uff10\uff12\uff15-01-01", False),  # Python's \d would take it
        ("date-time", "2026-01-15T10:30:00", False),  # no time zone
        ("date-time", "2026-01-15 10:30:00+01", True),
        ("date-time", "2026-12-31T23:59:60Z", True),  # a leap second at 23:59 UTC
        ("date-time", "2026-12-31T12:59:60+01:00", False),
        ("email", "\u017f@example.nl", False),  # the long s: re.IGNORECASE alone would take it
        ("email", "\u212a@example.nl", False),  # the Kelvin sign
        ("email", "A.B@Example.NL", True),
    ],
)
def test_known_differences_from_python(name: str, value: str, valid: bool) -> None:
    assert FORMATS[name](value) is valid


def test_format_checker_passes_non_strings() -> None:
    checker = format_checker()
    others: tuple[object, ...] = (None, 12, 1.5, True, [], {})
    for name in FORMATS:
        for value in others:
            assert checker.conforms(value, name)
    assert not checker.conforms("2025-02-30", "date")
    assert checker.conforms("anything", "uri")  # formats the schema does not use: not asserted


def test_formats_equal_live_ajv_formats(tmp_path: Path) -> None:
    peer = ensure_peer().parent
    rng = random.Random(11)
    alphabets = {
        "date": "0123456789-",
        "time": "0123456789:.+-Zz ",
        "date-time": "0123456789-:.+Tt Zz\u00a0",
        "email": "ab.-_@xn1+\u017f",
    }
    cases = {
        name: [
            "".join(rng.choice(alphabet) for _ in range(rng.randint(6, 26))) for _ in range(3000)
        ]
        for name, alphabet in alphabets.items()
    }
    cases["date"] += [
        f"{rng.randint(0, 9999):04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}"
        for _ in range(3000)
    ]
    cases["time"] += [
        f"{rng.randint(0, 24):02d}:{rng.randint(0, 60):02d}:{rng.randint(0, 61):02d}"
        f"{rng.choice(['Z', '+01:00', '-00:01', '+2400', ''])}"
        for _ in range(3000)
    ]
    (tmp_path / "cases.json").write_text(json.dumps(cases), "utf-8")
    script = (
        "const {fullFormats} = require(process.argv[1] + '/node_modules/ajv-formats/dist/formats');"
        "const cases = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));"
        "const out = {}; for (const [n, list] of Object.entries(cases)) {"
        "  const f = fullFormats[n]; const v = f instanceof RegExp ? (s) => f.test(s) : f.validate;"
        "  out[n] = list.map((s) => v(s)); }"
        "console.log(JSON.stringify(out));"
    )
    result = subprocess.run(
        ["node", "-e", script, str(peer), str(tmp_path / "cases.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    verdicts = json.loads(result.stdout)
    for name, values in cases.items():
        for value, expected in zip(values, verdicts[name], strict=True):
            assert FORMATS[name](value) is expected, (name, value)
