"""The CPU side of validate without a broker or database: a delivery cut into chunks, each
checked on its own (services.validate.chunks), then completed over the facts in file order
(services.validate.completion), gives exactly `ddas check`'s findings (same codes, pointers,
severities, messages, in the same order) and tables."""

from __future__ import annotations

import io
import random
import uuid
from datetime import date

import msgspec
import orjson
import pytest

from ddas.domain.check import CheckResult, check_document
from ddas.domain.oor import Oor, OorDeel
from ddas.domain.pseudonym import pseudonymise_bytes
from ddas.domain.reader import parse_document
from ddas.domain.tables import Periode, TrajectFeit, traject_feit
from ddas.generate import Options, generate
from ddas.pipeline.events import Chunk, encode
from ddas.testing import shared_dir
from services.validate.chunks import (
    CheckedChunk,
    ChunkError,
    RawChunk,
    check_chunk,
    decode,
    decode_kort,
    decode_value,
)
from services.validate.completion import (
    GEEN_TRAJECTEN,
    PERIODE_OMGEDRAAID,
    PERIODE_ONGELDIG,
    Uitkomst,
    complete,
)

from .helpers import chunks_of

EXAMPLES = shared_dir() / "ddas/examples/ddas-app"


def validate_in_memory(
    chunks: list[Chunk], *, shuffle: bool = False
) -> tuple[Uitkomst, list[tuple[str, str, str, str]]]:
    """What the service does, without the database: check each chunk (in any order), then
    complete over the facts sorted into file order; the findings in their stored order."""
    order = list(chunks)
    if shuffle:
        random.Random(7).shuffle(order)
    checked: list[CheckedChunk] = [check_chunk(encode(c)) for c in order]
    koppen = sorted(
        (c.levering_index, decode_value(c.levering_json))
        for c in checked
        if c.levering_json is not None
    )
    delen = [
        (c.levering_index, decode_kort(c.kort))
        for c in sorted(checked, key=lambda c: (c.levering_index, c.eerste))
    ]
    levering_id = checked[0].levering_id
    uitkomst = complete(levering_id, checked[0].root, koppen, delen)
    rows = [b for c in checked for b in c.bevindingen] + uitkomst.bevindingen
    rows.sort(key=lambda b: (b.fase, b.levering_index, b.traject_index, b.volgnummer))
    return uitkomst, [(b.code, b.ernst, b.pointer, b.message) for b in rows]


def as_check(result: CheckResult) -> list[tuple[str, str, str, str]]:
    return [(f.code, str(f.ernst), f.pointer, f.message) for f in result.findings]


def generated(**options: object) -> bytes:
    out = io.BytesIO()
    generate(out, Options(**options))  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize(
    "name",
    [
        "testbestand_schuldhulpverlening_750.json",
        "testbestand_schuldhulpverlening_1500.json",
        "testbestand_schuldhulpverlening_20260612.json",
        "SHV_2025M09_Enschede_2.json",
    ],
)
def test_chunked_validation_of_the_app_test_files_equals_ddas_check(name: str) -> None:
    data = (EXAMPLES / name).read_bytes()
    expected = check_document(parse_document(data), parallel=False)
    for size in (1, 97, 5000):
        uitkomst, findings = validate_in_memory(chunks_of(data, uuid.uuid4(), size), shuffle=True)
        assert uitkomst.totalen == expected.totalen
        assert findings == as_check(expected)
        assert uitkomst.state == "gevalideerd"


def test_the_750_file_gives_the_seed_presentation_totals() -> None:
    data = (EXAMPLES / "testbestand_schuldhulpverlening_750.json").read_bytes()
    uitkomst, _ = validate_in_memory(chunks_of(data, uuid.uuid4(), 100))
    totaal = uitkomst.totalen.totaal
    assert (totaal.trajecten, totaal.unieke_bsn, totaal.unieke_actieve_bsn) == (750, 875, 539)
    rij = next(r for r in uitkomst.totalen.rijen if r.gemeentecode == "0503")
    assert (rij.trajecten, rij.unieke_bsn, rij.unieke_actieve_bsn) == (167, 197, 125)


def test_a_flawed_file_over_several_leveringen_gives_every_finding_once_in_check_order() -> None:
    # Flaws of every kind, trajectories of one client in several leveringen (overlaps across
    # chunks and leveringen), and two leveringen of one organisation (levering rules at the end).
    data = generated(trajecten=3000, seed=11, fouten=0.05, leveringen=3)
    doc = orjson.loads(data)
    doc["leveringen"][2]["teller"] = doc["leveringen"][0]["teller"]  # levering.teller_dubbel
    doc["leveringen"][1]["aanleverende_organisatie"] = doc["leveringen"][0][
        "aanleverende_organisatie"
    ]
    doc["leveringen"][1]["schuldhulptrajecten"][5] = "geen object"
    data = orjson.dumps(doc)
    expected = check_document(parse_document(data), parallel=False)
    codes = {f.code for f in expected.findings}
    assert {"levering.teller_dubbel", "schema.type", "bsn.elfproef"} <= codes
    uitkomst, findings = validate_in_memory(chunks_of(data, uuid.uuid4(), 128), shuffle=True)
    assert findings == as_check(expected)
    assert uitkomst.totalen == expected.totalen


def test_the_rules_across_trajectories_find_clients_across_chunks_and_leveringen() -> None:
    # One client's trajectory again in another levering (with another gemeentecode) and at the
    # end of a third: overlaps and municipalities across chunks and leveringen, the findings
    # of the completion (`RuleEngine.record_all`), each with its pointer.
    doc = orjson.loads(generated(trajecten=3000, seed=11, fouten=0.05, leveringen=3))
    leveringen = doc["leveringen"]
    for i in range(0, 300, 3):
        again = dict(leveringen[0]["schuldhulptrajecten"][i], gemeentecode="0363")
        leveringen[1]["schuldhulptrajecten"].insert(i, again)
        leveringen[2]["schuldhulptrajecten"].append(leveringen[0]["schuldhulptrajecten"][i + 1])
    data = orjson.dumps(doc)
    expected = check_document(parse_document(data), parallel=False)
    uitkomst, findings = validate_in_memory(chunks_of(data, uuid.uuid4(), 128), shuffle=True)
    codes = {b.code for b in uitkomst.bevindingen}
    assert {"bsn.overlappende_trajecten", "levering.andere_gemeente"} <= codes
    assert findings == as_check(expected)
    assert uitkomst.totalen == expected.totalen


@pytest.mark.parametrize(
    ("change", "afkeuring"),
    [
        ({"startdatumLevering": "2025-13-01"}, PERIODE_ONGELDIG),
        ({"einddatumLevering": None}, PERIODE_ONGELDIG),
        (
            {"startdatumLevering": "2026-01-01", "einddatumLevering": "2025-01-01"},
            PERIODE_OMGEDRAAID,
        ),
    ],
)
def test_a_period_that_is_no_period_rejects_the_delivery(
    change: dict[str, object], afkeuring: str
) -> None:
    doc = orjson.loads(generated(trajecten=50, seed=2))
    doc.update(change)
    data = orjson.dumps(doc)
    uitkomst, findings = validate_in_memory(chunks_of(data, uuid.uuid4(), 20))
    assert (uitkomst.state, uitkomst.afkeuring) == ("afgekeurd", afkeuring)
    assert findings == as_check(check_document(parse_document(data), parallel=False))


@pytest.mark.parametrize(
    "leveringen", [[], None, "niets", [{"teller": 1, "schuldhulptrajecten": []}], [5]]
)
def test_a_delivery_without_trajectories_is_rejected_with_the_schema_findings(
    leveringen: object,
) -> None:
    doc = orjson.loads(generated(trajecten=1, seed=2))
    if leveringen is None:
        del doc["leveringen"]
    else:
        doc["leveringen"] = leveringen
    data = orjson.dumps(doc)
    uitkomst, findings = validate_in_memory(chunks_of(data, uuid.uuid4(), 20))
    assert (uitkomst.state, uitkomst.afkeuring) == ("afgekeurd", GEEN_TRAJECTEN)
    assert findings == as_check(check_document(parse_document(data), parallel=False))


def test_the_envelope_is_checked_before_anything_else() -> None:
    good = chunks_of(generated(trajecten=3, seed=1), uuid.uuid4(), 10)[0]
    assert decode(encode(good)).levering_id == uuid.UUID(good.levering_id)
    with pytest.raises(msgspec.DecodeError):
        decode(b"\x00\xffgeen json")
    for bad in (
        {"trajecten": {"0": {}}},
        {"trajecten": "x"},
        {"event_id": "geen uuid"},
        {"chunk": -1},
        {"onbekend": 1},
    ):
        value = {**orjson.loads(encode(good)), **bad}
        with pytest.raises(msgspec.ValidationError):
            decode(msgspec.json.encode(value))
    with pytest.raises(ChunkError, match="chunk 1 of a delivery of 1 chunks"):
        decode(msgspec.json.encode({**orjson.loads(encode(good)), "chunk": 1}))
    with pytest.raises(ChunkError, match="root is not a JSON object"):
        check_chunk(msgspec.json.encode({**orjson.loads(encode(good)), "root": []}))


def test_the_raw_chunk_has_exactly_the_fields_of_the_contract() -> None:
    assert RawChunk.__struct_fields__ == Chunk.__struct_fields__


def test_a_chunk_keeps_the_facts_of_its_trajectories_but_not_the_trajectories() -> None:
    data = generated(trajecten=4, seed=5, periode=(date(2025, 1, 1), date(2025, 6, 30)))
    chunk = chunks_of(data, uuid.uuid4(), 2)[1]
    checked = check_chunk(encode(chunk))
    p = Periode("2025-01-01", "2025-06-30")
    trajecten = [orjson.loads(msgspec.json.encode(t)) for t in chunk.trajecten]
    feiten = decode_kort(checked.kort)
    assert [f[0] for f in feiten] == [2, 3]
    assert [TrajectFeit(*f[1:6]) for f in feiten] == [traject_feit(t, p) for t in trajecten]
    # What is stored of the trajectories: their facts and the OOR part, not their text.
    assert set(CheckedChunk.__slots__) == {  # type: ignore[attr-defined]
        "event_id", "levering_id", "chunk", "chunks", "root", "root_json", "levering_index",
        "eerste", "levering_json", "kort", "oor", "bevindingen", "trajecten",
    }  # fmt: skip
    assert checked.levering_json is None and checked.chunk == 1


@pytest.mark.parametrize("name", ["testbestand_schuldhulpverlening_750.json", "generated"])
def test_the_chunks_oor_parts_merged_with_the_completions_tables_are_the_whole_files_oor(
    name: str,
) -> None:
    # Each chunk counts its part of the OOR where it decoded the trajectories; merged in any
    # order with the tables of the completion they give the OOR counted in one pass over the
    # raw file (BSNs or pseudonyms: counting needs only their equality).
    if name == "generated":
        raw = generated(trajecten=3000, seed=4, fouten=0.1, leveringen=2)
    else:
        raw = (EXAMPLES / name).read_bytes()
    doc = orjson.loads(raw)
    p = Periode(doc["startdatumLevering"], doc["einddatumLevering"])
    whole = Oor(p)
    for lev in doc["leveringen"]:
        for t in lev["schuldhulptrajecten"]:
            whole.add(t)
    expected = whole.result().as_dict()

    chunks = chunks_of(pseudonymise_bytes(raw, b"k" * 32), uuid.uuid4(), 200)
    assert len(chunks) > 2
    checked = [check_chunk(encode(c)) for c in chunks]
    uitkomst, _ = validate_in_memory(chunks)
    merged = Oor(p, tabellen=False)
    for c in reversed(checked):
        merged.voeg_toe(OorDeel.decode(c.oor))
    got = merged.result(uitkomst.totalen).as_dict()
    assert got == expected
    assert got["totaal"]["instroom"]["clienten"] > 0
    assert got["totaal"]["schulden"]["trajecten"] > 0


@pytest.mark.parametrize("name", ["testbestand_schuldhulpverlening_750.json", "generated"])
def test_pseudonymised_chunks_give_the_findings_and_tables_of_the_raw_file(name: str) -> None:
    # What validate really gets: the document as ingest pseudonymises it (BSNs as keyed
    # HMACs with their bsnControle facts, identifying values as placeholders).
    if name == "generated":
        raw = generated(trajecten=2000, seed=8, fouten=0.05, leveringen=2)
    else:
        raw = (EXAMPLES / name).read_bytes()
    pseudonymised = pseudonymise_bytes(raw, b"k" * 32)
    assert b'"bsnControle"' in pseudonymised
    expected = check_document(parse_document(raw), parallel=False)
    uitkomst, findings = validate_in_memory(chunks_of(pseudonymised, uuid.uuid4(), 300))
    assert findings == as_check(expected)
    assert uitkomst.totalen == expected.totalen
