"""The independent count of the OOR figures (domain.md, "The op-orde-rapport"), for the tests of
`ddas.domain.oor` and of the report service built on it.

It is deliberately plain and slow: for every row and every client it loops over the raw
trajectories again, and it reads every definition of domain.md (as written down in oor.py's
docstring) straight from the JSON, sharing no helper with oor.py. Only the row key
(`tables.groep`, the tables' own definition, tested in test_tables.py) is shared.
"""

from __future__ import annotations

from typing import Any

from ddas.domain.tables import Periode, groep

ALL_STEPS = ["aanmelding", "intake", "stabilisatie", "schuldregeling", "oplossing", "nazorg"]
PHASES = ["aanmelding", "intake", "stabilisatie", "schuldregeling", "oplossing", "nazorg"]
ALL_STEPS_WITH_OUT = [*ALL_STEPS, "uitstroom"]
BEGELEIDING_KINDS = [
    "Budgetcoaching",
    "Budgetbeheer",
    "Beschermingsbewind",
    "Lange Termijn Begeleiding (DFD)",
    "Budgetbegeleiding",
]
OPLOSSING_KINDS = [
    "Betalingsregeling",
    "Herfinanciering",
    "Saneringskrediet",
    "Schuldbemiddeling",
    "0%-aanbod",
]
SCHULD_KINDS = ["Zorg", "Publiek", "Nuts", "Overig"]


# --- the independent count --------------------------------------------------------------------


def first_date(obj: Any, fields: list[str]) -> str | None:
    """The first present (non-null) field of `fields`; its date when it is a string."""
    if not isinstance(obj, dict):
        return None
    for name in fields:
        if obj.get(name) is not None:
            value = obj[name]
            if isinstance(value, str):
                return value[:10]
            return None
    return None


def in_p(date: str | None, p: Periode) -> bool:
    return date is not None and p.start <= date and date <= p.eind


def step_date(t: dict, name: str) -> str | None:
    if name == "uitstroom":
        return first_date(t.get(name), ["datum", "datumAfronding", "startdatum"])
    return first_date(t.get(name), ["startdatum", "datum", "datumAfronding"])


def is_active(t: dict, p: Periode) -> bool:
    return any(in_p(step_date(t, name), p) for name in ALL_STEPS_WITH_OUT)


def bsns_of(t: dict) -> list[str]:
    result = []
    clients = t.get("client")
    if isinstance(clients, list):
        for c in clients:
            bsn = c.get("Burgerservicenummer") if isinstance(c, dict) else None
            if isinstance(bsn, str) and bsn.strip() != "":
                result.append(bsn.strip())
    return result


def started_in_p(t: dict, p: Periode) -> bool:
    if t.get("startdatum") is not None:
        start = t["startdatum"][:10] if isinstance(t["startdatum"], str) else None
    else:
        start = first_date(t.get("aanmelding"), ["startdatum"])
    return in_p(start, p)


def flowed_out(t: dict, p: Periode) -> bool:
    out = step_date(t, "uitstroom")
    return out is not None and out <= p.eind


def begeleiding_overlaps(item: Any, p: Periode) -> bool:
    if not isinstance(item, dict) or not isinstance(item.get("startdatum"), str):
        return False
    if item["startdatum"][:10] > p.eind:
        return False
    if item.get("einddatum") is None:
        return True
    if not isinstance(item["einddatum"], str):
        return False
    return item["einddatum"][:10] >= p.start


def kind_of(value: Any, kinds: list[str]) -> str:
    for kind in kinds:
        if isinstance(value, str) and value == kind:
            return kind
    return "onbekend"


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def phase_started(t: dict, phase: str, p: Periode) -> bool:
    date = step_date(t, phase)
    if phase == "intake" and date is None:
        date = first_date(t.get("planVanAanpak"), ["startdatum", "datum", "datumAfronding"])
    return in_p(date, p)


def shares(aantal: dict[str, int], bedrag: dict[str, int]) -> dict[str, Any]:
    total_n = 0
    total_b = 0
    for k in aantal:
        total_n += aantal[k]
        total_b += bedrag[k]
    out = {}
    for k in [*SCHULD_KINDS, "onbekend"]:
        out[k] = {
            "aantal": aantal[k],
            "bedrag": bedrag[k],
            "aandeel_aantal": aantal[k] / total_n if total_n != 0 else None,
            "aandeel_bedrag": bedrag[k] / total_b if total_b != 0 else None,
        }
    return out


def count_row(trajecten: list[dict], p: Periode) -> dict[str, Any]:
    """Every figure but the last known phase, for the trajectories of one row."""
    clients: list[str] = []
    for t in trajecten:
        for b in bsns_of(t):
            if b not in clients:
                clients.append(b)

    inflow = out = still = 0
    for b in clients:
        started = [t for t in trajecten if b in bsns_of(t) and started_in_p(t, p)]
        if started:
            inflow += 1
            if all(flowed_out(t, p) for t in started):
                out += 1
            else:
                still += 1

    with_begeleiding = 0
    per_kind = {k: 0 for k in [*BEGELEIDING_KINDS, "onbekend"]}
    for b in clients:
        kinds_of_b = set()
        for t in trajecten:
            if b in bsns_of(t) and isinstance(t.get("begeleiding"), list):
                for item in t["begeleiding"]:
                    if begeleiding_overlaps(item, p):
                        kinds_of_b.add(kind_of(item.get("soort"), BEGELEIDING_KINDS))
        if kinds_of_b:
            with_begeleiding += 1
        for k in kinds_of_b:
            per_kind[k] += 1

    phases = {}
    for phase in PHASES:
        phases[phase] = len([t for t in trajecten if phase_started(t, phase, p)])

    active = [t for t in trajecten if is_active(t, p)]
    total = 0
    per_oplossing = {k: 0 for k in OPLOSSING_KINDS}
    aantal = {k: 0 for k in [*SCHULD_KINDS, "onbekend"]}
    bedrag = {k: 0 for k in [*SCHULD_KINDS, "onbekend"]}
    for t in active:
        items = []
        if isinstance(t.get("schulden"), list):
            items = [s for s in t["schulden"] if isinstance(s, dict)]
        if t.get("totaalSchuldbedragBijAanvangSchuld") is None:
            total += sum(s["bedrag"] for s in items if is_int(s.get("bedrag")))
        elif is_int(t["totaalSchuldbedragBijAanvangSchuld"]):
            total += t["totaalSchuldbedragBijAanvangSchuld"]
        for s in items:
            k = kind_of(s.get("schuldsoort"), SCHULD_KINDS)
            aantal[k] += 1
            bedrag[k] += s["bedrag"] if is_int(s.get("bedrag")) else 0
        if isinstance(t.get("oplossing"), dict):
            k = kind_of(t["oplossing"].get("soort"), OPLOSSING_KINDS)
            if k != "onbekend":
                per_oplossing[k] += 1
    return {
        "instroom": {"clienten": inflow, "uitgestroomd": out, "actief": still},
        "begeleiding": {"clienten": with_begeleiding, "per_soort": per_kind},
        "gestarte_fases": phases,
        "schulden": {
            "trajecten": len(active),
            "totaal_bedrag": total,
            "met_oplossing": sum(per_oplossing.values()),
            "per_oplossing": per_oplossing,
            "per_schuldsoort": shares(aantal, bedrag),
        },
    }


def independent(trajecten: list[Any], p: Periode) -> dict[str, Any]:
    """{gemeentecode: figures} and the total row (sum of the rows), without laatste_fase."""
    dicts = [t for t in trajecten if isinstance(t, dict)]
    codes = []
    for t in dicts:
        if groep(t.get("gemeentecode")) not in codes:
            codes.append(groep(t.get("gemeentecode")))
    rows = {}
    for code in codes:
        rows[code] = count_row([t for t in dicts if groep(t.get("gemeentecode")) == code], p)
    total: dict[str, Any] = {
        "instroom": {"clienten": 0, "uitgestroomd": 0, "actief": 0},
        "begeleiding": {
            "clienten": 0,
            "per_soort": {k: 0 for k in [*BEGELEIDING_KINDS, "onbekend"]},
        },
        "gestarte_fases": {k: 0 for k in PHASES},
    }
    schulden_trajecten = schulden_totaal = 0
    per_oplossing = {k: 0 for k in OPLOSSING_KINDS}
    aantal = {k: 0 for k in [*SCHULD_KINDS, "onbekend"]}
    bedrag = {k: 0 for k in [*SCHULD_KINDS, "onbekend"]}
    for row in rows.values():
        for k in total["instroom"]:
            total["instroom"][k] += row["instroom"][k]
        total["begeleiding"]["clienten"] += row["begeleiding"]["clienten"]
        for k in total["begeleiding"]["per_soort"]:
            total["begeleiding"]["per_soort"][k] += row["begeleiding"]["per_soort"][k]
        for k in PHASES:
            total["gestarte_fases"][k] += row["gestarte_fases"][k]
        schulden_trajecten += row["schulden"]["trajecten"]
        schulden_totaal += row["schulden"]["totaal_bedrag"]
        for k in OPLOSSING_KINDS:
            per_oplossing[k] += row["schulden"]["per_oplossing"][k]
        for k in aantal:
            aantal[k] += row["schulden"]["per_schuldsoort"][k]["aantal"]
            bedrag[k] += row["schulden"]["per_schuldsoort"][k]["bedrag"]
    total["schulden"] = {
        "trajecten": schulden_trajecten,
        "totaal_bedrag": schulden_totaal,
        "met_oplossing": sum(per_oplossing.values()),
        "per_oplossing": per_oplossing,
        "per_schuldsoort": shares(aantal, bedrag),
    }
    return {"gemeenten": rows, "totaal": total}


def without_onbekend(per_stap: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in per_stap.items() if k != "onbekend"}


def assert_matches_independent(result: dict[str, Any], trajecten: list[Any], p: Periode) -> None:
    """`result` (an OOR as `OorResultaat.as_dict()` gives it, possibly with display names
    added) equals the independent count of `trajecten` over `p`, and its last known phase is
    Table 2 without onbekend."""
    expected = independent(trajecten, p)
    tables = result["tabellen"]
    rows = {r["gemeentecode"]: r for r in result["gemeenten"]}
    assert set(rows) == set(expected["gemeenten"])
    # the last known phase is Table 2 without onbekend, taken from the tables
    for table_row, row in zip(tables["gemeenten"], result["gemeenten"], strict=True):
        assert row["gemeentecode"] == table_row["gemeentecode"]
        assert row["laatste_fase"] == without_onbekend(table_row["laatste_stap"])
    assert result["totaal"]["laatste_fase"] == without_onbekend(tables["totaal"]["laatste_stap"])
    skip = ("gemeentecode", "naam", "laatste_fase")
    for code, figures in expected["gemeenten"].items():
        got = {k: v for k, v in rows[code].items() if k not in skip}
        assert got == figures, code
    got_total = {k: v for k, v in result["totaal"].items() if k != "laatste_fase"}
    assert got_total == expected["totaal"]
