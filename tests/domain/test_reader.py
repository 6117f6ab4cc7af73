"""Reading SHV files: every unreadable case fails with a one-line reason; every readable shape,
however far from the schema, is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ddas.domain.reader import (
    ABSENT,
    ArrayShape,
    LeveringHeader,
    RootHeader,
    Traject,
    UnreadableFile,
    parse_document,
    read_document,
)
from tests.domain import schema_mutations as mut

ROOT = {
    "startdatumLevering": "2025-01-01",
    "einddatumLevering": "2025-06-30",
    "aanleverdatumEnTijd": "2025-07-01T10:00:00Z",
    "codeGegevensleverancier": "X",
}


def _doc(**extra: object) -> bytes:
    return json.dumps({**ROOT, **extra}).encode()


def _reason(data: bytes) -> str:
    with pytest.raises(UnreadableFile) as info:
        parse_document(data)
    reason = str(info.value)
    assert reason == info.value.reason
    assert "\n" not in reason and reason
    return reason


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "leeg"),
        (b"  \n\t ", "alleen witruimte"),
        (b"\xef\xbb\xbf{}", "byte-order-mark"),
        (b'{"a": "caf\xe9"}', "geen geldige UTF-8"),  # Latin-1
        (b'{"a": "\xc0\xaf"}', "geen geldige UTF-8"),  # overlong
        (b'{"a": "\xed\xa0\x80"}', "geen geldige UTF-8"),  # an encoded surrogate
        ('{"a": "é"}'.encode("utf-16"), "geen geldige UTF-8"),
        (b"{'a': 1}", "geen geldige JSON op regel 1, kolom 2 (byte 1)"),
        (b'{"a": 1,\n "b": tru}', "geen geldige JSON op regel 2"),
        (b'{"a": 1} x', "tekst na het einde"),
        (b'{"a": [1, 2}', "verwacht ',' of ']'"),
        (b'{"a": NaN}', "geen geldige JSON"),
        (b'{"a": "\\x"}', "escape"),
        (b'{"a": "\\ud800"}', "losse \\u-surrogaat"),
        (b'{"a": "\\udc00 x"}', "surrogaat"),
        (b'{"a": "\\\\ud800", "b": "\\ud83d"}', "byte 23"),  # after an escaped backslash
        (b'{"leveringen": [{"schuldhulptrajecten": [{"a": 1}', "afgebroken"),
        (_doc(leveringen=[{"schuldhulptrajecten": [{"gemeentecode": "0599"}]}])[:-7], "afgebroken"),
        (b"[]", "geen object maar een array"),
        (b'[{"leveringen": []}]', "geen object maar een array"),
        (b'"leveringen"', "geen object maar een tekst"),
        (b"12", "geen object maar een getal"),
        (b"null", "geen object maar null"),
        (b"true", "geen object maar een boolean"),
    ],
)
def test_unreadable(data: bytes, expected: str) -> None:
    assert expected in _reason(data)


def test_unreadable_json_late_in_a_large_file_is_found_by_the_skeleton() -> None:
    trajecten = [{"gemeentecode": "0599"}] * 5000
    data = _doc(leveringen=[{"teller": 1, "schuldhulptrajecten": trajecten}])
    broken = data.replace(b'"0599"}]}]', b'"0599"]}]')
    assert "geen geldige JSON op regel 1" in _reason(broken)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="niet gevonden"):
        read_document(tmp_path / "bestaat-niet.json")
    with pytest.raises(UnreadableFile, match="map"):
        read_document(tmp_path)


def test_well_formed_file_in_file_order(tmp_path: Path) -> None:
    lev = {
        "teller": 1,
        "aanleverende_organisatie": {"(Statutaire) Naam": "G"},
        "schuldhulptrajecten": [{"gemeentecode": "0599"}, {"gemeentecode": "Onbekend"}],
    }
    path = tmp_path / "f.json"
    path.write_bytes(_doc(leveringen=[lev, {"teller": 2, "schuldhulptrajecten": []}]))
    doc = read_document(path)
    parts = list(doc.parts())
    assert [type(p) for p in parts] == [
        RootHeader,
        LeveringHeader,
        Traject,
        Traject,
        LeveringHeader,
    ]
    root, lev0, t0, t1, lev1 = parts
    assert isinstance(root, RootHeader) and root.data == ROOT
    assert root.leveringen == ArrayShape(2) and root.pointer == ""
    assert isinstance(lev0, LeveringHeader)
    assert lev0.data == {"teller": 1, "aanleverende_organisatie": {"(Statutaire) Naam": "G"}}
    assert lev0.trajecten == ArrayShape(2) and lev0.pointer == "/leveringen/0"
    assert isinstance(t1, Traject) and t1.data == {"gemeentecode": "Onbekend"}
    assert (t1.levering, t1.index) == (0, 1)
    assert t1.pointer == "/leveringen/0/schuldhulptrajecten/1"
    assert json.loads(bytes(t1.raw)) == t1.data
    assert isinstance(lev1, LeveringHeader) and lev1.trajecten == ArrayShape(0)
    assert doc.traject_count == 2 and doc.size == path.stat().st_size


@pytest.mark.parametrize(
    ("extra", "leveringen", "levering", "trajecten"),
    [
        ({}, ABSENT, None, None),
        ({"leveringen": "x"}, "x", None, None),
        ({"leveringen": None}, None, None, None),
        ({"leveringen": {"schuldhulptrajecten": []}}, {"schuldhulptrajecten": []}, None, None),
        ({"leveringen": [5]}, ArrayShape(1), 5, ABSENT),
        ({"leveringen": [{"teller": 1}]}, ArrayShape(1), {"teller": 1}, ABSENT),
        ({"leveringen": [{"schuldhulptrajecten": {"a": 1}}]}, ArrayShape(1), {}, {"a": 1}),
        ({"leveringen": [{"schuldhulptrajecten": None}]}, ArrayShape(1), {}, None),
        ({"leveringen": [], "$schema": "x"}, ArrayShape(0), None, None),
        (
            {"leveringen": [{"onbekend": 1, "schuldhulptrajecten": [1]}]},
            ArrayShape(1),
            {"onbekend": 1},
            ArrayShape(1),
        ),
    ],
)
def test_schema_problems_are_read_not_refused(
    extra: dict[str, object], leveringen: object, levering: object, trajecten: object
) -> None:
    parts = list(parse_document(_doc(**extra)).parts())
    root = parts[0]
    assert isinstance(root, RootHeader)
    assert root.leveringen == leveringen
    assert "leveringen" not in root.data
    if levering is not None:
        lev = parts[1]
        assert isinstance(lev, LeveringHeader)
        assert lev.data == levering and lev.trajecten == trajecten


def test_tolerant_reading_gives_the_same_parts() -> None:
    """An unknown member at the root or in a levering sends the file down the tolerant path; the
    parts are the same as the skeleton path's."""
    lev = {"teller": 1, "schuldhulptrajecten": [{"gemeentecode": "0599"}, {"x": [1, {}]}]}
    plain = list(parse_document(_doc(leveringen=[lev, lev])).parts())
    for doc in (
        _doc(leveringen=[lev, lev], extra=1),
        _doc(leveringen=[lev, {**lev, "extra": 1}], extra=1),
    ):
        parts = list(parse_document(doc).parts())
        assert [type(p) for p in parts] == [type(p) for p in plain]
        assert [p.data for p in parts[2:4]] == [p.data for p in plain[2:4]]
        assert [bytes(p.raw) for p in parts if isinstance(p, Traject)] == [
            bytes(p.raw) for p in plain if isinstance(p, Traject)
        ]


def test_root_members_of_any_type_and_odd_trajectories() -> None:
    data = json.dumps(
        {
            "startdatumLevering": None,
            "codeGegevensleverancier": [1],
            "leveringen": [
                {"teller": "1", "schuldhulptrajecten": [None, "x", [], 1e400, {"gemeentecode": 5}]}
            ],
        }
    ).encode()
    data = data.replace(b"Infinity", b"1e400")
    parts = list(parse_document(data).parts())
    assert parts[0].data == {"startdatumLevering": None, "codeGegevensleverancier": [1]}
    assert [p.data for p in parts[2:]] == [None, "x", [], float("inf"), {"gemeentecode": 5}]


def test_duplicate_members_last_wins_as_in_json_parse() -> None:
    data = b'{"leveringen": [{"schuldhulptrajecten": [{"gemeentecode": 1, "gemeentecode": "2"}]}]}'
    assert list(parse_document(data).parts())[2].data == {"gemeentecode": "2"}


def test_non_ascii_utf8_is_read(tmp_path: Path) -> None:
    naam = "Gemeente Súdwest-Fryslân"
    lev = {
        "teller": 1,
        "aanleverende_organisatie": {"(Statutaire) Naam": naam},
        "schuldhulptrajecten": [{"gemeentecode": "1900", "omschrijving": "€ 😀 \u2028"}],
    }
    # Larger than one UTF-8 check chunk, with a multi-byte character across the chunk border.
    text = json.dumps({**ROOT, "leveringen": [lev] * 40000}, ensure_ascii=False)
    parts = list(parse_document(text.encode()).parts())
    assert parts[-1].data["omschrijving"] == "€ 😀 \u2028"


@pytest.mark.parametrize(
    "path", mut.example_files() if mut.SPEC.exists() else [], ids=lambda p: p.name
)
def test_real_files_read_as_json_parse_does(path: Path) -> None:
    expected = json.loads(path.read_text("utf-8"))
    doc = read_document(path)
    parts = list(doc.parts())
    rebuilt = dict(parts[0].data)
    leveringen = []
    for part in parts[1:]:
        if isinstance(part, LeveringHeader):
            leveringen.append({**part.data, "schuldhulptrajecten": []})
        else:
            leveringen[-1]["schuldhulptrajecten"].append(part.data)
    rebuilt["leveringen"] = leveringen
    assert rebuilt == expected
