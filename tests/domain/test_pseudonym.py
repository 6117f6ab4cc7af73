"""The privacy edge (ddas.domain.pseudonym): the pseudonymised document gives exactly the findings
and tables of the raw one, and holds none of its identifying values.

Equivalence: for the real files, generated files (with planted flaws) and the mutated schema
corpus, `check_document` of the raw bytes and of the pseudonymised bytes (serialised and parsed
again, as validate receives them) give the same findings (code, severity, pointer, in order) and
the same two tables (so the pseudonyms are consistent across trajectories).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from ddas.domain import pseudonym
from ddas.domain.check import CheckResult, check_document
from ddas.domain.pseudonym import (
    GELDIG_EMAIL,
    ONGELDIG_EMAIL,
    MissingPseudonymKey,
    Pseudonymiser,
    load_key,
    pseudonymise_bytes,
)
from ddas.domain.reader import Traject, parse_document
from ddas.domain.rules import RuleEngine
from ddas.domain.schema import SchemaCheck
from ddas.generate import Options, generate
from tests.domain import schema_mutations as mut

KEY = b"k" * 32
REAL_FILES = mut.example_files()


def _findings(result: CheckResult) -> list[tuple[str, str, str]]:
    return [(f.code, str(f.ernst), f.pointer) for f in result.findings]


def _assert_equivalent(raw: bytes, key: bytes = KEY) -> bytes:
    expected = check_document(parse_document(raw), parallel=False)
    pseudo = pseudonymise_bytes(raw, key)
    got = check_document(parse_document(pseudo), parallel=False)
    assert _findings(got) == _findings(expected)
    assert got.totalen == expected.totalen
    assert got.periode == expected.periode
    return pseudo


def _generated(n: int, seed: int, fouten: float = 0.05, **kw: Any) -> bytes:
    out = io.BytesIO()
    generate(out, Options(trajecten=n, seed=seed, fouten=fouten, **kw))
    return out.getvalue()


# -- equivalence ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_files_give_the_same_findings_and_tables(path: Path) -> None:
    _assert_equivalent(path.read_bytes())


@pytest.mark.parametrize(
    ("n", "seed", "kw"),
    [(3000, 1, {}), (1500, 7, {"leveringen": 3}), (800, 11, {"fouten": 0.3})],
)
def test_generated_files_give_the_same_findings_and_tables(
    n: int, seed: int, kw: dict[str, Any]
) -> None:
    raw = _generated(n, seed, **kw)
    result = check_document(parse_document(raw), parallel=False)
    assert result.findings, "the generated file must have planted flaws"
    assert "bsn.elfproef" in {f.code for f in result.findings}
    _assert_equivalent(raw)


def test_the_mutated_corpus_gives_the_same_findings_and_tables() -> None:
    codes: set[str] = set()
    for _, text in mut.corpus(800):
        raw = text.encode()
        _assert_equivalent(raw)
        codes.update(f.code for f in check_document(parse_document(raw)).findings)
    # The corpus reaches the BSN rules and the identity rule, and schema findings of every kind.
    assert {"bsn.elfproef", "client.niet_identificeerbaar", "schema.type"} <= codes
    assert {"schema.additionalProperties", "schema.enum", "schema.format"} <= codes


BSN_CASES = [
    "123456782",  # valid
    "123456789",  # fails the 11-check
    " 123456782 ",  # trimmed for the tables, normalised for the rules
    "12345678",  # 8 digits: padded
    "012345678",
    "1234-5678-2",
    "abc",  # nothing left after normalising
    "",
    "   ",
    "000000000",
    "１２３４５６７８２",  # fullwidth digits are not digits
]


def _client_doc(clients: list[list[dict[str, Any]]]) -> bytes:
    doc = {
        "startdatumLevering": "2025-01-01",
        "einddatumLevering": "2025-06-30",
        "aanleverdatumEnTijd": "2025-07-15T10:00:00Z",
        "codeGegevensleverancier": "X",
        "leveringen": [
            {
                "teller": 1,
                "aanleverende_organisatie": {"KvK-nummer": "12345678", "gemeentecode": "0599"},
                "schuldhulptrajecten": [
                    {
                        "gemeentecode": "0599",
                        "startdatum": "2025-02-01",
                        "aanmelding": {"startdatum": "2025-02-01"},
                        "client": c,
                    }
                    for c in clients
                ],
            }
        ],
    }
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.mark.parametrize("a", BSN_CASES)
@pytest.mark.parametrize("b", [None, *BSN_CASES])
def test_every_bsn_shape_gives_the_same_findings_alone_in_a_couple_and_across(
    a: str, b: str | None
) -> None:
    one = {"Burgerservicenummer": a}
    two = {"Burgerservicenummer": b} if b is not None else {"Geboortedatum": ""}
    # the couple, the two alone in overlapping trajectories, and b identified otherwise
    _assert_equivalent(_client_doc([[one, two], [one], [two]]))


def test_identity_fields_keep_their_blankness() -> None:
    blank = {"Geboortedatum": " ", "Geslachtsaanduiding": "M", "Postcode": "", "Huisnummer": "1"}
    full = {"Geboortedatum": "1980-01-01", "Geslachtsaanduiding": "M", "Postcode": "1234AB"}
    full["Huisnummer"] = "12"
    _assert_equivalent(_client_doc([[blank], [full], [{**full, "Burgerservicenummer": " "}]]))


# -- the two ways of rewriting a trajectory ---------------------------------------------------


def _as_json(value: Any) -> Any:
    """A pseudonymised trajectory as validate receives it: encoded and decoded again."""
    return orjson.loads(msgspec.json.encode(value))


def test_the_typed_path_equals_the_schema_walk() -> None:
    """Every trajectory the typed path takes encodes to the same JSON value (member order
    aside) as the schema walk makes of it; it takes exactly those the schema's fast path accepts
    (the mutated corpus holds the rest); and a trajectory it does not take is left to the walk."""
    ps = Pseudonymiser(KEY)
    seen = walked = 0
    files = [p.read_bytes() for p in REAL_FILES] + [_generated(2000, 2, fouten=0.2)]
    files += [text.encode() for _, text in mut.corpus(300)]
    for raw in files:
        for part in parse_document(raw).parts():
            if type(part) is not Traject:
                continue
            typed = ps.typed(part.raw)
            assert (typed is not None) == SchemaCheck.fast_accepts(part.raw)
            walk = ps.traject(part.data)
            assert _as_json(ps.traject(part.data, part.raw)) == _as_json(walk)
            if typed is None:
                walked += 1
                continue
            assert _as_json(typed) == _as_json(walk)
            seen += 1
    assert seen > 3000
    assert walked > 300


def test_the_typed_path_drops_unknown_members_of_open_parts() -> None:
    ps = Pseudonymiser(KEY)
    t = {
        "gemeentecode": "0599",
        "omschrijving": "Jansen, Kerkstraat 77",
        "aanmelding": {"startdatum": "2025-01-01", "notitie": "999990019"},
        "begeleiding": [{"soort": "Budgetbeheer", "bsn": "999990019"}],
        "schulden": [{"bedrag": 5, "x": "y", "schuldeiser": {"naam": "P. Jansen", "iban": "NL"}}],
        "uitstroom": {"datum": "2025-03-01", "omschrijving": "verhuisd naar Kerkstraat 77"},
        "client": [{"Burgerservicenummer": "999990019", "Telefoon": "0612345678"}],
    }
    raw = msgspec.json.encode(t)
    typed = ps.typed(raw)
    assert typed is not None
    assert _as_json(typed) == _as_json(ps.traject(t))
    text = msgspec.json.encode(typed).decode()
    for secret in ("999990019", "Jansen", "Kerkstraat", "0612345678", "notitie", "iban"):
        assert secret not in text
    assert _as_json(typed)["schulden"][0] == {"bedrag": 5, "schuldeiser": {"naam": "*"}}


def test_a_supplied_bsn_controle_is_never_kept() -> None:
    """`bsnControle` is ours: a supplier's value for it, of the right shape or not, is
    replaced (the client has a BSN) or dropped (it has none), on either path."""
    ps = Pseudonymiser(KEY)
    forged = {"elfproef": True, "genormaliseerd": False, "leeg": False, "pseudoniem": "x" * 64}
    for client, controle in [
        ({"Burgerservicenummer": "123456789", "bsnControle": forged}, False),
        ({"Geboortedatum": "1970-01-01", "bsnControle": forged}, None),
        ({"Burgerservicenummer": "123456789", "bsnControle": "999990019"}, False),
    ]:
        raw = msgspec.json.encode({"gemeentecode": "0599", "client": [client]})
        got = _as_json(ps.traject(orjson.loads(raw), msgspec.Raw(raw)))["client"][0]
        if controle is None:
            assert "bsnControle" not in got
        else:
            assert got["bsnControle"]["elfproef"] is controle
            assert got["bsnControle"]["pseudoniem"] == ps.hmac("123456789")


# -- nothing identifying survives -------------------------------------------------------------

_DIGIT_RUN = re.compile(rb"(?<![0-9])[0-9]{8,}(?![0-9])")
_PERSONAL = ("Geboortedatum", "Postcode", "Huisnummertoevoeging")


def _personal_values(doc: Any) -> set[str]:
    """Identifying strings of a decoded document: client fields (not Huisnummer: too short to
    search for), names, phone numbers, e-mail addresses and free text."""
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str) and len(value.strip()) >= 4:
            found.add(value.strip())

    for lev in doc.get("leveringen", []):
        org = lev.get("aanleverende_organisatie", {})
        add(org.get("(Statutaire) Naam"))
        for person in org.get("contactpersonen", []):
            for key in ("naam", "email", "telefoonnummer"):
                add(person.get(key))
        for t in lev.get("schuldhulptrajecten", []):
            add(t.get("omschrijving"))
            for client in t.get("client", []):
                for key in _PERSONAL:
                    add(client.get(key))
            for schuld in t.get("schulden", []):
                for key in ("naam", "Naam"):
                    add(schuld.get("schuldeiser", {}).get(key))
    return found


def _bsns(doc: Any) -> set[bytes]:
    return {
        c["Burgerservicenummer"].strip().encode()
        for lev in doc.get("leveringen", [])
        for t in lev.get("schuldhulptrajecten", [])
        for c in t.get("client", [])
        if isinstance(c.get("Burgerservicenummer"), str) and c["Burgerservicenummer"].strip()
    }


@pytest.mark.parametrize(
    "raw",
    [
        *(pytest.param(p.read_bytes(), id=p.name) for p in REAL_FILES),
        pytest.param(_generated(2000, 3), id="generated"),
    ],
)
def test_no_raw_bsn_or_identifying_value_survives(raw: bytes) -> None:
    pseudo = pseudonymise_bytes(raw, KEY)
    doc = orjson.loads(raw)
    # Every 8- or 9-digit run of the input (BSNs, but also phone numbers and the like) ...
    runs = set(_DIGIT_RUN.findall(raw)) - {b"12345678"}  # minus KvK-nummers, kept on purpose
    kvk = {
        lev["aanleverende_organisatie"].get("KvK-nummer", "").encode()
        for lev in doc.get("leveringen", [])
    }
    bsns = _bsns(doc)
    assert bsns, "the file must have BSNs"
    assert not (runs - kvk) & set(_DIGIT_RUN.findall(pseudo))
    assert not any(b in pseudo for b in bsns)
    for value in _personal_values(doc):
        # (a birth date can equal a trajectory's date: those are checked in place below)
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            assert value.encode() not in pseudo, value
    # ... and e-mail addresses are placeholders that keep the schema verdict.
    out = orjson.loads(pseudo)
    for lev in out.get("leveringen", []):
        for t in lev.get("schuldhulptrajecten", []):
            for client in t.get("client", []):
                assert set(client) <= {
                    *_PERSONAL,
                    "Huisnummer",
                    "Geslachtsaanduiding",
                    "Burgerservicenummer",
                    "bsnControle",
                }
                for key in (*_PERSONAL, "Huisnummer"):
                    assert client.get(key, "*") in ("*", "", " ", 0, 1, None)
        for person in lev.get("aanleverende_organisatie", {}).get("contactpersonen", []):
            if "email" in person:
                assert person["email"] in (GELDIG_EMAIL, ONGELDIG_EMAIL)


def test_planted_values_of_the_corpus_never_survive_in_personal_places() -> None:
    # The corpus plants personal-looking values everywhere; where the schema says a place holds
    # a date, code or enum they stay (they are then the finding's subject, and identify no one
    # there), but in a client, in free text, in an unknown member or as a value of the wrong
    # type they must be gone.
    planted = [p.encode() for p in mut.PLANTED]
    for n, text in mut.corpus(400):
        doc = json.loads(text)
        pseudo = orjson.loads(pseudonymise_bytes(text.encode(), KEY))
        for lev_in, lev_out in zip(
            _list(doc, "leveringen"), _list(pseudo, "leveringen"), strict=True
        ):
            for t_in, t_out in zip(
                _list(lev_in, "schuldhulptrajecten"),
                _list(lev_out, "schuldhulptrajecten"),
                strict=True,
            ):
                clients = msgspec.json.encode(
                    t_out.get("client") if isinstance(t_out, dict) else t_out
                )
                for p in planted:
                    assert p not in clients, (n, p)
                if isinstance(t_in, dict):
                    for key in set(t_in) - set(
                        mut.resolve(_TRAJECT, mut.official_schema())["properties"]
                    ):
                        assert msgspec.json.encode(t_out[key]) in (
                            b'"*"',
                            b'""',
                            b"0",
                            b"1",
                            b"[]",
                            b"[0]",
                            b"{}",
                            b'{"*":0}',
                            b"null",
                            b"true",
                            b"false",
                            b'" "',
                            b"0.0",
                            b"1.0",
                            b"0.5",
                        )


_TRAJECT = mut.official_schema()["properties"]["leveringen"]["items"]["properties"][
    "schuldhulptrajecten"
]["items"]


def _list(value: Any, key: str) -> list[Any]:
    inner = value.get(key) if isinstance(value, dict) else None
    return inner if isinstance(inner, list) else []


# -- pseudonyms -------------------------------------------------------------------------------


def test_pseudonyms_are_keyed_and_consistent() -> None:
    raw = _client_doc(
        [[{"Burgerservicenummer": "123456782"}], [{"Burgerservicenummer": " 123456782"}]]
    )
    a = orjson.loads(pseudonymise_bytes(raw, KEY))
    b = orjson.loads(pseudonymise_bytes(raw, b"x" * 32))
    ca = [t["client"][0] for t in a["leveringen"][0]["schuldhulptrajecten"]]
    cb = [t["client"][0] for t in b["leveringen"][0]["schuldhulptrajecten"]]
    # the trimmed BSNs are equal, so are the pseudonyms; another key gives others
    assert ca[0]["Burgerservicenummer"] == ca[1]["Burgerservicenummer"]
    assert re.fullmatch("[0-9a-f]{64}", ca[0]["Burgerservicenummer"])
    assert ca[0]["Burgerservicenummer"] != cb[0]["Burgerservicenummer"]
    assert ca[0]["bsnControle"] == {
        "elfproef": True,
        "genormaliseerd": False,
        "leeg": False,
        "pseudoniem": ca[0]["Burgerservicenummer"],
    }
    assert ca[1]["bsnControle"]["genormaliseerd"] is True


def test_rules_fast_and_exact_pass_agree_on_pseudonymised_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ddas.domain.rules import check_document as rule_check

    doc = orjson.loads(pseudonymise_bytes(_generated(1500, 5, fouten=0.3, leveringen=2), KEY))
    found = rule_check(doc)
    with monkeypatch.context() as m:
        m.setattr(RuleEngine, "_fast", lambda self, t, ptr: False)
        assert rule_check(doc) == found
    assert found


# -- the key ----------------------------------------------------------------------------------


def test_no_key_outside_test_mode(tmp_path: Path) -> None:
    with pytest.raises(MissingPseudonymKey, match="DDAS_PSEUDONYM_KEY"):
        load_key(None, None, test_mode=False)
    with pytest.raises(MissingPseudonymKey, match="te kort"):
        load_key("kort", None, test_mode=False)
    with pytest.raises(MissingPseudonymKey, match="kan niet worden gelezen"):
        load_key(None, tmp_path / "missing", test_mode=False)
    assert load_key(None, None, test_mode=True) == pseudonym.TEST_KEY
    keyfile = tmp_path / "key"
    keyfile.write_text("s" * 40 + "\n")
    assert load_key(None, keyfile, test_mode=False) == b"s" * 40
    assert load_key("t" * 32, keyfile, test_mode=False) == b"t" * 32


def test_contact_emails_are_the_valid_raw_addresses() -> None:
    lev = {
        "aanleverende_organisatie": {
            "contactpersonen": [{"email": "a@example.nl"}, {"email": "geen"}, {"naam": "x"}]
        }
    }
    assert list(pseudonym.contact_emails(lev)) == ["a@example.nl"]
    assert list(pseudonym.contact_emails("x")) == []
