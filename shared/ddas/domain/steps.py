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
    "aanmelding",
    "intake",
    "stabilisatie",
    "schuldregeling",
    "oplossing",
    "nazorg",
    "uitstroom",
)


def activity_date(naam: str, stap: Any) -> str | None:
    """The activity date of one step (`naam` one of STAPPEN, or planVanAanpak), its first 10
    characters: startdatum, else datum, else datumAfronding; for uitstroom datum, else
    datumAfronding, else startdatum. A field falls through to the next only when it is absent
    (missing or null); a value that is not a string gives no date (None), as in `in_period`."""
    if type(stap) is not dict:
        return None
    get = stap.get
    if naam == "uitstroom":
        act = get("datum")
        if act is None and (act := get("datumAfronding")) is None:
            act = get("startdatum")
    else:
        act = get("startdatum")  # the common case: one look-up
        if act is None and (act := get("datum")) is None:
            act = get("datumAfronding")
    return act[:10] if type(act) is str else None


def in_period(
    traject: dict[str, Any], start: str, eind: str
) -> tuple[bool, str | None, str | None]:
    """For one trajectory and period [start, eind]: whether it is active, and its most recent
    step in the period with that step's date (None, None when it has none).

    The same definitions as `activity_date` and `recent_date`, written out in one loop because
    it runs for every trajectory of a delivery (200,000 in a national file).
    """
    actief = False
    laatste_stap = laatste_datum = None
    get = traject.get
    for naam in STAPPEN:
        stap = get(naam)
        if type(stap) is not dict:
            continue
        s = stap.get("startdatum")
        if s is not None and naam != "uitstroom":
            act = recent = s  # the common case: a step with a startdatum
        else:
            d, a = stap.get("datum"), stap.get("datumAfronding")
            if naam == "uitstroom":
                act = d if d is not None else a if a is not None else s
            else:
                act = s if s is not None else d if d is not None else a
            recent = s if s is not None else a if a is not None else d
        if not actief and type(act) is str:
            actief = start <= act[:10] <= eind
        if type(recent) is str:
            recent = recent[:10]
            # strictly later only: on equal dates the earlier step in process order wins
            if start <= recent <= eind and (laatste_datum is None or recent > laatste_datum):
                laatste_stap, laatste_datum = naam, recent
    return actief, laatste_stap, laatste_datum
