"""The two DDAS-app tables: the seed presentation's numbers, and properties of the counting."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ddas.domain.steps import STAPPEN
from ddas.domain.tables import ONBEKEND, Periode, Tabellen, traject_feit
from ddas.testing import shared_dir

FILE_750 = shared_dir() / "ddas/examples/ddas-app/testbestand_schuldhulpverlening_750.json"

# The seed presentation's DDAS-app screen for the 750-trajectory test file, cell for cell.
SEED_TABLE_1 = {
    "0503": (167, 197, 125),
    "0518": (171, 190, 115),
    "0546": (225, 265, 166),
    "0599": (187, 223, 133),
}
SEED_TABLE_1_TOTAL = (750, 875, 539)
SEED_TABLE_2 = {  # aanmelding .. uitstroom, onbekend
    "0503": (7, 11, 4, 21, 24, 22, 36, 72),
    "0518": (7, 12, 6, 15, 28, 23, 24, 75),
    "0546": (8, 28, 9, 16, 37, 30, 38, 99),
    "0599": (5, 17, 1, 9, 31, 27, 43, 90),
}
SEED_TABLE_2_TOTAL = (27, 68, 20, 61, 120, 102, 141, 336)


def count(doc: dict) -> object:
    periode = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    tabellen = Tabellen()
    for levering in doc["leveringen"]:
        for traject in levering["schuldhulptrajecten"]:
            tabellen.add(traject_feit(traject, periode))
    return tabellen.result()


def assert_seed_tables(tables: dict[str, Any]) -> None:
    """The two tables (their JSON form, `Totalen.as_dict()`) are the seed's, cell for cell."""
    rows = {r["gemeentecode"]: r for r in tables["gemeenten"]}
    assert list(rows) == sorted(SEED_TABLE_1)
    for code, (trajecten, bsn, actief) in SEED_TABLE_1.items():
        r = rows[code]
        assert (r["trajecten"], r["unieke_bsn"], r["unieke_actieve_bsn"]) == (
            trajecten,
            bsn,
            actief,
        ), code
        assert tuple(r["laatste_stap"].values()) == SEED_TABLE_2[code], code
    t = tables["totaal"]
    assert (t["trajecten"], t["unieke_bsn"], t["unieke_actieve_bsn"]) == SEED_TABLE_1_TOTAL
    assert tuple(t["laatste_stap"].values()) == SEED_TABLE_2_TOTAL


def test_750_file_gives_the_seed_tables_cell_for_cell() -> None:
    result = count(json.loads(FILE_750.read_text(encoding="utf-8")))
    assert_seed_tables(result.as_dict())  # type: ignore[attr-defined]


P = Periode("2025-01-01", "2025-12-31")
_dates = st.sampled_from(
    [
        "2024-11-30",
        "2024-12-31",
        "2025-01-01",
        "2025-03-15",
        "2025-06-30",
        "2025-12-31",
        "2026-01-01",
        "2026-02-01",
    ]
)
# One date per step, as real files have it. With several date fields per step the two tables
# can disagree by definition (activity and recency read the fields in different orders); see
# test_two_date_fields_can_make_a_client_active_without_a_recent_step.
_step = st.one_of(
    *(st.fixed_dictionaries({key: _dates}) for key in ("startdatum", "datum", "datumAfronding"))
)
_client = st.fixed_dictionaries(
    {},
    optional={
        "Burgerservicenummer": st.sampled_from(
            ["111222333", " 111222333 ", "123456782", "999999990", "", "   ", "100000009"]
        )
    },
)
_traject = st.fixed_dictionaries(
    {"gemeentecode": st.sampled_from(["0503", "0518", "0599", "Onbekend", ""])},
    optional={
        "client": st.lists(_client, min_size=0, max_size=2),
        **{naam: _step for naam in STAPPEN},
        "planVanAanpak": _step,
        "startdatum": _dates,
        "einddatum": _dates,
    },
)
_trajecten = st.lists(_traject, max_size=40)


@settings(max_examples=300, deadline=None)
@given(_trajecten)
def test_row_totals_equal_unique_bsns_and_known_steps_equal_active_bsns(trajecten) -> None:
    tabellen = Tabellen()
    for t in trajecten:
        tabellen.add(traject_feit(t, P))
    result = tabellen.result()
    for rij in [*result.rijen, result.totaal]:
        assert sum(rij.laatste_stap.values()) == rij.unieke_bsn
        assert sum(v for k, v in rij.laatste_stap.items() if k != ONBEKEND) == (
            rij.unieke_actieve_bsn
        )
    assert result.totaal.trajecten == len(trajecten)


@settings(max_examples=200, deadline=None)
@given(_trajecten, st.randoms(use_true_random=False))
def test_shuffling_across_municipalities_changes_nothing_within_each(trajecten, rnd) -> None:
    # Interleave the municipalities differently, keeping each municipality's own order (within
    # one municipality, file order breaks ties between equal dates, by definition).
    per_code: dict[str, list[dict]] = {}
    for t in trajecten:
        per_code.setdefault(t["gemeentecode"], []).append(t)
    queues = [list(ts) for ts in per_code.values()]
    shuffled = []
    while queues:
        q = rnd.choice(queues)
        shuffled.append(q.pop(0))
        queues = [q for q in queues if q]

    def rows(ts: list[dict]) -> dict:
        tabellen = Tabellen()
        for t in ts:
            tabellen.add(traject_feit(t, P))
        return {r.gemeentecode: r for r in tabellen.result().rijen}

    assert rows(shuffled) == rows(trajecten)


def test_equal_dates_first_found_wins_in_file_then_step_order() -> None:
    same_day = {"startdatum": "2025-05-05"}
    a = {
        "gemeentecode": "0503",
        "client": [{"Burgerservicenummer": "111222333"}],
        "intake": same_day,
        "aanmelding": same_day,
    }
    b = {
        "gemeentecode": "0503",
        "client": [{"Burgerservicenummer": "111222333"}],
        "stabilisatie": same_day,
    }
    tabellen = Tabellen()
    tabellen.add(traject_feit(a, P))
    tabellen.add(traject_feit(b, P))
    (rij,) = tabellen.result().rijen
    assert rij.laatste_stap["aanmelding"] == 1 and rij.laatste_stap["stabilisatie"] == 0


def test_activity_and_recency_use_their_own_date_orders() -> None:
    # uitstroom: activity looks at `datum` first (outside P here), recency at `startdatum` first.
    t = {
        "gemeentecode": "0503",
        "client": [{"Burgerservicenummer": "111222333"}],
        "uitstroom": {"datum": "2026-01-02", "startdatum": "2025-06-01"},
        "planVanAanpak": {"startdatum": "2025-06-01"},
    }
    feit = traject_feit(t, P)
    assert feit.actief is False  # plan van aanpak never makes a trajectory active
    assert feit.laatste_stap == "uitstroom"


def test_two_date_fields_can_make_a_client_active_without_a_recent_step() -> None:
    # As in the DDAS-app: uitstroom counts as activity by its datumAfronding (in P) while its
    # startdatum (before P) is the date that orders it, so the client is active in Table 1 and
    # onbekend in Table 2.
    t = {
        "gemeentecode": "0503",
        "client": [{"Burgerservicenummer": "111222333"}],
        "uitstroom": {"startdatum": "2024-11-30", "datumAfronding": "2025-01-01"},
    }
    tabellen = Tabellen()
    tabellen.add(traject_feit(t, P))
    (rij,) = tabellen.result().rijen
    assert rij.unieke_actieve_bsn == 1 and rij.laatste_stap[ONBEKEND] == 1


def test_missing_code_is_its_own_row_after_the_literal_onbekend() -> None:
    tabellen = Tabellen()
    for code in ("Onbekend", None, "0599", ""):
        t = {"client": [{"Burgerservicenummer": "123456782"}]}
        if code is not None:
            t["gemeentecode"] = code
        tabellen.add(traject_feit(t, P))
    codes = [r.gemeentecode for r in tabellen.result().rijen]
    assert codes == ["0599", "Onbekend", None]
    assert tabellen.result().rijen[-1].trajecten == 2


def test_bsn_in_two_municipalities_counts_twice_in_the_total() -> None:
    tabellen = Tabellen()
    for code in ("0503", "0518"):
        tabellen.add(
            traject_feit(
                {"gemeentecode": code, "client": [{"Burgerservicenummer": "111222333"}]}, P
            )
        )
    assert tabellen.result().totaal.unieke_bsn == 2
