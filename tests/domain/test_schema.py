"""The schema check on real files, its messages, privacy, and the fast path's compiler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec
import pytest

from ddas.domain.findings import Ernst, Finding
from ddas.domain.reader import Traject, UnreadableFile, parse_document
from ddas.domain.schema import SchemaCheck, check_document, exact, official
from ddas.domain.schema.fast import SchemaCompileError, compile_type
from tests.domain import schema_mutations as mut

ROOT = {
    "startdatumLevering": "2025-01-01",
    "einddatumLevering": "2025-06-30",
    "aanleverdatumEnTijd": "2025-07-01T10:00:00Z",
    "codeGegevensleverancier": "X",
}
LEVERING = {
    "teller": 1,
    "aanleverende_organisatie": {
        "(Statutaire) Naam": "Gemeente",
        "contactpersonen": [{"email": "oor@example.nl"}],
    },
}


def _findings(doc: Any) -> list[Finding]:
    check = SchemaCheck()
    data = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return [f for part in parse_document(data).parts() for f in check.part(part)]


def _file(*trajecten: Any, **root: Any) -> dict[str, Any]:
    return {**ROOT, "leveringen": [{**LEVERING, "schuldhulptrajecten": list(trajecten)}], **root}


T = "/leveringen/0/schuldhulptrajecten/0"


# --- the official examples and real files -----------------------------------------------------


def test_defects_of_uitgebreid_meervoudig_voorbeeld() -> None:
    """domain.md: not schema-valid (wrong enum values, nulls). These are ajv's 14 errors."""
    found = list(check_document(mut.SPEC / "UitgebreidMeervoudigVoorbeeld.json"))
    got = [(f.pointer, f.code) for _, findings in found for f in findings]
    t = "/leveringen/0/schuldhulptrajecten"
    assert sorted(got) == sorted(
        [
            ("/$schema", "schema.additionalProperties"),
            ("/$id", "schema.additionalProperties"),
            ("/title", "schema.additionalProperties"),
            (f"{t}/0/einddatum", "schema.type"),
            (f"{t}/0/intake/beschikkingssoort", "schema.enum"),
            (f"{t}/1/einddatum", "schema.type"),
            (f"{t}/1/intake/beschikkingssoort", "schema.enum"),
            (f"{t}/1/oplossing/einddatum", "schema.type"),
            (f"{t}/2/intake/beschikkingssoort", "schema.enum"),
            (f"{t}/2/uitstroom/reden", "schema.enum"),
            (f"{t}/3/intake/beschikkingssoort", "schema.enum"),
            (f"{t}/4/einddatum", "schema.type"),
            (f"{t}/4/begeleiding/0/einddatum", "schema.type"),
            (f"{t}/4/intake/beschikkingssoort", "schema.enum"),
        ]
    )
    assert all(f.ernst is Ernst.FOUT for _, fs in found for f in fs)
    # The parts still come through: the rules and the counting see every trajectory.
    assert sum(isinstance(p, Traject) for p, _ in found) == 5


@pytest.mark.parametrize(
    "path",
    [p for p in mut.example_files() if p.name != "UitgebreidMeervoudigVoorbeeld.json"]
    if mut.SPEC.exists()
    else [],
    ids=lambda p: p.name,
)
def test_other_real_files_are_valid_and_take_the_fast_path(path: Path) -> None:
    check = SchemaCheck()
    for part, findings in check_document(path):
        assert findings == []
        if isinstance(part, Traject):
            assert check.fast_accepts(part.raw), part.pointer


def test_shipped_schema_is_the_official_one() -> None:
    shipped = mut.PACKAGE_DATA.read_bytes()
    assert shipped == (mut.SPEC / official.SCHEMA_FILE).read_bytes()


def test_check_document_raises_before_the_first_part(tmp_path: Path) -> None:
    (tmp_path / "kapot.json").write_text('{"leveringen": [')
    with pytest.raises(UnreadableFile, match="afgebroken"):
        check_document(tmp_path / "kapot.json")


# --- semantics at the edges -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (b"1", True),
        (b"1.0", True),
        (b"1E2", True),
        (b"-0", True),
        (b"123456789012345678901234567890", True),
        (b"1e400", True),  # 10^400 has no fraction: an integer to JSON Schema and to ajv
        (b"1.5", False),
        (b'"12"', False),
        (b"true", False),
        (b"null", False),
    ],
)
def test_integer(value: bytes, valid: bool) -> None:
    data = json.dumps(_file({"gemeentecode": "0599", "totaalSchuldbedragBijAanvangSchuld": 7}))
    found = _findings(data.replace('Schuld": 7', 'Schuld": ' + value.decode()).encode())
    assert (not found) is valid
    if not valid:
        assert [(f.pointer, f.code) for f in found] == [
            (f"{T}/totaalSchuldbedragBijAanvangSchuld", "schema.type")
        ]


def test_absent_null_and_unknown_members() -> None:
    assert _findings(_file({"gemeentecode": "0599"})) == []
    assert [f.code for f in _findings(_file({"gemeentecode": None}))] == ["schema.type"]
    # Unknown members: refused in a trajectory, a levering and the root; allowed deeper down.
    found = _findings(
        _file(
            {
                "gemeentecode": "0599",
                "bsn": "x",
                "aanmelding": {"extra": 1},
                "client": [{"extra": 1}],
            },
            onbekend=1,
        )
    )
    assert [(f.pointer, f.code) for f in found] == [
        ("/onbekend", "schema.additionalProperties"),
        (f"{T}/bsn", "schema.additionalProperties"),
    ]


def test_geslachtsaanduiding_is_free_text_in_v1_0() -> None:
    """The schema defines an enum `geslacht` (Man, Vrouw, Onbekend, Leeg) in $defs but does not
    refer to it: Geslachtsaanduiding is `type: string`, so "M" is schema-valid (the real test
    files use M and V). Checking it against the enum would be a rule, not the schema."""
    assert (
        _findings(_file({"gemeentecode": "0599", "client": [{"Geslachtsaanduiding": "M"}]})) == []
    )


def test_messages_say_what_to_do() -> None:
    found = _findings(
        _file(
            {
                "client": [],
                "schulden": [{"schuldsoort": "zorg"}],
                "startdatum": "2025-02-30",
                "einddatum": "31-01-2025",
                "uitstroom": {"reden": "Weet niet"},
                "aanmelding": None,
                "gemeentcode": "0599",
            },
            aanleverdatumEnTijd="2025-07-01T10:00:00",
        )
    )
    messages = {(f.pointer, f.code): f.message for f in found}
    assert messages == {
        (
            "/aanleverdatumEnTijd",
            "schema.format",
        ): "'aanleverdatumEnTijd' is geen geldige datum-tijd: de tijdzone ontbreekt; verwacht "
        "bijvoorbeeld 2026-01-15T10:30:00Z of 2026-01-15T11:30:00+01:00",
        (T, "schema.required"): "Verplicht veld 'gemeentecode' ontbreekt",
        (
            f"{T}/gemeentcode",
            "schema.additionalProperties",
        ): "Onbekend veld in een schuldhulptraject: niet toegestaan; bedoeld is waarschijnlijk "
        "'gemeentecode'",
        (f"{T}/client", "schema.minItems"): "'client' bevat 0 elementen; minimaal 1 vereist",
        (
            f"{T}/schulden/0/schuldsoort",
            "schema.enum",
        ): "'schuldsoort' heeft een waarde die niet is toegestaan; toegestaan: Zorg, Publiek, "
        "Nuts, Overig (let op hoofdletters en spaties: bedoeld is waarschijnlijk 'Zorg')",
        (
            f"{T}/startdatum",
            "schema.format",
        ): "'startdatum' is geen bestaande datum: maand 01-12 en een dag die in die maand "
        "bestaat (JJJJ-MM-DD)",
        (
            f"{T}/einddatum",
            "schema.format",
        ): "'einddatum' is geen geldige datum: verwacht JJJJ-MM-DD, bijvoorbeeld 2025-01-31",
        (
            f"{T}/uitstroom/reden",
            "schema.enum",
        ): "'reden' heeft een waarde die niet is toegestaan; toegestaan: Overleden, Verhuisd, "
        "Nietverschenen, Ingetrokken, Niet passend, Overig, Voldoet niet, Afgerond, Zelf",
        (
            f"{T}/aanmelding",
            "schema.type",
        ): "'aanmelding' heeft het verkeerde type: verwacht object {...}, gevonden null; laat "
        "een veld zonder waarde weg in plaats van null te leveren",
    }
    # File order: the root's findings, then the trajectory's members as they appear in it.
    assert [f.pointer for f in found][:2] == ["/aanleverdatumEnTijd", T]


def test_every_missing_member_is_reported() -> None:
    found = _findings({"leveringen": [{"schuldhulptrajecten": [{}]}]})
    assert sorted((f.pointer, f.message) for f in found) == sorted(
        [
            ("", "Verplicht veld 'startdatumLevering' ontbreekt"),
            ("", "Verplicht veld 'einddatumLevering' ontbreekt"),
            ("", "Verplicht veld 'aanleverdatumEnTijd' ontbreekt"),
            ("", "Verplicht veld 'codeGegevensleverancier' ontbreekt"),
            ("/leveringen/0", "Verplicht veld 'teller' ontbreekt"),
            ("/leveringen/0", "Verplicht veld 'aanleverende_organisatie' ontbreekt"),
            (T, "Verplicht veld 'gemeentecode' ontbreekt"),
        ]
    )


def test_structure_problems_are_findings() -> None:
    assert [(f.pointer, f.code) for f in _findings({**ROOT, "leveringen": []})] == [
        ("/leveringen", "schema.minItems")
    ]
    assert [(f.pointer, f.code) for f in _findings({**ROOT, "leveringen": {"a": 1}})] == [
        ("/leveringen", "schema.type")
    ]
    assert [
        (f.pointer, f.code)
        for f in _findings({**ROOT, "leveringen": [{**LEVERING, "schuldhulptrajecten": "x"}, 5]})
    ] == [("/leveringen/0/schuldhulptrajecten", "schema.type"), ("/leveringen/1", "schema.type")]


def test_traject_without_raw_json_takes_the_exact_path() -> None:
    check = SchemaCheck()
    assert check.traject(None, {"gemeentecode": "0599", "client": [{}]}, T) == []
    found = check.traject(None, {"gemeentecode": 599, "client": []}, T)
    assert [(f.pointer, f.code) for f in found] == [
        (f"{T}/gemeentecode", "schema.type"),
        (f"{T}/client", "schema.minItems"),
    ]


def test_pointers_escape_member_names() -> None:
    found = _findings(_file({"gemeentecode": "0599", "a/b~c": 1}))
    assert [f.pointer for f in found] == [f"{T}/a~1b~0c"]


# --- privacy ---------------------------------------------------------------------------------


def test_no_personal_value_in_any_finding() -> None:
    bsn, postcode, geboren, naam, email = (
        mut.PLANTED[0],
        mut.PLANTED[1],
        mut.PLANTED[3],
        mut.PLANTED[4],
        "p.jansen@@example.org",
    )
    doc = _file(
        {
            "gemeentecode": bsn,
            "totaalSchuldbedragBijAanvangSchuld": bsn,
            "startdatum": geboren,
            "client": [
                {
                    "Burgerservicenummer": int(bsn),
                    "Geboortedatum": 19010203,
                    "Postcode": [postcode],
                    "Huisnummer": {"nr": mut.PLANTED[6]},
                },
                {"Burgerservicenummer": bsn},
                {"Postcode": postcode},
            ],
            "uitstroom": {"reden": naam, "datum": bsn},
            "intake": {"beschikkingssoort": postcode},
            "begeleiding": [{"soort": geboren, "startdatum": postcode}],
            naam: postcode,
        },
        codeGegevensleverancier=int(bsn),
        startdatumLevering=geboren,
        einddatumLevering=bsn,
        aanleverdatumEnTijd=geboren + "T10:00:00",
    )
    doc["leveringen"][0]["aanleverende_organisatie"]["contactpersonen"] = [
        {"email": email, "naam": 1},
        {"email": naam},
    ]
    doc["leveringen"][0]["aanleverende_organisatie"]["postcode"] = 1234
    found = _findings(doc)
    assert len(found) >= 15
    for f in found:
        text = f.code + f.message
        for value in (bsn, postcode, geboren, naam, email, mut.PLANTED[6], "19010203", "p.jansen"):
            assert value not in text, f
    # The corpus too: its mutations plant the same values all over.
    check = SchemaCheck()
    for _, text in mut.corpus(300, seed=99):
        for part in parse_document(text.encode()).parts():
            for f in check.part(part):
                assert not any(v in f.message for v in mut.PLANTED), f


# --- the fast path -----------------------------------------------------------------------------


def test_split_is_exact_for_this_schema() -> None:
    """official.py validates the root, each levering and each trajectory apart; that equals
    validating the whole file only while no keyword relates array items to each other."""
    allowed = {"type", "items", "minItems", "maxItems", "description"}
    assert set(official.SCHEMA["properties"]["leveringen"]) <= allowed
    assert set(official.LEVERING["properties"]["schuldhulptrajecten"]) <= allowed

    def keywords(node: Any) -> set[str]:
        if isinstance(node, dict):
            return set(node) | {k for v in node.values() for k in keywords(v)}
        if isinstance(node, list):
            return {k for v in node for k in keywords(v)}
        return set()

    cross = {
        "uniqueItems",
        "contains",
        "prefixItems",
        "unevaluatedItems",
        "unevaluatedProperties",
        "dependentRequired",
        "dependentSchemas",
        "if",
        "allOf",
        "anyOf",
        "oneOf",
        "not",
        "$dynamicRef",
        "patternProperties",
        "propertyNames",
    }
    assert not keywords(official.SCHEMA) & cross


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "pattern": "^a"},
        {"type": "string", "format": "uri"},
        {"type": "object", "additionalProperties": {"type": "string"}},
        {"type": "object", "required": ["a"]},
        {"type": ["string", "null"]},
        {"enum": ["a"]},
        {"type": "integer", "minimum": 0},
        {"$ref": "https://example.org/schema"},
    ],
)
def test_compilers_refuse_what_they_do_not_know(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaCompileError):
        compile_type(schema, {"$defs": {}}, "x")
    with pytest.raises(SchemaCompileError):
        exact.compile_check(schema, {"$defs": {}}, "x")


def test_compiled_types_follow_the_schema() -> None:
    decoder = msgspec.json.Decoder(
        compile_type(
            {
                "type": "object",
                "required": ["a"],
                "additionalProperties": False,
                "properties": {
                    "a": {"type": "string", "enum": ["x", "y"]},
                    "b": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": 2,
                        "items": {"$ref": "#/$defs/d"},
                    },
                    "c": {
                        "type": "object",
                        "properties": {"e": {"type": "string", "format": "email"}},
                    },
                },
            },
            {"$defs": {"d": {"type": "string", "format": "date"}}},
            "t",
        )
    )
    for ok in (b'{"a":"x"}', b'{"a":"y","b":["2024-02-29"],"c":{"e":"a@b.nl","z":1}}'):
        decoder.decode(ok)
    for bad in (
        b"{}",
        b'{"a":"z"}',
        b'{"a":"x","q":1}',
        b'{"a":"x","b":[]}',
        b'{"a":"x","b":["2025-01-01","2025-01-02","2025-01-03"]}',
        b'{"a":"x","b":["2025-02-29"]}',
        b'{"a":"x","c":{"e":"a@b"}}',
        b'{"a":"x","c":null}',
        b'{"a":null}',
    ):
        with pytest.raises(msgspec.ValidationError):
            decoder.decode(bad)
