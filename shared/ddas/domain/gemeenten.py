"""The municipalities (gemeenten) a trajectory may belong to, and the normalisation of codes.

domain.md: a gemeentecode must be one of the 342 municipalities of 2025 (CBS codes, 4 digits,
shipped as package data `data/gemeenten-2025.csv`, a copy of `reference/gemeenten-2025.csv`) or
the literal `Onbekend`. Suppliers also write `GM0599`, `599` or ` 0599 `: those are normalised
to `0599`, and the rule engine says so.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib.resources import files

__all__ = ["ONBEKEND", "codes", "is_known", "naam", "normalise"]

ONBEKEND = "Onbekend"  # the literal the format allows when the municipality is not known


@cache
def _table() -> dict[str, str]:
    text = files("ddas.domain").joinpath("data/gemeenten-2025.csv").read_text("utf-8")
    return {row["code"]: row["name"] for row in csv.DictReader(io.StringIO(text))}


@cache
def codes() -> frozenset[str]:
    """The 4-digit codes of the 2025 municipalities (342)."""
    return frozenset(_table())


def naam(code: str) -> str | None:
    """The municipality's name for a (normalised) code, or None when unknown."""
    return _table().get(code)


def is_known(code: str) -> bool:
    """True for a normalised code of a 2025 municipality or the literal `Onbekend`."""
    return code == ONBEKEND or code in codes()


def normalise(code: str) -> tuple[str, bool]:
    """The code in its canonical form and whether that differs from the input.

    `GM0599`, `gm599`, `599` and ` 0599 ` become `0599`; `onbekend` in any case becomes
    `Onbekend`. Anything else is returned stripped (and still unknown): normalising never
    invents a municipality, it only removes formatting.
    """
    value = code.strip()
    if value[:2].upper() == "GM":
        value = value[2:].strip()
    if value.isascii() and value.isdigit() and len(value) < 4:
        value = value.zfill(4)
    elif value.lower() == "onbekend":
        value = ONBEKEND
    return value, value != code
