"""Schema findings for SHV v1.0 files: exactly the errors of the official JSON Schema.

Role: the first step of `ddas check` (and of the services' validation): every place where a
file breaks `json_schema_Uitwisselmodel.json` (shipped here verbatim as package data) becomes a
`Finding` (ernst fout) with a stable code, the JSON pointer of the place and a Dutch message
without personal values. Formats follow the DDAS-app (ajv-formats 3, "full"): see `formats`.

Usage::

    from ddas.domain.schema import SchemaCheck, check_document

    for part, findings in check_document("levering.json"):   # raises reader.UnreadableFile
        ...   # part: RootHeader, LeveringHeader or Traject (file order); findings: list

    check = SchemaCheck()                      # cheap: the compiled parts are module-level
    check.root(header)                         # reader.RootHeader -> list[Finding]
    check.levering(header)                     # reader.LeveringHeader -> list[Finding]
    check.traject(raw, data, prefix)           # one trajectory -> list[Finding] (raw may be None)
    check.part(part)                           # any of the three

Codes: `schema.required` (pointer: the object missing the member), `schema.additionalProperties`
(pointer: the unknown member), `schema.type`, `schema.enum`, `schema.format`, `schema.minItems`,
`schema.maxItems` (pointer: the offending value).

How it is fast: a trajectory is first decoded from its raw JSON by a msgspec decoder compiled
from the schema at import (`fast`); if that succeeds the trajectory is valid and nothing else
runs. Only a trajectory the fast path rejects goes to the exact path (`exact`: the schema compiled
into closures that list every error, with the DDAS-app's formats), which decides (the fast path
may be stricter than the schema) and explains. The root and levering headers are small and always
take the exact path. tests/domain/test_schema_equivalence.py proves, on a mutated corpus, that the
findings equal the errors of the reference validator (jsonschema's Draft202012Validator with the
same formats) over the whole file, and that the fast path never accepts an invalid trajectory.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Final

import msgspec

from ddas.domain.findings import Finding
from ddas.domain.reader import (
    ABSENT,
    ArrayShape,
    LeveringHeader,
    Part,
    RootHeader,
    Traject,
    read_document,
)
from ddas.domain.schema import exact, official
from ddas.domain.schema.fast import compile_decoder

__all__ = ["SchemaCheck", "check_document"]

# Compiled once at import: a typed decoder that accepts only schema-valid trajectories.
_FAST_TRAJECT: Final = compile_decoder(official.TRAJECT, official.SCHEMA, "Schuldhulptraject")


class SchemaCheck:
    """The schema check of the parts of a SHV v1.0 file (see the module docstring)."""

    __slots__ = ()

    def root(self, header: RootHeader) -> list[Finding]:
        """Findings of the root object (its `leveringen` only as an array and its length)."""
        return exact.ROOT.findings(_with(header.data, "leveringen", header.leveringen), "")

    def levering(self, header: LeveringHeader) -> list[Finding]:
        """Findings of one levering (its `schuldhulptrajecten` only as an array)."""
        return exact.LEVERING.findings(
            _with(header.data, "schuldhulptrajecten", header.trajecten), header.pointer
        )

    def traject(self, raw: bytes | msgspec.Raw | None, data: object, prefix: str) -> list[Finding]:
        """Findings of one trajectory: `raw` its JSON text, `data` its decoded value, `prefix`
        its pointer in the file (e.g. /leveringen/0/schuldhulptrajecten/12).

        Without the JSON text (`raw` None, e.g. a trajectory from a Kafka chunk) the exact path
        checks `data` alone: as exact, about 30 times slower per trajectory than the fast path.
        """
        if raw is None:
            return exact.TRAJECT.findings(data, prefix)
        try:
            _FAST_TRAJECT.decode(raw)
        except msgspec.DecodeError:
            return exact.TRAJECT.findings(data, prefix)
        return []

    def part(self, part: Part) -> list[Finding]:
        if isinstance(part, Traject):
            # Inlined `traject`: the pointer is only built for a trajectory with findings.
            try:
                _FAST_TRAJECT.decode(part.raw)
            except msgspec.DecodeError:
                return exact.TRAJECT.findings(part.data, part.pointer)
            return []
        if isinstance(part, LeveringHeader):
            return self.levering(part)
        return self.root(part)

    @staticmethod
    def fast_accepts(raw: bytes | msgspec.Raw) -> bool:
        """Whether the fast path alone accepts a trajectory (for tests and measurements)."""
        try:
            _FAST_TRAJECT.decode(raw)
        except msgspec.DecodeError:
            return False
        return True


def check_document(path: str | os.PathLike[str]) -> Iterator[tuple[Part, list[Finding]]]:
    """Read a file and yield each part with its schema findings, in file order.

    Raises reader.UnreadableFile (before the first part) when the file is not a DDAS file at all.
    """
    document = read_document(path)  # raises here, not at the first next()

    def parts() -> Iterator[tuple[Part, list[Finding]]]:
        check = SchemaCheck()
        for part in document.parts():
            yield part, check.part(part)

    return parts()


def _with(data: object, member: str, value: object) -> object:
    """The header as the schema sees it: the split-off array back in as placeholders (its items
    are checked as parts of their own), or the member's actual value when it is not an array."""
    if value is ABSENT or not isinstance(data, dict):
        return data
    if isinstance(value, ArrayShape):
        return {**data, member: [None] * value.length}
    return {**data, member: value}
