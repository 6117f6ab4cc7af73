"""The municipalities of 2025 and the normalisation of gemeentecodes."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from ddas.domain import gemeenten

REFERENCE = Path(__file__).resolve().parents[3] / "shared/ddas/reference/gemeenten-2025.csv"


def test_the_packaged_list_has_the_342_municipalities_of_the_reference() -> None:
    assert len(gemeenten.codes()) == 342
    assert all(len(c) == 4 and c.isdigit() for c in gemeenten.codes())
    if REFERENCE.exists():  # the shared folder next to the repository
        with REFERENCE.open(encoding="utf-8") as f:
            assert {row["code"] for row in csv.DictReader(f)} == gemeenten.codes()


def test_names() -> None:
    assert gemeenten.naam("0599") == "Rotterdam"
    assert gemeenten.naam("0153") == "Enschede"
    assert gemeenten.naam("9999") is None


@pytest.mark.parametrize(
    ("raw", "expected", "changed"),
    [
        ("0599", "0599", False),
        ("GM0599", "0599", True),
        ("gm0599", "0599", True),
        ("599", "0599", True),
        (" 0599 ", "0599", True),
        ("GM599", "0599", True),
        ("14", "0014", True),
        ("Onbekend", "Onbekend", False),
        ("onbekend", "Onbekend", True),
        ("GM002", "0002", True),  # normalised, but still no municipality
        ("afwijzing", "afwijzing", False),
        ("05999", "05999", False),
        ("", "", False),
    ],
)
def test_normalise(raw: str, expected: str, changed: bool) -> None:
    assert gemeenten.normalise(raw) == (expected, changed)


@pytest.mark.parametrize(
    ("code", "known"),
    [
        ("0599", True),
        ("Onbekend", True),
        ("0154", False),
        ("0002", False),
        ("GM0599", False),
        ("", False),
    ],
)
def test_is_known_takes_normalised_codes(code: str, known: bool) -> None:
    assert gemeenten.is_known(code) is known
