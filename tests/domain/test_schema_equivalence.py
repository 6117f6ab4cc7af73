"""The schema check equals the official JSON Schema, proven on a mutated corpus.

For every file of the corpus (tests/domain/schema_mutations.py): the (pointer, code) pairs of
our findings equal the reference's errors over the whole file (jsonschema Draft202012Validator
with the DDAS-app's formats, on Python's json parse), so do the verdicts; and for every
trajectory our verdict and locations equal the reference's for that trajectory alone (through the
check, and through the exact path alone), and the fast path never accepts a trajectory the
reference rejects.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from ddas.domain.reader import Traject, parse_document
from ddas.domain.schema import SchemaCheck, exact
from tests.domain import schema_mutations as mut

CORPUS_SIZE = 1200


def _traject_schema(schema: dict[str, Any]) -> dict[str, Any]:
    items = schema["properties"]["leveringen"]["items"]["properties"]["schuldhulptrajecten"][
        "items"
    ]
    return {"$schema": schema["$schema"], **items, "$defs": schema["$defs"]}


def test_mutated_corpus_equals_reference() -> None:
    schema = mut.official_schema()
    reference = mut.reference_validator(schema)
    reference_traject = mut.reference_validator(_traject_schema(schema))
    check = SchemaCheck()
    stats: Counter[str] = Counter()
    for n, text in mut.corpus(CORPUS_SIZE):
        instance = json.loads(text)
        expected = mut.reference_locations(reference, instance)
        got: Counter[tuple[str, str]] = Counter()
        for part in parse_document(text.encode()).parts():
            findings = check.part(part)
            located = Counter((f.pointer, f.code) for f in findings)
            got.update(located)
            if isinstance(part, Traject):
                alone = json.loads(bytes(part.raw))
                valid = reference_traject.is_valid(alone)
                assert (not findings) is valid, (n, part.pointer)
                expected_here = mut.reference_locations(reference_traject, alone, part.pointer)
                assert located == expected_here
                # The exact path alone, on valid trajectories too.
                assert (
                    Counter(
                        (f.pointer, f.code) for f in exact.TRAJECT.findings(alone, part.pointer)
                    )
                    == expected_here
                )
                fast = check.fast_accepts(part.raw)
                assert valid or not fast, f"fast path accepted an invalid trajectory: {n}"
                stats["trajecten"] += 1
                stats["trajecten ongeldig"] += not valid
                stats["geldig maar niet via het snelle pad"] += valid and not fast
        assert got == expected, (n, text)
        assert (not got) is reference.is_valid(instance)
        stats["bestanden"] += 1
        stats["bestanden ongeldig"] += bool(got)
        stats.update(code for _, code in got)
    print(dict(stats))
    # The corpus must exercise what it claims to.
    assert stats["bestanden"] >= 1000
    assert stats["bestanden ongeldig"] >= 0.6 * stats["bestanden"]
    assert stats["bestanden ongeldig"] <= 0.97 * stats["bestanden"]
    assert stats["trajecten ongeldig"] >= 500
    for code in (
        "required",
        "type",
        "enum",
        "format",
        "additionalProperties",
        "minItems",
        "maxItems",
    ):
        assert stats[f"schema.{code}"] >= 20, code


def test_fast_path_date_is_a_subset_of_ajv_date() -> None:
    """msgspec's date decoding (the fast path) accepts nothing ajv-formats' date rejects."""
    import random

    import msgspec

    from ddas.domain.schema.formats import is_date

    rng = random.Random(5)
    alphabet = "0123456789-+ TZ:\uff10\u0660"
    candidates = [
        f"{y:04d}-{m:02d}-{d:02d}"
        for y in (0, 1, 1900, 2000, 2024, 2025, 2100, 9999)
        for m in range(0, 14)
        for d in range(0, 33)
    ]
    candidates += [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(8, 12))) for _ in range(20000)
    ]
    decoder = msgspec.json.Decoder(__import__("datetime").date)
    for s in candidates:
        try:
            decoder.decode(json.dumps(s))
        except msgspec.ValidationError:
            continue
        assert is_date(s), s
