"""The process steps of a debt-help trajectory and the dates that place a step in time.

domain.md defines two different date orders, and both are used by the DDAS-app:
- for *activity* (Table 1, col. 3): startdatum, else datum, else datumAfronding; for uitstroom:
  datum, else datumAfronding, else startdatum;
- for the *most recent step* (Table 2): startdatum, else datumAfronding, else datum.
Dates are compared on their first 10 characters (YYYY-MM-DD), as the DDAS-app does.
"""

from __future__ import annotations

from typing import Any

# Process order; on equal dates the earlier step wins (aanmelding beats intake on the same day).
STAPPEN: tuple[str, ...] = (
    "aanmelding", "intake", "stabilisatie", "schuldregeling", "oplossing", "nazorg", "uitstroom",
)


def _first(step: dict[str, Any], keys: tuple[str, str, str]) -> str | None:
    for key in keys:
        value = step.get(key)
        if value is not None:
            return value[:10] if isinstance(value, str) else None
    return None


_ACTIVITY_KEYS = ("startdatum", "datum", "datumAfronding")
_ACTIVITY_KEYS_UITSTROOM = ("datum", "datumAfronding", "startdatum")
_RECENT_KEYS = ("startdatum", "datumAfronding", "datum")


def activity_date(name: str, step: Any) -> str | None:
    """The date that makes a trajectory active when it lies in the period (Table 1)."""
    if not isinstance(step, dict):
        return None
    return _first(step, _ACTIVITY_KEYS_UITSTROOM if name == "uitstroom" else _ACTIVITY_KEYS)


def recent_date(step: Any) -> str | None:
    """The date that orders steps when looking for a client's most recent step (Table 2)."""
    if not isinstance(step, dict):
        return None
    return _first(step, _RECENT_KEYS)
