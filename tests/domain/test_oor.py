"""The OOR figures (ddas.domain.oor) against the seed's tables and against an independent count
(tests/domain/oor_slow.py: plain, slow, sharing no helper with oor.py; the report service's
tests use it too).
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddas.domain.oor import Oor, OorDeel
from ddas.domain.steps import STAPPEN, activity_date, in_period
from ddas.domain.tables import Periode, Tabellen, Totalen, traject_feit
from ddas.generate import Options, generate
from tests.domain.oor_slow import (
    ALL_STEPS_WITH_OUT,
    BEGELEIDING_KINDS,
    OPLOSSING_KINDS,
    SCHULD_KINDS,
    assert_matches_independent,
)
from tests.domain.test_tables import (
    FILE_750,
    SEED_TABLE_2_TOTAL,
    assert_seed_tables,
)

# --- comparing --------------------------------------------------------------------------------


def oor_of(trajecten: list[Any], p: Periode | None) -> dict[str, Any]:
    oor = Oor(p)
    for t in trajecten:
        oor.add(t)
    result = oor.result().as_dict()
    json.dumps(result)  # JSON-able
    return result


def assert_equal_to_independent(trajecten: list[Any], p: Periode) -> dict[str, Any]:
    result = oor_of(trajecten, p)
    assert_matches_independent(result, trajecten, p)
    return result


# --- the tests --------------------------------------------------------------------------------


def trajecten_of(doc: dict) -> list[Any]:
    return [t for lev in doc["leveringen"] for t in lev["schuldhulptrajecten"]]


def test_750_file_has_the_seed_tables_and_the_independent_figures() -> None:
    doc = json.loads(FILE_750.read_text(encoding="utf-8"))
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    result = assert_equal_to_independent(trajecten_of(doc), p)
    tables = result["tabellen"]
    assert_seed_tables(tables)
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


def in_parts(trajecten: list[Any], p: Periode | None, cuts: list[int]) -> dict[str, Any]:
    """The OOR counted part by part (`Oor(tabellen=False).deel()` per part, stored and read
    back, merged in any order), with the tables counted in one pass, as the services do."""
    tabellen = Tabellen()
    for t in trajecten:
        if type(t) is dict:
            tabellen.add(traject_feit(t, p))
    bounds = sorted({0, len(trajecten), *(c % (len(trajecten) + 1) for c in cuts)})
    delen = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        deel = Oor(p, tabellen=False)
        for t in trajecten[a:b]:
            deel.add(t)
        delen.append(OorDeel.decode(deel.deel().encode()))
    merged = Oor(p, tabellen=False)
    for deel in reversed(delen):  # the OOR's own figures do not depend on the order
        merged.voeg_toe(deel)
    stored_tables = Totalen.from_dict(json.loads(json.dumps(tabellen.result().as_dict())))
    return merged.result(stored_tables).as_dict()


@settings(max_examples=300, deadline=None)
@given(
    st.lists(_traject | _wrong, max_size=25),
    st.lists(st.integers(0, 25), max_size=4),
    st.sampled_from([P, None]),
)
def test_counting_in_parts_and_merging_gives_the_same_figures(
    trajecten: list[Any], cuts: list[int], p: Periode | None
) -> None:
    assert in_parts(trajecten, p, cuts) == oor_of(trajecten, p)


def test_a_generated_file_counted_in_chunks_gives_the_same_figures() -> None:
    out = io.BytesIO()
    generate(out, Options(trajecten=5000, seed=11, fouten=0.2))
    doc = json.loads(out.getvalue())
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    trajecten = trajecten_of(doc)
    assert in_parts(trajecten, p, list(range(0, 5000, 997))) == oor_of(trajecten, p)


def test_an_oor_without_tables_needs_them_and_all_their_rows() -> None:
    oor = Oor(P, tabellen=False)
    with pytest.raises(ValueError, match="tables counted elsewhere"):
        oor.result()
    tabellen = Tabellen()
    tabellen.add(traject_feit({"gemeentecode": "0363"}, P))
    with pytest.raises(ValueError, match="lack rows"):
        oor.result(tabellen.result())


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
