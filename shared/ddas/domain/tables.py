"""The two DDAS-app totals tables, counted exactly as the DDAS-app counts them (domain.md).

Counting goes in two steps so that the services can store the middle step:
1. `traject_feit(traject, periode)` reduces one trajectory to the few facts the tables need
   (its group, its clients' BSNs, whether it is active, its most recent step in the period);
2. `Tabellen.add(feit)` accumulates facts in file order; `Tabellen.result()` gives the rows.
The BSN values are opaque: raw (trimmed) in `ddas check`, a keyed pseudonym in the services;
counting needs only their equality.

Definitions (period P = [startdatumLevering, einddatumLevering], both ends included):
- Table 1, per gemeentecode: *trajecten*, every trajectory with that code (no period filter);
  *unieke BSN's*, distinct trimmed non-empty BSNs of their clients; *unieke actieve BSN's*,
  distinct BSNs of clients of trajectories with a step whose activity date lies in P
  (`ddas.domain.steps.in_period`). The total row sums the rows.
- Table 2, per gemeentecode: every BSN of that municipality is counted once, under the most
  recent step (`ddas.domain.steps.in_period`) in P over all its trajectories there; equal
  dates: the first found wins, in file order and then in step order; no step in P: *onbekend*.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ddas.domain import gemeenten
from ddas.domain.steps import STAPPEN, in_period

_KNOWN = gemeenten.codes() | {gemeenten.ONBEKEND}
ONBEKEND = "onbekend"  # Table 2's column for a BSN without any step in P
LAATSTE_STAP_KOLOMMEN: tuple[str, ...] = (*STAPPEN, ONBEKEND)


class Periode(NamedTuple):
    start: str  # YYYY-MM-DD, inclusive
    eind: str  # YYYY-MM-DD, inclusive

    def bevat(self, datum: str | None) -> bool:
        return datum is not None and self.start <= datum <= self.eind


class TrajectFeit(NamedTuple):
    """What the two tables need of one trajectory; free of any other personal data."""

    gemeentecode: str | None  # normalised code, the literal "Onbekend", or None when absent
    bsns: tuple[str, ...]  # trimmed, non-empty BSNs (or pseudonyms) of its clients
    actief: bool  # a step's activity date lies in P
    laatste_stap: str | None  # the most recent step in P (None: no step in P)
    laatste_datum: str | None  # its date


def groep(gemeentecode: Any) -> str | None:
    """The row a trajectory counts in: the normalised code; None (the app's `onbekend*` row)
    when the code is missing, empty or not a string."""
    if type(gemeentecode) is not str:
        return None
    if gemeentecode in _KNOWN:  # the common case, without normalising
        return gemeentecode
    return gemeenten.normalise(gemeentecode)[0] if gemeentecode.strip() else None


def client_bsns(traject: dict[str, Any]) -> tuple[str, ...]:
    """The trimmed, non-empty BSNs of a trajectory's clients, in client order."""
    clients = traject.get("client")
    if type(clients) is not list:
        return ()
    bsns = []
    for client in clients:
        if type(client) is dict:
            bsn = client.get("Burgerservicenummer")
            if type(bsn) is str and (bsn := bsn.strip()):
                bsns.append(bsn)
    return tuple(bsns)


def traject_feit(
    traject: dict[str, Any], periode: Periode | None, bsns: tuple[str, ...] | None = None
) -> TrajectFeit:
    """Reduce a trajectory to its table facts. `bsns` overrides the clients' BSNs (the services
    pass pseudonyms); without a known period no step is in P."""
    if periode is None:
        actief, laatste_stap, laatste_datum = False, None, None
    else:
        actief, laatste_stap, laatste_datum = in_period(traject, periode.start, periode.eind)
    return TrajectFeit(
        groep(traject.get("gemeentecode")),
        client_bsns(traject) if bsns is None else bsns,
        actief,
        laatste_stap,
        laatste_datum,
    )


@dataclass(slots=True)
class _Rij:
    trajecten: int = 0
    actief: set[str] = field(default_factory=set)
    # Every BSN of the row -> (step, date) of its most recent step in P so far; (ONBEKEND,
    # None) when none yet. Its size is the row's number of unique BSNs.
    laatste: dict[str, tuple[str, str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rij:
    gemeentecode: str | None
    trajecten: int
    unieke_bsn: int
    unieke_actieve_bsn: int
    laatste_stap: dict[str, int]

    def as_dict(self) -> dict[str, Any]:
        return {
            "gemeentecode": self.gemeentecode,
            "trajecten": self.trajecten,
            "unieke_bsn": self.unieke_bsn,
            "unieke_actieve_bsn": self.unieke_actieve_bsn,
            "laatste_stap": dict(self.laatste_stap),
        }


@dataclass(frozen=True, slots=True)
class Totalen:
    rijen: list[Rij]  # sorted by code, the None row last
    totaal: Rij  # the sum of the rows (a BSN in two municipalities counts twice)

    def as_dict(self) -> dict[str, Any]:
        totaal = self.totaal.as_dict()
        del totaal["gemeentecode"]
        return {"gemeenten": [r.as_dict() for r in self.rijen], "totaal": totaal}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totalen:
        """The inverse of `as_dict` (the services store the tables as that JSON)."""

        def rij(d: dict[str, Any]) -> Rij:
            return Rij(
                d.get("gemeentecode"),
                d["trajecten"],
                d["unieke_bsn"],
                d["unieke_actieve_bsn"],
                {k: d["laatste_stap"][k] for k in LAATSTE_STAP_KOLOMMEN},
            )

        return cls([rij(r) for r in data["gemeenten"]], rij(data["totaal"]))


class Tabellen:
    """Accumulates trajectory facts, in file order, into the two tables."""

    def __init__(self) -> None:
        self._rijen: dict[str | None, _Rij] = {}

    def add(self, feit: TrajectFeit) -> None:
        rij = self._rijen.get(feit.gemeentecode)
        if rij is None:
            rij = self._rijen[feit.gemeentecode] = _Rij()
        rij.trajecten += 1
        if not feit.bsns:
            return
        if feit.actief:
            rij.actief.update(feit.bsns)
        laatste = rij.laatste
        stap, datum = feit.laatste_stap, feit.laatste_datum
        for bsn in feit.bsns:
            huidig = laatste.get(bsn)
            if huidig is None or datum is not None and (huidig[1] is None or datum > huidig[1]):
                laatste[bsn] = (stap or ONBEKEND, datum)

    def add_all(
        self, feiten: Iterable[tuple[str | None, tuple[str, ...], bool, str | None, str | None]]
    ) -> None:
        """`add` for many facts in file order, each as the tuple (gemeentecode, bsns, actief,
        laatste_stap, laatste_datum): the same result, without a call per fact (the services'
        completion adds 200,000 stored facts at once)."""
        rijen = self._rijen
        for code, bsns, actief, stap, datum in feiten:
            rij = rijen.get(code)
            if rij is None:
                rij = rijen[code] = _Rij()
            rij.trajecten += 1
            if not bsns:
                continue
            if actief:
                rij.actief.update(bsns)
            laatste = rij.laatste
            for bsn in bsns:
                huidig = laatste.get(bsn)
                if huidig is None or datum is not None and (huidig[1] is None or datum > huidig[1]):
                    laatste[bsn] = (stap or ONBEKEND, datum)

    def result(self) -> Totalen:
        rijen = []
        for code in sorted(self._rijen, key=lambda c: (c is None, c or "")):
            rij = self._rijen[code]
            per_stap = dict.fromkeys(LAATSTE_STAP_KOLOMMEN, 0)
            for stap, _ in rij.laatste.values():
                per_stap[stap] += 1
            rijen.append(Rij(code, rij.trajecten, len(rij.laatste), len(rij.actief), per_stap))
        totaal_per_stap = {k: sum(r.laatste_stap[k] for r in rijen) for k in LAATSTE_STAP_KOLOMMEN}
        totaal = Rij(
            None,
            sum(r.trajecten for r in rijen),
            sum(r.unieke_bsn for r in rijen),
            sum(r.unieke_actieve_bsn for r in rijen),
            totaal_per_stap,
        )
        return Totalen(rijen, totaal)
