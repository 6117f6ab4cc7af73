"""The rules beyond the schema: each rule fires where it should and stays quiet where it should
not, findings point at real places and carry no personal value, the fast pass never hides a
finding of the exact pass, and docs/rules.md lists exactly the registry."""

from __future__ import annotations

import copy
import io
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ddas.domain.findings import Ernst, Finding
from ddas.domain.rules import RULES, RuleEngine, check_document, rules_markdown
from ddas.generate import Options, generate

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
EXAMPLES = SHARED / "ddas/examples/ddas-app"
SPEC = SHARED / "ddas/spec/schuldhulpverlening-v1.0"
FILE_750 = EXAMPLES / "testbestand_schuldhulpverlening_750.json"

BSN1, BSN2, BSN3 = "123456782", "111222333", "010000008"  # pass the 11-check


def traject(**extra: Any) -> dict[str, Any]:
    """A trajectory on which no rule fires; keyword arguments replace parts of it."""
    t: dict[str, Any] = {
        "gemeentecode": "0599",
        "startdatum": "2025-03-01",
        "einddatum": "2025-09-01",
        "client": [{"Burgerservicenummer": BSN1}],
        "aanmelding": {
            "crisisinterventie": False,
            "startdatum": "2025-03-01",
            "einddatum": "2025-03-05",
        },
        "intake": {
            "startdatum": "2025-03-10",
            "einddatum": "2025-03-20",
            "beschikkingsdatum": "2025-03-21",
            "beschikkingssoort": "Toelatingsbeschikking",
        },
        "stabilisatie": {"startdatum": "2025-03-25", "einddatum": "2025-05-01"},
        "schuldregeling": {"datum": "2025-05-01", "toegekend": "2025-05-10"},
        "toekenningsdatum": "2025-05-10",
        "oplossing": {
            "soort": "Schuldbemiddeling",
            "startdatum": "2025-05-15",
            "einddatum": "2025-09-01",
        },
        "nazorg": {"startdatum": "2025-06-01", "einddatum": "2025-08-01"},
        "uitstroom": {"datum": "2025-09-01", "reden": "Afgerond"},
        "begeleiding": [{"soort": "Budgetbeheer", "startdatum": "2025-04-01"}],
        "schulden": [{"bedrag": 100, "peildatum": "2025-03-10", "schuldsoort": "Zorg"}],
    }
    t.update(extra)
    return t


def document(
    *trajecten: dict[str, Any], leveringen: list[dict[str, Any]] | None = None, **root: Any
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "startdatumLevering": "2025-01-01",
        "einddatumLevering": "2025-12-31",
        "aanleverdatumEnTijd": "2026-01-15T10:30:00Z",
        "codeGegevensleverancier": "TEST",
        "leveringen": leveringen
        if leveringen is not None
        else [
            {
                "teller": 1,
                "aanleverende_organisatie": {"(Statutaire) Naam": "Kredietbank"},
                "schuldhulptrajecten": list(trajecten),
            }
        ],
    }
    doc.update(root)
    return doc


def levering(teller: int, org: dict[str, Any], *trajecten: dict[str, Any]) -> dict[str, Any]:
    return {
        "teller": teller,
        "aanleverende_organisatie": org,
        "schuldhulptrajecten": list(trajecten),
    }


def with_part(part: str, **fields: Any) -> dict[str, Any]:
    """The clean trajectory with some fields of one part changed (None removes a field)."""
    t = traject()
    for key, value in fields.items():
        if value is None:
            t[part].pop(key, None)
        else:
            t[part][key] = value
    return t


def kort(start: str, eind: str | None = None, **extra: Any) -> dict[str, Any]:
    """A short clean trajectory from start to eind (open without eind)."""
    t: dict[str, Any] = {
        "gemeentecode": "0599",
        "startdatum": start,
        "client": [{"Burgerservicenummer": BSN1}],
    }
    if eind is not None:
        t["einddatum"] = eind
        t["uitstroom"] = {"datum": eind, "reden": "Afgerond"}
    t.update(extra)
    return t


def without(*keys: str, **extra: Any) -> dict[str, Any]:
    t = traject(**extra)
    for k in keys:
        t.pop(k)
    return t


P = "/leveringen/0/schuldhulptrajecten"

# Per rule: cases that must fire it (with the pointer of the first finding) and cases that must
# give no finding at all. Each a document builder, so that every case starts from fresh data.
Case = tuple[str, Callable[[], dict[str, Any]], str | None]
FIRES: list[Case] = [
    (
        "gemeentecode.onbekend",
        lambda: document(traject(gemeentecode="0154")),
        f"{P}/0/gemeentecode",
    ),
    (
        "gemeentecode.onbekend",
        lambda: document(traject(gemeentecode="GM002")),
        f"{P}/0/gemeentecode",
    ),
    ("gemeentecode.onbekend", lambda: document(traject(gemeentecode="")), f"{P}/0/gemeentecode"),
    (
        "gemeentecode.genormaliseerd",
        lambda: document(traject(gemeentecode="GM0599")),
        f"{P}/0/gemeentecode",
    ),
    (
        "gemeentecode.genormaliseerd",
        lambda: document(traject(gemeentecode="599")),
        f"{P}/0/gemeentecode",
    ),
    (
        "gemeentecode.genormaliseerd",
        lambda: document(traject(gemeentecode=" 0599 ")),
        f"{P}/0/gemeentecode",
    ),
    (
        "organisatie.gemeentecode_onbekend",
        lambda: document(leveringen=[levering(1, {"gemeentecode": "afwijzing"}, traject())]),
        "/leveringen/0/aanleverende_organisatie/gemeentecode",
    ),
    (
        "bsn.elfproef",
        lambda: document(traject(client=[{"Burgerservicenummer": "123456789"}])),
        f"{P}/0/client/0/Burgerservicenummer",
    ),
    (
        "bsn.elfproef",
        lambda: document(
            traject(client=[{"Burgerservicenummer": BSN2}, {"Burgerservicenummer": "1234567"}])
        ),
        f"{P}/0/client/1/Burgerservicenummer",
    ),
    (
        "bsn.genormaliseerd",
        lambda: document(traject(client=[{"Burgerservicenummer": "123 456 782"}])),
        f"{P}/0/client/0/Burgerservicenummer",
    ),
    (
        "bsn.genormaliseerd",
        lambda: document(traject(client=[{"Burgerservicenummer": "10000008"}])),
        f"{P}/0/client/0/Burgerservicenummer",
    ),
    (
        "bsn.dubbel_in_traject",
        lambda: document(
            traject(client=[{"Burgerservicenummer": BSN1}, {"Burgerservicenummer": BSN1}])
        ),
        f"{P}/0/client/1/Burgerservicenummer",
    ),
    (
        "bsn.dubbel_in_traject",
        lambda: document(
            traject(client=[{"Burgerservicenummer": BSN1}, {"Burgerservicenummer": "123-456-782"}])
        ),
        f"{P}/0/client/1/Burgerservicenummer",
    ),
    (
        "bsn.overlappende_trajecten",
        lambda: document(  # the second starts before the first ends
            kort("2025-03-01", "2025-09-01"), kort("2025-08-01", "2025-10-01", gemeentecode="0503")
        ),
        f"{P}/1/client/0/Burgerservicenummer",
    ),
    (
        "bsn.overlappende_trajecten",
        lambda: document(  # an open one, the partner comes back
            kort(
                "2025-03-01", client=[{"Burgerservicenummer": BSN2}, {"Burgerservicenummer": BSN1}]
            ),
            kort("2025-11-01"),
        ),
        f"{P}/1/client/0/Burgerservicenummer",
    ),
    (
        "bsn.overlappende_trajecten",
        lambda: document(  # both on one and the same day
            kort("2025-03-01", "2025-03-01"), kort("2025-03-01", "2025-03-01")
        ),
        f"{P}/1/client/0/Burgerservicenummer",
    ),
    (
        "client.niet_identificeerbaar",
        lambda: document(traject(client=[{"Geboortedatum": "1980-01-01", "Postcode": "1234 AB"}])),
        f"{P}/0/client/0",
    ),
    (
        "client.niet_identificeerbaar",
        lambda: document(traject(client=[{"Burgerservicenummer": "  "}])),
        f"{P}/0/client/0",
    ),
    (
        "datum.einde_voor_start",
        lambda: document(with_part("intake", einddatum="2025-03-09")),
        f"{P}/0/intake/einddatum",
    ),
    (
        "datum.einde_voor_start",
        lambda: document(
            traject(begeleiding=[{"startdatum": "2025-04-01", "einddatum": "2025-03-31"}])
        ),
        f"{P}/0/begeleiding/0/einddatum",
    ),
    (
        "datum.einde_voor_start",
        lambda: document(
            without(
                "einddatum",
                uitstroom={"datum": "2025-02-01"},
                startdatum="2025-02-02",
                aanmelding={"startdatum": "2025-02-02"},
            )
        ),
        f"{P}/0/uitstroom/datum",
    ),
    (
        "datum.einde_voor_start",
        lambda: document(traject(), einddatumLevering="2024-12-31"),
        "/einddatumLevering",
    ),
    (
        "datum.na_aanlevering",
        lambda: document(
            traject(begeleiding=[{"startdatum": "2025-04-01", "einddatum": "2026-01-16"}])
        ),
        f"{P}/0/begeleiding/0/einddatum",
    ),
    (
        "datum.na_aanlevering",
        lambda: document(traject(), aanleverdatumEnTijd="2025-12-01T00:00:00Z"),
        "/einddatumLevering",
    ),
    (
        "fase.volgorde",
        lambda: document(with_part("stabilisatie", startdatum="2025-03-09")),
        f"{P}/0/stabilisatie/startdatum",
    ),
    (
        "fase.volgorde",
        lambda: document(with_part("nazorg", startdatum="2025-05-14")),
        f"{P}/0/nazorg/startdatum",
    ),
    (
        "consistentie.einddatum",
        lambda: document(traject(einddatum="2025-09-02")),
        f"{P}/0/uitstroom/datum",
    ),
    (
        "consistentie.einddatum",
        lambda: document(with_part("uitstroom", datumBeeindigingsbeschikking="2025-09-03")),
        f"{P}/0/uitstroom/datumBeeindigingsbeschikking",
    ),
    (
        "consistentie.toekenningsdatum",
        lambda: document(traject(toekenningsdatum="2025-05-11")),
        f"{P}/0/toekenningsdatum",
    ),
    (
        "consistentie.dwangakkoord",
        lambda: document(traject(schuldregeling={"datum": "2025-05-01", "dwangakkoord": True})),
        f"{P}/0/schuldregeling/dwangakkoord",
    ),
    (
        "traject.buiten_periode",
        lambda: document(traject(), startdatumLevering="2025-10-01"),
        f"{P}/0",
    ),
    (
        "traject.buiten_periode",
        lambda: document(traject(), einddatumLevering="2025-02-28"),
        f"{P}/0",
    ),
    (
        "levering.andere_gemeente",
        lambda: document(
            leveringen=[
                levering(
                    1,
                    {"gemeentecode": "0599"},
                    traject(),
                    traject(gemeentecode="0503"),
                    traject(gemeentecode="0503"),
                )
            ]
        ),
        f"{P}/1/gemeentecode",
    ),
    (
        "levering.organisatie_dubbel",
        lambda: document(
            leveringen=[
                levering(1, {"KvK-nummer": "12345678"}, kort("2025-03-01", gemeentecode="0503")),
                levering(
                    2,
                    {"KvK-nummer": "12345678"},
                    kort("2025-03-01", gemeentecode="0599"),
                    kort("2025-03-01", gemeentecode="0503", client=[{"Burgerservicenummer": BSN2}]),
                ),
            ]
        ),
        "/leveringen/1/aanleverende_organisatie",
    ),
    (
        "levering.organisatie_dubbel",
        lambda: document(
            leveringen=[
                levering(1, {"gemeentecode": "0599"}, kort("2025-03-01")),
                levering(
                    2,
                    {"gemeentecode": "GM0599"},
                    kort("2025-03-01", client=[{"Burgerservicenummer": BSN2}]),
                ),
            ]
        ),
        "/leveringen/1/aanleverende_organisatie",
    ),
    (
        "levering.teller_dubbel",
        lambda: document(
            leveringen=[levering(1, {"KvK-nummer": "1"}), levering(1, {"KvK-nummer": "2"})]
        ),
        "/leveringen/1/teller",
    ),
]
QUIET: list[tuple[str, Callable[[], dict[str, Any]]]] = [
    ("gemeentecode.onbekend", lambda: document(traject(gemeentecode="Onbekend"))),
    ("gemeentecode.genormaliseerd", lambda: document(traject(gemeentecode="0014"))),
    (
        "organisatie.gemeentecode_onbekend",
        lambda: document(leveringen=[levering(1, {"gemeentecode": "0599"}, traject())]),
    ),
    ("bsn.elfproef", lambda: document(traject(client=[{"Burgerservicenummer": BSN3}]))),
    ("bsn.genormaliseerd", lambda: document(traject(client=[{"Burgerservicenummer": BSN2}]))),
    (
        "bsn.dubbel_in_traject",
        lambda: document(
            traject(client=[{"Burgerservicenummer": BSN1}, {"Burgerservicenummer": BSN2}])
        ),
    ),
    (
        "bsn.overlappende_trajecten",
        lambda: document(  # the second starts the day the first ends
            kort("2025-03-01", "2025-09-01"), kort("2025-09-01", gemeentecode="0503")
        ),
    ),
    (
        "bsn.overlappende_trajecten",
        lambda: document(  # one after the other, in any file order
            kort("2025-10-01"), kort("2025-03-01", "2025-04-01"), kort("2025-05-01", "2025-06-01")
        ),
    ),
    (
        "bsn.overlappende_trajecten",
        lambda: document(  # no start: not compared
            without("startdatum", "aanmelding", "einddatum", "uitstroom"), traject()
        ),
    ),
    (
        "client.niet_identificeerbaar",
        lambda: document(
            traject(
                client=[
                    {
                        "Geboortedatum": "1980-01-01",
                        "Geslachtsaanduiding": "V",
                        "Postcode": "1234 AB",
                        "Huisnummer": "1",
                    }
                ]
            )
        ),
    ),
    ("datum.einde_voor_start", lambda: document(with_part("intake", einddatum="2025-03-10"))),
    (
        "datum.na_aanlevering",
        lambda: document(
            traject(begeleiding=[{"startdatum": "2025-04-01", "einddatum": "2026-01-15"}])
        ),
    ),
    (
        "datum.na_aanlevering",
        lambda: document(  # no aanlevering: nothing to compare with
            traject(begeleiding=[{"startdatum": "2025-04-01", "einddatum": "2027-01-01"}]),
            aanleverdatumEnTijd=None,
        ),
    ),
    ("fase.volgorde", lambda: document(with_part("stabilisatie", startdatum="2025-03-10"))),
    ("fase.volgorde", lambda: document(without("intake", "stabilisatie", "nazorg"))),
    ("consistentie.einddatum", lambda: document(without("einddatum"))),
    (
        "consistentie.einddatum",
        lambda: document(with_part("uitstroom", datumBeeindigingsbeschikking="2025-09-01")),
    ),
    ("consistentie.toekenningsdatum", lambda: document(without("toekenningsdatum"))),
    (
        "consistentie.dwangakkoord",
        lambda: document(
            traject(
                schuldregeling={
                    "datum": "2025-05-01",
                    "toegekend": "2025-05-10",
                    "dwangakkoord": True,
                }
            )
        ),
    ),
    (
        "consistentie.dwangakkoord",
        lambda: document(
            traject(schuldregeling={"datum": "2025-05-01", "dwangakkoord": False}),
            toekenningsdatum=None,
        ),
    ),
    (
        "traject.buiten_periode",
        lambda: document(  # open, started before the period
            without("einddatum", "uitstroom"), startdatumLevering="2025-10-01"
        ),
    ),
    (
        "levering.andere_gemeente",
        lambda: document(
            leveringen=[
                levering(
                    1,
                    {"gemeentecode": "0599"},
                    kort("2025-03-01"),
                    kort(
                        "2025-03-01",
                        gemeentecode="Onbekend",
                        client=[{"Burgerservicenummer": BSN2}],
                    ),
                ),
                levering(
                    2,
                    {"(Statutaire) Naam": "Kredietbank"},
                    kort("2025-03-01", gemeentecode="0503", client=[{"Burgerservicenummer": BSN3}]),
                ),
            ]
        ),
    ),
    (
        "levering.organisatie_dubbel",
        lambda: document(
            leveringen=[
                levering(1, {"KvK-nummer": "12345678", "gemeentecode": "0599"}, kort("2025-03-01")),
                levering(
                    2,
                    {"KvK-nummer": "87654321", "gemeentecode": "0503"},
                    kort("2025-03-01", gemeentecode="0503", client=[{"Burgerservicenummer": BSN2}]),
                ),
            ]
        ),
    ),
    (
        "levering.organisatie_dubbel",
        lambda: document(
            leveringen=[  # one per municipality
                levering(1, {"KvK-nummer": "12345678"}, kort("2025-03-01")),
                levering(
                    2,
                    {"KvK-nummer": "12345678"},
                    kort("2025-03-01", gemeentecode="0503", client=[{"Burgerservicenummer": BSN2}]),
                ),
            ]
        ),
    ),
    (
        "levering.teller_dubbel",
        lambda: document(
            leveringen=[levering(1, {"KvK-nummer": "1"}), levering(2, {"KvK-nummer": "2"})]
        ),
    ),
]


def _strip_nones(doc: dict[str, Any]) -> dict[str, Any]:
    """Root fields set to None by a case are left out."""
    return {k: v for k, v in doc.items() if v is not None} | {
        "leveringen": [
            {
                **lev,
                "schuldhulptrajecten": [
                    {k: v for k, v in t.items() if v is not None}
                    for t in lev.get("schuldhulptrajecten", [])
                ],
            }
            for lev in doc["leveringen"]
        ]
    }


def findings_of(build: Callable[[], dict[str, Any]]) -> list[Finding]:
    return check_document(_strip_nones(build()))


def test_the_clean_trajectory_is_clean() -> None:
    assert check_document(document(traject())) == []


@pytest.mark.parametrize(
    ("code", "build", "where"), FIRES, ids=[f"{c[0]}-{i}" for i, c in enumerate(FIRES)]
)
def test_rule_fires(code: str, build: Callable[[], dict[str, Any]], where: str) -> None:
    found = [f for f in findings_of(build) if f.code == code]
    assert found, f"{code} did not fire"
    assert found[0].pointer == where
    assert all(f.ernst is RULES[code].ernst for f in found)
    assert all(f.message.strip() for f in found)


@pytest.mark.parametrize(("code", "build"), QUIET, ids=[f"{c[0]}-{i}" for i, c in enumerate(QUIET)])
def test_rule_stays_quiet(code: str, build: Callable[[], dict[str, Any]]) -> None:
    assert findings_of(build) == []


def test_every_rule_has_a_firing_and_a_quiet_case() -> None:
    assert {c[0] for c in FIRES} == set(RULES)
    assert {c[0] for c in QUIET} == set(RULES)


def test_the_overlap_finding_names_the_other_place() -> None:
    found = [
        f
        for f in findings_of(FIRES[[c[0] for c in FIRES].index("bsn.overlappende_trajecten")][1])
        if f.code == "bsn.overlappende_trajecten"
    ]
    assert len(found) == 1
    assert f"{P}/0/client/0" in found[0].message


def test_three_overlapping_trajectories_give_two_findings_in_file_order() -> None:
    open_ = without("einddatum", "uitstroom")
    found = check_document(
        document(copy.deepcopy(open_), copy.deepcopy(open_), copy.deepcopy(open_))
    )
    overlap = [f for f in found if f.code == "bsn.overlappende_trajecten"]
    assert [f.pointer for f in overlap] == [
        f"{P}/1/client/0/Burgerservicenummer",
        f"{P}/2/client/0/Burgerservicenummer",
    ]


def test_late_dates_give_one_finding_per_trajectory() -> None:
    t = traject(begeleiding=[{"startdatum": "2026-02-01", "einddatum": "2026-03-01"}])
    found = [f for f in check_document(document(t)) if f.code == "datum.na_aanlevering"]
    assert len(found) == 1
    assert "1 andere" in found[0].message


def test_a_normalised_code_counts_as_its_municipality() -> None:
    found = check_document(document(traject(gemeentecode="GM0599")))
    assert [f.code for f in found] == ["gemeentecode.genormaliseerd"]
    assert "'GM0599'" in found[0].message and "'0599'" in found[0].message


def test_rules_skip_what_they_cannot_evaluate() -> None:
    """Wrong types and missing parts are the schema check's findings, not a crash here."""
    odd: list[Any] = [None, 1, 1.5, True, "x", "2025-13-45", [], {}, [1, "a"], {"a": 1}]
    engine = RuleEngine("2026-01-15", ("2025-01-01", "2025-12-31"))
    keys = list(traject()) + [
        "informatieEnAdvies",
        "crisisinterventies",
        "moratoria",
        "voorlopigeVoorzieningen",
        "planVanAanpak",
        "onbekend",
    ]
    n = 0
    for key in keys:
        for value in odd:
            engine.check_traject(traject(**{key: value}), f"{P}/{n}")
            n += 1
            for sub in (
                "startdatum",
                "einddatum",
                "datum",
                "toegekend",
                "dwangakkoord",
                "Burgerservicenummer",
            ):
                t = traject()
                if isinstance(t.get(key), dict):
                    t[key][sub] = value
                elif isinstance(t.get(key), list) and t[key]:
                    t[key][0][sub] = value
                engine.check_traject(t, f"{P}/{n}")
                n += 1
    for value in odd:
        engine.check_traject(value, f"{P}/{n}")  # type: ignore[arg-type]
        engine.check_levering(value, "/leveringen/9")  # type: ignore[arg-type]
        engine.check_levering({"teller": value, "aanleverende_organisatie": value}, "/leveringen/8")
        engine.check_root(value)  # type: ignore[arg-type]
        RuleEngine.for_root(value)  # type: ignore[arg-type]
        RuleEngine(value, (value, value))  # type: ignore[arg-type]
    engine.finish()


# -- no personal value in any finding -------------------------------------------------------

PLANTED = {
    "bsn_ok": "246813578",  # passes the 11-check
    "bsn_bad": "246813579",
    "bsn_8": "24681357",
    "geboortedatum": "1911-11-11",
    "postcode": "9876 ZX",
    "huisnummer": "4321",
    "toevoeging": "bisque",
    "naam": "Geheimzinnig",
    "email": "geheim.persoon@voorbeeld.nl",
    "telefoon": "0611223344",
    "kvk": "55443322",
    "schuldeiser": "Schuldeiser Privépersoon Jansen",
}


def _planted_document() -> dict[str, Any]:
    p = PLANTED
    person = {
        "Geboortedatum": p["geboortedatum"],
        "Geslachtsaanduiding": "V",
        "Postcode": p["postcode"],
        "Huisnummer": p["huisnummer"],
        "Huisnummertoevoeging": p["toevoeging"],
    }
    schulden = [
        {
            "bedrag": 10,
            "schuldeiser": {"Naam": p["schuldeiser"], "naam": p["naam"], "postcode": p["postcode"]},
        }
    ]
    t1 = traject(
        client=[
            {"Burgerservicenummer": p["bsn_ok"], **person},
            {"Burgerservicenummer": p["bsn_ok"], **person},
        ],
        schulden=schulden,
        omschrijving=p["naam"],
    )
    t2 = traject(
        client=[
            {"Burgerservicenummer": p["bsn_bad"], **person},
            {"Burgerservicenummer": p["bsn_8"], **person},
        ],
        gemeentecode=p["bsn_ok"],
        einddatum="2025-01-01",
    )
    t3 = traject(
        client=[{"Burgerservicenummer": p["bsn_ok"], **person}, {**person, "Postcode": ""}],
        gemeentecode=p["postcode"],
    )
    t4 = traject(
        client=[{"Burgerservicenummer": f" {p['bsn_ok']} "}],
        uitstroom={"datum": "2026-02-01", "omschrijving": p["naam"]},
        schuldregeling={"dwangakkoord": True},
    )
    org = {
        "(Statutaire) Naam": p["naam"],
        "KvK-nummer": p["kvk"],
        "postcode": p["postcode"],
        "gemeentecode": p["kvk"],
        "contactpersonen": [
            {"email": p["email"], "naam": p["naam"], "telefoonnummer": p["telefoon"]}
        ],
    }
    org2 = {**org, "gemeentecode": p["postcode"]}
    return document(
        leveringen=[levering(1, org, t1, t2), levering(1, org2, t3, t4)],
        codeGegevensleverancier=p["naam"],
    )


def test_no_finding_carries_a_personal_value() -> None:
    found = check_document(_planted_document())
    codes = {f.code for f in found}
    # the planted file exercises the rules that look at personal fields
    assert {
        "bsn.elfproef",
        "bsn.genormaliseerd",
        "bsn.dubbel_in_traject",
        "bsn.overlappende_trajecten",
        "client.niet_identificeerbaar",
        "gemeentecode.onbekend",
        "organisatie.gemeentecode_onbekend",
        "levering.organisatie_dubbel",
        "levering.teller_dubbel",
    } <= codes, codes
    text = "\n".join(f"{f.pointer} {f.message}" for f in found)
    for name, value in PLANTED.items():
        assert value not in text, name
    assert "9876ZX" not in text.replace(" ", "")  # nor a postcode without its space


# -- the fast pass never hides a finding of the exact pass ----------------------------------


def _exact(doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> list[Finding]:
    with monkeypatch.context() as m:
        m.setattr(RuleEngine, "_fast", lambda self, t, ptr: False)
        return check_document(doc)


def _generated(n: int, fouten: float, seed: int, **kw: Any) -> dict[str, Any]:
    out = io.BytesIO()
    generate(out, Options(trajecten=n, seed=seed, fouten=fouten, **kw))
    doc: dict[str, Any] = orjson.loads(out.getvalue())
    return doc


REAL_FILES = sorted(EXAMPLES.glob("*.json")) + sorted(
    p for p in SPEC.glob("*.json") if p.name != "json_schema_Uitwisselmodel.json"
)


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_fast_and_exact_pass_agree_on_the_real_files(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = orjson.loads(path.read_bytes())
    assert check_document(doc) == _exact(doc, monkeypatch)


def test_fast_and_exact_pass_agree_on_a_flawed_generated_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    doc = _generated(2000, 0.3, seed=5, leveringen=3)
    found = check_document(doc)
    assert found == _exact(doc, monkeypatch)
    assert any(f.ernst is Ernst.FOUT for f in found)


# Hypothesis: trajectories made of the right keys with values of any shape, dates near the
# edges (as strings that compare like dates, and some that do not).
_dates = st.sampled_from(
    [
        "2024-12-31",
        "2025-01-01",
        "2025-06-15",
        "2025-12-31",
        "2026-01-15",
        "2026-01-16",
        "2025-06-15T00:00:00",
        "15-06-2025",
        "2025-02-30",
        "",
    ]
)
_scalars = st.one_of(
    _dates,
    st.none(),
    st.booleans(),
    st.integers(-1, 3),
    st.sampled_from(
        [
            "0599",
            "GM0599",
            "599",
            "Onbekend",
            "0154",
            BSN1,
            BSN2,
            "123456789",
            " 123456782",
            "12345678",
        ]
    ),
)
_part = st.dictionaries(
    st.sampled_from(
        [
            "startdatum",
            "einddatum",
            "datum",
            "datumAfronding",
            "toegekend",
            "dwangakkoord",
            "datumBeeindigingsbeschikking",
            "beschikkingsdatum",
            "peildatum",
            "Burgerservicenummer",
            "Geboortedatum",
            "Postcode",
            "Huisnummer",
            "Geslachtsaanduiding",
        ]
    ),
    _scalars,
    max_size=5,
)
_value = st.one_of(_scalars, _part, st.lists(_part, max_size=3))
_traject = st.dictionaries(
    st.sampled_from(
        sorted(
            set(traject())
            | {
                "informatieEnAdvies",
                "crisisinterventies",
                "moratoria",
                "voorlopigeVoorzieningen",
                "planVanAanpak",
            }
        )
    ),
    _value,
    max_size=12,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_traject, st.builds(traject)), min_size=1, max_size=4))
def test_fast_and_exact_pass_agree_on_any_shape(trajecten: list[dict[str, Any]]) -> None:
    doc = document(*trajecten)
    fast = check_document(copy.deepcopy(doc))
    original = RuleEngine._fast
    RuleEngine._fast = lambda self, t, ptr: False  # type: ignore[method-assign]
    try:
        exact = check_document(doc)
    finally:
        RuleEngine._fast = original  # type: ignore[method-assign]
    assert fast == exact


# -- the real file --------------------------------------------------------------------------


def _resolve(doc: Any, ptr: str) -> Any:
    for part in ptr.split("/")[1:]:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def test_the_750_file_gives_plausible_findings() -> None:
    doc = orjson.loads(FILE_750.read_bytes())
    found = check_document(doc)
    per_code = Counter(f.code for f in found)
    assert set(per_code) <= set(RULES)
    for f in found:  # every finding points at a place that exists
        _resolve(doc, f.pointer)
        assert f.ernst is RULES[f.code].ernst
    # The DDAS-app's test BSNs pass the 11-check and its four codes are municipalities ...
    assert not {
        "bsn.elfproef",
        "bsn.genormaliseerd",
        "gemeentecode.onbekend",
        "gemeentecode.genormaliseerd",
        "bsn.dubbel_in_traject",
    } & set(per_code)
    # ... its organisation code is 'afwijzing' ...
    assert per_code["organisatie.gemeentecode_onbekend"] == 1
    # ... and the dates it has after aanlevering (2026-01-15) are really after it.
    late = [f for f in found if f.code == "datum.na_aanlevering"]
    assert late and all(_resolve(doc, f.pointer) > "2026-01-15" for f in late)
    for f in found:
        if f.code == "datum.einde_voor_start":
            end = _resolve(doc, f.pointer)
            part = _resolve(doc, f.pointer.rsplit("/", 1)[0])
            start = part.get("startdatum") or part["aanmelding"]["startdatum"]
            assert end < start
    assert per_code["traject.buiten_periode"] < 750 // 3


def test_the_spec_examples_fail_the_11_check() -> None:
    """domain.md: the example BSNs of the official examples fail the 11-check."""
    doc = orjson.loads((SPEC / "meervoudigVoorbeeld.json").read_bytes())
    codes = Counter(f.code for f in check_document(doc))
    assert codes["bsn.elfproef"] >= 5
    assert codes["gemeentecode.onbekend"] >= 1  # GM002 and friends are no municipalities


# -- docs/rules.md ---------------------------------------------------------------------------


def test_docs_list_exactly_the_registry() -> None:
    text = (ROOT / "docs/rules.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z_.]+)` \| (fout|waarschuwing) \|", text, re.MULTILINE)
    assert len(rows) == len(set(rows))
    assert dict(rows) == {code: str(r.ernst) for code, r in RULES.items()}
    assert rules_markdown() in text, "regenerate: python -m ddas.domain.rules docs/rules.md"
