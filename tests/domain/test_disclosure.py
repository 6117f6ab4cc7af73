"""Disclosure control (ddas.domain.disclosure): property tests with an independent oracle.

The oracle does not look at bridges: it solves the table's additivity exactly (fractions) for
the suppressed cells, with the published cells known to the attacker *unrounded* (the worst
case), and asks for each suppressed cell whether its value is fixed by them.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ddas.domain.disclosure import (
    AFRONDING,
    BASIS_TE_KLEIN,
    COMPLEMENTAIR,
    GEPUBLICEERD,
    MIN_CEL,
    ONDERDRUKT,
    TOTAAL,
    Beveiligd,
    Cel,
    Tabel,
    aandeel,
    afronden,
    bedrag,
    beveilig,
)

Sleutel = tuple[str, str]


def _rank(rows: list[list[Fraction]]) -> int:
    """Rank by Gaussian elimination over the rationals."""
    m = [r[:] for r in rows]
    rank = 0
    cols = len(m[0]) if m else 0
    for c in range(cols):
        pivot = next((i for i in range(rank, len(m)) if m[i][c] != 0), None)
        if pivot is None:
            continue
        m[rank], m[pivot] = m[pivot], m[rank]
        for i in range(len(m)):
            if i != rank and m[i][c] != 0:
                f = m[i][c] / m[rank][c]
                m[i] = [a - f * b for a, b in zip(m[i], m[rank], strict=True)]
        rank += 1
    return rank


def recoverable(tabel: Tabel, onderdrukt: frozenset[Sleutel]) -> set[Sleutel]:
    """The suppressed cells whose value the published cells and the table's lines fix."""
    unknown = sorted(onderdrukt)
    index = {k: i for i, k in enumerate(unknown)}
    rows = []
    for totaal, delen in tabel.lijnen():
        row = [Fraction(0)] * len(unknown)
        for k, coef in ((totaal, 1), *((d, -1) for d in delen)):
            if k in index:
                row[index[k]] += coef
        if any(row):
            rows.append(row)
    base = _rank(rows) if rows else 0
    found = set()
    for k in unknown:
        unit = [Fraction(int(i == index[k])) for i in range(len(unknown))]
        if _rank([*rows, unit]) == base:  # the unit vector lies in the constraints' span
            found.add(k)
    return found


@st.composite
def tabellen(draw: st.DrawFn) -> Tabel:
    n_rijen = draw(st.integers(1, 6))
    n_kolommen = draw(st.integers(1, 5))
    rijen = tuple(f"{i:04d}" for i in range(n_rijen))
    kolommen = tuple(f"k{j}" for j in range(n_kolommen))
    # mostly small counts, so that suppression is frequent; some large ones
    waarde = st.one_of(st.integers(0, 14), st.integers(0, 60), st.integers(0, 2000))
    cellen = {(r, k): draw(waarde) for r in rijen for k in kolommen}
    return Tabel(rijen, kolommen, cellen, rijtotalen=draw(st.booleans()))


@settings(max_examples=400, deadline=None)
@given(tabellen())
def test_no_published_count_below_10_and_every_count_a_multiple_of_5(tabel: Tabel) -> None:
    beveiligd = beveilig(tabel)
    exact = tabel.alle_waarden()
    assert set(beveiligd.cellen) == set(exact)
    for k, cel in beveiligd.cellen.items():
        if exact[k] < MIN_CEL:
            assert cel == Cel(None, ONDERDRUKT), k
        if cel.status == GEPUBLICEERD:
            assert isinstance(cel.waarde, int)
            assert cel.waarde % AFRONDING == 0
            assert exact[k] >= MIN_CEL
            assert abs(cel.waarde - exact[k]) <= AFRONDING // 2
        else:
            assert cel.waarde is None
            assert cel.status in (ONDERDRUKT, COMPLEMENTAIR)


@settings(max_examples=400, deadline=None)
@given(tabellen())
def test_no_suppressed_cell_is_recoverable_from_totals_and_parts(tabel: Tabel) -> None:
    beveiligd = beveilig(tabel)
    assert recoverable(tabel, beveiligd.onderdrukt) == set()
    # and the single-subtraction form of it: no line with exactly one suppressed entry
    for totaal, delen in tabel.lijnen():
        assert sum(k in beveiligd.onderdrukt for k in (totaal, *delen)) != 1


@settings(max_examples=200, deadline=None)
@given(tabellen(), st.data())
def test_cells_suppressed_beforehand_stay_suppressed_and_protected(
    tabel: Tabel, data: st.DataObject
) -> None:
    cellen = sorted(tabel.alle_waarden())
    vooraf = set(data.draw(st.lists(st.sampled_from(cellen), max_size=3)))
    beveiligd = beveilig(tabel, vooraf)
    assert vooraf <= beveiligd.onderdrukt
    assert recoverable(tabel, beveiligd.onderdrukt) == set()


def test_the_oracle_finds_what_a_naive_suppression_gives_away() -> None:
    # Without complementary suppression, the one small cell of a column is its total minus the
    # other parts: the oracle must see that (else the property above proves nothing).
    tabel = Tabel(("0503", "0599"), ("k",), {("0503", "k"): 3, ("0599", "k"): 40})
    assert recoverable(tabel, frozenset({("0503", "k")})) == {("0503", "k")}
    beveiligd = beveilig(tabel)
    assert beveiligd.cel("0503", "k") == Cel(None, ONDERDRUKT)
    assert beveiligd.cel("0599", "k") == Cel(None, COMPLEMENTAIR)
    assert beveiligd.cel(TOTAAL, "k") == Cel(45, GEPUBLICEERD)


def test_a_bridge_between_two_safe_blocks_is_found() -> None:
    # Two suppressed blocks that are safe on their own, joined by one suppressed cell that is
    # fixed by the sums (every line has two suppressed entries, yet it is recoverable).
    rijen = ("a", "b", "c", "d")
    kolommen = ("p", "q", "r", "s")
    onderdrukt = frozenset(
        {("a", "p"), ("a", "q"), ("b", "p"), ("b", "q"),  # block 1
         ("c", "r"), ("c", "s"), ("d", "r"), ("d", "s"),  # block 2
         ("b", "r")}  # the bridge
    )  # fmt: skip
    tabel = Tabel(rijen, kolommen, {(r, k): 50 for r in rijen for k in kolommen}, rijtotalen=True)
    assert recoverable(tabel, onderdrukt) == {("b", "r")}
    beveiligd = beveilig(tabel, onderdrukt)
    assert onderdrukt <= beveiligd.onderdrukt
    assert recoverable(tabel, beveiligd.onderdrukt) == set()


def test_a_worked_two_way_table() -> None:
    tabel = Tabel(
        ("0503", "0599", "0363"),
        ("intake", "nazorg"),
        {("0503", "intake"): 120, ("0503", "nazorg"): 4,
         ("0599", "intake"): 33, ("0599", "nazorg"): 61,
         ("0363", "intake"): 212, ("0363", "nazorg"): 90},
        rijtotalen=True,
    )  # fmt: skip
    b = beveilig(tabel)
    assert b.cel("0503", "nazorg") == Cel(None, ONDERDRUKT)
    # its row and its column each need a second suppressed cell: the cheapest four-cycle
    # closes it through 0599 (33 + 61 + 94 is less than via 0363 or the totals)
    assert b.cel("0503", "intake").status == COMPLEMENTAIR
    assert b.cel("0599", "nazorg").status == COMPLEMENTAIR
    assert b.cel("0599", "intake").status == COMPLEMENTAIR
    assert b.cel("0503", TOTAAL) == Cel(125, GEPUBLICEERD)  # 124
    assert b.cel(TOTAAL, TOTAAL) == Cel(520, GEPUBLICEERD)  # 520
    assert b.cel("0363", "nazorg") == Cel(90, GEPUBLICEERD)
    assert recoverable(tabel, b.onderdrukt) == set()


@pytest.mark.parametrize(
    ("n", "expected"), [(0, 0), (2, 0), (3, 5), (10, 10), (12, 10), (13, 15), (1237, 1235)]
)
def test_rounding_to_multiples_of_5(n: int, expected: int) -> None:
    assert afronden(n) == expected


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 100), st.integers(0, 100), st.booleans(), st.booleans())
def test_no_share_on_a_base_under_10_nor_of_a_suppressed_part(
    deel: int, basis: int, deel_ok: bool, basis_ok: bool
) -> None:
    deel = min(deel, basis)
    deel_cel = Cel(afronden(deel), GEPUBLICEERD) if deel_ok else Cel(None, ONDERDRUKT)
    basis_cel = Cel(afronden(basis), GEPUBLICEERD) if basis_ok else Cel(None, COMPLEMENTAIR)
    cel = aandeel(deel, basis, deel_cel=deel_cel, basis_cel=basis_cel)
    if basis < MIN_CEL:
        assert cel == Cel(None, BASIS_TE_KLEIN)
    elif not (deel_ok and basis_ok):
        assert cel == Cel(None, ONDERDRUKT)
    else:
        assert cel.status == GEPUBLICEERD
        assert cel.waarde == round(deel / basis, 3)


def test_an_amount_follows_its_count() -> None:
    assert bedrag(123_456, Cel(40, GEPUBLICEERD)) == Cel(123_000, GEPUBLICEERD)
    assert bedrag(123_500, Cel(40, GEPUBLICEERD)) == Cel(124_000, GEPUBLICEERD)
    assert bedrag(5_000, Cel(None, ONDERDRUKT)) == Cel(None, ONDERDRUKT)


def test_margins_are_labelled_and_protected_with_the_table() -> None:
    with pytest.raises(ValueError):
        Tabel((TOTAAL,), ("k",), {})
    with pytest.raises(ValueError):
        Tabel(("a",), ("k",), {("a", "k"): -1})
    b: Beveiligd = beveilig(Tabel(("a",), ("k",), {("a", "k"): 25}))
    assert b.cel("a", "k") == b.cel(TOTAAL, "k") == Cel(25, GEPUBLICEERD)
