"""The published statistics of a period: from the OOR figures of the published deliveries to
disclosure-protected tables (ddas.domain.disclosure). Pure: no I/O.

1. `bijdragen(oor)`: what one delivery adds, per municipality: the exact counts of each
   published table, taken from its OOR (`ddas.domain.oor.OorResultaat.as_dict()`: the
   DDAS-app tables and the OOR figures), and the debt amounts.
2. `optellen(...)`: several deliveries for one municipality and period are **summed**, like the
   tables' total row: a client helped by two organisations counts twice (deliveries hold
   pseudonyms under one key, but publish sees only counts, and the DDAS-app's own total row sums
   the same way). The rows `None` (no gemeentecode) and `Onbekend` are one row, `onbekend`.
3. `beveilig_periode(...)`: every table over all the period's municipalities, protected as a
   whole (suppression, complementary suppression, rounding, shares), as cells
   (gemeentecode, tabel, kolom, Cel); the row `totaal` is the sum over the municipalities and,
   for tables whose columns add up, the column `totaal` is each row's whole.

The tables (`TABELLEN`): name -> (columns, whether the columns add up to a published whole):

- `trajecten`: Table 1's number of trajectories;
- `laatste_fase`: Table 2, unique clients by their most recent step in the period (and
  `onbekend`: no step in it); its row total is Table 1's unique clients. Table 1's *active*
  clients are not published separately: they are this total minus `onbekend`, a second relation
  that a table of their own would add across tables;
- `instroom`: clients who started in the period, split into `uitgestroomd` and `actief`;
- `begeleiding`: clients with begeleiding, and per soort (a client may have several: the
  columns do not add up, each is a line of its own);
- `gestarte_fases`: trajectories per phase started in the period (not additive either);
- `oplossing`: active trajectories per oplossing soort (the row total: with a known solution);
- `schulden`: active trajectories, and their total debt (`totaal_bedrag`, an amount);
- `schuldsoorten`: debts per schuldsoort (row total: all debts), with the shares by number
  (`schuldsoorten_aandeel_aantal`) and by amount (`schuldsoorten_aandeel_bedrag`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ddas.domain.disclosure import TOTAAL, Cel, Tabel, aandeel, bedrag, beveilig
from ddas.domain.oor import BEGELEIDINGSSOORTEN, FASES, OPLOSSINGSSOORTEN, SCHULDSOORTEN
from ddas.domain.tables import LAATSTE_STAP_KOLOMMEN, ONBEKEND

ONBEKENDE_GEMEENTE: Final = "onbekend"

TABELLEN: Final[dict[str, tuple[tuple[str, ...], bool]]] = {
    "trajecten": (("trajecten",), False),
    "laatste_fase": (LAATSTE_STAP_KOLOMMEN, True),
    "instroom": (("uitgestroomd", "actief"), True),
    "begeleiding": (("clienten", *BEGELEIDINGSSOORTEN, ONBEKEND), False),
    "gestarte_fases": (FASES, False),
    "oplossing": (OPLOSSINGSSOORTEN, True),
    "schulden": (("trajecten",), False),
    "schuldsoorten": ((*SCHULDSOORTEN, ONBEKEND), True),
}
AANDEEL_AANTAL: Final = "schuldsoorten_aandeel_aantal"
AANDEEL_BEDRAG: Final = "schuldsoorten_aandeel_bedrag"
BEDRAGEN: Final = "bedragen"  # in a contribution: the debt amounts (not a published table)

Cijfers = dict[str, dict[str, int]]
"""One municipality's exact figures: table -> column -> count (and `bedragen`)."""


class OorOnleesbaar(ValueError):
    """The OOR of a `Rapport` lacks the figures publish needs."""


def _rij_label(code: Any) -> str:
    if code is None or (isinstance(code, str) and code.lower() == ONBEKENDE_GEMEENTE):
        return ONBEKENDE_GEMEENTE
    return str(code)


def _int(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise OorOnleesbaar(f"een telling is geen niet-negatief geheel getal: {value!r}")
    return value


def bijdragen(oor: Mapping[str, Any]) -> dict[str, Cijfers]:
    """What one delivery's OOR adds to the statistics, per municipality (see the module
    docstring). Raises `OorOnleesbaar` when the figures are not there."""
    try:
        tabel_rijen = oor["tabellen"]["gemeenten"]
        oor_rijen = {_rij_label(r["gemeentecode"]): r for r in oor["gemeenten"]}
        out: dict[str, Cijfers] = {}
        for t in tabel_rijen:
            code = _rij_label(t["gemeentecode"])
            r = oor_rijen[code]
            schulden = r["schulden"]
            soorten = schulden["per_schuldsoort"]
            cijfers: Cijfers = {
                "trajecten": {"trajecten": _int(t["trajecten"])},
                "laatste_fase": {
                    k: _int(t["laatste_stap"].get(k, 0)) for k in TABELLEN["laatste_fase"][0]
                },
                "instroom": {k: _int(r["instroom"][k]) for k in ("uitgestroomd", "actief")},
                "begeleiding": {
                    "clienten": _int(r["begeleiding"]["clienten"]),
                    **{
                        k: _int(r["begeleiding"]["per_soort"].get(k, 0))
                        for k in (*BEGELEIDINGSSOORTEN, ONBEKEND)
                    },
                },
                "gestarte_fases": {k: _int(r["gestarte_fases"][k]) for k in FASES},
                "oplossing": {k: _int(schulden["per_oplossing"][k]) for k in OPLOSSINGSSOORTEN},
                "schulden": {"trajecten": _int(schulden["trajecten"])},
                "schuldsoorten": {
                    k: _int(soorten[k]["aantal"]) for k in TABELLEN["schuldsoorten"][0]
                },
                BEDRAGEN: {
                    "totaal_bedrag": _int(schulden["totaal_bedrag"]),
                    **{k: _int(soorten[k]["bedrag"]) for k in TABELLEN["schuldsoorten"][0]},
                },
            }
            out[code] = optellen([out[code], cijfers]) if code in out else cijfers
    except (KeyError, TypeError, AttributeError) as exc:
        raise OorOnleesbaar(f"het OOR mist {exc!s}") from None
    return out


def optellen(delen: Iterable[Mapping[str, Mapping[str, int]]]) -> Cijfers:
    """The sum of several contributions to one municipality."""
    som: Cijfers = {}
    for deel in delen:
        for tabel, kolommen in deel.items():
            doel = som.setdefault(tabel, {})
            for kolom, n in kolommen.items():
                doel[kolom] = doel.get(kolom, 0) + n
    return som


@dataclass(frozen=True, slots=True)
class StatistiekCel:
    gemeentecode: str  # or "totaal"
    tabel: str
    kolom: str  # or "totaal"
    cel: Cel


def beveilig_periode(
    per_gemeente: Mapping[str, Mapping[str, Mapping[str, int]]],
) -> list[StatistiekCel]:
    """The period's published cells from the summed exact figures per municipality."""
    rijen = tuple(sorted(per_gemeente))
    out: list[StatistiekCel] = []
    if not rijen:
        return out

    def waarde(code: str, tabel: str, kolom: str) -> int:
        return int(per_gemeente[code].get(tabel, {}).get(kolom, 0))

    beveiligd = {}
    for naam, (kolommen, rijtotalen) in TABELLEN.items():
        tabel = Tabel(
            rijen,
            kolommen,
            {(r, k): waarde(r, naam, k) for r in rijen for k in kolommen},
            rijtotalen=rijtotalen,
        )
        beveiligd[naam] = b = beveilig(tabel)
        out += [StatistiekCel(r, naam, k, cel) for (r, k), cel in sorted(b.cellen.items())]

    schulden, soorten = beveiligd["schulden"], beveiligd["schuldsoorten"]
    soort_kolommen = TABELLEN["schuldsoorten"][0]
    for r in (*rijen, TOTAAL):
        codes = rijen if r == TOTAAL else (r,)

        def som(tabel: str, kolom: str, codes: tuple[str, ...] = codes) -> int:
            return sum(waarde(c, tabel, kolom) for c in codes)

        out.append(
            StatistiekCel(
                r,
                "schulden",
                "totaal_bedrag",
                bedrag(som(BEDRAGEN, "totaal_bedrag"), schulden.cel(r, "trajecten")),
            )
        )
        aantal = sum(som("schuldsoorten", k) for k in soort_kolommen)
        totaal_bedrag = sum(som(BEDRAGEN, k) for k in soort_kolommen)
        for k in soort_kolommen:
            out.append(
                StatistiekCel(
                    r,
                    AANDEEL_AANTAL,
                    k,
                    aandeel(
                        som("schuldsoorten", k),
                        aantal,
                        deel_cel=soorten.cel(r, k),
                        basis_cel=soorten.cel(r, TOTAAL),
                    ),
                )
            )
            out.append(
                StatistiekCel(
                    r,
                    AANDEEL_BEDRAG,
                    k,
                    aandeel(
                        som(BEDRAGEN, k),
                        totaal_bedrag,
                        deel_cel=soorten.cel(r, k),
                        basis_cel=soorten.cel(r, TOTAAL),
                        aantal=aantal,
                    ),
                )
            )
    return out
