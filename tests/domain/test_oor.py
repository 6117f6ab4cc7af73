"""The OOR figures (ddas.domain.oor) against the seed's tables and against an independent count.

The independent count below is deliberately plain and slow: for every row and every client it
loops over the raw trajectories again, and it reads every definition of domain.md (as written
down in oor.py's docstring) straight from the JSON, sharing no helper with oor.py. Only the row
key (`tables.groep`, the tables' own definition, tested in test_tables.py) is shared.
"""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ddas.domain.oor import Oor
from ddas.domain.steps import STAPPEN, activity_date, in_period
from ddas.domain.tables import Periode, groep
from ddas.generate import Options, generate
from tests.domain.test_tables import (
    FILE_750,
    SEED_TABLE_1,
    SEED_TABLE_1_TOTAL,
    SEED_TABLE_2,
    SEED_TABLE_2_TOTAL,
)

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


# --- comparing --------------------------------------------------------------------------------


def oor_of(trajecten: list[Any], p: Periode) -> dict[str, Any]:
    oor = Oor(p)
    for t in trajecten:
        oor.add(t)
    result = oor.result().as_dict()
    json.dumps(result)  # JSON-able
    return result


def without_onbekend(per_stap: dict[str, int]) -> dict[str, int]:
    return {k: v for k, v in per_stap.items() if k != "onbekend"}


def assert_equal_to_independent(trajecten: list[Any], p: Periode) -> dict[str, Any]:
    result = oor_of(trajecten, p)
    expected = independent(trajecten, p)
    tables = result["tabellen"]
    rows = {r["gemeentecode"]: r for r in result["gemeenten"]}
    assert set(rows) == set(expected["gemeenten"])
    # the last known phase is Table 2 without onbekend, taken from the tables
    for table_row, row in zip(tables["gemeenten"], result["gemeenten"], strict=True):
        assert row["gemeentecode"] == table_row["gemeentecode"]
        assert row["laatste_fase"] == without_onbekend(table_row["laatste_stap"])
    assert result["totaal"]["laatste_fase"] == without_onbekend(tables["totaal"]["laatste_stap"])
    for code, figures in expected["gemeenten"].items():
        got = {k: v for k, v in rows[code].items() if k not in ("gemeentecode", "laatste_fase")}
        assert got == figures, code
    got_total = {k: v for k, v in result["totaal"].items() if k != "laatste_fase"}
    assert got_total == expected["totaal"]
    return result


# --- the tests --------------------------------------------------------------------------------


def trajecten_of(doc: dict) -> list[Any]:
    return [t for lev in doc["leveringen"] for t in lev["schuldhulptrajecten"]]


def test_750_file_has_the_seed_tables_and_the_independent_figures() -> None:
    doc = json.loads(FILE_750.read_text(encoding="utf-8"))
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    result = assert_equal_to_independent(trajecten_of(doc), p)
    tables = result["tabellen"]
    rows = {r["gemeentecode"]: r for r in tables["gemeenten"]}
    assert list(rows) == sorted(SEED_TABLE_1)
    for code, (trajecten, bsn, actief) in SEED_TABLE_1.items():
        r = rows[code]
        assert (r["trajecten"], r["unieke_bsn"], r["unieke_actieve_bsn"]) == (
            trajecten,
            bsn,
            actief,
        )
        assert tuple(r["laatste_stap"].values()) == SEED_TABLE_2[code]
    t = tables["totaal"]
    assert (t["trajecten"], t["unieke_bsn"], t["unieke_actieve_bsn"]) == SEED_TABLE_1_TOTAL
    assert tuple(t["laatste_stap"].values()) == SEED_TABLE_2_TOTAL
    assert tuple(result["totaal"]["laatste_fase"].values()) == SEED_TABLE_2_TOTAL[:-1]
    # the figures are not trivially zero on this file
    assert result["totaal"]["instroom"]["clienten"] > 0
    assert result["totaal"]["begeleiding"]["clienten"] > 0
    assert all(v > 0 for v in result["totaal"]["gestarte_fases"].values())


def test_generated_files_equal_the_independent_count() -> None:
    for seed in (1, 2, 3):
        out = io.BytesIO()
        generate(out, Options(trajecten=3000, seed=seed, fouten=0.2))
        doc = json.loads(out.getvalue())
        p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
        result = assert_equal_to_independent(trajecten_of(doc), p)
        schulden = result["totaal"]["schulden"]
        assert schulden["totaal_bedrag"] > 0 and schulden["met_oplossing"] > 0


P = Periode("2025-01-01", "2025-12-31")
_dates = st.sampled_from(
    [
        "2024-12-31",
        "2025-01-01",
        "2025-06-30",
        "2025-12-31",
        "2025-12-31T10:00:00",
        "2026-01-01",
        "",
    ]
)
_wrong = st.sampled_from([None, 5, True, [], {}, "x"])
_value = st.one_of(_dates, _dates, _wrong)
_step = st.fixed_dictionaries(
    {},
    optional={k: _value for k in ("startdatum", "datum", "datumAfronding", "soort")},
)
_client = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "Burgerservicenummer": st.sampled_from(
                ["111222333", " 111222333 ", "123456782", "", "  ", "100000009", "55"]
            )
            | _wrong
        },
    ),
    _wrong,
)
_begeleiding = st.fixed_dictionaries(
    {},
    optional={
        "startdatum": _value,
        "einddatum": _value,
        "soort": st.sampled_from([*BEGELEIDING_KINDS, "Anders", "*"]) | _wrong,
    },
)
_schuld = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "bedrag": st.integers(0, 10_000) | _wrong,
            "schuldsoort": st.sampled_from([*SCHULD_KINDS, "zorg"]) | _wrong,
        },
    ),
    _wrong,
)
_oplossing = st.fixed_dictionaries(
    {},
    optional={
        "startdatum": _value,
        "soort": st.sampled_from([*OPLOSSING_KINDS, "Anders"]) | _wrong,
    },
)
_traject = st.fixed_dictionaries(
    {},
    optional={
        "gemeentecode": st.sampled_from(["0503", "0518", "GM0599", "Onbekend", ""]) | _wrong,
        "client": st.lists(_client, max_size=2) | _wrong,
        "startdatum": _value,
        **{naam: _step | _wrong for naam in ALL_STEPS_WITH_OUT if naam != "oplossing"},
        "oplossing": _oplossing | _wrong,
        "planVanAanpak": _step | _wrong,
        "begeleiding": st.lists(_begeleiding | _wrong, max_size=3) | _wrong,
        "schulden": st.lists(_schuld, max_size=3) | _wrong,
        "totaalSchuldbedragBijAanvangSchuld": st.integers(0, 10_000) | _wrong,
    },
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_traject | _wrong, max_size=25))
def test_edge_cases_equal_the_independent_count(trajecten: list[Any]) -> None:
    assert_equal_to_independent(trajecten, P)


def test_edges_of_the_period_and_couples() -> None:
    couple = [{"Burgerservicenummer": "111222333"}, {"Burgerservicenummer": " 123456782"}]
    trajecten = [
        {  # started on the first day, flowed out on the last: counted, flowed out
            "gemeentecode": "0503",
            "client": couple,
            "startdatum": "2025-01-01",
            "uitstroom": {"datum": "2025-12-31"},
            "begeleiding": [{"startdatum": "2025-12-31", "soort": "Budgetbeheer"}],
        },
        {  # the same client again, still active: the client is active
            "gemeentecode": "0503",
            "client": [{"Burgerservicenummer": "111222333"}],
            "aanmelding": {"startdatum": "2025-12-31"},
            "begeleiding": [{"startdatum": "2020-01-01", "einddatum": "2025-01-01"}],
        },
        {  # started the day before P, no BSN: in no client figure
            "gemeentecode": "0503",
            "client": [{}],
            "startdatum": "2024-12-31",
            "intake": {"startdatum": "2025-03-01"},
        },
    ]
    result = assert_equal_to_independent(trajecten, P)
    row = result["gemeenten"][0]
    assert row["instroom"] == {"clienten": 2, "uitgestroomd": 1, "actief": 1}
    assert row["begeleiding"]["clienten"] == 2
    assert row["begeleiding"]["per_soort"]["Budgetbeheer"] == 2
    assert row["begeleiding"]["per_soort"]["onbekend"] == 1
    assert row["gestarte_fases"]["aanmelding"] == 1
    assert row["gestarte_fases"]["intake"] == 1


def test_plan_van_aanpak_stands_in_for_an_intake_without_date() -> None:
    pva = {"datumAfronding": "2025-02-01"}
    trajecten = [
        {"gemeentecode": "0503", "planVanAanpak": pva},
        {"gemeentecode": "0503", "planVanAanpak": pva, "intake": {"startdatum": "2024-01-01"}},
        {"gemeentecode": "0503", "planVanAanpak": pva, "intake": {"startdatum": "2025-03-01"}},
    ]
    result = assert_equal_to_independent(trajecten, P)
    assert result["totaal"]["gestarte_fases"]["intake"] == 2


def test_same_bsn_in_two_municipalities_counts_in_both_and_twice_in_the_total() -> None:
    t = {"client": [{"Burgerservicenummer": "111222333"}], "startdatum": "2025-05-05"}
    result = assert_equal_to_independent(
        [{**t, "gemeentecode": "0503"}, {**t, "gemeentecode": "0518"}], P
    )
    assert [r["instroom"]["clienten"] for r in result["gemeenten"]] == [1, 1]
    assert result["totaal"]["instroom"]["clienten"] == 2


def test_pseudonyms_give_the_same_figures() -> None:
    doc = json.loads(FILE_750.read_text(encoding="utf-8"))
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    raw, pseudo = Oor(p), Oor(p)
    for t in trajecten_of(doc):
        raw.add(t)
        bsns = tuple(
            "p" + c["Burgerservicenummer"].strip()
            for c in t.get("client", [])
            if isinstance(c.get("Burgerservicenummer"), str) and c["Burgerservicenummer"].strip()
        )
        pseudo.add(t, bsns)
    assert raw.result().as_dict() == pseudo.result().as_dict()


def test_without_a_period_nothing_lies_in_it() -> None:
    oor = Oor(None)
    oor.add({"gemeentecode": "0503", "client": [{"Burgerservicenummer": "1"}], "startdatum": "x"})
    result = oor.result().as_dict()
    assert result["totaal"]["instroom"]["clienten"] == 0
    assert result["totaal"]["schulden"]["trajecten"] == 0
    assert result["tabellen"]["totaal"]["trajecten"] == 1


def test_debts_of_active_trajectories() -> None:
    active = {"gemeentecode": "0503", "intake": {"startdatum": "2025-02-02"}}
    schulden = [
        {"bedrag": 100, "schuldsoort": "Zorg"},
        {"bedrag": 300, "schuldsoort": "Nuts"},
        {"bedrag": "7", "schuldsoort": "Nuts"},
        {"schuldsoort": "zorg"},
    ]
    trajecten = [
        {**active, "totaalSchuldbedragBijAanvangSchuld": 0, "schulden": schulden},
        {**active, "schulden": schulden, "oplossing": {"soort": "0%-aanbod"}},
        {**active, "totaalSchuldbedragBijAanvangSchuld": "5", "schulden": schulden},
        {**active, "totaalSchuldbedragBijAanvangSchuld": True, "oplossing": {"soort": "x"}},
        {"gemeentecode": "0503", "totaalSchuldbedragBijAanvangSchuld": 1000},  # not active
    ]
    schulden_fig = assert_equal_to_independent(trajecten, P)["totaal"]["schulden"]
    assert schulden_fig["trajecten"] == 4
    assert schulden_fig["totaal_bedrag"] == 400  # 0, the sum 400, then two unreadable totals
    assert schulden_fig["met_oplossing"] == 1
    assert schulden_fig["per_oplossing"]["0%-aanbod"] == 1
    nuts = schulden_fig["per_schuldsoort"]["Nuts"]
    assert (nuts["aantal"], nuts["bedrag"]) == (6, 900)
    assert nuts["aandeel_aantal"] == 6 / 12 and nuts["aandeel_bedrag"] == 900 / 1200
    assert schulden_fig["per_schuldsoort"]["onbekend"]["aantal"] == 3


@settings(max_examples=300, deadline=None)
@given(_traject)
def test_activity_date_agrees_with_in_period(traject: dict) -> None:
    actief = any(
        (d := activity_date(naam, traject.get(naam))) is not None and P.start <= d <= P.eind
        for naam in STAPPEN
    )
    assert actief == in_period(traject, P.start, P.eind)[0]
