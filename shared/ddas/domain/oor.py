"""The figures of the op-orde-rapport (OOR), per gemeentecode and in total (domain.md, "The
op-orde-rapport"), counted in one pass over the trajectories in file order.

`Oor(periode)` takes trajectories as plain dicts with the official keys (`add`); the clients'
BSNs may be raw or keyed pseudonyms (counting needs only their equality). `result()` gives
`OorResultaat`: the two DDAS-app tables (`ddas.domain.tables`, counted there and only there) and
the figures below, per row and in total; `as_dict()` is its JSON form. The validation verdict and
the findings per rule are `ddas.domain.check.CheckResult.per_regel`, not counted again here.

Common ground for every figure:
- Period P = [startdatumLevering, einddatumLevering], both ends included; without a period
  nothing lies in P.
- Rows are the tables' rows (`ddas.domain.tables.groep`: the normalised gemeentecode, None for
  a missing or empty one). The total row is the sum of the rows, as in Table 1 (a client in two
  municipalities counts twice); shares in the total row are computed from the summed counts.
- A client is a trimmed, non-empty BSN (`ddas.domain.tables.client_bsns`); clients without a
  BSN are not counted in client figures (they cannot be told apart), but their trajectories
  count in the trajectory figures (started phases, debts). A couple's trajectory counts for
  both clients.
- A date is a string, compared on its first 10 characters (YYYY-MM-DD), as the DDAS-app does.
  "X, else Y": Y is used only when X is absent (missing or null); a present value of the wrong
  type cannot be evaluated and gives no date (the same rule as `ddas.domain.steps`). Anything
  else that cannot be evaluated (a list member that is not a list, an amount that is not an integer,
  an enum value outside the schema's) is skipped or counted as *onbekend*; nothing raises.

The figures (each counted in one place: the method named):
- **instroom** (`_instroom`): unique clients with a trajectory that started in P; the start of a
  trajectory is its `startdatum`, else `aanmelding.startdatum`. Of these, *uitgestroomd*: every
  trajectory by which the client started in P has an uitstroom date on or before the end of P;
  *actief*: the others (at least one such trajectory without an uitstroom date up to the end of
  P). The two add up to the inflow. The uitstroom date is the uitstroom step's activity date
  (`steps.activity_date`: `datum`, else `datumAfronding`, else `startdatum`), the date by which
  the DDAS-app counts an uitstroom in Table 1, so inflow and Table 1 agree; the schema's
  uitstroom has `datum` (and `datumBeeindigingsbeschikking`, which a rule requires to equal it),
  the fallbacks only matter for non-schema input.
- **begeleiding** (`_begeleiding`): unique clients with a `begeleiding[]` item overlapping P:
  its `startdatum` on or before the end of P, and no `einddatum` or one on or after the start of
  P (an item without a start date cannot be placed and is skipped). Also per soort: a client
  counts once under each soort it has such an item of; a soort outside the schema's enum counts
  as *onbekend*. So the per-soort counts can add up to more than the total.
- **gestarte_fases** (`_fases`): per phase (aanmelding, intake, stabilisatie, schuldregeling,
  oplossing, nazorg: the seed's list; uitstroom is the inflow's "uitgestroomd"), the number of
  trajectories whose phase started in P; the start of a phase is its activity date
  (`steps.activity_date`: `startdatum`, else `datum` (schuldregeling has only that), else
  `datumAfronding`). The plan van aanpak is part of the intake phase (the seed: "Plan van aanpak
  ... nu opgenomen binnen Intake fase"): its date (`datumAfronding`) stands in for the intake's
  start only when the intake has no date at all, so a trajectory starts its intake at most once.
- **laatste_fase**: the last known phase of active clients, Table 2 without *onbekend* (taken
  from `Tabellen`, not counted again; it includes uitstroom, a column of Table 2).
- **schulden** (`_schulden`), over the trajectories active in P (Table 1's activity,
  `TrajectFeit.actief`): *trajecten*, their number; *totaal_bedrag*, the sum of their
  `totaalSchuldbedragBijAanvangSchuld`, else of the integer `schulden[].bedrag`;
  *met_oplossing* and *per_oplossing*, the trajectories whose `oplossing.soort` is one of the
  schema's five, in total and per soort; *per_schuldsoort*, the `schulden[]` items per
  `schuldsoort` (Zorg, Publiek, Nuts, Overig; any other value *onbekend*): their number, the sum
  of their integer `bedrag`, and the shares of the total number and amount (None when the total
  is 0). The shares by amount are over the items' amounts, not over `totaalSchuld...`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from ddas.domain.steps import STAPPEN, activity_date
from ddas.domain.tables import (
    ONBEKEND,
    Periode,
    Rij,
    Tabellen,
    Totalen,
    TrajectFeit,
    traject_feit,
)

FASES: tuple[str, ...] = STAPPEN[:-1]  # the started phases: every step but uitstroom
BEGELEIDINGSSOORTEN: tuple[str, ...] = (
    "Budgetcoaching",
    "Budgetbeheer",
    "Beschermingsbewind",
    "Lange Termijn Begeleiding (DFD)",
    "Budgetbegeleiding",
)
OPLOSSINGSSOORTEN: tuple[str, ...] = (
    "Betalingsregeling",
    "Herfinanciering",
    "Saneringskrediet",
    "Schuldbemiddeling",
    "0%-aanbod",
)
SCHULDSOORTEN: tuple[str, ...] = ("Zorg", "Publiek", "Nuts", "Overig")
_BEGELEIDING_KOLOMMEN = (*BEGELEIDINGSSOORTEN, ONBEKEND)
_SCHULD_KOLOMMEN = (*SCHULDSOORTEN, ONBEKEND)
_BEGELEIDINGSSOORT = frozenset(BEGELEIDINGSSOORTEN)
_OPLOSSINGSSOORT = frozenset(OPLOSSINGSSOORTEN)
_SCHULDSOORT = frozenset(SCHULDSOORTEN)


class _Acc(msgspec.Struct, array_like=True):
    """The counts of one row (gemeentecode) so far. Every field merges without regard to order
    (`Oor.voeg_toe`): or, union, sum."""

    # inflow: client -> still active (some trajectory by which it started in P has no uitstroom
    # date up to the end of P)
    instroom: dict[str, bool] = msgspec.field(default_factory=dict)
    begeleiding: set[str] = msgspec.field(default_factory=set)
    begeleiding_soort: dict[str, set[str]] = msgspec.field(default_factory=dict)
    fases: list[int] = msgspec.field(default_factory=lambda: [0] * len(FASES))
    schuld_trajecten: int = 0
    schuld_totaal: int = 0
    oplossing: dict[str, int] = msgspec.field(default_factory=dict)
    schuld_aantal: dict[str, int] = msgspec.field(default_factory=dict)
    schuld_bedrag: dict[str, int] = msgspec.field(default_factory=dict)

    def voeg_toe(self, other: _Acc) -> None:
        instroom = self.instroom
        for bsn, actief in other.instroom.items():
            instroom[bsn] = instroom.get(bsn, False) or actief
        self.begeleiding |= other.begeleiding
        for soort, clienten in other.begeleiding_soort.items():
            self.begeleiding_soort.setdefault(soort, set()).update(clienten)
        self.fases = [a + b for a, b in zip(self.fases, other.fases, strict=True)]
        self.schuld_trajecten += other.schuld_trajecten
        self.schuld_totaal += other.schuld_totaal
        for mine, theirs in (
            (self.oplossing, other.oplossing),
            (self.schuld_aantal, other.schuld_aantal),
            (self.schuld_bedrag, other.schuld_bedrag),
        ):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v


class OorDeel(msgspec.Struct, array_like=True, frozen=True):
    """The OOR counts of some of a delivery's trajectories (a chunk), without the two tables:
    what `Oor.deel()` gives and `Oor.voeg_toe()` merges. Its clients are the pseudonyms the
    trajectories carry; `encode()` is its compact stored form (msgspec, JSON arrays)."""

    rijen: list[tuple[str | None, _Acc]]

    def encode(self) -> bytes:
        return _deel_encoder.encode(self)

    @staticmethod
    def decode(data: bytes) -> OorDeel:
        return _deel_decoder.decode(data)


_deel_encoder: Final = msgspec.json.Encoder()
_deel_decoder: Final = msgspec.json.Decoder(OorDeel)


def _share(deel: int, geheel: int) -> float | None:
    return deel / geheel if geheel else None


@dataclass(frozen=True, slots=True)
class OorRij:
    gemeentecode: str | None
    instroom: dict[str, int]  # clienten, uitgestroomd, actief
    begeleiding: dict[str, Any]  # clienten, per_soort
    gestarte_fases: dict[str, int]
    laatste_fase: dict[str, int]
    schulden: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "gemeentecode": self.gemeentecode,
            "instroom": dict(self.instroom),
            "begeleiding": {
                "clienten": self.begeleiding["clienten"],
                "per_soort": dict(self.begeleiding["per_soort"]),
            },
            "gestarte_fases": dict(self.gestarte_fases),
            "laatste_fase": dict(self.laatste_fase),
            "schulden": {
                **self.schulden,
                "per_oplossing": dict(self.schulden["per_oplossing"]),
                "per_schuldsoort": {
                    k: dict(v) for k, v in self.schulden["per_schuldsoort"].items()
                },
            },
        }


@dataclass(frozen=True, slots=True)
class OorResultaat:
    periode: Periode | None
    tabellen: Totalen
    rijen: list[OorRij]  # the tables' rows, in their order (by code, the None row last)
    totaal: OorRij  # the sum of the rows

    def as_dict(self) -> dict[str, Any]:
        totaal = self.totaal.as_dict()
        del totaal["gemeentecode"]
        p = self.periode
        return {
            "periode": {"start": p.start, "eind": p.eind} if p else None,
            "tabellen": self.tabellen.as_dict(),
            "gemeenten": [r.as_dict() for r in self.rijen],
            "totaal": totaal,
        }


class Oor:
    """Accumulates trajectories, in file order, into the OOR figures.

    With `tabellen=False` it counts only the OOR's own figures, not the two tables: for counting
    a delivery in parts (`deel()` per part, `voeg_toe()` of every part into one `Oor`), whose
    `result()` then takes the tables counted elsewhere (`ddas.domain.tables.Tabellen`, in file
    order: a BSN's last step depends on the order, the OOR's own figures do not).
    """

    def __init__(self, periode: Periode | None, *, tabellen: bool = True) -> None:
        self.periode = periode
        self._tabellen = Tabellen() if tabellen else None
        self._rijen: dict[str | None, _Acc] = {}

    def add(
        self,
        traject: dict[str, Any],
        bsns: tuple[str, ...] | None = None,
        feit: TrajectFeit | None = None,
    ) -> None:
        """Add one trajectory; `bsns` overrides its clients' BSNs (as in `traject_feit`);
        `feit` is its `traject_feit` when the caller has it already."""
        if type(traject) is not dict:
            return
        if feit is None:
            feit = traject_feit(traject, self.periode, bsns)
        if self._tabellen is not None:
            self._tabellen.add(feit)
        acc = self._rijen.get(feit.gemeentecode)
        if acc is None:
            acc = self._rijen[feit.gemeentecode] = _Acc()
        p = self.periode
        if p is None:
            return
        if feit.bsns:
            self._instroom(acc, traject, feit.bsns, p)
            self._begeleiding(acc, traject, feit.bsns, p)
        self._fases(acc, traject, p)
        if feit.actief:
            self._schulden(acc, traject)

    def deel(self) -> OorDeel:
        """The counts so far, without the tables, to merge elsewhere."""
        return OorDeel(list(self._rijen.items()))

    def voeg_toe(self, deel: OorDeel) -> None:
        """Merge the counts of another part of the same delivery (same period) into these;
        takes over `deel`'s objects (a decoded part is used once)."""
        for code, acc in deel.rijen:
            mine = self._rijen.get(code)
            if mine is None:
                self._rijen[code] = acc
            else:
                mine.voeg_toe(acc)

    @staticmethod
    def _instroom(acc: _Acc, traject: dict[str, Any], bsns: tuple[str, ...], p: Periode) -> None:
        start = traject.get("startdatum")
        if start is None:
            aanmelding = traject.get("aanmelding")
            if type(aanmelding) is dict:
                start = aanmelding.get("startdatum")
        if type(start) is not str or not p.start <= start[:10] <= p.eind:
            return
        uit = activity_date("uitstroom", traject.get("uitstroom"))
        actief = uit is None or uit > p.eind
        instroom = acc.instroom
        for bsn in bsns:
            instroom[bsn] = instroom.get(bsn, False) or actief

    @staticmethod
    def _begeleiding(acc: _Acc, traject: dict[str, Any], bsns: tuple[str, ...], p: Periode) -> None:
        items = traject.get("begeleiding")
        if type(items) is not list:
            return
        for item in items:
            if type(item) is not dict:
                continue
            start, eind = item.get("startdatum"), item.get("einddatum")
            if type(start) is not str or start[:10] > p.eind:
                continue
            if eind is not None and (type(eind) is not str or eind[:10] < p.start):
                continue
            soort = item.get("soort")
            if type(soort) is not str or soort not in _BEGELEIDINGSSOORT:
                soort = ONBEKEND
            acc.begeleiding.update(bsns)
            per_soort = acc.begeleiding_soort.get(soort)
            if per_soort is None:
                per_soort = acc.begeleiding_soort[soort] = set()
            per_soort.update(bsns)

    @staticmethod
    def _fases(acc: _Acc, traject: dict[str, Any], p: Periode) -> None:
        get = traject.get
        fases = acc.fases
        for i, naam in enumerate(FASES):
            datum = activity_date(naam, get(naam))
            if datum is None and naam == "intake":
                datum = activity_date("planVanAanpak", get("planVanAanpak"))
            if datum is not None and p.start <= datum <= p.eind:
                fases[i] += 1

    @staticmethod
    def _schulden(acc: _Acc, traject: dict[str, Any]) -> None:
        acc.schuld_trajecten += 1
        schulden = traject.get("schulden")
        if type(schulden) is not list:
            schulden = ()
        totaal = traject.get("totaalSchuldbedragBijAanvangSchuld")
        som = 0
        aantal, bedragen = acc.schuld_aantal, acc.schuld_bedrag
        for schuld in schulden:
            if type(schuld) is not dict:
                continue
            soort = schuld.get("schuldsoort")
            if type(soort) is not str or soort not in _SCHULDSOORT:
                soort = ONBEKEND
            bedrag = schuld.get("bedrag")
            bedrag = bedrag if type(bedrag) is int else 0
            som += bedrag
            aantal[soort] = aantal.get(soort, 0) + 1
            bedragen[soort] = bedragen.get(soort, 0) + bedrag
        if totaal is None:
            acc.schuld_totaal += som
        elif type(totaal) is int:
            acc.schuld_totaal += totaal
        oplossing = traject.get("oplossing")
        if type(oplossing) is dict:
            soort = oplossing.get("soort")
            if type(soort) is str and soort in _OPLOSSINGSSOORT:
                acc.oplossing[soort] = acc.oplossing.get(soort, 0) + 1

    def result(self, tabellen: Totalen | None = None) -> OorResultaat:
        """The figures; `tabellen` are the two tables of the same trajectories when this `Oor`
        does not count them itself (`tabellen=False`)."""
        if tabellen is None:
            if self._tabellen is None:
                raise ValueError("an Oor without tables needs the tables counted elsewhere")
            tabellen = self._tabellen.result()
        missing = [r.gemeentecode for r in tabellen.rijen if r.gemeentecode not in self._rijen]
        if missing:
            raise ValueError(f"the OOR counts lack rows of the tables: {missing[:5]}")
        rijen = [_rij(r, self._rijen[r.gemeentecode]) for r in tabellen.rijen]
        return OorResultaat(self.periode, tabellen, rijen, _som(tabellen.totaal, rijen))


def _schulden_dict(
    trajecten: int,
    totaal: int,
    oplossing: dict[str, int],
    aantal: dict[str, int],
    bedrag: dict[str, int],
) -> dict[str, Any]:
    n, b = sum(aantal.values()), sum(bedrag.values())
    return {
        "trajecten": trajecten,
        "totaal_bedrag": totaal,
        "met_oplossing": sum(oplossing.values()),
        "per_oplossing": {k: oplossing.get(k, 0) for k in OPLOSSINGSSOORTEN},
        "per_schuldsoort": {
            k: {
                "aantal": aantal.get(k, 0),
                "bedrag": bedrag.get(k, 0),
                "aandeel_aantal": _share(aantal.get(k, 0), n),
                "aandeel_bedrag": _share(bedrag.get(k, 0), b),
            }
            for k in _SCHULD_KOLOMMEN
        },
    }


def _laatste_fase(tabel_rij: Rij) -> dict[str, int]:
    return {k: v for k, v in tabel_rij.laatste_stap.items() if k != ONBEKEND}


def _rij(tabel_rij: Rij, acc: _Acc) -> OorRij:
    uit = sum(1 for actief in acc.instroom.values() if not actief)
    return OorRij(
        tabel_rij.gemeentecode,
        {"clienten": len(acc.instroom), "uitgestroomd": uit, "actief": len(acc.instroom) - uit},
        {
            "clienten": len(acc.begeleiding),
            "per_soort": {k: len(acc.begeleiding_soort.get(k, ())) for k in _BEGELEIDING_KOLOMMEN},
        },
        dict(zip(FASES, acc.fases, strict=True)),
        _laatste_fase(tabel_rij),
        _schulden_dict(
            acc.schuld_trajecten,
            acc.schuld_totaal,
            acc.oplossing,
            acc.schuld_aantal,
            acc.schuld_bedrag,
        ),
    )


def _som(tabel_totaal: Rij, rijen: list[OorRij]) -> OorRij:
    def plus(get: Any, keys: tuple[str, ...]) -> dict[str, int]:
        return {k: sum(get(r)[k] for r in rijen) for k in keys}

    schulden = [r.schulden for r in rijen]
    return OorRij(
        None,
        plus(lambda r: r.instroom, ("clienten", "uitgestroomd", "actief")),
        {
            "clienten": sum(r.begeleiding["clienten"] for r in rijen),
            "per_soort": plus(lambda r: r.begeleiding["per_soort"], _BEGELEIDING_KOLOMMEN),
        },
        plus(lambda r: r.gestarte_fases, FASES),
        _laatste_fase(tabel_totaal),
        _schulden_dict(
            sum(s["trajecten"] for s in schulden),
            sum(s["totaal_bedrag"] for s in schulden),
            {k: sum(s["per_oplossing"][k] for s in schulden) for k in OPLOSSINGSSOORTEN},
            {k: sum(s["per_schuldsoort"][k]["aantal"] for s in schulden) for k in _SCHULD_KOLOMMEN},
            {k: sum(s["per_schuldsoort"][k]["bedrag"] for s in schulden) for k in _SCHULD_KOLOMMEN},
        ),
    )
