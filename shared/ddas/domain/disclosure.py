"""Disclosure control of published statistics, the way CBS does it (domain.md, "Privacy"):
pure functions, no I/O.

The rules, applied to one *table* at a time (rows: municipalities; columns: categories of one
figure; margins: each column's total over the rows in the row `TOTAAL`, and, when the columns
are additive parts of one whole, each row's total in the column `TOTAAL` and the grand total):

1. **Primary suppression.** A count under `MIN_CEL` (10), zero included, is not published
   (`ONDERDRUKT`).
2. **Complementary suppression.** No suppressed cell may be recoverable from the published
   cells by the table's additivity (a total minus its published parts), not by one subtraction
   and not by any combination of them:
   - a table without row totals is a set of independent lines (each column with its total): a
     line with exactly one suppressed entry would give it away, so one more is suppressed (the
     smallest other part; the total only when no part is left);
   - a table with row totals is a two-way table with margins. Write its totals with a minus sign
     and every row and every column sums to zero; the suppressed cells are then the edges of a
     bipartite graph (rows against columns), and a suppressed cell's value is fixed by the
     published ones exactly when its edge is a *bridge* of that graph (it lies on no cycle: a
     cycle lets +t/-t alternate round it and keeps every sum). So while some suppressed cell is
     a bridge, the cheapest three cells that close a four-cycle through it (the smallest sum of
     values not yet suppressed) are suppressed too (`COMPLEMENTAIR`).
3. **Rounding.** Every published count is rounded to the nearest multiple of `AFRONDING` (5),
   halves up; totals are rounded on their own, so published parts need not add up to the
   published total (CBS does the same).
4. **Shares** (`aandeel`) are published only on a base of at least `MIN_CEL` (else
   `BASIS_TE_KLEIN`), and not when the part or the base is suppressed (the share would give it
   back: part = share x base); they are computed from the exact counts and rounded to three
   decimals.
5. **Amounts** (`bedrag`) are published only with a published count of the records they sum
   over, rounded to the nearest multiple of `AFRONDING_BEDRAG` (1,000 euro).

Every value comes with its status, so that a reader can tell a suppressed cell from a zero.

What this does not do: it protects each table on its own. Figures that are linked across
tables (the same clients counted in two tables) and successive versions of a table (a newer
delivery changes the period's figures) are not checked against each other; publish keeps the
tables' links out of what it publishes (docs in services/publish/README.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

__all__ = [
    "AFRONDING",
    "AFRONDING_BEDRAG",
    "BASIS_TE_KLEIN",
    "COMPLEMENTAIR",
    "GEPUBLICEERD",
    "MIN_CEL",
    "ONDERDRUKT",
    "TOTAAL",
    "Beveiligd",
    "Cel",
    "Tabel",
    "aandeel",
    "afronden",
    "bedrag",
    "beveilig",
]

MIN_CEL: Final = 10
AFRONDING: Final = 5
AFRONDING_BEDRAG: Final = 1000
TOTAAL: Final = "totaal"

GEPUBLICEERD: Final = "gepubliceerd"
ONDERDRUKT: Final = "onderdrukt"
COMPLEMENTAIR: Final = "onderdrukt_complementair"
BASIS_TE_KLEIN: Final = "basis_te_klein"

Sleutel = tuple[str, str]  # (row, column)


@dataclass(frozen=True, slots=True)
class Cel:
    """A published value (None when it is not published) and why it is as it is."""

    waarde: int | float | None
    status: str

    @property
    def gepubliceerd(self) -> bool:
        return self.status == GEPUBLICEERD

    def as_dict(self) -> dict[str, int | float | str | None]:
        return {"waarde": self.waarde, "status": self.status}


def afronden(n: int, stap: int = AFRONDING) -> int:
    """`n` rounded to the nearest multiple of `stap`, halves away from zero."""
    if n < 0:
        return -afronden(-n, stap)
    return (2 * n + stap) // (2 * stap) * stap


@dataclass(frozen=True, slots=True)
class Tabel:
    """Counts per (row, column); margins are computed (`TOTAAL`). `rijtotalen`: the columns
    are additive parts of one whole, whose row totals are published too."""

    rijen: tuple[str, ...]
    kolommen: tuple[str, ...]
    cellen: Mapping[Sleutel, int]
    rijtotalen: bool = False

    def __post_init__(self) -> None:
        if TOTAAL in self.rijen or TOTAAL in self.kolommen:
            raise ValueError(f"{TOTAAL!r} is the margins' label")
        if len(set(self.rijen)) != len(self.rijen) or len(set(self.kolommen)) != len(self.kolommen):
            raise ValueError("row and column labels must be unique")
        for n in self.cellen.values():
            if type(n) is not int or n < 0:
                raise ValueError("counts are non-negative integers")

    def waarde(self, rij: str, kolom: str) -> int:
        return self.cellen.get((rij, kolom), 0)

    def alle_waarden(self) -> dict[Sleutel, int]:
        """Every cell, margins included."""
        out = {(r, k): self.waarde(r, k) for r in self.rijen for k in self.kolommen}
        for k in self.kolommen:
            out[(TOTAAL, k)] = sum(self.waarde(r, k) for r in self.rijen)
        if self.rijtotalen:
            for r in self.rijen:
                out[(r, TOTAAL)] = sum(self.waarde(r, k) for k in self.kolommen)
            out[(TOTAAL, TOTAAL)] = sum(out[(TOTAAL, k)] for k in self.kolommen)
        return out

    def lijnen(self) -> list[tuple[Sleutel, tuple[Sleutel, ...]]]:
        """The additivity: (total, its parts) for every line of the table."""
        out = [((TOTAAL, k), tuple((r, k) for r in self.rijen)) for k in self.kolommen]
        if self.rijtotalen:
            out += [((r, TOTAAL), tuple((r, k) for k in self.kolommen)) for r in self.rijen]
            out.append(((TOTAAL, TOTAAL), tuple((TOTAAL, k) for k in self.kolommen)))
        return out


@dataclass(frozen=True, slots=True)
class Beveiligd:
    """A protected table: every cell (margins included) as it is published."""

    tabel: Tabel
    cellen: dict[Sleutel, Cel]

    @property
    def onderdrukt(self) -> frozenset[Sleutel]:
        return frozenset(k for k, c in self.cellen.items() if c.waarde is None)

    def cel(self, rij: str, kolom: str) -> Cel:
        return self.cellen[(rij, kolom)]


def beveilig(tabel: Tabel, vooraf: Iterable[Sleutel] = ()) -> Beveiligd:
    """Apply rules 1-3 to `tabel`. `vooraf`: cells to suppress whatever their value (they
    count as complementary suppressions)."""
    waarden = tabel.alle_waarden()
    primair = {k for k, n in waarden.items() if n < MIN_CEL}
    onderdrukt = set(primair) | (set(vooraf) & set(waarden))
    if tabel.rijtotalen:
        _tweedimensionaal(tabel, waarden, onderdrukt)
    else:
        _lijnen(tabel, waarden, onderdrukt)
    cellen = {
        k: (
            Cel(None, ONDERDRUKT if k in primair else COMPLEMENTAIR)
            if k in onderdrukt
            else Cel(afronden(n), GEPUBLICEERD)
        )
        for k, n in waarden.items()
    }
    return Beveiligd(tabel, cellen)


def _lijnen(tabel: Tabel, waarden: dict[Sleutel, int], onderdrukt: set[Sleutel]) -> None:
    """Each column with its total is a line of its own: never exactly one suppressed entry."""
    for totaal, delen in tabel.lijnen():
        lijn = (*delen, totaal)
        if sum(k in onderdrukt for k in lijn) != 1:
            continue
        over = [k for k in delen if k not in onderdrukt]
        # the smallest other part; the total only when every part is suppressed already
        onderdrukt.add(min(over, key=lambda k: (waarden[k], k)) if over else totaal)


def _tweedimensionaal(tabel: Tabel, waarden: dict[Sleutel, int], onderdrukt: set[Sleutel]) -> None:
    """Suppress more cells until no suppressed cell is a bridge (see the module docstring)."""
    rijen = (*tabel.rijen, TOTAAL)
    kolommen = (*tabel.kolommen, TOTAAL)
    while True:
        bruggen = _bruggen(onderdrukt)
        if not bruggen:
            return
        rij, kolom = min(bruggen)
        beste: tuple[tuple[int, int], list[Sleutel]] | None = None
        for r in rijen:
            if r == rij:
                continue
            for k in kolommen:
                if k == kolom:
                    continue
                nieuw = [c for c in ((rij, k), (r, k), (r, kolom)) if c not in onderdrukt]
                kosten = (sum(waarden[c] for c in nieuw), len(nieuw))
                if beste is None or kosten < beste[0]:
                    beste = (kosten, nieuw)
        assert beste is not None  # a table has at least one row and column besides TOTAAL
        onderdrukt.update(beste[1])


def _bruggen(cellen: Iterable[Sleutel]) -> list[Sleutel]:
    """The cells that are bridges of the bipartite graph rows x columns whose edges are
    `cellen` (Tarjan's low-link, iteratively)."""
    buren: dict[tuple[str, str], list[tuple[tuple[str, str], Sleutel]]] = {}
    for rij, kolom in cellen:
        a, b = ("r", rij), ("k", kolom)
        buren.setdefault(a, []).append((b, (rij, kolom)))
        buren.setdefault(b, []).append((a, (rij, kolom)))
    orde: dict[tuple[str, str], int] = {}
    laag: dict[tuple[str, str], int] = {}
    bruggen: list[Sleutel] = []
    for start in sorted(buren):
        if start in orde:
            continue
        orde[start] = laag[start] = len(orde)
        stapel: list[tuple[tuple[str, str], Sleutel | None, int]] = [(start, None, 0)]
        while stapel:
            knoop, via, i = stapel[-1]
            if i < len(buren[knoop]):
                stapel[-1] = (knoop, via, i + 1)
                buur, rand = buren[knoop][i]
                if rand == via:
                    continue
                if buur in orde:
                    laag[knoop] = min(laag[knoop], orde[buur])
                else:
                    orde[buur] = laag[buur] = len(orde)
                    stapel.append((buur, rand, 0))
            else:
                stapel.pop()
                if stapel:
                    ouder = stapel[-1][0]
                    laag[ouder] = min(laag[ouder], laag[knoop])
                    if laag[knoop] > orde[ouder]:
                        assert via is not None
                        bruggen.append(via)
    return bruggen


def aandeel(
    deel: int,
    basis: int,
    *,
    deel_cel: Cel | None = None,
    basis_cel: Cel | None = None,
    aantal: int | None = None,
) -> Cel:
    """The share `deel / basis` (rule 4). `deel_cel` / `basis_cel`: the published cells of the
    part and the base, when they are published in a table. `aantal`: the number of records
    the base counts over, when the base is an amount (default: the base itself)."""
    if (basis if aantal is None else aantal) < MIN_CEL or basis <= 0:
        return Cel(None, BASIS_TE_KLEIN)
    if any(c is not None and not c.gepubliceerd for c in (deel_cel, basis_cel)):
        return Cel(None, ONDERDRUKT)
    return Cel(round(deel / basis, 3), GEPUBLICEERD)


def bedrag(som: int, aantal_cel: Cel) -> Cel:
    """An amount summed over records whose count is published as `aantal_cel` (rule 5)."""
    if not aantal_cel.gepubliceerd:
        return Cel(None, ONDERDRUKT)
    return Cel(afronden(som, AFRONDING_BEDRAG), GEPUBLICEERD)
