"""Mutated SHV files for the schema equivalence tests, and the reference verdicts.

A corpus file is a small delivery: the root header of a real example file with one or two
leveringen, each with a handful of trajectories sampled from the real examples or generated from
the schema (`random_traject`), then 1 to 4 random mutations: removed required members, wrong
types, unknown members (where additionalProperties is false and where it is not), bad and tricky
enum values, dates, date-times and e-mail addresses, empty and overfull arrays, JSON number forms
(1.0, 1e2, 1e400) and duplicate members. Everything is seeded: the corpus is the same each run.

The reference is jsonschema's Draft202012Validator over the whole file, as parsed by Python's
json module, with the DDAS-app's formats (ddas.domain.schema.formats, themselves checked against
ajv-formats in test_schema_formats.py) and ajv's integers (1e400 is one); `reference_locations`
turns its errors into the (pointer, code) pairs the check must report.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, TypeChecker, validators
from jsonschema.protocols import Validator

from ddas.domain.findings import pointer
from ddas.domain.schema import official
from ddas.domain.schema.exact import is_integer
from ddas.domain.schema.formats import format_checker
from ddas.testing import shared_dir

SHARED = shared_dir() / "ddas"
SPEC = SHARED / "spec" / "schuldhulpverlening-v1.0"
EXAMPLES = SHARED / "examples" / "ddas-app"
PACKAGE_DATA = Path(official.__file__).with_name(official.SCHEMA_FILE)


def official_schema() -> dict[str, Any]:
    """The schema as published (the shared spec when present, else the shipped copy)."""
    path = SPEC / official.SCHEMA_FILE
    return json.loads((path if path.exists() else PACKAGE_DATA).read_text("utf-8"))


def example_files() -> list[Path]:
    files = sorted(SPEC.glob("*.json")) + sorted(EXAMPLES.glob("*.json"))
    return [f for f in files if f.name != official.SCHEMA_FILE]


def _integer(checker: TypeChecker, instance: object) -> bool:
    return is_integer(instance)


# jsonschema's draft 2020-12 with ajv's integers: 1e400 (inf once parsed) is one.
_Reference = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _integer),
)


def reference_validator(schema: Mapping[str, Any] | None = None) -> Validator:
    """jsonschema draft 2020-12, every format asserted the DDAS-app's way, ajv's integers."""
    schema = schema or official_schema()
    Draft202012Validator.check_schema(schema)
    return _Reference(schema, format_checker=format_checker())  # type: ignore[no-any-return]


def reference_locations(
    validator: Validator, instance: Any, prefix: str = ""
) -> Counter[tuple[str, str]]:
    """The (pointer, code) pairs the reference's errors stand for: `required` at the object,
    `additionalProperties` once per unknown member at that member, the rest at the value."""
    out: Counter[tuple[str, str]] = Counter()
    for error in validator.iter_errors(instance):
        where = prefix + pointer(*error.absolute_path)
        if error.validator == "additionalProperties":
            known = error.schema.get("properties", {})
            for name in error.instance:
                if name not in known:
                    out[(where + pointer(name), "schema.additionalProperties")] += 1
        else:
            out[(where, f"schema.{error.validator}")] += 1
    return out


# --- values --------------------------------------------------------------------------------

# Planted personal-looking values: they must never appear in a finding's text.
PLANTED = (
    "999990019",
    "7311AB",
    "1901-02-03",
    "1901-02-30",
    "Jansen-Vermeulen",
    "p.jansen@example.org",
    "Kerkstraat 77",
)

BAD_DATES = (
    "2025-02-30",
    "2025-1-01",
    "20250101",
    "2025-13-01",
    "2025-00-10",
    "2025-01-32",
    "2025-04-31",
    "1900-02-29",
    "2100-02-29",
    "2025-01-01T00:00:00",
    "2025-01-01 ",
    " 2025-01-01",
    "\uff12\uff10\uff12\uff15-01-01",
    "2025-01-01\n",
    "",
    "2025/01/01",
    "01-01-2025",
    "2025-01-01Z",
    "+2025-01-01",
    "1901-02-30",
)
GOOD_DATES = (
    "2024-02-29",
    "2000-02-29",
    "0000-01-01",
    "9999-12-31",
    "2025-12-31",
    "1901-02-03",
    "0001-01-01",
    "2400-02-29",
)
BAD_DATE_TIMES = (
    "2026-01-15T10:30:00",
    "2026-01-15",
    "2026-01-15T10:30Z",
    "2026-01-1510:30:00Z",
    "2026-01-15T24:00:00Z",
    "2026-01-15T10:30:00+24:00",
    "2026-01-15T12:59:60+01:00",
    "2026-02-30T10:30:00Z",
    "2026-01-15TT10:30:00Z",
    "2026-01-15T10:30:00 Z",
    "2026-01-15\u200b10:30:00Z",
    "2026-01-15T10:30:00.Z",
    "15-01-2026 10:30",
    "2026-01-15T10:30:00+1:00",
)
GOOD_DATE_TIMES = (
    "2026-01-15T10:30:00Z",
    "2026-01-15t10:30:00z",
    "2026-01-15 10:30:00+01:00",
    "2026-01-15T10:30:00+0100",
    "2026-01-15T10:30:00+01",
    "2026-01-30T20:27:00.000+01:00",
    "2026-12-31T23:59:60Z",
    "2026-01-01T00:59:60+01:00",
    "2026-01-15\u300010:30:00Z",
    "2026-01-15\t10:30:00.123456-05:30",
)
BAD_EMAILS = (
    "geen-email",
    "a@b",
    "a..b@example.nl",
    ".a@example.nl",
    "a@-x.nl",
    "a b@example.nl",
    "\u017f@example.nl",
    "\u212a@example.nl",
    "a@example.nl\n",
    '"a"@example.nl',
    "a@[192.168.0.1]",
    "@example.nl",
    "",
)
GOOD_EMAILS = (
    "test1@example.nl",
    "A.B+c@Sub.Example.NL",
    "x@1.2",
    "!#$%&'*+/=?^_`{|}~-@x.nl",
    "p.jansen@example.org",
)
WRONG_TYPES: tuple[Any, ...] = ("tekst", 12, 1.5, None, True, False, [], {}, ["x"], {"a": 1})

# JSON number forms json.dumps cannot write: markers replaced in the text.
_NUMBER_MARKERS = {
    "1E2": 7.123456789e-99,
    "1e400": 7.223456789e-99,
    "-1e400": 7.323456789e-99,
    "100.0": 7.423456789e-99,
}
_DUPLICATE_MARKER = "\u2603duplicate\u2603"


# --- the schema as a tree of places -----------------------------------------------------------


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    return schema


@dataclass(frozen=True)
class Site:
    path: tuple[str | int, ...]
    schema: Mapping[str, Any]  # resolved
    value: Any


def sites(doc: Any, schema: Mapping[str, Any]) -> list[Site]:
    """Every place of `doc` that the schema describes, depth first."""
    out: list[Site] = []

    def walk(value: Any, sub: Mapping[str, Any], path: tuple[str | int, ...]) -> None:
        sub = resolve(sub, schema)
        out.append(Site(path, sub, value))
        if sub.get("type") == "object" and isinstance(value, dict):
            props = sub.get("properties", {})
            for key, member in value.items():
                if key in props:
                    walk(member, props[key], (*path, key))
        elif sub.get("type") == "array" and isinstance(value, list) and "items" in sub:
            for i, item in enumerate(value):
                walk(item, sub["items"], (*path, i))

    walk(doc, schema, ())
    return out


def _get(doc: Any, path: tuple[str | int, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def _set(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    _get(doc, path[:-1])[path[-1]] = value


def _delete(doc: Any, path: tuple[str | int, ...]) -> None:
    del _get(doc, path[:-1])[path[-1]]


# --- generating valid trajectories from the schema --------------------------------------------


def random_value(
    schema: Mapping[str, Any], root: Mapping[str, Any], rng: random.Random, depth: int = 0
) -> Any:
    """A random schema-valid value, each optional member present with probability ~1/2."""
    schema = resolve(schema, root)
    kind = schema.get("type")
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return {
            k: random_value(v, root, rng, depth + 1)
            for k, v in props.items()
            if k in required or rng.random() < (0.5 if depth < 2 else 0.3)
        }
    if kind == "array":
        lo, hi = schema.get("minItems", 0), schema.get("maxItems", 3)
        return [
            random_value(schema["items"], root, rng, depth + 1)
            for _ in range(rng.randint(lo, max(lo, min(hi, 3))))
        ]
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date":
            year, month, day = rng.randint(2019, 2026), rng.randint(1, 12), rng.randint(1, 28)
            return f"{year:04d}-{month:02d}-{day:02d}"
        if fmt == "date-time":
            return rng.choice(GOOD_DATE_TIMES)
        if fmt == "email":
            return rng.choice(GOOD_EMAILS)
        return rng.choice(("0599", "Onbekend", "tekst", "", "é€ 😀", "1234 AB", "12a"))
    if kind == "integer":
        return rng.choice((0, 1, 250, 12000, -5))
    if kind == "boolean":
        return rng.choice((True, False))
    raise AssertionError(f"no generator for {schema}")


def random_traject(rng: random.Random, schema: Mapping[str, Any]) -> dict[str, Any]:
    traject_schema = schema["properties"]["leveringen"]["items"]["properties"][
        "schuldhulptrajecten"
    ]["items"]
    value = random_value(traject_schema, schema, rng)
    assert isinstance(value, dict)
    return value


# --- mutations ---------------------------------------------------------------------------------


def _pick(rng: random.Random, options: tuple[Any, ...]) -> Any:
    """A random option, copied: the same [] or {} must not end up in two places."""
    return copy.deepcopy(rng.choice(options))


def _mutate_site(doc: Any, site: Site, rng: random.Random) -> None:
    s, path, value = site.schema, site.path, site.value
    kind = s.get("type")
    r = rng.random()
    if path and r < 0.12:  # a wrong type for any place (the root stays an object)
        _set(doc, path, _pick(rng, WRONG_TYPES + PLANTED[:2] + (10**30,)))
        return
    if kind == "object" and isinstance(value, dict):
        props = list(s.get("properties", {}))
        required = [k for k in s.get("required", ()) if k in value]
        choice = rng.random()
        if required and choice < 0.3:
            del value[rng.choice(required)]
        elif choice < 0.55:  # unknown member: an error only where additionalProperties is false
            name = rng.choice(
                ("onbekendVeld", "Startdatum", "gemeentcode", "bsn", "$schema", "a/b~c", "")
            )
            value[name] = _pick(rng, PLANTED + ("x", 1, None, {"a": []}))
        elif choice < 0.8 and props:  # a member, present or not, with a value of a wrong type
            key = rng.choice(props)
            value[key] = _pick(rng, WRONG_TYPES + PLANTED)
        elif choice < 0.9 and props:  # a duplicate member, before or after the original
            duplicate = [rng.choice(props), _pick(rng, WRONG_TYPES + ("x", "0599"))]
            members = list(value.items()) if rng.random() < 0.5 else []
            for key, _ in members:
                del value[key]
            value[_DUPLICATE_MARKER] = duplicate
            value.update(members)
        elif path:
            _set(doc, path, {})
        else:
            value.clear()
        return
    if kind == "array" and isinstance(value, list):
        choice = rng.random()
        if choice < 0.35:
            value.clear()
        elif choice < 0.6 and value:  # overfull (client has maxItems 2)
            value.extend(copy.deepcopy(rng.choice(value)) for _ in range(rng.randint(1, 3)))
        elif value:
            value[rng.randrange(len(value))] = _pick(rng, WRONG_TYPES + PLANTED)
        else:
            value.append(_pick(rng, WRONG_TYPES))
        return
    if not path:
        return
    if "enum" in s:
        options = list(s["enum"])
        pick = rng.choice(options)
        _set(
            doc,
            path,
            rng.choice(
                (
                    pick.lower(),
                    pick.upper(),
                    pick + " ",
                    "",
                    "Onbekend",
                    "Man",
                    "Zorg",
                    "Afgerond",
                    pick,
                    PLANTED[0],
                    PLANTED[1],
                )
            ),
        )
    elif s.get("format") == "date":
        _set(doc, path, rng.choice(BAD_DATES + GOOD_DATES))
    elif s.get("format") == "date-time":
        _set(doc, path, rng.choice(BAD_DATE_TIMES + GOOD_DATE_TIMES))
    elif s.get("format") == "email":
        _set(doc, path, rng.choice(BAD_EMAILS + GOOD_EMAILS))
    elif kind == "integer":
        _set(
            doc,
            path,
            rng.choice(
                (1.0, 1.5, "12", True, None, 10**30, -3, 0.0, 2.5e-3)
                + tuple(_NUMBER_MARKERS.values())
            ),
        )
    elif kind == "boolean":
        _set(doc, path, rng.choice(("true", 1, 0, None, False)))
    elif kind == "string":
        _set(doc, path, _pick(rng, WRONG_TYPES + ("é€ 😀", "", "\u0000x") + PLANTED))


def _mutate_structure(doc: dict[str, Any], rng: random.Random) -> None:
    """Mutations of the file's frame: leveringen, a levering, schuldhulptrajecten, a trajectory."""
    leveringen = doc.get("leveringen")
    choice = rng.randrange(7)
    if choice == 0:
        doc["leveringen"] = _pick(rng, ([], {}, "x", None, 3))
    elif choice == 1:
        doc.pop("leveringen", None)
    elif isinstance(leveringen, list) and leveringen:
        i = rng.randrange(len(leveringen))
        lev = leveringen[i]
        if choice == 2:
            leveringen[i] = _pick(rng, (None, "x", [], 5, {}))
        elif isinstance(lev, dict):
            trajecten = lev.get("schuldhulptrajecten")
            if choice == 3:
                lev["schuldhulptrajecten"] = _pick(rng, ({}, None, "x", []))
            elif choice == 4:
                lev.pop("schuldhulptrajecten", None)
            elif isinstance(trajecten, list) and trajecten:
                trajecten[rng.randrange(len(trajecten))] = _pick(
                    rng, (None, "x", [], 5, {}, {"gemeentecode": "0599"})
                )


def to_text(doc: Any) -> str:
    """JSON text of `doc`, with the number and duplicate-member markers written out."""
    text = json.dumps(doc, ensure_ascii=bool(random.Random(len(repr(doc))).getrandbits(1)))
    for literal, marker in _NUMBER_MARKERS.items():
        text = text.replace(repr(marker), literal)
    # {"<marker>": ["name", value]} -> "name": value, "name" repeated inside the same object.
    while (at := text.find(json.dumps(_DUPLICATE_MARKER, ensure_ascii=False))) >= 0 or (
        at := text.find(json.dumps(_DUPLICATE_MARKER))
    ) >= 0:
        key_end = text.index(":", at)
        array_start = text.index("[", key_end)
        pair, end = json.JSONDecoder().raw_decode(text, array_start)
        text = text[:at] + json.dumps(pair[0]) + ": " + json.dumps(pair[1]) + text[end:]
    return text


def base_documents() -> list[dict[str, Any]]:
    return [json.loads(f.read_text("utf-8")) for f in example_files()]


def corpus(count: int, seed: int = 20260612) -> Iterator[tuple[int, str]]:
    """`count` mutated files as JSON text, derived from the real examples and generated
    trajectories."""
    rng = random.Random(seed)
    schema = official_schema()
    bases = base_documents()
    pool = [
        t
        for b in bases
        for lev in b.get("leveringen", [])
        if isinstance(lev, dict)
        for t in lev.get("schuldhulptrajecten", [])
    ]
    for n in range(count):
        base = rng.choice(bases)
        doc = {k: copy.deepcopy(v) for k, v in base.items() if k != "leveringen"}
        leveringen = []
        for teller in range(rng.choice((1, 1, 1, 2))):
            lev_base = rng.choice([lev for lev in base["leveringen"] if isinstance(lev, dict)])
            lev = {k: copy.deepcopy(v) for k, v in lev_base.items() if k != "schuldhulptrajecten"}
            if "teller" in lev:
                lev["teller"] = teller + 1
            lev["schuldhulptrajecten"] = [
                copy.deepcopy(rng.choice(pool))
                if rng.random() < 0.6
                else random_traject(rng, schema)
                for _ in range(rng.randint(1, 8))
            ]
            leveringen.append(lev)
        doc["leveringen"] = leveringen
        places = sites(doc, schema)
        for _ in range(rng.randint(1, 4)):
            if rng.random() < 0.08:
                _mutate_structure(doc, rng)
                places = sites(doc, schema)
                continue
            # Bounded arrays (client: 1..2) are few among the places: aim at them now and then.
            bounded = [p for p in places if "maxItems" in p.schema or "minItems" in p.schema]
            target = rng.choice(bounded if bounded and rng.random() < 0.1 else places)
            _mutate_site(doc, target, rng)
            places = sites(doc, schema)
        yield n, to_text(doc)
