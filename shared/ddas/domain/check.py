"""The check of one SHV file, as the DDAS-app does it: read, schema findings, rule findings and
the two totals tables, in one streaming pass in file order. `ddas check` prints its result; the
services run the same parts (schema, rules, tables) on chunks of a delivery.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ddas.domain.findings import Ernst, Finding
from ddas.domain.reader import Document, LeveringHeader, Traject, read_document
from ddas.domain.rules import RULES, RuleEngine
from ddas.domain.schema import SchemaCheck
from ddas.domain.tables import Periode, Tabellen, Totalen, traject_feit

VOORBEELDEN = 5  # pointers listed per rule in the summary; the full list is under "lijst"


@dataclass(frozen=True, slots=True)
class RegelTelling:
    code: str
    ernst: Ernst
    aantal: int
    voorbeelden: list[str]
    omschrijving: str


@dataclass(slots=True)
class CheckResult:
    periode: Periode | None
    totalen: Totalen
    findings: list[Finding]

    @property
    def fouten(self) -> int:
        return sum(1 for f in self.findings if f.ernst is Ernst.FOUT)

    @property
    def waarschuwingen(self) -> int:
        return len(self.findings) - self.fouten

    def per_regel(self) -> list[RegelTelling]:
        """Findings counted per rule code: errors first, then by code."""
        groups: dict[str, list[Finding]] = {}
        for f in self.findings:
            groups.setdefault(f.code, []).append(f)
        tellingen = [
            RegelTelling(
                code,
                fs[0].ernst,
                len(fs),
                [f.pointer for f in fs[:VOORBEELDEN]],
                omschrijving(code, fs[0]),
            )
            for code, fs in groups.items()
        ]
        tellingen.sort(key=lambda r: (r.ernst is not Ernst.FOUT, r.code))
        return tellingen

    def as_dict(self) -> dict[str, Any]:
        p = self.periode
        return {
            "periode": {"start": p.start, "eind": p.eind} if p else None,
            **self.totalen.as_dict(),
            "bevindingen": {
                "fouten": self.fouten,
                "waarschuwingen": self.waarschuwingen,
                "per_regel": [
                    {
                        "code": r.code,
                        "ernst": str(r.ernst),
                        "aantal": r.aantal,
                        "voorbeelden": r.voorbeelden,
                        "omschrijving": r.omschrijving,
                    }
                    for r in self.per_regel()
                ],
                "lijst": [f.as_dict() for f in self.findings],
            },
        }


def omschrijving(code: str, voorbeeld: Finding) -> str:
    """A rule's description: the rule registry's, else (schema findings) the first message."""
    regel = RULES.get(code)
    return regel.omschrijving if regel is not None else voorbeeld.message


def check_file(path: str | os.PathLike[str]) -> CheckResult:
    """Check a SHV v1.0 file. Raises reader.UnreadableFile when it is not a DDAS file at all."""
    return check_document(read_document(path))


def check_document(document: Document) -> CheckResult:
    """Schema, rules and tables over a parsed file, trajectory by trajectory in file order."""
    schema = SchemaCheck()
    root = document.header
    findings = schema.root(root)
    engine = RuleEngine.for_root(root.data)
    findings += engine.check_root(root.data)
    start, eind = engine.periode
    periode = Periode(start, eind) if start and eind else None
    tabellen = Tabellen()
    add = tabellen.add
    check_traject = engine.check_traject
    for part in document.parts():
        if type(part) is Traject:
            data = part.data
            found = schema.part(part)
            if type(data) is dict:
                found += check_traject(data, part.pointer)
                add(traject_feit(data, periode))
            if found:
                findings += found
        elif isinstance(part, LeveringHeader):
            findings += schema.levering(part)
            if isinstance(part.data, dict):
                findings += engine.check_levering(part.data, part.pointer)
    findings += engine.finish()
    return CheckResult(periode, tabellen.result(), findings)
