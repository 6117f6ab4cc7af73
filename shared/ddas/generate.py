"""Synthetic SHV v1.0 deliveries for tests and benchmarks (`ddas generate`).

The output looks like the DDAS-app's own test files (`examples/ddas-app/testbestand_*.json`):
1-2 clients per trajectory (a couple shares one), gender `M`/`V`/`O`, postcodes `1234 AB`, phases
in process order with equal dates now and then, dates on and around the period's edges, outflow
with einddatum = uitstroom.datum, begeleiding, debts, now and then crisis interventions and
moratoria. BSNs are synthetic numbers that pass the 11-check; a small share of clients comes back
in a later trajectory (after the earlier one ended), often in another municipality.

Without flaws the file is valid against the official schema and raises no rule finding at all, so
that every finding on a flawed file comes from a planted flaw. With `fouten=RATE` each trajectory
independently gets exactly one deliberate flaw with probability RATE: half schema flaws (missing
gemeentecode, wrong type, bad enum value, bad date), half rule flaws (BSN failing the 11-check,
end before start, unknown gemeentecode, a BSN twice in one trajectory).

Deterministic per seed (one `random.Random`), and streaming: trajectories are encoded one by one
with orjson and written in batches, so 200,000 trajectories (~150 MB) never sit in memory at once.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Any, BinaryIO

import orjson

from ddas.domain import bsn as bsn_mod
from ddas.domain import gemeenten

__all__ = ["FLAWS", "Options", "Stats", "generate"]

# The deliberate flaws of `--fouten`: the first four break the schema, the others a rule.
SCHEMA_FLAWS = ("gemeentecode_ontbreekt", "verkeerd_type", "ongeldige_enum", "ongeldige_datum")
RULE_FLAWS = ("bsn_elfproef", "einde_voor_start", "gemeentecode_onbekend", "bsn_dubbel")
FLAWS = SCHEMA_FLAWS + RULE_FLAWS

_BATCH = 2000  # trajectories per write: large enough to amortise the call, small in memory

_CREDITORS = (
    "Belastingdienst",
    "CJIB",
    "DUO",
    "Zilveren Kruis",
    "CZ",
    "VGZ",
    "Menzis",
    "Vattenfall",
    "Eneco",
    "Essent",
    "Vitens",
    "Evides",
    "Woonstichting De Linie",
    "Ymere",
    "KPN",
    "Vodafone",
    "Wehkamp",
    "Klarna",
    "Intrum",
    "Gemeente (belastingen)",
)
_BEGELEIDING = (
    ("Budgetcoaching", 45),
    ("Budgetbeheer", 30),
    ("Beschermingsbewind", 15),
    ("Budgetbegeleiding", 7),
    ("Lange Termijn Begeleiding (DFD)", 3),
)
_SCHULDSOORT = (("Overig", 40), ("Publiek", 25), ("Zorg", 20), ("Nuts", 15))
_POSTCODE_LETTERS = "ABCDEGHJKLMNPRSTVWXZ"


@dataclass(frozen=True, slots=True)
class Options:
    trajecten: int
    seed: int = 0
    fouten: float = 0.0
    periode: tuple[date, date] = (date(2025, 1, 1), date(2025, 12, 31))
    leveringen: int = 1
    gemeenten: int | None = None  # number of municipalities; default grows with the file


@dataclass(slots=True)
class Stats:
    trajecten: int = 0
    clienten: int = 0
    hergebruikt: int = 0  # trajectories whose clients already appeared in an earlier trajectory
    fouten: Counter[str] = field(default_factory=Counter)  # planted flaws per kind

    @property
    def met_fout(self) -> int:
        return sum(self.fouten.values())


def generate(out: BinaryIO, options: Options) -> Stats:
    """Write one SHV v1.0 delivery as JSON to `out` and return what was written."""
    return _Generator(options).write(out)


def _weighted(pairs: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [p[0] for p in pairs], list(accumulate(p[1] for p in pairs))


class _Generator:
    def __init__(self, o: Options) -> None:
        if o.trajecten < 0 or not 0.0 <= o.fouten <= 1.0 or o.leveringen < 1:
            raise ValueError("trajecten >= 0, 0 <= fouten <= 1 and leveringen >= 1")
        start, eind = o.periode
        if eind < start:
            raise ValueError("the period ends before it starts")
        self.o = o
        self.rng = random.Random(o.seed)
        # Flaws draw from their own stream: a flawed file is the clean file of the same seed
        # with flaws planted, trajectory for trajectory.
        self.frng = random.Random(f"fouten:{o.seed}")
        self.stats = Stats()
        self.ps, self.pe = start.toordinal(), eind.toordinal()
        # Delivered two weeks after the period, as in the DDAS-app test files; no date is later.
        self.now = self.pe + 15
        self.lo = self.ps - 3 * 365  # the oldest trajectories still running started 3 years back
        self._iso = [date.fromordinal(d).isoformat() for d in range(self.lo, self.now + 1)]
        self.edges = [d for d in (self.ps - 1, self.ps, self.pe, self.pe + 1) if d <= self.now]
        # A delivery holds the trajectories that overlap the period: none starts after it.
        self.start_edges = [d for d in self.edges if d <= self.pe]
        # BSNs: 8-digit stems walk a full cycle mod 10^8 (step coprime to 10), so they never
        # repeat; stems whose check digit would be 10 are skipped.
        self._stem = self.rng.randrange(10**7, 10**8)
        self._step = self.rng.choice((7_919_311, 3_141_593, 2_718_283, 1_618_033))
        # Clients of ended trajectories, as (end ordinal, clients), waiting to come back.
        self._pool: list[tuple[int, list[dict[str, str]]]] = []
        self._begeleiding = _weighted(_BEGELEIDING)
        self._schuldsoort = _weighted(_SCHULDSOORT)
        self._known = sorted(gemeenten.codes())
        self._unknown = [
            f"{c:04d}" for c in range(1, 10000) if f"{c:04d}" not in gemeenten.codes()
        ][::97]

    # -- small helpers ---------------------------------------------------------------------

    def d(self, ordinal: int) -> str:
        return self._iso[ordinal - self.lo]

    def gap(self, most: int) -> int:
        """Days to the next event: 0 now and then (equal dates are real), else 1..most."""
        r = self.rng
        return 0 if r.random() < 0.12 else r.randint(1, most)

    def new_bsn(self) -> str:
        while True:
            self._stem = (self._stem + self._step) % 10**8
            stem = f"{self._stem:08d}"
            digit = bsn_mod.check_digit(stem)
            if digit is not None and stem != "00000000":
                return stem + str(digit)

    def postcode(self) -> str:
        r = self.rng
        letters = r.choice(_POSTCODE_LETTERS) + r.choice(_POSTCODE_LETTERS)
        # Mostly with a space, as in the DDAS-app test file; some suppliers leave it out.
        sep = " " if r.random() < 0.8 else ""
        return f"{r.randint(1000, 9999)}{sep}{letters}"

    def person(self, address: tuple[str, str] | None = None) -> dict[str, str]:
        r = self.rng
        born = date(1940, 1, 1).toordinal() + r.randrange(66 * 365)
        c: dict[str, str] = {
            "Burgerservicenummer": self.new_bsn(),
            "Geboortedatum": date.fromordinal(born).isoformat(),
        }
        if r.random() < 0.92:
            g = r.random()
            c["Geslachtsaanduiding"] = "M" if g < 0.45 else "V" if g < 0.9 else "O"
        postcode, huisnummer = address or (self.postcode(), str(r.randint(1, 250)))
        c["Postcode"] = postcode
        c["Huisnummer"] = huisnummer
        if r.random() < 0.07:
            c["Huisnummertoevoeging"] = r.choice(("A", "B", "C", "bis", "1", "2"))
        return c

    # -- municipalities and leveringen -----------------------------------------------------

    def plan(self) -> list[tuple[dict[str, Any], list[str], list[int], int]]:
        """Per levering: organisation, its municipalities with cumulative weights, trajectories."""
        r, o = self.rng, self.o
        m = o.gemeenten or max(3, o.leveringen, o.trajecten // 600)
        m = max(1, min(m, len(self._known)))
        codes = r.sample(self._known, m)
        # A few large municipalities and a long tail, as nationally (Zipf-like sizes).
        weights = [1000.0 / (i + 1) ** 0.9 for i in range(m)]
        k = min(o.leveringen, m)
        groups = [list(range(j, m, k)) for j in range(k)]
        shares = [sum(weights[i] for i in g) for g in groups]
        counts = _apportion(o.trajecten, shares)
        plan = []
        for j, (g, n) in enumerate(zip(groups, counts, strict=True)):
            g_codes = [codes[i] for i in g]
            cum = list(accumulate(weights[i] for i in g))
            plan.append((self.organisation(j, g_codes), g_codes, cum, n))
        return plan

    def organisation(self, j: int, codes: list[str]) -> dict[str, Any]:
        r = self.rng
        if len(codes) == 1:  # a municipality delivering its own trajectories
            name = f"Gemeente {gemeenten.naam(codes[0])}"
        else:  # a regional debt-help organisation working for several municipalities
            name = f"Kredietbank Regio {j + 1}"
        slug = "".join(ch for ch in name.lower() if ch.isalnum())
        org: dict[str, Any] = {
            "(Statutaire) Naam": name,
            "KvK-nummer": f"{r.randrange(10**7, 10**8)}",
            "postcode": self.postcode(),
        }
        if len(codes) == 1:
            org["gemeentecode"] = codes[0]
        org["contactpersonen"] = [
            {
                "naam": "Team Schuldhulpverlening",
                "functietitel": "Functioneel beheerder",
                "email": f"schuldhulp@{slug}.example.nl",
                "telefoonnummer": f"0{r.randrange(10**8, 10**9)}",
            }
        ]
        return org

    # -- one trajectory --------------------------------------------------------------------

    def clients_and_start(self) -> tuple[list[dict[str, str]], int, bool]:
        """The clients and the first date: now and then clients of an ended trajectory that
        come back after it ended (so their trajectories do not overlap)."""
        r = self.rng
        if self._pool and r.random() < 0.06:
            i = r.randrange(len(self._pool))
            ended, clients = self._pool[i]
            start = ended + r.randint(1, 180)
            if start <= self.pe:
                self._pool[i] = self._pool[-1]
                self._pool.pop()
                clients = [dict(c) for c in clients]
                if r.random() < 0.5:  # moved: a new address for the household
                    postcode, nr = self.postcode(), str(r.randint(1, 250))
                    for c in clients:
                        c["Postcode"], c["Huisnummer"] = postcode, nr
                return clients, start, True
        first = self.person()
        clients = [first]
        if r.random() < 0.25:  # a couple shares the trajectory
            clients.append(self.person((first["Postcode"], first["Huisnummer"])))
        # Most trajectories of a delivery overlap the period; recent starts are more common.
        if r.random() < 0.04:
            start = r.choice(self.start_edges)
        else:
            start = self.pe - int(r.random() ** 1.3 * (self.pe - self.ps + 540))
        return clients, start, False

    def trajectory(self, code: str) -> dict[str, Any]:
        r, d, gap, now = self.rng, self.d, self.gap, self.now
        clients, start, reused = self.clients_and_start()
        t: dict[str, Any] = {"gemeentecode": code}
        steps: dict[str, Any] = {}
        cur = start
        if r.random() < 0.8:
            a: dict[str, Any] = {"crisisinterventie": r.random() < 0.06, "startdatum": d(cur)}
            end = cur + gap(14)
            if end <= now and r.random() < 0.9:
                a["einddatum"] = d(end)
            steps["aanmelding"] = a
            if r.random() < 0.3:  # the trajectory itself starts a little after the aanmelding
                cur = min(cur + gap(10), self.pe)
        t["startdatum"] = d(cur)
        uit: tuple[int, str] | None = None  # (date, reden) of the outflow, once decided
        last_end = cur  # the latest date so far: the outflow is not before it

        def at(days: int) -> int | None:
            nonlocal cur
            when = cur + days
            if when > now:
                return None
            cur = when
            return when

        # intake
        if r.random() < 0.85 and (s := at(gap(21))) is not None:
            i: dict[str, Any] = {"startdatum": d(s)}
            e = s + gap(30)
            if e <= now:
                i["einddatum"] = d(e)
                last_end = max(last_end, e)
                b = e + gap(7)
                if b <= now and r.random() < 0.85:
                    i["beschikkingsdatum"] = d(b)
                    last_end = max(last_end, b)
                    if r.random() < 0.15:
                        i["beschikkingssoort"] = "Afwijzingsbeschikking"
                        uit = (b + gap(14), r.choice(("Voldoet niet", "Niet passend")))
                    else:
                        i["beschikkingssoort"] = "Toelatingsbeschikking"
                if "beschikkingsdatum" not in i and r.random() < 0.1:
                    uit = (e + gap(30), r.choice(("Nietverschenen", "Ingetrokken", "Zelf")))
            steps["intake"] = i
            if e <= now and r.random() < 0.6:
                p = e + gap(20)
                if p <= now:
                    steps["planVanAanpak"] = {"datumAfronding": d(p)}
                    last_end = max(last_end, p)
        toegekend = False
        if uit is None and "intake" in steps:
            # stabilisatie
            if r.random() < 0.6 and (s := at(gap(30))) is not None:
                st: dict[str, Any] = {"startdatum": d(s)}
                e = s + r.randint(14, 150)
                if e <= now and r.random() < 0.75:
                    st["einddatum"] = d(e)
                    last_end = max(last_end, e)
                steps["stabilisatie"] = st
            # schuldregeling
            if r.random() < 0.5 and (s := at(gap(60))) is not None:
                sr: dict[str, Any] = {"datum": d(s)}
                k = s + gap(45)
                x = r.random()
                if k <= now and x < 0.75:
                    sr["toegekend"] = t["toekenningsdatum"] = d(k)
                    toegekend = True
                    last_end = max(last_end, k)
                    if r.random() < 0.08:  # creditors refuse: a forced settlement is requested
                        v = s + gap(40)
                        if v <= now:
                            sr["datumVerzoekDwangakkoord"] = d(v)
                            sr["dwangakkoord"] = True
                            last_end = max(last_end, v)
                    elif r.random() < 0.3:
                        sr["dwangakkoord"] = False
                elif k <= now and x < 0.85:
                    sr["afgewezen"] = d(k)
                    uit = (k + gap(30), r.choice(("Niet passend", "Overig")))
                elif k <= now and x < 0.9:
                    sr["ingetrokken"] = d(k)
                    uit = (k + gap(30), "Ingetrokken")
                steps["schuldregeling"] = sr
        # oplossing: a settlement after toekenning, else a payment plan or refinancing
        if (
            uit is None
            and "intake" in steps
            and r.random() < (0.85 if toegekend else 0.2)
            and (s := at(gap(30))) is not None
        ):
            if toegekend:
                x = r.random()
                soort = (
                    "Schuldbemiddeling"
                    if x < 0.55
                    else "Saneringskrediet"
                    if x < 0.9
                    else "0%-aanbod"
                )
            else:
                soort = r.choice(("Betalingsregeling", "Herfinanciering"))
            op: dict[str, Any] = {"soort": soort, "startdatum": d(s)}
            e = s + r.randint(60, 540)
            if e <= now:
                op["einddatum"] = d(e)
                last_end = max(last_end, e)
                uit = (e, "Afgerond")
            if r.random() < 0.8:
                op["vtlb"] = r.randint(850, 1900)
            steps["oplossing"] = op
            if r.random() < 0.35 and (n := at(gap(60))) is not None:
                nz: dict[str, Any] = {"startdatum": d(n)}
                e2 = n + r.randint(30, 240)
                if e2 <= now:
                    nz["einddatum"] = d(e2)
                    last_end = max(last_end, e2)
                steps["nazorg"] = nz
        if uit is None and r.random() < 0.12:  # drop-out along the way
            uit = (
                cur + r.randint(1, 300),
                r.choice(
                    ("Nietverschenen", "Ingetrokken", "Zelf", "Verhuisd", "Overig", "Overleden")
                ),
            )

        t.update(steps)
        t["client"] = clients
        self.extras(t, start)
        if uit is not None:
            when = max(uit[0], cur, last_end)
            if when < self.ps:  # ended before the period: it would not be in this delivery
                when = self.ps + gap(90)
            if r.random() < 0.05:  # outflow exactly on or next to an edge of the period
                edge = r.choice(self.edges)
                when = edge if edge >= when else when
            if when <= now:
                u: dict[str, Any] = {"datum": d(when), "reden": uit[1]}
                if r.random() < 0.3:
                    u["datumBeeindigingsbeschikking"] = d(when)
                t["uitstroom"] = u
                if r.random() < 0.85:
                    t["einddatum"] = d(when)
                self._pool.append((when, clients))
        self.stats.trajecten += 1
        self.stats.clienten += len(clients)
        self.stats.hergebruikt += reused
        return t

    def extras(self, t: dict[str, Any], start: int) -> None:
        """Begeleiding, crisis interventions, moratoria, information, debts."""
        r, d, gap, now = self.rng, self.d, self.gap, self.now
        if r.random() < 0.55:
            items = []
            s = start + r.randint(0, 120)
            for _ in range(2 if r.random() < 0.4 else 1):
                if s > now:
                    break
                soort = r.choices(*self._begeleiding)[0]
                item: dict[str, Any] = {"soort": soort, "startdatum": d(s)}
                e = s + r.randint(30, 400)
                if e <= now and r.random() < 0.7:
                    item["einddatum"] = d(e)
                    items.append(item)
                    s = e + gap(10)
                else:
                    items.append(item)
                    break
            if items:
                t["begeleiding"] = items
        if r.random() < 0.07:
            s = start + gap(5)
            ci: dict[str, Any] = {"startdatum": d(min(s, now))}
            if s + 30 <= now:
                ci["einddatum"] = d(s + gap(30))
            t["crisisinterventies"] = [ci]
        if r.random() < 0.05:
            a = start + r.randint(0, 60)
            if a + 14 <= now:
                g = a + gap(14)
                mo: dict[str, Any] = {
                    "datumAanvraag": d(a),
                    "datumGoedkeuring": d(g),
                    "startdatum": d(g),
                }
                if g + 180 <= now:
                    mo["einddatum"] = d(g + 180)
                t["moratoria"] = [mo]
        if r.random() < 0.01 and start + 30 <= now:
            t["voorlopigeVoorzieningen"] = [
                {"startdatum": d(start + 5), "einddatum": d(start + 30)}
            ]
        if r.random() < 0.15:
            s = max(start - r.randint(0, 30), self.lo)
            ia: dict[str, Any] = {"startdatum": d(s)}
            if s + 60 <= now:
                ia["einddatum"] = d(s + gap(60))
            t["informatieEnAdvies"] = ia
        if r.random() < 0.5:
            peil = d(min(start + gap(30), now))
            schulden = []
            for _ in range(1 + min(int(r.expovariate(0.35)), 14)):
                bedrag = max(10, min(60_000, int(r.lognormvariate(6.6, 1.2))))
                schulden.append(
                    {
                        "bedrag": bedrag,
                        "peildatum": peil,
                        "schuldsoort": r.choices(*self._schuldsoort)[0],
                        "zakelijkeSchuld": r.random() < 0.04,
                        "schuldeiser": {"Naam": r.choice(_CREDITORS)},
                    }
                )
            t["schulden"] = schulden
            if r.random() < 0.8:
                t["totaalSchuldbedragBijAanvangSchuld"] = sum(s["bedrag"] for s in schulden)
        elif r.random() < 0.2:
            t["totaalSchuldbedragBijAanvangSchuld"] = r.randint(500, 40_000)

    # -- flaws -----------------------------------------------------------------------------

    def flaw(self, t: dict[str, Any]) -> str:
        """Plant exactly one flaw; return its kind."""
        r = self.frng
        kind = r.choice(FLAWS)
        first = t["client"][0]
        if kind == "gemeentecode_ontbreekt":
            del t["gemeentecode"]
        elif kind == "verkeerd_type":
            if "totaalSchuldbedragBijAanvangSchuld" in t and r.random() < 0.5:
                t["totaalSchuldbedragBijAanvangSchuld"] = str(
                    t["totaalSchuldbedragBijAanvangSchuld"]
                )
            else:
                first["Huisnummer"] = int(first["Huisnummer"])  # type: ignore[call-overload]
        elif kind == "ongeldige_enum":
            if "uitstroom" in t:
                t["uitstroom"]["reden"] = "Afgesloten"
            elif "begeleiding" in t:
                t["begeleiding"][0]["soort"] = "Schuldhulp"
            else:
                t["oplossing"] = {**t.get("oplossing", {}), "soort": "Kwijtschelding"}
        elif kind == "ongeldige_datum":
            s = date.fromisoformat(t["startdatum"])
            # day-month-year, or a day that does not exist
            t["startdatum"] = (
                s.strftime("%d-%m-%Y") if r.random() < 0.5 else f"{s.year}-02-{r.choice((30, 31))}"
            )
        elif kind == "bsn_elfproef":
            b = first["Burgerservicenummer"]
            # Another last digit always fails: the valid one is unique modulo 11.
            first["Burgerservicenummer"] = b[:8] + str((int(b[8]) + r.randint(1, 9)) % 10)
        elif kind == "einde_voor_start":
            s = date.fromisoformat(t["startdatum"])
            end = (s - timedelta(days=r.randint(1, 60))).isoformat()
            t["einddatum"] = end
            if "uitstroom" in t:
                t["uitstroom"]["datum"] = end
                t["uitstroom"].pop("datumBeeindigingsbeschikking", None)
        elif kind == "gemeentecode_onbekend":
            t["gemeentecode"] = r.choice(self._unknown)
        else:  # bsn_dubbel: the partner carries the first client's BSN, or is a copy
            if len(t["client"]) == 2:
                t["client"][1]["Burgerservicenummer"] = first["Burgerservicenummer"]
            else:
                t["client"].append(dict(first))
        return kind

    # -- the file --------------------------------------------------------------------------

    def write(self, out: BinaryIO) -> Stats:
        o, r, f = self.o, self.rng, self.frng
        header = {
            "startdatumLevering": self.d(self.ps),
            "einddatumLevering": self.d(self.pe),
            "aanleverdatumEnTijd": f"{self.d(self.now)}T10:30:00Z",
            "codeGegevensleverancier": "DDAS-GENERATOR",
        }
        out.write(orjson.dumps(header)[:-1] + b',"leveringen":[\n')
        dumps = orjson.dumps
        for j, (org, codes, cum, n) in enumerate(self.plan()):
            lev = dumps({"teller": j + 1, "aanleverende_organisatie": org})
            out.write((b",\n" if j else b"") + lev[:-1] + b',"schuldhulptrajecten":[\n')
            batch: list[bytes] = []
            for i in range(n):
                code = codes[0] if len(codes) == 1 else r.choices(codes, cum_weights=cum)[0]
                t = self.trajectory(code)
                if o.fouten and f.random() < o.fouten:
                    # The flaw goes into a copy: the clients in the pool stay clean, so that a
                    # flaw never spreads to a later trajectory of the same clients.
                    t = orjson.loads(dumps(t))
                    self.stats.fouten[self.flaw(t)] += 1
                batch.append(b",\n" + dumps(t) if i else dumps(t))
                if len(batch) == _BATCH:
                    out.write(b"".join(batch))
                    batch.clear()
            out.write(b"".join(batch) + b"\n]}")
        out.write(b"\n]}\n")
        return self.stats


def _apportion(total: int, shares: list[float]) -> list[int]:
    """Split `total` in proportion to `shares` (largest remainder), summing exactly to total."""
    s = sum(shares)
    exact = [total * w / s for w in shares]
    counts = [int(x) for x in exact]
    order = sorted(range(len(shares)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts
