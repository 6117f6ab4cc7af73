"""The fast path: a JSON Schema (sub)schema compiled into msgspec types.

Decoding a trajectory's raw JSON with the compiled typed decoder either succeeds, and then the
trajectory is valid under the schema, or fails, and then the exact path (`exact`) decides and
explains. The compiled types may therefore be *stricter* than the schema (a stricter rejection only
costs a trip through the exact path) but must never accept what the schema rejects.

Mapping (only the vocabulary the SHV schema uses, see `vocabulary`; anything else raises
`SchemaCompileError`, so that a changed schema cannot silently weaken the check):

- `type: object` -> a Struct; `properties` become fields, `required` fields have no default, the
  others default to None (a JSON null is still rejected: None is not of the field's type);
  `additionalProperties: false` -> `forbid_unknown_fields=True`, else unknown fields are skipped.
- `type: array` -> `list[item]`, `minItems`/`maxItems` -> `Meta(min_length/max_length)`.
- `type: string` -> `str`; with `enum` -> `Literal[...]`; `format: date` -> `datetime.date`
  (msgspec accepts exactly YYYY-MM-DD with years 0001-9999 and real calendar days: a subset of
  ajv-formats' date, which also takes year 0000); `format: email` -> the ajv pattern.
- `type: integer` -> `int` (stricter: msgspec rejects 1.0, which JSON Schema calls an integer),
  `number` -> `float` (stricter: msgspec rejects 1e400), `boolean` -> `bool`, `null` -> None.
- `$ref` to `#/$defs/...` is followed; annotation keywords (description, title...) are ignored.

A field's attribute is its JSON name where that is a Python identifier (`t.client`), else `f<i>`
(`"(Statutaire) Naam"`). `Options` serve the pseudonymiser, which rewrites decoded instances in
place and encodes them again (ddas.domain.pseudonym): `omit_defaults` leaves absent members
absent on encoding, and `extra` adds fields to named structs (`bsnControle` to a client).
"""

from __future__ import annotations

import datetime
import keyword
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

import msgspec

from ddas.domain.schema.formats import EMAIL_SEARCH_PATTERN
from ddas.domain.schema.vocabulary import SchemaCompileError, keywords_of, resolve

__all__ = ["Options", "SchemaCompileError", "compile_decoder", "compile_type"]

_SCALARS: dict[str, Any] = {
    "string": str,
    "integer": int,
    "number": float,
    "boolean": bool,
    "null": None,
}
_FORMATS: dict[str, Any] = {
    "date": datetime.date,
    "email": Annotated[str, msgspec.Meta(pattern=EMAIL_SEARCH_PATTERN)],
}


@dataclass(frozen=True)
class Options:
    """How the structs are made: `omit_defaults` (msgspec's: an absent member stays absent when
    encoded), and `extra` fields, by the struct's name (`Schuldhulptraject.client[]`), each a
    `(name, type, default)` appended to the schema's. An extra field can only make the decoder
    stricter (a value of another type there is rejected), never looser."""

    omit_defaults: bool = False
    extra: Mapping[str, Sequence[tuple[str, Any, Any]]] = field(default_factory=dict)


_PLAIN: Final = Options()


def compile_decoder(
    schema: Mapping[str, Any], root: Mapping[str, Any], name: str, options: Options = _PLAIN
) -> msgspec.json.Decoder[Any]:
    """A typed JSON decoder that accepts only instances valid under `schema` (refs into `root`)."""
    return msgspec.json.Decoder(compile_type(schema, root, name, options))


def compile_type(
    schema: Mapping[str, Any], root: Mapping[str, Any], name: str, options: Options = _PLAIN
) -> Any:
    """The msgspec type for `schema`; `root` resolves `#/$defs/...` references."""
    schema = resolve(schema, root, name)
    kind = keywords_of(schema, name)
    if kind == "object":
        return _compile_object(schema, root, name, options)
    if kind == "array":
        return _compile_array(schema, root, name, options)
    if kind == "string":
        return _compile_string(schema, name)
    return _SCALARS[kind]


def _compile_object(
    schema: Mapping[str, Any], root: Mapping[str, Any], name: str, options: Options
) -> Any:
    properties: Mapping[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    rename: dict[str, str] = {}
    for i, (key, sub) in enumerate(properties.items()):
        # Property names need not be Python identifiers ("(Statutaire) Naam"): those get
        # positional attribute names, mapped to the JSON keys.
        attr = key if key.isidentifier() and not keyword.iskeyword(key) else f"f{i}"
        rename[attr] = key
        field_type = compile_type(sub, root, f"{name}.{key}", options)
        fields.append((attr, field_type) if key in required else (attr, field_type, None))
    for extra in options.extra.get(name, ()):
        rename[extra[0]] = extra[0]
        fields.append(extra)
    if len(rename) != len(fields) or len(set(rename.values())) != len(fields):
        raise SchemaCompileError(f"{name}: two fields with one name")
    return msgspec.defstruct(
        _struct_name(name),
        fields,
        rename=rename,
        kw_only=True,
        omit_defaults=options.omit_defaults,
        forbid_unknown_fields=schema.get("additionalProperties", True) is False,
        gc=False,  # instances are decoded and dropped at once: no need to track them for GC
    )


def _compile_array(
    schema: Mapping[str, Any], root: Mapping[str, Any], name: str, options: Options
) -> Any:
    items = schema.get("items")
    item_type = Any if items is None else compile_type(items, root, f"{name}[]", options)
    list_type = list[item_type]  # type: ignore[valid-type]
    if "minItems" not in schema and "maxItems" not in schema:
        return list_type
    bounds = msgspec.Meta(min_length=schema.get("minItems"), max_length=schema.get("maxItems"))
    return Annotated[list_type, bounds]


def _compile_string(schema: Mapping[str, Any], name: str) -> Any:
    if "enum" in schema:
        return Literal[tuple(schema["enum"])]
    if "format" in schema:
        fmt = schema["format"]
        if fmt not in _FORMATS:
            raise SchemaCompileError(f"{name}: format {fmt!r} is not compiled")
        return _FORMATS[fmt]
    return str


def _struct_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name)
