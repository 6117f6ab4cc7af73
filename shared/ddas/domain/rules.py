"""The rules beyond the schema (domain.md, "Rules beyond the schema"), as a streaming engine.

The JSON-Schema check says what a field may look like; these rules say what the schema cannot:
the BSN's 11-check, the municipality list, the FAQ's consistency rules, the order of dates, and
what can only be seen across trajectories (one person in overlapping trajectories). Every rule
has one code and one severity, listed in `RULES` (the source of `docs/rules.md`). A warning never
stops a record from counting; an error makes the file fail the check. No rule drops a record.

Use, in file order (the services use the same calls on their chunks):

    engine = RuleEngine.for_root(root)          # aanleverdatumEnTijd and the period
    findings = engine.check_root(root)
    findings += engine.check_levering(levering, "/leveringen/0")         # header only
    findings += engine.check_traject(traject, "/leveringen/0/schuldhulptrajecten/12")
    ...
    findings += engine.finish()                 # the cross-trajectory rules

or `check_document(root)` for a file already decoded as a whole.

Input may be schema-invalid (wrong types, missing parts, nulls): a rule skips what it cannot
evaluate, the schema check reports it. Findings carry a JSON pointer and a Dutch message, never
a personal value: two places that share a BSN are both named by pointer, not by the BSN.

Speed: ~200,000 trajectories per national delivery. `check_traject` first runs a fast pass
(`_fast`) that answers "could any rule fire here?" for the common, valid trajectory, comparing
ISO dates as strings and creating nothing but what the cross-trajectory rules must keep; the
exact pass (`_full`, the readable statement of the rules) runs only where something might be
wrong. The fast pass may say "maybe" needlessly, never "clean" wrongly: each condition in it is
implied by a finding of the exact pass (a test runs both on real and flawed files to hold it to
that).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, NamedTuple

from ddas.domain import bsn as bsn_mod
from ddas.domain import gemeenten
from ddas.domain.findings import Ernst, Finding, pointer
from ddas.domain.steps import STAPPEN

__all__ = [
    "RULES",
    "ChunkRuleEngine",
    "Regel",
    "RegelFeit",
    "RuleEngine",
    "check_document",
    "rules_markdown",
]

FOUT, WAARSCHUWING = Ernst.FOUT, Ernst.WAARSCHUWING


@dataclass(frozen=True, slots=True)
class Regel:
    """One rule: its stable code, its severity, what it checks (Dutch, shown to suppliers) and
    why it has that severity (for the people who maintain the rules)."""

    code: str
    ernst: Ernst
    omschrijving: str
    waarom: str


_REGELS = (
    Regel(
        "gemeentecode.onbekend",
        FOUT,
        "De gemeentecode van een traject is geen gemeente van 2025 en niet 'Onbekend'.",
        "domain.md: the code *must* be one of the 342 municipalities or `Onbekend`. Every "
        "figure is per municipality; a trajectory under a code that is no municipality "
        "lands in a row no municipality receives, so the file is not fit to count.",
    ),
    Regel(
        "gemeentecode.genormaliseerd",
        WAARSCHUWING,
        "Gemeentecode in een afwijkende vorm (GM0599, 599, met spaties) is gelezen als 4 cijfers.",
        "domain.md: normalise and say so. The municipality is unambiguous after "
        "normalising, so the record counts where it belongs; the supplier should still fix "
        "the export.",
    ),
    Regel(
        "organisatie.gemeentecode_onbekend",
        WAARSCHUWING,
        "De gemeentecode van de aanleverende organisatie is geen gemeente van 2025.",
        "The organisation's code only says whether the supplier is a municipality; "
        "counting uses the trajectories' codes, so a wrong organisation code changes no "
        "figure.",
    ),
    Regel(
        "bsn.elfproef",
        WAARSCHUWING,
        "Het BSN voldoet niet aan de elfproef (of heeft geen 9 cijfers).",
        "domain.md says so explicitly: a failing BSN is a warning, the record still "
        "counts (test files and some registrations use numbers outside the 11-check).",
    ),
    Regel(
        "bsn.genormaliseerd",
        WAARSCHUWING,
        "Het BSN bevat andere tekens dan cijfers of heeft 8 cijfers; gelezen als 9 cijfers.",
        "domain.md: strip non-digits and left-pad 8 digits; after that the person is "
        "identified, so the record counts.",
    ),
    Regel(
        "bsn.dubbel_in_traject",
        FOUT,
        "Hetzelfde BSN staat twee keer als cliënt in één traject.",
        "A trajectory has one client or a couple; the same person twice is an export "
        "error that hides the partner (who is then missing from every client count).",
    ),
    Regel(
        "bsn.overlappende_trajecten",
        WAARSCHUWING,
        "Hetzelfde BSN staat in twee trajecten die in tijd overlappen.",
        "Can be legitimate (a move to another municipality, a hand-over between "
        "organisations) and every trajectory is counted as delivered; the supplier should "
        "check for a duplicate registration.",
    ),
    Regel(
        "client.niet_identificeerbaar",
        WAARSCHUWING,
        "Cliënt zonder BSN en zonder de volledige combinatie geboortedatum, geslacht, "
        "postcode en huisnummer.",
        "domain.md: a client is identified by BSN, else by the four fields. Without either "
        "the client is in no unique-client count, but the trajectory still counts.",
    ),
    Regel(
        "datum.einde_voor_start",
        FOUT,
        "Een einddatum ligt voor de bijbehorende startdatum.",
        "domain.md: every einddatum is on or after its startdatum. An inverted interval "
        "makes activity in the period, inflow, outflow and begeleiding undefined: the "
        "figures built on it would be wrong, not just incomplete.",
    ),
    Regel(
        "datum.na_aanlevering",
        WAARSCHUWING,
        "Een datum ligt na de aanleverdatum (aanleverdatumEnTijd).",
        "domain.md: no date after aanleverdatumEnTijd. A warning, not an error: the "
        "DDAS-app's own test files carry planned dates after delivery, the period's "
        "figures only use dates inside the period (which normally ends before delivery), "
        "and rejecting would drop whole deliveries over planned end dates of begeleiding.",
    ),
    Regel(
        "fase.volgorde",
        WAARSCHUWING,
        "Een fase begint eerder dan de fase die er in de procesvolgorde voor komt.",
        "domain.md: phases *should* not go back in time. Real trajectories skip and "
        "overlap phases; each phase's own date still counts as delivered.",
    ),
    Regel(
        "consistentie.einddatum",
        WAARSCHUWING,
        "einddatum, uitstroom.datum en uitstroom.datumBeeindigingsbeschikking verschillen.",
        "FAQ: the three hold the same date. Which one is right cannot be told, and each is "
        "used as delivered; only compared when present (a missing one is not a conflict).",
    ),
    Regel(
        "consistentie.toekenningsdatum",
        WAARSCHUWING,
        "toekenningsdatum verschilt van schuldregeling.toegekend.",
        "FAQ: the two are equal. Compared only when both are present; the figures use "
        "neither as a step date.",
    ),
    Regel(
        "consistentie.dwangakkoord",
        WAARSCHUWING,
        "dwangakkoord is true terwijl schuldregeling.toegekend geen datum heeft.",
        "FAQ: dwangakkoord only when toegekend has a date. No figure of the DDAS-app uses "
        "it; the supplier should correct the registration.",
    ),
    Regel(
        "traject.buiten_periode",
        WAARSCHUWING,
        "Het traject ligt geheel buiten de rapportageperiode.",
        "A delivery holds the trajectories overlapping the period; one that ended before "
        "it or starts after it still counts in 'Aantal trajecten' (as in the DDAS-app) but "
        "can never be active. Informative, so a warning.",
    ),
    Regel(
        "levering.andere_gemeente",
        WAARSCHUWING,
        "Een gemeente levert trajecten met de gemeentecode van een andere gemeente.",
        "domain.md: one organisation per levering, a supplier for several municipalities "
        "sends one levering per municipality. A municipality may execute debt help for "
        "another under mandate, so this is checked, not refused.",
    ),
    Regel(
        "levering.organisatie_dubbel",
        WAARSCHUWING,
        "Dezelfde organisatie (KvK-nummer of gemeentecode) levert in twee leveringen "
        "trajecten van dezelfde gemeente.",
        "domain.md: one organisation per levering, one levering per municipality; so an "
        "organisation is in several leveringen only for different municipalities. Twice "
        "for the same one is a split or a duplicate delivery: both are counted as "
        "delivered (a duplicate would double the figures, which bsn.overlappende_trajecten "
        "then shows), so the supplier must look.",
    ),
    Regel(
        "levering.teller_dubbel",
        WAARSCHUWING,
        "Twee leveringen in het bestand hebben dezelfde teller.",
        "The teller numbers the leveringen of a file; a duplicate makes them hard to tell "
        "apart in the OOR but changes no figure.",
    ),
)

RULES: dict[str, Regel] = {r.code: r for r in _REGELS}
"""The rule registry: code -> rule. `docs/rules.md` lists exactly these codes and severities."""


def rules_markdown() -> str:
    """The table of rules for docs/rules.md (regenerate with `python -m ddas.domain.rules`)."""
    lines = [
        "| Code | Ernst | Omschrijving (shown to suppliers) | Why this severity |",
        "|---|---|---|---|",
    ]
    for r in _REGELS:
        lines.append(f"| `{r.code}` | {r.ernst} | {r.omschrijving} | {r.waarom} |")
    return "\n".join(lines) + "\n"


# -- the fields -----------------------------------------------------------------------------

# Every date field of a trajectory per part (schema), for "no date after aanlevering".
_DATUMS_TOP = ("startdatum", "einddatum", "toekenningsdatum")
_DATUMS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aanmelding", ("startdatum", "einddatum")),
    ("intake", ("startdatum", "einddatum", "beschikkingsdatum")),
    ("planVanAanpak", ("datumAfronding",)),
    ("stabilisatie", ("startdatum", "einddatum")),
    (
        "schuldregeling",
        ("datum", "toegekend", "afgewezen", "ingetrokken", "datumVerzoekDwangakkoord"),
    ),
    ("oplossing", ("startdatum", "einddatum")),
    ("nazorg", ("startdatum", "einddatum")),
    ("uitstroom", ("datum", "datumBeeindigingsbeschikking")),
    ("informatieEnAdvies", ("startdatum", "einddatum")),
)
_LIJSTEN: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("begeleiding", ("startdatum", "einddatum")),
    ("crisisinterventies", ("startdatum", "einddatum")),
    ("moratoria", ("datumAanvraag", "datumGoedkeuring", "startdatum", "einddatum")),
    ("voorlopigeVoorzieningen", ("startdatum", "einddatum")),
    ("schulden", ("peildatum",)),
)
# The parts with a startdatum/einddatum pair (schema); uitstroom has one date, no pair.
_PAREN = ("aanmelding", "intake", "stabilisatie", "oplossing", "nazorg", "informatieEnAdvies")
# A phase's date for the process order: the step date of steps.py (activity), startdatum first
# (uitstroom: datum first).
_FASE_SLEUTELS = tuple(
    (
        naam,
        ("datum", "datumAfronding", "startdatum")
        if naam == "uitstroom"
        else ("startdatum", "datum", "datumAfronding"),
    )
    for naam in STAPPEN
)
_IDENTITEIT = ("Geboortedatum", "Geslachtsaanduiding", "Postcode", "Huisnummer")

_MAX = "\U0010ffff"  # above every string: a limit that never fires
_MIN = ""  # below every string

_TRAJECTEN = "/schuldhulptrajecten/"
_SR_DATUMS = dict(_DATUMS)["schuldregeling"]
_MORATORIUM_DATUMS = dict(_LIJSTEN)["moratoria"]


def _fase_datum(part: dict[str, Any], i: int) -> Any:
    """A phase's date when its usual key is missing: the first present of its step keys."""
    for k in _FASE_SLEUTELS[i][1]:
        v = part.get(k)
        if v is not None:
            return v
    return None


def _paren_ok(items: list[dict[str, Any]], limit: str) -> bool:
    """Fast pass for a list of start/end items: no date after limit, no end before start."""
    for item in items:
        x, y = item.get("startdatum"), item.get("einddatum")
        if y is not None:
            if y > limit or (x is not None and y < x):
                return False
        elif x is not None and x > limit:
            return False
    return True


def _datum(value: object) -> str | None:
    """The YYYY-MM-DD of a date value, or None when it is not one (the schema reports that).

    Off the fast pass: that compares raw strings, this confirms a finding. Valid plain dates
    are remembered: a file holds a few thousand distinct ones (and a century 36,525).
    """
    if type(value) is not str:
        return None
    d = _DATUMS_GEZIEN.get(value)
    if d is not None:
        return d
    d = value[:10]
    if len(d) < 10 or not (d[4] == "-" and d[7] == "-" and d.isascii()):
        return None
    try:
        date.fromisoformat(d)  # a day that exists (not 2025-02-30)
    except ValueError:
        return None
    if len(value) == 10:
        _DATUMS_GEZIEN[value] = value
    return d


_DATUMS_GEZIEN: dict[str, str] = {}


def _bsn_feiten(client: dict[str, Any], raw: str) -> tuple[str, bool, bool]:
    """A client's BSN (a string) as the rules see it: the normalised BSN ("" when nothing is
    left), whether normalising changed it into 9 digits (bsn.genormaliseerd) and whether it
    passes the 11-check. A pseudonymised client (ddas.domain.pseudonym) carries these facts of
    its raw BSN in `bsnControle`, with the pseudonym of the normalised BSN in its place."""
    bc = client.get("bsnControle")
    if type(bc) is dict and type(p := bc.get("pseudoniem")) is str:
        leeg = bc.get("leeg") is True
        return "" if leeg else p, bc.get("genormaliseerd") is True, bc.get("elfproef") is True
    b = bsn_mod.normalise(raw)
    return b, b != raw and len(b) == 9, bsn_mod.is_valid(b)


def _dict(value: object) -> dict[str, Any] | None:
    return value if type(value) is dict else None


def _code_tonen(code: str) -> str:
    """A gemeentecode as it may appear in a message: only when it has the shape of a code
    (digits, optionally GM), so that a personal value typed in the wrong field never does."""
    c = code.strip()
    digits = c[2:].strip() if c[:2].upper() == "GM" else c
    if 0 < len(digits) <= 4 and digits.isascii() and digits.isdigit() and len(code) <= 10:
        return f"'{code}'"
    if c.lower() == "onbekend":
        return f"'{code}'"
    return "(geen geldige code)" if c else "(leeg)"


# -- the engine -----------------------------------------------------------------------------


class RuleEngine:
    """Applies the rules to one delivery, trajectory by trajectory, in file order.

    `aanleverdatum` is aanleverdatumEnTijd (or its date); `periode` is (startdatumLevering,
    einddatumLevering). Either may be None or invalid: the rules that need it are then skipped.

    State across trajectories stays small: per BSN one occurrence id (a list only for BSNs seen
    more than once) and per trajectory its start, end and pointer; dates are shared objects.
    """

    def __init__(
        self,
        aanleverdatum: str | None = None,
        periode: tuple[str | None, str | None] = (None, None),
    ) -> None:
        self.aanleverdatum = _datum(aanleverdatum)
        self.periode = (_datum(periode[0]), _datum(periode[1]))
        self._limit = self.aanleverdatum or _MAX
        self._ps = self.periode[0] or _MIN
        self._pe = self.periode[1] or _MAX
        self._codes = gemeenten.codes() | {gemeenten.ONBEKEND}
        # Cross-trajectory state for bsn.overlappende_trajecten. An occurrence id is
        # (trajectory number << 1) | client index.
        self._t_start: list[str | None] = []
        self._t_end: list[str | None] = []
        self._t_ptr: list[str] = []
        self._bsn_first: dict[str, int] = {}
        self._bsn_more: dict[str, list[int]] = {}
        self._dates: dict[str, str] = {}  # one object per distinct date string
        # Per levering (pointer): the organisation's municipality, and per trajectory code
        # [count, first trajectory pointer], for levering.andere_gemeente.
        self._org_code: dict[str, str] = {}
        self._lev_codes: dict[str, dict[str, list[Any]]] = {}
        self._lev_prefix = _MAX  # ".../schuldhulptrajecten/" of the levering last seen
        self._last_codes: dict[str, list[Any]] = {}
        self._tellers: dict[object, str] = {}
        self._lev_orgs: dict[str, list[tuple[str, str]]] = {}  # levering -> organisation keys

    @classmethod
    def for_root(cls, root: Mapping[str, Any]) -> RuleEngine:
        """An engine for the file whose root object (header) this is."""
        if not isinstance(root, Mapping):
            return cls()
        return cls(
            root.get("aanleverdatumEnTijd"),
            (root.get("startdatumLevering"), root.get("einddatumLevering")),
        )

    # -- root and levering ----------------------------------------------------------------

    def check_root(self, root: Mapping[str, Any]) -> list[Finding]:
        """The period: not reversed, not after the delivery. Leveringen are not looked at."""
        found: list[Finding] = []
        if not isinstance(root, Mapping):
            return found
        start, eind = _datum(root.get("startdatumLevering")), _datum(root.get("einddatumLevering"))
        if start and eind and eind < start:
            found.append(
                Finding(
                    "datum.einde_voor_start",
                    FOUT,
                    pointer("einddatumLevering"),
                    "einddatumLevering ligt voor startdatumLevering: de "
                    "rapportageperiode is omgedraaid.",
                )
            )
        for key, value in (("startdatumLevering", start), ("einddatumLevering", eind)):
            if value and value > self._limit:
                found.append(
                    Finding(
                        "datum.na_aanlevering",
                        WAARSCHUWING,
                        pointer(key),
                        f"{key} ligt na aanleverdatumEnTijd: de periode is nog "
                        "niet voorbij op het moment van aanleveren.",
                    )
                )
        return found

    def check_levering(self, levering: Mapping[str, Any], ptr: str) -> list[Finding]:
        """A levering's own fields (teller, organisation); its trajectories go one by one to
        `check_traject`, before or after this call. `ptr` is "/leveringen/<i>"."""
        found: list[Finding] = []
        if not isinstance(levering, Mapping):
            return found
        teller = levering.get("teller")
        if type(teller) is int:
            if self._tellers.get(teller, ptr) != ptr:
                found.append(
                    Finding(
                        "levering.teller_dubbel",
                        WAARSCHUWING,
                        ptr + "/teller",
                        f"Deze teller komt ook voor bij {self._tellers[teller]}; nummer de "
                        "leveringen in het bestand elk met een eigen teller.",
                    )
                )
            else:
                self._tellers[teller] = ptr
        org = _dict(levering.get("aanleverende_organisatie"))
        if org is None:
            return found
        optr = ptr + "/aanleverende_organisatie"
        keys: list[tuple[str, str]] = []
        code = org.get("gemeentecode")
        if type(code) is str:
            norm, changed = gemeenten.normalise(code)
            if norm != gemeenten.ONBEKEND and norm in self._codes:
                self._org_code[ptr] = norm
                keys.append(("gemeentecode", norm))
                if changed:
                    found.append(
                        Finding(
                            "gemeentecode.genormaliseerd",
                            WAARSCHUWING,
                            optr + "/gemeentecode",
                            f"Gemeentecode {_code_tonen(code)} is gelezen als '{norm}'; lever de "
                            "code zo: 4 cijfers, zonder 'GM' en zonder spaties.",
                        )
                    )
            elif norm != gemeenten.ONBEKEND:
                found.append(
                    Finding(
                        "organisatie.gemeentecode_onbekend",
                        WAARSCHUWING,
                        optr + "/gemeentecode",
                        f"Gemeentecode {_code_tonen(code)} van de aanleverende organisatie is geen "
                        "gemeente van 2025; vul hier de 4-cijferige CBS-code in als de organisatie "
                        "een gemeente is, of laat het veld weg.",
                    )
                )
        kvk = org.get("KvK-nummer")
        if type(kvk) is str and kvk.strip():
            keys.append(("KvK-nummer", kvk.strip()))
        if keys:
            self._lev_orgs[ptr] = keys  # levering.organisatie_dubbel, at the end of the file
        return found

    # -- one trajectory -------------------------------------------------------------------

    def check_traject(self, traject: Mapping[str, Any], ptr: str) -> list[Finding]:
        """The per-trajectory rules; also remembers what the cross-trajectory rules need.

        `ptr` is the trajectory's pointer, "/leveringen/<i>/schuldhulptrajecten/<j>"; the
        levering is taken from it.
        """
        if type(traject) is not dict:
            return []
        try:
            if self._fast(traject, ptr):
                return []
        except (TypeError, AttributeError):  # a part of the wrong type: the exact pass copes
            pass
        found = self._full(traject, ptr)
        self._remember(traject, ptr)
        return found

    def _fast(self, t: dict[str, Any], ptr: str) -> bool:
        """The common case in one pass: True when no per-trajectory rule can fire, and then
        the trajectory is recorded for the cross-trajectory rules; False (or TypeError /
        AttributeError on parts of the wrong type) when the exact pass must look, and then
        nothing was recorded.

        Dates are compared as strings (ISO dates order as strings); every condition here is
        implied by a finding of `_full`, so a False may be needless but a True is never wrong.
        Written out rather than table-driven: this runs 200,000 times per national file.
        """
        g = t.get  # (direct calls: cheaper than map(t.get, keys) by a factor of three)
        code = g("gemeentecode")
        if code not in self._codes:
            return False
        limit = self._limit
        clients, start, eind = g("client"), g("startdatum"), g("einddatum")
        tk = g("toekenningsdatum")
        a, intake, stab, sr = g("aanmelding"), g("intake"), g("stabilisatie"), g("schuldregeling")
        opl, nazorg, u = g("oplossing"), g("nazorg"), g("uitstroom")
        # Clients: 1 or 2, each a BSN of 9 ASCII digits passing the 11-check, not the same.
        b1 = b2 = None
        if clients is not None:
            if len(clients) > 2:
                return False
            for c in clients:
                bc = c.get("bsnControle")
                if bc is not None:  # pseudonymised (ddas.domain.pseudonym): the raw BSN's facts
                    if bc.get("elfproef") is not True or bc.get("genormaliseerd") is not False:
                        return False
                    b = bc.get("pseudoniem")
                    if type(b) is not str or b == b1:
                        return False
                else:
                    b = c.get("Burgerservicenummer")
                    if (
                        type(b) is not str
                        or len(b) != 9
                        or not b.isdigit()
                        or not b.isascii()
                        or b == b1
                        or b == "000000000"
                    ):
                        return False
                    v = b.encode()  # the 11-check as in bsn.is_valid, inline
                    if (
                        v[0] * 9
                        + v[1] * 8
                        + v[2] * 7
                        + v[3] * 6
                        + v[4] * 5
                        + v[5] * 4
                        + v[6] * 3
                        + v[7] * 2
                        - v[8]
                    ) % 11 != 7:
                        return False
                if b1 is None:
                    b1 = b
                else:
                    b2 = b
        # The phases: each part's dates not after aanlevering, einddatum not before its
        # startdatum, and the phase dates in process order (prev: the previous phase's date).
        prev = ""
        if a is not None:
            x, y = a.get("startdatum"), a.get("einddatum")
            if y is not None and (y > limit or (x is not None and y < x)):
                return False
            d = x if x is not None else _fase_datum(a, 0)
            if d is not None:
                if d > limit:
                    return False
                prev = d
        if intake is not None:
            x, y = intake.get("startdatum"), intake.get("einddatum")
            if y is not None and (y > limit or (x is not None and y < x)):
                return False
            y = intake.get("beschikkingsdatum")
            if y is not None and y > limit:
                return False
            d = x if x is not None else _fase_datum(intake, 1)
            if d is not None:
                if d > limit or d < prev:
                    return False
                prev = d
        if stab is not None:
            x, y = stab.get("startdatum"), stab.get("einddatum")
            if y is not None and (y > limit or (x is not None and y < x)):
                return False
            d = x if x is not None else _fase_datum(stab, 2)
            if d is not None:
                if d > limit or d < prev:
                    return False
                prev = d
        if sr is not None:
            for k in _SR_DATUMS:
                y = sr.get(k)
                if y is not None and y > limit:
                    return False
            d = sr.get("startdatum")
            if d is None:
                d = _fase_datum(sr, 3)
            if d is not None:
                if d > limit or d < prev:
                    return False
                prev = d
            y = sr.get("toegekend")
            if (tk is not None and y is not None and tk != y) or (
                not y and sr.get("dwangakkoord") is True
            ):
                return False
        if opl is not None:
            x, y = opl.get("startdatum"), opl.get("einddatum")
            if y is not None and (y > limit or (x is not None and y < x)):
                return False
            d = x if x is not None else _fase_datum(opl, 4)
            if d is not None:
                if d > limit or d < prev:
                    return False
                prev = d
        if nazorg is not None:
            x, y = nazorg.get("startdatum"), nazorg.get("einddatum")
            if y is not None and (y > limit or (x is not None and y < x)):
                return False
            d = x if x is not None else _fase_datum(nazorg, 5)
            if d is not None:
                if d > limit or d < prev:
                    return False
                prev = d
        if u is not None:
            x, y = u.get("datum"), u.get("datumBeeindigingsbeschikking")
            # einddatum = uitstroom.datum = uitstroom.datumBeeindigingsbeschikking (FAQ)
            if y is not None and (
                y > limit or (x is not None and y != x) or (eind is not None and y != eind)
            ):
                return False
            if x is not None:
                if eind is not None and x != eind:
                    return False
                d = x
            else:
                d = _fase_datum(u, 6)
            if d is not None and (d > limit or d < prev):
                return False
            if eind is None:
                eind = x
        # The trajectory: dates not after aanlevering, end not before start, in the period.
        if (tk is not None and tk > limit) or (start is not None and start > limit):
            return False
        if start is None and a is not None:
            start = a.get("startdatum")
        if eind is not None and (
            eind > limit or eind < self._ps or (start is not None and eind < start)
        ):
            return False
        if start is not None and start > self._pe:
            return False
        # The other parts: their dates only.
        pva, ia, beg, crisis = (
            g("planVanAanpak"),
            g("informatieEnAdvies"),
            g("begeleiding"),
            g("crisisinterventies"),
        )
        mora, vovo, schulden = g("moratoria"), g("voorlopigeVoorzieningen"), g("schulden")
        if pva is not None:
            y = pva.get("datumAfronding")
            if y is not None and y > limit:
                return False
        if ia is not None:
            x, y = ia.get("startdatum"), ia.get("einddatum")
            if (y is not None and (y > limit or (x is not None and y < x))) or (
                x is not None and x > limit
            ):
                return False
        if beg is not None and not _paren_ok(beg, limit):
            return False
        if crisis is not None and not _paren_ok(crisis, limit):
            return False
        if vovo is not None and not _paren_ok(vovo, limit):
            return False
        if mora is not None:
            for m in mora:
                for k in _MORATORIUM_DATUMS:
                    y = m.get(k)
                    if y is not None and y > limit:
                        return False
                x, y = m.get("startdatum"), m.get("einddatum")
                if x is not None and y is not None and y < x:
                    return False
        if schulden is not None:
            for sch in schulden:
                y = sch.get("peildatum")
                if y is not None and y > limit:
                    return False
        # Clean: record what the cross-trajectory rules need.
        self._record(code, b1, b2, start, eind, ptr)
        return True

    def _full(self, t: dict[str, Any], ptr: str) -> list[Finding]:
        """The per-trajectory rules, exactly, with a finding for each violation."""
        found: list[Finding] = []
        self._gemeentecode(t, ptr, found)
        self._clients(t, ptr, found)
        self._dates_and_order(t, ptr, found)
        self._consistency(t, ptr, found)
        return found

    def _gemeentecode(self, t: dict[str, Any], ptr: str, found: list[Finding]) -> None:
        code = t.get("gemeentecode")
        if type(code) is not str:  # missing or wrong type: the schema check's finding
            return
        norm, changed = gemeenten.normalise(code)
        if norm not in self._codes:
            found.append(
                Finding(
                    "gemeentecode.onbekend",
                    FOUT,
                    ptr + "/gemeentecode",
                    f"Gemeentecode {_code_tonen(code)} is geen gemeente van 2025 en niet "
                    "'Onbekend'; gebruik de 4-cijferige CBS-code van de gemeente waaronder het "
                    "traject valt, of 'Onbekend'.",
                )
            )
        elif changed:
            found.append(
                Finding(
                    "gemeentecode.genormaliseerd",
                    WAARSCHUWING,
                    ptr + "/gemeentecode",
                    f"Gemeentecode {_code_tonen(code)} is gelezen als '{norm}'; lever de code zo: "
                    "4 cijfers (zonder 'GM' en zonder spaties) of 'Onbekend'.",
                )
            )

    def _clients(self, t: dict[str, Any], ptr: str, found: list[Finding]) -> None:
        clients = t.get("client")
        if type(clients) is not list:
            return
        seen: dict[str, int] = {}
        for i, c in enumerate(clients):
            if type(c) is not dict:
                continue
            raw = c.get("Burgerservicenummer")
            if type(raw) is not str or not raw.strip():
                # Absent or empty (not of another type: the schema's finding): the client must
                # then be identified by the four fields.
                if (raw is None or type(raw) is str) and not all(
                    type(c.get(k)) is str and c[k].strip() for k in _IDENTITEIT
                ):
                    found.append(
                        Finding(
                            "client.niet_identificeerbaar",
                            WAARSCHUWING,
                            f"{ptr}/client/{i}",
                            "Cliënt zonder BSN en zonder de volledige combinatie geboortedatum, "
                            "geslacht, postcode en huisnummer: deze cliënt telt in geen "
                            "telling van unieke cliënten mee. Lever het BSN mee.",
                        )
                    )
                continue
            bptr = f"{ptr}/client/{i}/Burgerservicenummer"
            b, genormaliseerd, elfproef = _bsn_feiten(c, raw)
            if genormaliseerd:
                found.append(
                    Finding(
                        "bsn.genormaliseerd",
                        WAARSCHUWING,
                        bptr,
                        "Het BSN bevat andere tekens dan cijfers of heeft 8 cijfers; het is gelezen "
                        "als 9 cijfers. Lever het BSN als precies 9 cijfers.",
                    )
                )
            if not elfproef:
                found.append(
                    Finding(
                        "bsn.elfproef",
                        WAARSCHUWING,
                        bptr,
                        "Het BSN voldoet niet aan de elfproef of heeft geen 9 cijfers; controleer "
                        "het nummer. Het traject telt wel mee.",
                    )
                )
            if b in seen:
                found.append(
                    Finding(
                        "bsn.dubbel_in_traject",
                        FOUT,
                        bptr,
                        f"Dit BSN staat ook bij client/{seen[b]} van hetzelfde traject; een traject "
                        "heeft één cliënt of twee verschillende (partners).",
                    )
                )
            else:
                seen[b] = i

    def _dates_and_order(self, t: dict[str, Any], ptr: str, found: list[Finding]) -> None:
        limit = self.aanleverdatum
        late: list[str] = []  # pointers of dates after aanlevering
        # (pointer below the trajectory, part, its date keys, whether it has a start/end pair)
        parts: list[tuple[str, dict[str, Any], tuple[str, ...], bool]] = [
            ("", t, _DATUMS_TOP, False)
        ]
        for name, keys in _DATUMS:
            part = t.get(name)
            if type(part) is dict:
                parts.append(("/" + name, part, keys, name in _PAREN))
        for name, keys in _LIJSTEN:
            items = t.get(name)
            if type(items) is list:
                parts.extend(
                    (f"/{name}/{i}", item, keys, "startdatum" in keys)
                    for i, item in enumerate(items)
                    if type(item) is dict
                )
        for rel, part, keys, paar in parts:
            if limit is not None:
                for k in keys:
                    v = part.get(k)
                    if v is not None and (d := _datum(v)) is not None and d > limit:
                        late.append(f"{ptr}{rel}/{k}")
            if paar:
                b, e = _datum(part.get("startdatum")), _datum(part.get("einddatum"))
                if b and e and e < b:
                    found.append(
                        Finding(
                            "datum.einde_voor_start",
                            FOUT,
                            f"{ptr}{rel}/einddatum",
                            f"De einddatum van {rel[1:]} ligt voor de startdatum; een einddatum "
                            "ligt op of na de startdatum.",
                        )
                    )
        if late:
            rest = f" (en {len(late) - 1} andere datum(s) in dit traject)" if len(late) > 1 else ""
            found.append(
                Finding(
                    "datum.na_aanlevering",
                    WAARSCHUWING,
                    late[0],
                    f"Deze datum ligt na de aanleverdatum (aanleverdatumEnTijd){rest}; lever geen "
                    "geplande of toekomstige datums.",
                )
            )

        # The trajectory as a whole: its end not before its start.
        start, s_key = self._traject_start(t)
        eind, e_key = self._traject_eind(t)
        if start and eind and eind < start:
            found.append(
                Finding(
                    "datum.einde_voor_start",
                    FOUT,
                    f"{ptr}/{e_key}",
                    f"{e_key.replace('/', '.')} ligt voor de start van het traject "
                    f"({s_key.replace('/', '.')}); een traject eindigt op of na zijn start.",
                )
            )
        # ... and inside the period, at least in part.
        if (eind and self.periode[0] and eind < self.periode[0]) or (
            start and self.periode[1] and start > self.periode[1]
        ):
            voor = bool(eind and self.periode[0] and eind < self.periode[0])
            found.append(
                Finding(
                    "traject.buiten_periode",
                    WAARSCHUWING,
                    ptr,
                    "Het traject " + ("eindigt voor" if voor else "begint na") + " de "
                    "rapportageperiode: het telt mee in 'Aantal trajecten' maar kan niet actief "
                    "zijn. Lever alleen trajecten die de periode overlappen.",
                )
            )

        # The phases in process order.
        prev: tuple[str, str] | None = None
        for name, keys in _FASE_SLEUTELS:
            part = t.get(name)
            if type(part) is not dict:
                continue
            for key in keys:  # the phase's date: the first of its keys that is present
                value = part.get(key)
                if value is not None:
                    break
            else:
                continue
            d = _datum(value)
            if d is None:
                continue
            if prev is not None and d < prev[0]:
                found.append(
                    Finding(
                        "fase.volgorde",
                        WAARSCHUWING,
                        f"{ptr}/{name}/{key}",
                        f"De fase {name} begint eerder dan de fase {prev[1]} die ervoor komt; "
                        "fasen volgen de procesvolgorde (" + ", ".join(STAPPEN) + ").",
                    )
                )
            prev = (d, name)

    @staticmethod
    def _traject_start(t: dict[str, Any]) -> tuple[str | None, str]:
        """The trajectory's start: startdatum, else aanmelding.startdatum (domain.md, inflow)."""
        if t.get("startdatum") is not None:
            return _datum(t["startdatum"]), "startdatum"
        a = _dict(t.get("aanmelding"))
        return (_datum(a.get("startdatum")) if a else None), "aanmelding/startdatum"

    @staticmethod
    def _traject_eind(t: dict[str, Any]) -> tuple[str | None, str]:
        """The trajectory's end: einddatum, else uitstroom.datum, else open (None)."""
        if t.get("einddatum") is not None:
            return _datum(t["einddatum"]), "einddatum"
        u = _dict(t.get("uitstroom"))
        return (_datum(u.get("datum")) if u else None), "uitstroom/datum"

    def _consistency(self, t: dict[str, Any], ptr: str, found: list[Finding]) -> None:
        u = _dict(t.get("uitstroom")) or {}
        eind = [
            (p, d)
            for p, d in (
                ("einddatum", _datum(t.get("einddatum"))),
                ("uitstroom/datum", _datum(u.get("datum"))),
                (
                    "uitstroom/datumBeeindigingsbeschikking",
                    _datum(u.get("datumBeeindigingsbeschikking")),
                ),
            )
            if d
        ]
        for p, d in eind[1:]:
            if d != eind[0][1]:
                found.append(
                    Finding(
                        "consistentie.einddatum",
                        WAARSCHUWING,
                        f"{ptr}/{p}",
                        f"{p.replace('/', '.')} verschilt van {eind[0][0].replace('/', '.')}; "
                        "einddatum, uitstroom.datum en uitstroom.datumBeeindigingsbeschikking horen "
                        "dezelfde datum te hebben.",
                    )
                )
                break
        sr = _dict(t.get("schuldregeling")) or {}
        tk, toegekend = _datum(t.get("toekenningsdatum")), _datum(sr.get("toegekend"))
        if tk and toegekend and tk != toegekend:
            found.append(
                Finding(
                    "consistentie.toekenningsdatum",
                    WAARSCHUWING,
                    f"{ptr}/toekenningsdatum",
                    "toekenningsdatum verschilt van schuldregeling.toegekend; beide horen de datum "
                    "van toekenning te zijn.",
                )
            )
        if sr.get("dwangakkoord") is True and not sr.get("toegekend"):
            found.append(
                Finding(
                    "consistentie.dwangakkoord",
                    WAARSCHUWING,
                    f"{ptr}/schuldregeling/dwangakkoord",
                    "dwangakkoord is true, maar schuldregeling.toegekend heeft geen datum; een "
                    "dwangakkoord hoort alleen bij een toegekende schuldregeling.",
                )
            )

    # -- what the cross-trajectory rules need ---------------------------------------------

    def _remember(self, t: dict[str, Any], ptr: str) -> None:
        """`_record` for a trajectory that needed the exact pass: any types, normalised."""
        raw = t.get("gemeentecode")
        code = gemeenten.normalise(raw)[0] if type(raw) is str else None
        bsns: list[str] = []
        clients = t.get("client")
        if type(clients) is list:
            for c in clients[:2]:  # more than 2 clients is a schema finding
                b = c.get("Burgerservicenummer") if type(c) is dict else None
                if type(b) is str:
                    b = _bsn_feiten(c, b)[0]
                    # the same BSN twice in one trajectory is bsn.dubbel_in_traject only
                    if b and b not in bsns:
                        bsns.append(b)
        start = t.get("startdatum")
        if start is None and type(a := t.get("aanmelding")) is dict:
            start = a.get("startdatum")
        eind = t.get("einddatum")
        if eind is None and type(u := t.get("uitstroom")) is dict:
            eind = u.get("datum")
        self._record(
            code,
            bsns[0] if bsns else None,
            bsns[1] if len(bsns) > 1 else None,
            start if type(start) is str else None,
            eind if type(eind) is str else None,
            ptr,
        )

    def _record(
        self,
        code: str | None,
        b1: str | None,
        b2: str | None,
        start: str | None,
        eind: str | None,
        ptr: str,
    ) -> None:
        """Remember a trajectory for the rules across trajectories: its (normalised)
        gemeentecode per levering, and per BSN the occurrence, with the trajectory's start,
        end and pointer. Values must be normalised and of the right type."""
        if code is not None:
            if not ptr.startswith(self._lev_prefix):  # a new levering (rare): find its pointer
                k = ptr.rfind(_TRAJECTEN)
                lev = ptr[:k] if k >= 0 else ""
                self._lev_prefix = ptr[: k + len(_TRAJECTEN)] if k >= 0 else _MAX
                self._last_codes = self._lev_codes.setdefault(lev, {})
            n = self._last_codes.get(code)
            if n is None:
                self._last_codes[code] = [1, ptr]
            else:
                n[0] += 1
        nr = len(self._t_ptr)
        self._t_ptr.append(ptr)
        if b1 is None:
            self._t_start.append(None)
            self._t_end.append(None)
            return
        # One object per distinct date: a few thousand dates for 200,000 trajectories.
        dates = self._dates
        self._t_start.append(None if start is None else dates.setdefault(start, start))
        self._t_end.append(None if eind is None else dates.setdefault(eind, eind))
        first, more = self._bsn_first, self._bsn_more
        occ = nr << 1
        f = first.setdefault(b1, occ)
        if f != occ:
            if (m := more.get(b1)) is None:
                more[b1] = [f, occ]
            else:
                m.append(occ)
        if b2 is not None:
            f = first.setdefault(b2, occ | 1)
            if f != occ | 1:
                if (m := more.get(b2)) is None:
                    more[b2] = [f, occ | 1]
                else:
                    m.append(occ | 1)

    def record(self, feit: RegelFeit, ptr: str) -> None:
        """Feed the cross-trajectory rules one trajectory's stored facts (what `check_traject`
        recorded for it, see `ChunkRuleEngine`), in file order, instead of the trajectory.
        The services check chunks apart and run `finish` over the stored facts of the whole
        delivery."""
        self._record(feit.gemeentecode, feit.bsn1, feit.bsn2, feit.start, feit.eind, ptr)

    def record_all(
        self, prefix: str, feiten: Iterable[tuple[int, RegelFeitWaarden | None]]
    ) -> None:
        """`record` for many trajectories of one levering in file order, each as (trajectory
        index, the RegelFeit's values as a tuple, or None: nothing to remember); `prefix` is
        the levering's pointer to its trajectories (`/leveringen/<i>/schuldhulptrajecten/`).

        The same as calling `_record` for each, with its body inlined (200,000 calls at a
        delivery's completion); a subclass that remembers otherwise gets its own `_record`."""
        if type(self)._record is not RuleEngine._record:
            for j, regel in feiten:
                if regel is not None:
                    self._record(*regel, prefix + str(j))
            return
        codes: dict[str, list[Any]] | None = None
        dates = self._dates.setdefault
        first = self._bsn_first.setdefault
        more = self._bsn_more
        t_ptr = self._t_ptr
        nr = len(t_ptr)
        add_ptr, add_start, add_end = t_ptr.append, self._t_start.append, self._t_end.append
        for j, regel in feiten:
            if regel is None:
                continue
            code, b1, b2, start, eind = regel
            ptr = prefix + str(j)
            if code is not None:
                if codes is None:
                    # as `_record`: every pointer here shares the prefix, so once per call
                    if not ptr.startswith(self._lev_prefix):
                        k = ptr.rfind(_TRAJECTEN)
                        lev = ptr[:k] if k >= 0 else ""
                        self._lev_prefix = ptr[: k + len(_TRAJECTEN)] if k >= 0 else _MAX
                        self._last_codes = self._lev_codes.setdefault(lev, {})
                    codes = self._last_codes
                n = codes.get(code)
                if n is None:
                    codes[code] = [1, ptr]
                else:
                    n[0] += 1
            add_ptr(ptr)
            if b1 is None:
                add_start(None)
                add_end(None)
                nr += 1
                continue
            add_start(None if start is None else dates(start, start))
            add_end(None if eind is None else dates(eind, eind))
            occ = nr << 1
            nr += 1
            f = first(b1, occ)
            if f != occ:
                if (m := more.get(b1)) is None:
                    more[b1] = [f, occ]
                else:
                    m.append(occ)
            if b2 is not None:
                f = first(b2, occ | 1)
                if f != occ | 1:
                    if (m := more.get(b2)) is None:
                        more[b2] = [f, occ | 1]
                    else:
                        m.append(occ | 1)

    # -- the end of the file --------------------------------------------------------------

    def finish(self) -> list[Finding]:
        """The rules across trajectories and leveringen, once every trajectory was seen."""
        return self._overlaps() + self._andere_gemeente() + self._organisatie_dubbel()

    def _overlaps(self) -> list[Finding]:
        """One BSN in trajectories whose [start, end] intervals overlap.

        Start: startdatum, else aanmelding.startdatum (without either: not evaluated). End:
        einddatum, else uitstroom.datum, else open. Two intervals overlap when one starts
        before the other ends, or both start on the same day; one ending on the day the other
        starts is a hand-over, not an overlap. Each occurrence overlapping an earlier one
        (by start) gets one finding naming the other place.
        """
        hits: list[tuple[int, Finding]] = []
        starts, ends, ptrs = self._t_start, self._t_end, self._t_ptr
        for occs in self._bsn_more.values():
            spans = []
            for occ in occs:
                s = _datum(starts[occ >> 1])
                e = ends[occ >> 1]
                if s is None or (e is not None and _datum(e) is None):
                    continue
                e = e[:10] if e is not None else _MAX
                if e >= s:  # an inverted interval is datum.einde_voor_start already
                    spans.append((s, e, occ))
            spans.sort()
            if len(spans) < 2:
                continue
            open_ = spans[0]  # the interval reaching furthest so far
            for span in spans[1:]:
                s, e, occ = span
                if s < open_[1] or s == open_[0]:
                    other = open_[2]
                    where = f"{ptrs[other >> 1]}/client/{other & 1}"
                    hits.append(
                        (
                            occ,
                            Finding(
                                "bsn.overlappende_trajecten",
                                WAARSCHUWING,
                                f"{ptrs[occ >> 1]}/client/{occ & 1}/Burgerservicenummer",
                                f"Dezelfde cliënt (BSN) staat ook in {where}, in een traject dat in tijd "
                                "overlapt met dit traject; controleer op een dubbele registratie.",
                            ),
                        )
                    )
                if e > open_[1]:
                    open_ = span
        hits.sort(key=lambda h: h[0])
        return [f for _, f in hits]

    def _andere_gemeente(self) -> list[Finding]:
        found = []
        for lev, org_code in self._org_code.items():
            for code, (n, first) in self._lev_codes.get(lev, {}).items():
                if code == org_code or code == gemeenten.ONBEKEND or code not in self._codes:
                    continue  # unknown codes are gemeentecode.onbekend already
                found.append(
                    Finding(
                        "levering.andere_gemeente",
                        WAARSCHUWING,
                        first + "/gemeentecode",
                        f"{n} traject(en) in deze levering hebben gemeentecode '{code}', terwijl de "
                        f"aanleverende organisatie gemeente '{org_code}' is (dit is het eerste); "
                        "lever per gemeente een eigen levering, tenzij de gemeente het traject "
                        "uitvoert voor de andere gemeente.",
                    )
                )
        return found

    def _organisatie_dubbel(self) -> list[Finding]:
        """Two leveringen of one organisation with trajectories of the same municipality."""
        found = []
        eerder: dict[tuple[str, str], list[str]] = {}  # organisation key -> its leveringen
        for lev, keys in self._lev_orgs.items():
            codes = self._lev_codes.get(lev, {}).keys()
            for key in keys:
                other = next(
                    (o for o in eerder.get(key, ()) if codes & self._lev_codes.get(o, {}).keys()),
                    None,
                )
                if other is not None:
                    found.append(
                        Finding(
                            "levering.organisatie_dubbel",
                            WAARSCHUWING,
                            lev + "/aanleverende_organisatie",
                            f"Deze organisatie (zelfde {key[0]}) levert in {other} ook trajecten "
                            "van dezelfde gemeente; lever per organisatie en gemeente één "
                            "levering, met al die trajecten.",
                        )
                    )
                    break
            for key in keys:
                eerder.setdefault(key, []).append(lev)
        return found


class RegelFeit(NamedTuple):
    """What the cross-trajectory rules keep of one trajectory: its normalised gemeentecode, its
    clients' (normalised) BSNs or pseudonyms, and its interval (start, end). Free of any other
    personal data; the services store it per trajectory (see `RuleEngine.record`)."""

    gemeentecode: str | None
    bsn1: str | None
    bsn2: str | None
    start: str | None
    eind: str | None


# A RegelFeit as a plain tuple, as the services store it.
RegelFeitWaarden = tuple[str | None, str | None, str | None, str | None, str | None]


class ChunkRuleEngine(RuleEngine):
    """A RuleEngine for a part of a delivery (a chunk): `check_traject_feit` gives a
    trajectory's findings and, instead of remembering it, what the cross-trajectory rules need
    of it. That `RegelFeit` is stored and fed to the delivery's own engine later with
    `RuleEngine.record`, in file order, before its `finish`."""

    _feit: RegelFeit | None = None

    def _record(
        self,
        code: str | None,
        b1: str | None,
        b2: str | None,
        start: str | None,
        eind: str | None,
        ptr: str,
    ) -> None:
        self._feit = RegelFeit(code, b1, b2, start, eind)

    def check_traject_feit(
        self, traject: Mapping[str, Any], ptr: str
    ) -> tuple[list[Finding], RegelFeit | None]:
        """`check_traject`, and the trajectory's `RegelFeit` (None: the rules keep nothing of
        it, e.g. when it is not an object)."""
        self._feit = None
        return self.check_traject(traject, ptr), self._feit


def check_document(root: Mapping[str, Any]) -> list[Finding]:
    """All rule findings of a decoded SHV file, in file order, then the cross-file rules."""
    engine = RuleEngine.for_root(root)
    found = engine.check_root(root)
    leveringen = root.get("leveringen") if isinstance(root, Mapping) else None
    if type(leveringen) is list:
        for i, lev in enumerate(leveringen):
            if not isinstance(lev, Mapping):
                continue
            lptr = pointer("leveringen", i)
            found += engine.check_levering(lev, lptr)
            trajecten = lev.get("schuldhulptrajecten")
            if type(trajecten) is list:
                for j, t in enumerate(trajecten):
                    found += engine.check_traject(t, f"{lptr}/schuldhulptrajecten/{j}")
    found += engine.finish()
    return found


_BEGIN, _END = "<!-- BEGIN rules table", "<!-- END rules table"


def write_rules_doc(path: str) -> None:
    """Replace the generated table in docs/rules.md (between its BEGIN and END markers)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    begin = text.index("\n", text.index(_BEGIN)) + 1
    end = text.index(_END)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text[:begin] + rules_markdown() + text[end:])


if __name__ == "__main__":
    # python -m ddas.domain.rules              print the table
    # python -m ddas.domain.rules docs/rules.md  regenerate the table in that file
    import sys

    if len(sys.argv) > 1:
        write_rules_doc(sys.argv[1])
    else:
        print(rules_markdown(), end="")
