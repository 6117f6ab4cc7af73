"""From OOR figures to the published cells (services/publish/statistiek.py), without services:
what a delivery contributes, how contributions combine, and that the cells are protected."""

from __future__ import annotations

import pytest

from ddas.domain.disclosure import GEPUBLICEERD, MIN_CEL, ONDERDRUKT
from services.publish import statistiek

from .conftest import APP_750, oor_of


def test_a_contribution_holds_the_oor_figures_of_each_municipality() -> None:
    oor = oor_of(APP_750)
    bijdragen = statistiek.bijdragen(oor)
    tabel_rijen = {r["gemeentecode"] or "onbekend": r for r in oor["tabellen"]["gemeenten"]}
    assert set(bijdragen) == set(tabel_rijen)
    for code, cijfers in bijdragen.items():
        rij = tabel_rijen[code]
        assert cijfers["trajecten"]["trajecten"] == rij["trajecten"]
        # Table 2 adds up to Table 1's unique clients, its steps to the active ones
        assert sum(cijfers["laatste_fase"].values()) == rij["unieke_bsn"]
        stappen = {k: v for k, v in cijfers["laatste_fase"].items() if k != "onbekend"}
        assert sum(stappen.values()) == rij["unieke_actieve_bsn"]
    assert sum(c["trajecten"]["trajecten"] for c in bijdragen.values()) == 750
    # the seed's 0503 row: 167 trajectories, 197 unique clients
    assert bijdragen["0503"]["trajecten"]["trajecten"] == 167
    assert sum(bijdragen["0503"]["laatste_fase"].values()) == 197


def test_contributions_to_one_municipality_are_summed() -> None:
    a = statistiek.bijdragen(oor_of(APP_750, keep=lambda i: i < 300))
    b = statistiek.bijdragen(oor_of(APP_750, keep=lambda i: i >= 300))
    som = statistiek.optellen([a["0503"], b["0503"]])
    assert som["trajecten"]["trajecten"] == 167
    assert som["schulden"] == {
        "trajecten": a["0503"]["schulden"]["trajecten"] + b["0503"]["schulden"]["trajecten"]
    }


def test_the_period_is_protected_as_one_table() -> None:
    cellen = statistiek.beveilig_periode(
        {code: c for code, c in statistiek.bijdragen(oor_of(APP_750)).items()}
    )
    by_key = {(c.gemeentecode, c.tabel, c.kolom): c.cel for c in cellen}
    assert by_key[("totaal", "trajecten", "trajecten")].waarde == 750
    assert by_key[("0503", "trajecten", "trajecten")].waarde == 165  # 167, rounded
    counts = [
        cel
        for (_, tabel, kolom), cel in by_key.items()
        if tabel in statistiek.TABELLEN and kolom != "totaal_bedrag"
    ]
    assert len(counts) > 100
    for cel in counts:
        if cel.status == GEPUBLICEERD:
            assert isinstance(cel.waarde, int) and cel.waarde >= MIN_CEL and cel.waarde % 5 == 0
        else:
            assert cel.waarde is None
    assert any(c.status == ONDERDRUKT for c in by_key.values())


def test_unknown_municipalities_are_one_row() -> None:
    oor = oor_of(APP_750)
    rows = [dict(r) for r in oor["tabellen"]["gemeenten"][:2]]
    oor_rows = [dict(r) for r in oor["gemeenten"][:2]]
    rows[0]["gemeentecode"] = oor_rows[0]["gemeentecode"] = None
    rows[1]["gemeentecode"] = oor_rows[1]["gemeentecode"] = "Onbekend"
    bijdragen = statistiek.bijdragen({"tabellen": {"gemeenten": rows}, "gemeenten": oor_rows})
    assert list(bijdragen) == ["onbekend"]
    assert bijdragen["onbekend"]["trajecten"]["trajecten"] == sum(r["trajecten"] for r in rows)


def test_an_oor_without_the_figures_is_refused() -> None:
    with pytest.raises(statistiek.OorOnleesbaar):
        statistiek.bijdragen({"tabellen": {}})
    oor = oor_of(APP_750)
    oor["gemeenten"][0]["instroom"]["actief"] = -1
    with pytest.raises(statistiek.OorOnleesbaar):
        statistiek.bijdragen(oor)
