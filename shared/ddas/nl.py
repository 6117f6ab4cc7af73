"""Dutch wording shared by what people read: `ddas check`'s text and the op-orde-rapport."""

from __future__ import annotations

from typing import Final

MAANDEN: Final = (
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
)


def datum(iso: str | None) -> str:
    """An ISO date (its first 10 characters) as Dutch text, "1 januari 2025"; what is not one
    as it is, and nothing as "onbekend"."""
    if not iso or len(iso) < 10 or not iso[:4].isdigit():
        return iso or "onbekend"
    try:
        return f"{int(iso[8:10])} {MAANDEN[int(iso[5:7]) - 1]} {iso[:4]}"
    except (ValueError, IndexError):
        return iso
