"""The part of JSON Schema 2020-12 that the SHV schema uses, shared by both compilers.

Both the fast path (`fast`) and the exact path (`exact`) compile the official schema rather than
interpret it, and both refuse, with `SchemaCompileError`, any keyword outside this vocabulary: a
new schema version that uses one must fail loudly at import, not be checked half.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["ANNOTATIONS", "KEYWORDS", "SchemaCompileError", "keywords_of", "resolve"]

#: Keywords that never affect validity.
ANNOTATIONS: Final = frozenset(
    {
        "description",
        "title",
        "$comment",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$defs",
    }
)
#: The assertion and applicator keywords compiled, per `type`.
KEYWORDS: Final[dict[str, frozenset[str]]] = {
    "object": frozenset({"type", "properties", "required", "additionalProperties"}),
    "array": frozenset({"type", "items", "minItems", "maxItems"}),
    "string": frozenset({"type", "enum", "format"}),
    "integer": frozenset({"type"}),
    "number": frozenset({"type"}),
    "boolean": frozenset({"type"}),
    "null": frozenset({"type"}),
}


class SchemaCompileError(ValueError):
    """The schema uses a construct the compilers do not (yet) support."""


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """Follow local `#/$defs/...` references (with only annotations next to them)."""
    while "$ref" in schema:
        if set(schema) - {"$ref"} - ANNOTATIONS:
            raise SchemaCompileError(f"{name}: keywords next to $ref are not compiled")
        ref = schema["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            raise SchemaCompileError(f"{name}: only local #/$defs references are compiled")
        schema = root["$defs"][ref.removeprefix("#/$defs/")]
    return schema


def keywords_of(schema: Mapping[str, Any], name: str) -> str:
    """The schema's `type`, after checking that it uses only compiled keywords for it."""
    kind = schema.get("type")
    if not isinstance(kind, str) or kind not in KEYWORDS:
        raise SchemaCompileError(f"{name}: unsupported type {kind!r}")
    unknown = set(schema) - KEYWORDS[kind] - ANNOTATIONS
    if unknown:
        raise SchemaCompileError(f"{name}: unsupported keywords {sorted(unknown)} for {kind}")
    if kind == "object":
        additional = schema.get("additionalProperties", True)
        if additional not in (True, False):
            raise SchemaCompileError(f"{name}: only additionalProperties true/false is compiled")
        if not set(schema.get("required", ())) <= set(schema.get("properties", {})):
            raise SchemaCompileError(f"{name}: required names without a property schema")
    if "enum" in schema:
        values = schema["enum"]
        if "format" in schema or not values or not all(isinstance(v, str) for v in values):
            raise SchemaCompileError(f"{name}: only string enums without format are compiled")
    return kind
