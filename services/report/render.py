"""The report's renderings, all from the stored OOR JSON (nothing is counted here):

- `to_json`: the stored JSON itself (README.md, "The JSON");
- `to_csv_zip`: a zip with one CSV file per figure (`;`-separated, UTF-8 with BOM so that a
  Dutch spreadsheet opens it as it is), a row per municipality and a `Totaal` row;
- `to_html`: one self-contained page (Jinja2 template `templates/rapport.html.j2`: inline CSS,
  inline SVG charts, no script, no external asset), in Dutch, readable on a phone and printable;
- `headline_text`: the headline numbers as plain text (the e-mail).

The charts split the started phases and the last known phase per municipality. Municipalities
with fewer than 10 clients (Table 1's unique BSN's) and rows that are no municipality (no code,
`Onbekend`, an unknown code) are merged into "Overig", as the seed's OOR does; a national
delivery would have hundreds of series, so only the `MAX_REEKSEN` largest municipalities get a
series of their own and the others join "Overig" too (the tables show every municipality).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import jinja2
import msgspec

from ddas.domain import gemeenten
from ddas.domain.oor import BEGELEIDINGSSOORTEN, FASES, OPLOSSINGSSOORTEN, SCHULDSOORTEN
from ddas.domain.tables import LAATSTE_STAP_KOLOMMEN
from ddas.nl import datum

MIN_CLIENTEN: Final = 10
MAX_REEKSEN: Final = 10
OVERIG: Final = "Overig"
KLEUREN: Final = (
    "#1f5fa8",
    "#e07b00",
    "#2e8b57",
    "#c0392b",
    "#7d3c98",
    "#8c6d31",
    "#d35d9a",
    "#5f6b73",
    "#a8a800",
    "#1aa3a3",
)
KLEUR_OVERIG: Final = "#b9c2c9"
LABELS: Final = {
    "aanmelding": "Aanmelding",
    "intake": "Intake",
    "stabilisatie": "Stabilisatie",
    "schuldregeling": "Schuldregeling",
    "oplossing": "Oplossing",
    "nazorg": "Nazorg",
    "uitstroom": "Uitstroom",
    "onbekend": "Onbekend",
}
SCHULDSOORT_KOLOMMEN: Final = (*SCHULDSOORTEN, "onbekend")
# The last known phase: Table 2's columns without onbekend (oor.py's laatste_fase).
LAATSTE_FASE_KOLOMMEN: Final = tuple(k for k in LAATSTE_STAP_KOLOMMEN if k != "onbekend")
BEGELEIDING_KOLOMMEN: Final = (*BEGELEIDINGSSOORTEN, "onbekend")


# -- number formats (Dutch) -------------------------------------------------------------------


def getal(n: int | float | None) -> str:
    if n is None:
        return "–"
    return f"{n:,}".replace(",", ".")


def euro(n: int | None) -> str:
    return "–" if n is None else f"€ {getal(n)}"


def procent(x: float | None) -> str:
    return "–" if x is None else f"{x * 100:.1f}".replace(".", ",") + " %"


def periode_tekst(oor: dict[str, Any]) -> str:
    p = oor.get("periode")
    if not p:
        return "onbekend (de leverperiode is ongeldig)"
    return f"{datum(p['start'])} – {datum(p['eind'])}"


# -- JSON ---------------------------------------------------------------------------------------


def to_json(oor: dict[str, Any]) -> bytes:
    return msgspec.json.encode(oor)


# -- the charts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reeks:
    naam: str
    kleur: str
    waarden: dict[str, int]


@dataclass(frozen=True, slots=True)
class Segment:
    x: float
    breedte: float
    kleur: str
    titel: str


@dataclass(frozen=True, slots=True)
class Balk:
    label: str
    y: float
    segmenten: list[Segment]
    totaal: str
    eind: float


@dataclass(frozen=True, slots=True)
class Grafiek:
    titel: str
    hoogte: float
    balken: list[Balk]
    legenda: list[Reeks]
    balk_h: float = 18.0


def reeksen(oor: dict[str, Any], figuur: str, kolommen: Sequence[str]) -> list[Reeks]:
    """The chart's series: the larger municipalities, then "Overig" (see the module docstring)."""
    clienten = {r["gemeentecode"]: r["unieke_bsn"] for r in oor["tabellen"]["gemeenten"]}
    eigen, overig = [], dict.fromkeys(kolommen, 0)
    for rij in oor["gemeenten"]:
        code = rij["gemeentecode"]
        if code in gemeenten.codes() and clienten.get(code, 0) >= MIN_CLIENTEN:
            eigen.append((clienten[code], rij))
        else:
            for k in kolommen:
                overig[k] += rij[figuur].get(k, 0)
    eigen.sort(key=lambda e: (-e[0], e[1]["gemeentecode"]))
    for _, rij in eigen[MAX_REEKSEN:]:
        for k in kolommen:
            overig[k] += rij[figuur].get(k, 0)
    result = [
        Reeks(
            f"{rij['naam']} ({rij['gemeentecode']})", KLEUREN[i % len(KLEUREN)], dict(rij[figuur])
        )
        for i, (_, rij) in enumerate(eigen[:MAX_REEKSEN])
    ]
    if any(overig.values()) or not result:
        result.append(Reeks(OVERIG, KLEUR_OVERIG, overig))
    return result


LABEL_W: Final = 120.0
BALK_W: Final = 440.0
RIJ_H: Final = 30.0


def gestapeld(titel: str, kolommen: Sequence[str], series: list[Reeks]) -> Grafiek:
    """A horizontal stacked bar per column (phase), a segment per series."""
    totalen = {k: sum(s.waarden.get(k, 0) for s in series) for k in kolommen}
    schaal = BALK_W / max(1, max(totalen.values(), default=0))
    balken = []
    for i, k in enumerate(kolommen):
        x = LABEL_W
        segmenten = []
        for s in series:
            v = s.waarden.get(k, 0)
            if v:
                w = v * schaal
                segmenten.append(Segment(x, w, s.kleur, f"{s.naam}: {getal(v)}"))
                x += w
        balken.append(Balk(LABELS.get(k, k), 8 + i * RIJ_H, segmenten, getal(totalen[k]), x))
    return Grafiek(titel, 16 + len(kolommen) * RIJ_H, balken, series)


def schuld_grafiek(schulden: dict[str, Any]) -> Grafiek:
    """Two bars per schuldsoort: its share of the number of debts and of their amount."""
    per = schulden["per_schuldsoort"]
    blauw, oranje = (
        Reeks("aandeel in aantal", "#1f5fa8", {}),
        Reeks("aandeel in bedrag", "#e07b00", {}),
    )
    balken = []
    y = 8.0
    for k in SCHULDSOORT_KOLOMMEN:
        for reeks, veld in ((blauw, "aandeel_aantal"), (oranje, "aandeel_bedrag")):
            aandeel = per[k][veld] or 0.0
            w = BALK_W * aandeel
            seg = (
                [
                    Segment(
                        LABEL_W,
                        w,
                        reeks.kleur,
                        f"{LABELS.get(k, k)}, {reeks.naam}: {procent(per[k][veld])}",
                    )
                ]
                if w
                else []
            )
            label = LABELS.get(k, k) if veld == "aandeel_aantal" else ""
            balken.append(Balk(label, y, seg, procent(per[k][veld]), LABEL_W + w))
            y += 16
        y += 10
    return Grafiek("Soort schuld (in %)", y + 8, balken, [blauw, oranje], balk_h=13.0)


# -- HTML ---------------------------------------------------------------------------------------

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("services.report", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters.update(getal=getal, euro=euro, procent=procent, datum=datum)


def to_html(oor: dict[str, Any], *, versie: int | None = None) -> str:
    totaal = oor["totaal"]
    fases_grafiek = gestapeld(
        "Gestarte fases in rapportageperiode", FASES, reeksen(oor, "gestarte_fases", FASES)
    )
    laatste_kolommen = LAATSTE_FASE_KOLOMMEN
    laatste_grafiek = gestapeld(
        "Laatste bekende fase in rapportageperiode",
        laatste_kolommen,
        reeksen(oor, "laatste_fase", laatste_kolommen),
    )
    return _env.get_template("rapport.html.j2").render(
        oor=oor,
        versie=versie,
        periode=periode_tekst(oor),
        labels=LABELS,
        fases=FASES,
        laatste_kolommen=laatste_kolommen,
        stap_kolommen=LAATSTE_STAP_KOLOMMEN,
        begeleiding_kolommen=BEGELEIDING_KOLOMMEN,
        oplossingen=OPLOSSINGSSOORTEN,
        schuldsoorten=SCHULDSOORT_KOLOMMEN,
        grafieken=[fases_grafiek, laatste_grafiek],
        schuld=schuld_grafiek(totaal["schulden"]),
        label_w=LABEL_W,
        balk_w=BALK_W,
    )


# -- plain text (the e-mail) --------------------------------------------------------------------


def headline_text(oor: dict[str, Any]) -> str:
    lev, v, t = oor["levering"], oor["validatie"], oor["totaal"]
    tab = oor["tabellen"]["totaal"]
    wie = lev["organisatie_naam"] or lev["organisatie"]
    regels = [
        f"Het op-orde-rapport van uw levering voor {wie} is klaar.",
        "",
        f"Levering:            {lev['id']}",
        f"Rapportageperiode:   {periode_tekst(oor)}",
        f"Oordeel:             {'op orde' if v['op_orde'] else 'niet op orde'}"
        + (f" (afgekeurd: {v['afkeuring']})" if v["afkeuring"] else ""),
        f"Bevindingen:         {getal(v['fouten'])} fouten, {getal(v['waarschuwingen'])} waarschuwingen",
        f"Trajecten:           {getal(tab['trajecten'])}",
        f"Unieke cliënten:     {getal(tab['unieke_bsn'])} (actief: {getal(tab['unieke_actieve_bsn'])})",
        f"Nieuwe instroom:     {getal(t['instroom']['clienten'])} cliënten",
        f"Totaal schulden:     {euro(t['schulden']['totaal_bedrag'])}",
        "",
        "Bekijk het volledige rapport en keur het goed of trek de levering in via de link hieronder.",
    ]
    return "\n".join(regels)


# -- CSV ----------------------------------------------------------------------------------------


def _rijen(oor: dict[str, Any], tabel: bool = False) -> Iterable[tuple[str, str, dict[str, Any]]]:
    bron = oor["tabellen"] if tabel else oor
    for rij in bron["gemeenten"]:
        yield rij["gemeentecode"] or "", rij["naam"], rij
    yield "Totaal", "", bron["totaal"]


def csv_tables(oor: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """Every figure as a table: file name -> rows (the first is the header)."""
    kop = ["gemeentecode", "gemeente"]
    tables: dict[str, list[list[Any]]] = {}
    v = oor["validatie"]
    tables["validatie.csv"] = [
        ["code", "ernst", "aantal", "voorbeeld_pointer", "voorbeeld_melding"]
    ] + [
        [r["code"], r["ernst"], r["aantal"], r["voorbeeld"]["pointer"], r["voorbeeld"]["melding"]]
        for r in v["per_regel"]
    ]
    tables["tabel1_trajecten_clienten.csv"] = [
        [*kop, "trajecten", "unieke_bsns", "unieke_actieve_bsns"]
    ] + [
        [c, n, r["trajecten"], r["unieke_bsn"], r["unieke_actieve_bsn"]]
        for c, n, r in _rijen(oor, tabel=True)
    ]
    tables["tabel2_meest_recente_stap.csv"] = [[*kop, *LAATSTE_STAP_KOLOMMEN, "totaal"]] + [
        [
            c,
            n,
            *(r["laatste_stap"][k] for k in LAATSTE_STAP_KOLOMMEN),
            sum(r["laatste_stap"].values()),
        ]
        for c, n, r in _rijen(oor, tabel=True)
    ]
    tables["instroom.csv"] = [[*kop, "nieuwe_clienten", "uitgestroomd", "actief"]] + [
        [c, n, r["instroom"]["clienten"], r["instroom"]["uitgestroomd"], r["instroom"]["actief"]]
        for c, n, r in _rijen(oor)
    ]
    tables["begeleiding.csv"] = [[*kop, "clienten", *BEGELEIDING_KOLOMMEN]] + [
        [
            c,
            n,
            r["begeleiding"]["clienten"],
            *(r["begeleiding"]["per_soort"][k] for k in BEGELEIDING_KOLOMMEN),
        ]
        for c, n, r in _rijen(oor)
    ]
    tables["gestarte_fases.csv"] = [[*kop, *FASES]] + [
        [c, n, *(r["gestarte_fases"][k] for k in FASES)] for c, n, r in _rijen(oor)
    ]
    laatste = LAATSTE_FASE_KOLOMMEN
    tables["laatste_fase.csv"] = [[*kop, *laatste]] + [
        [c, n, *(r["laatste_fase"][k] for k in laatste)] for c, n, r in _rijen(oor)
    ]
    tables["schulden.csv"] = [
        [*kop, "actieve_trajecten", "totaal_bedrag", "met_oplossing", *OPLOSSINGSSOORTEN]
    ] + [
        [
            c,
            n,
            r["schulden"]["trajecten"],
            r["schulden"]["totaal_bedrag"],
            r["schulden"]["met_oplossing"],
            *(r["schulden"]["per_oplossing"][k] for k in OPLOSSINGSSOORTEN),
        ]
        for c, n, r in _rijen(oor)
    ]
    tables["schuldsoorten.csv"] = [
        [*kop, "schuldsoort", "aantal", "bedrag", "aandeel_aantal", "aandeel_bedrag"]
    ] + [
        [
            c,
            n,
            k,
            s["aantal"],
            s["bedrag"],
            _fraction(s["aandeel_aantal"]),
            _fraction(s["aandeel_bedrag"]),
        ]
        for c, n, r in _rijen(oor)
        for k in SCHULDSOORT_KOLOMMEN
        for s in (r["schulden"]["per_schuldsoort"][k],)
    ]
    return tables


def _fraction(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}".replace(".", ",")


def to_csv_zip(oor: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, rows in csv_tables(oor).items():
            text = io.StringIO()
            csv.writer(text, delimiter=";", lineterminator="\r\n").writerows(rows)
            z.writestr(name, "\ufeff" + text.getvalue())
    return out.getvalue()
