"""The exact path: the official schema compiled into a validator that lists every error, and the
translation of those errors into findings.

Why not jsonschema itself: it takes 0.3 to 0.6 ms per trajectory (an `evolve` and a reference
lookup at every step), so the ~2,000 flawed trajectories of a 200,000-trajectory file would cost
about a second. The schema uses a small vocabulary (see `vocabulary`), which compiles into plain
closures, 20 to 30 times faster. jsonschema (Draft202012Validator with the same formats) stays the
reference: tests/domain/test_schema_equivalence.py proves that this validator reports exactly its
errors on a mutated corpus.

The semantics are those of JSON Schema 2020-12 as jsonschema implements them: all keywords of a
schema apply independently (a wrong type is one error, and `enum` reports too); `format`,
`properties`, `required`, `items`, `minItems`... only apply to instances of their type; `integer`
accepts 1.0; booleans are not numbers. Where jsonschema and the DDAS-app's ajv differ, ajv wins:

- formats are ajv-formats' (see `formats`);
- a number beyond the double range (1e400) parses to infinity, which jsonschema does not call an
  integer; but 10^400 has no fractional part, so JSON Schema and ajv (`strict: false`) do;
- `required` gives one finding per missing member, pointing at the object that lacks it, and
  `additionalProperties` one finding per unknown member, pointing at that member, as ajv does.

Every error becomes a finding `schema.<keyword>` (ernst fout) with an RFC 6901 pointer into the
file and a Dutch message that says what is wrong and what is allowed. Messages never contain a
value from the file: they name the field (a schema name) and the rule; the pointer locates it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, NamedTuple

from ddas.domain.findings import Ernst, Finding, pointer
from ddas.domain.schema import official
from ddas.domain.schema.formats import FORMATS, is_date_time, is_time
from ddas.domain.schema.vocabulary import SchemaCompileError, keywords_of, resolve

__all__ = ["LEVERING", "ROOT", "TRAJECT", "ExactValidator", "is_integer"]


class _Error(NamedTuple):
    path: tuple[str | int, ...]  # of the instance the keyword applies to
    keyword: str
    schema: Mapping[str, Any]  # the (resolved) schema holding the keyword
    instance: Any
    member: str | None = None  # the missing (required) or unknown (additionalProperties) member


_Check = Callable[[Any, list[str | int], list[_Error]], None]


def is_integer(value: object) -> bool:
    """JSON Schema's integer: a number without fractional part (not a boolean); ±inf included,
    as it stands for a literal beyond the double range (see the module docstring)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and (value.is_integer() or math.isinf(value))


_TYPE_TESTS: Final[dict[str, Callable[[object], bool]]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": is_integer,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def compile_check(schema: Mapping[str, Any], root: Mapping[str, Any], name: str) -> _Check:
    """A function appending every error of an instance (at `path`) to a list."""
    schema = resolve(schema, root, name)
    kind = keywords_of(schema, name)
    checks: list[_Check] = [_type_check(schema, kind)]
    if kind == "object":
        checks.append(_object_check(schema, root, name))
    elif kind == "array":
        checks.append(_array_check(schema, root, name))
    elif "enum" in schema:
        checks.append(_enum_check(schema))
    elif "format" in schema:
        checks.append(_format_check(schema, name))
    if len(checks) == 1:
        return checks[0]
    first, second = checks

    def both(value: Any, path: list[str | int], out: list[_Error]) -> None:
        first(value, path, out)
        second(value, path, out)

    return both


def _type_check(schema: Mapping[str, Any], kind: str) -> _Check:
    test = _TYPE_TESTS[kind]

    def check(value: Any, path: list[str | int], out: list[_Error]) -> None:
        if not test(value):
            out.append(_Error(tuple(path), "type", schema, value))

    return check


def _object_check(schema: Mapping[str, Any], root: Mapping[str, Any], name: str) -> _Check:
    members = {
        key: compile_check(sub, root, f"{name}.{key}")
        for key, sub in schema.get("properties", {}).items()
    }
    required = tuple(schema.get("required", ()))
    closed = schema.get("additionalProperties", True) is False

    def check(value: Any, path: list[str | int], out: list[_Error]) -> None:
        if not isinstance(value, dict):
            return
        for key in required:
            if key not in value:
                out.append(_Error(tuple(path), "required", schema, value, key))
        for key, member in value.items():
            sub = members.get(key)
            if sub is None:
                if closed:
                    out.append(_Error(tuple(path), "additionalProperties", schema, value, key))
                continue
            path.append(key)
            sub(member, path, out)
            path.pop()

    return check


def _array_check(schema: Mapping[str, Any], root: Mapping[str, Any], name: str) -> _Check:
    items = compile_check(schema["items"], root, f"{name}[]") if "items" in schema else None
    low: int | None = schema.get("minItems")
    high: int | None = schema.get("maxItems")

    def check(value: Any, path: list[str | int], out: list[_Error]) -> None:
        if not isinstance(value, list):
            return
        if low is not None and len(value) < low:
            out.append(_Error(tuple(path), "minItems", schema, value))
        if high is not None and len(value) > high:
            out.append(_Error(tuple(path), "maxItems", schema, value))
        if items is not None:
            for i, item in enumerate(value):
                path.append(i)
                items(item, path, out)
                path.pop()

    return check


def _enum_check(schema: Mapping[str, Any]) -> _Check:
    allowed = frozenset(schema["enum"])  # strings only (vocabulary checks)

    def check(value: Any, path: list[str | int], out: list[_Error]) -> None:
        # A non-string is never equal to a string member (JSON Schema equality).
        if not (isinstance(value, str) and value in allowed):
            out.append(_Error(tuple(path), "enum", schema, value))

    return check


def _format_check(schema: Mapping[str, Any], name: str) -> _Check:
    fmt = schema["format"]
    if fmt not in FORMATS:
        raise SchemaCompileError(f"{name}: format {fmt!r} is not compiled")
    test = FORMATS[fmt]

    def check(value: Any, path: list[str | int], out: list[_Error]) -> None:
        if isinstance(value, str) and not test(value):
            out.append(_Error(tuple(path), "format", schema, value))

    return check


class ExactValidator:
    """The exact check of one part of the file (root header, levering header or trajectory).

    `context` names the part in messages ("de hoofdstructuur van het bestand", "een levering"...).
    """

    def __init__(self, schema: Mapping[str, Any], context: str) -> None:
        self._check = compile_check(schema, schema, context)
        self._context = context

    def errors(self, instance: Any) -> list[_Error]:
        out: list[_Error] = []
        self._check(instance, [], out)
        return out

    def findings(self, instance: Any, prefix: str) -> list[Finding]:
        """Every error of `instance`, as findings in file order; `prefix` is the pointer of the
        instance in the file."""
        errors = self.errors(instance)
        if not errors:
            return []
        errors.sort(key=lambda e: (_file_order(instance, e.path), _KEYWORD_ORDER[e.keyword]))
        return [self._finding(e, prefix) for e in errors]

    def _finding(self, error: _Error, prefix: str) -> Finding:
        path, keyword, schema, instance, member = error
        where = prefix + pointer(*path)
        label = self._label(path)
        if keyword == "required":
            return _fout("schema.required", where, f"Verplicht veld '{member}' ontbreekt")
        if keyword == "additionalProperties":
            assert member is not None
            return _fout(
                "schema.additionalProperties",
                where + pointer(member),
                _unknown_member(member, list(schema.get("properties", {})), self._container(path)),
            )
        if keyword == "type":
            expected = _TYPE_NAMES[schema["type"]]
            if schema.get("format") in _FORMAT_SHAPES:
                expected += f" in de vorm {_FORMAT_SHAPES[schema['format']]}"
            hint = (
                "; laat een veld zonder waarde weg in plaats van null te leveren"
                if instance is None
                else ""
            )
            return _fout(
                "schema.type",
                where,
                f"{label} heeft het verkeerde type: verwacht {expected}, "
                f"gevonden {_type_of(instance)}{hint}",
            )
        if keyword == "enum":
            return _fout("schema.enum", where, _enum_message(label, instance, schema["enum"]))
        if keyword == "format":
            return _fout("schema.format", where, _format_message(label, schema["format"], instance))
        if keyword == "minItems":
            n = len(instance)
            return _fout(
                "schema.minItems",
                where,
                f"{label} bevat {n} element{'en' if n != 1 else ''}; minimaal "
                f"{schema['minItems']} vereist",
            )
        return _fout(
            "schema.maxItems",
            where,
            f"{label} bevat {len(instance)} elementen; maximaal {schema['maxItems']} toegestaan",
        )

    def _label(self, path: tuple[str | int, ...]) -> str:
        """The place in words: the nearest member name, with the element number for items."""
        if not path:
            return self._context[0].upper() + self._context[1:]
        last = path[-1]
        if isinstance(last, int):
            owner = next((p for p in reversed(path) if isinstance(p, str)), None)
            return f"Element {last} van '{owner}'" if owner else f"Element {last}"
        return f"'{last}'"

    def _container(self, path: tuple[str | int, ...]) -> str:
        if not path:
            return self._context
        owner = next((p for p in reversed(path) if isinstance(p, str)), None)
        return f"'{owner}'"


# Keyword order within one place: a missing member first, then the member's own problems.
_KEYWORD_ORDER: Final = {
    "required": 0,
    "additionalProperties": 1,
    "type": 2,
    "enum": 3,
    "format": 4,
    "minItems": 5,
    "maxItems": 6,
}

_TYPE_NAMES: Final = {
    "string": "tekst (string)",
    "integer": "geheel getal (integer)",
    "number": "getal (number)",
    "boolean": "true of false (boolean)",
    "object": "object {...}",
    "array": "lijst [...]",
    "null": "null",
}
_FORMAT_SHAPES: Final = {
    "date": "JJJJ-MM-DD",
    "date-time": "JJJJ-MM-DDTuu:mm:ssZ",
    "time": "uu:mm:ssZ",
    "email": "naam@domein.nl",
}


def _type_of(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true of false (boolean)"
    if isinstance(value, int):
        return "geheel getal"
    if isinstance(value, float):
        return (
            "getal buiten het bereik"
            if math.isinf(value)
            else "getal met decimalen"
            if not value.is_integer()
            else "getal"
        )
    if isinstance(value, str):
        return "tekst (string)"
    if isinstance(value, list):
        return "lijst [...]"
    return "object {...}"


def _fout(code: str, where: str, message: str) -> Finding:
    return Finding(code, Ernst.FOUT, where, message)


def _unknown_member(name: str, allowed: list[str], container: str) -> str:
    # The member's name is in the pointer already; a close schema name helps with typos.
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.75)
    if close:
        return (
            f"Onbekend veld in {container}: niet toegestaan; bedoeld is waarschijnlijk '{close[0]}'"
        )
    return f"Onbekend veld in {container}: niet toegestaan; toegestaan zijn: {', '.join(allowed)}"


def _enum_message(label: str, instance: object, allowed: list[str]) -> str:
    message = f"{label} heeft een waarde die niet is toegestaan; toegestaan: {', '.join(allowed)}"
    if isinstance(instance, str):
        # A near miss (capitals, spaces) only names the schema's value, never the file's.
        squeezed = "".join(instance.split()).casefold()
        for a in allowed:
            if "".join(a.split()).casefold() == squeezed:
                return (
                    f"{message} (let op hoofdletters en spaties: bedoeld is waarschijnlijk '{a}')"
                )
    return message


def _format_message(label: str, fmt: str, instance: str) -> str:
    if fmt == "date":
        digits = instance.replace("-", "")
        if (
            len(instance) == 10
            and instance[4] == "-"
            and instance[7] == "-"
            and digits.isascii()
            and digits.isdigit()
        ):
            return (
                f"{label} is geen bestaande datum: maand 01-12 en een dag die in die "
                "maand bestaat (JJJJ-MM-DD)"
            )
        return f"{label} is geen geldige datum: verwacht JJJJ-MM-DD, bijvoorbeeld 2025-01-31"
    if fmt == "date-time":
        if is_date_time(instance + "Z"):
            return (
                f"{label} is geen geldige datum-tijd: de tijdzone ontbreekt; verwacht "
                "bijvoorbeeld 2026-01-15T10:30:00Z of 2026-01-15T11:30:00+01:00"
            )
        return (
            f"{label} is geen geldige datum-tijd: verwacht JJJJ-MM-DDTuu:mm:ss met "
            "tijdzone, bijvoorbeeld 2026-01-15T10:30:00Z of 2026-01-15T11:30:00+01:00"
        )
    if fmt == "time":
        if is_time(instance + "Z"):
            return (
                f"{label} is geen geldige tijd: de tijdzone ontbreekt; verwacht "
                "bijvoorbeeld 10:30:00Z of 11:30:00+01:00"
            )
        return (
            f"{label} is geen geldige tijd: verwacht uu:mm:ss met tijdzone, bijvoorbeeld "
            "10:30:00Z of 11:30:00+01:00"
        )
    return f"{label} is geen geldig e-mailadres (naam@domein.nl)"


def _file_order(instance: Any, path: tuple[str | int, ...]) -> tuple[int, ...]:
    """Positions along `path` (object members in file order, which dicts keep)."""
    order: list[int] = []
    node = instance
    for part in path:
        if isinstance(node, dict):
            keys = list(node)
            order.append(keys.index(part) if part in node else len(keys))
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int):
            order.append(part)
            node = node[part]
    return tuple(order)


# The three parts of a file, each validated on its own (see official.py for why this is exact).
ROOT: Final = ExactValidator(official.ROOT_SHALLOW, "de hoofdstructuur van het bestand")
LEVERING: Final = ExactValidator(official.LEVERING_SHALLOW, "een levering")
TRAJECT: Final = ExactValidator(official.TRAJECT, "een schuldhulptraject")
