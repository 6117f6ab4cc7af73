"""A delivery, completed: the rules on the headers and across trajectories, the two DDAS-app
tables, and the verdict, computed from the stored facts in file order. Pure (no I/O): the
store reads the facts and writes the outcome in the transaction that stored the last chunk.

The verdict. A delivery is `afgekeurd` only when its figures would be meaningless; everything
else, errors included, is reported in the findings and the delivery is `gevalideerd`:

- `periode_ongeldig`: startdatumLevering or einddatumLevering is not a date, so no trajectory can
  be active and Table 2 has no period to look in;
- `periode_omgedraaid`: einddatumLevering lies before startdatumLevering (an empty period);
- `geen_trajecten`: the delivery holds no trajectory at all: there is nothing to count.

A gemeentecode that is no municipality, a BSN twice in one trajectory or an end before a start
are errors (`fout`) that the supplier must fix, but they affect single records, which are still
counted as delivered, as the DDAS-app counts them; the OOR shows them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final

from ddas.domain.findings import Finding
from ddas.domain.rules import RuleEngine
from ddas.domain.tables import Periode, Tabellen, Totalen
from ddas.pipeline.events import Bevindingen

from .chunks import FASE_FINISH, FASE_REGELS, GEEN, BevindingRij, KortFeit

PERIODE_ONGELDIG: Final = "periode_ongeldig"
PERIODE_OMGEDRAAID: Final = "periode_omgedraaid"
GEEN_TRAJECTEN: Final = "geen_trajecten"
AFKEURINGEN: Final = (PERIODE_ONGELDIG, PERIODE_OMGEDRAAID, GEEN_TRAJECTEN)

# A KortFeit's TrajectFeit values, and its (trajectory index, RegelFeit values).
_TABEL_FEIT: Final = itemgetter(1, 2, 3, 4, 5)
_REGEL_FEIT: Final = itemgetter(0, 6)


@dataclass(frozen=True, slots=True)
class Uitkomst:
    periode: Periode | None
    totalen: Totalen
    bevindingen: list[BevindingRij]  # the rules on the headers and across trajectories
    afkeuring: str | None  # None: gevalideerd
    trajecten: int

    @property
    def state(self) -> str:
        return "gevalideerd" if self.afkeuring is None else "afgekeurd"


def complete(
    levering_id: Any,
    root: dict[str, Any],
    koppen: Sequence[tuple[int, Any]],
    delen: Iterable[tuple[int, Sequence[KortFeit]]],
) -> Uitkomst:
    """`koppen`: (levering index, levering header) in order; `delen`: per chunk in file order
    (levering index, then the first trajectory's index) the levering index and the chunk's
    `KortFeit` rows (in file order)."""
    engine = RuleEngine.for_root(root)
    start, eind = engine.periode
    periode = Periode(start, eind) if start and eind else None
    rows: list[BevindingRij] = []

    def add(fase: int, i: int, j: int, found: Sequence[Finding]) -> None:
        for n, f in enumerate(found):
            rows.append(
                BevindingRij(levering_id, fase, i, j, n, f.code, str(f.ernst), f.pointer, f.message)
            )

    add(FASE_REGELS, GEEN, GEEN, engine.check_root(root))
    for index, kop in koppen:
        add(FASE_REGELS, index, GEEN, engine.check_levering(kop, f"/leveringen/{index}"))

    # The tables and the rules across trajectories are independent of each other: each gets
    # the facts in file order, in bulk (no call or object per trajectory).
    tabellen = Tabellen()
    n = 0
    for lev, kort in delen:
        n += len(kort)
        tabellen.add_all(map(_TABEL_FEIT, kort))
        engine.record_all(f"/leveringen/{lev}/schuldhulptrajecten/", map(_REGEL_FEIT, kort))
    add(FASE_FINISH, GEEN, GEEN, engine.finish())

    if periode is None:
        afkeuring: str | None = PERIODE_ONGELDIG
    elif periode.eind < periode.start:
        afkeuring = PERIODE_OMGEDRAAID
    elif n == 0:
        afkeuring = GEEN_TRAJECTEN
    else:
        afkeuring = None
    return Uitkomst(periode, tabellen.result(), rows, afkeuring, n)


def samenvatting(per_code: Iterable[tuple[str, str, int]]) -> Bevindingen:
    """The findings summary of the LeveringEvent from (code, ernst, count) rows."""
    result = Bevindingen()
    for code, ernst, aantal in per_code:
        if ernst == "fout":
            result.fouten += aantal
        else:
            result.waarschuwingen += aantal
        result.per_code[code] = result.per_code.get(code, 0) + aantal
    result.per_code = dict(sorted(result.per_code.items()))
    return result
