"""The check of one SHV file, as the DDAS-app does it: read, schema findings, rule findings and
the two totals tables, in one streaming pass in file order. `ddas check` prints its result; the
services run the same parts (schema, rules, tables) on chunks of a delivery.
"""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
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


# Below this many trajectories a second process costs more than it saves.
PARALLEL_FROM = 20_000


def check_document(document: Document, *, parallel: bool | None = None) -> CheckResult:
    """Schema, rules and tables over a parsed file, in file order.

    The work is two independent passes over the trajectories: the schema and the tables, and
    the rules. On a large file with a second core (`parallel=None`: decide by size and cores)
    the first pass runs in a forked process while this one runs the rules; the fork shares the
    file's bytes copy-on-write and sends back only findings and the table rows. Findings are
    listed schema first, then rules, each in file order.
    """
    engine = RuleEngine.for_root(document.header.data)
    start, eind = engine.periode
    periode = Periode(start, eind) if start and eind else None
    if parallel is None:
        parallel = (
            document.traject_count >= PARALLEL_FROM
            and (os.cpu_count() or 1) > 1
            and "fork" in multiprocessing.get_all_start_methods()
        )
    if not parallel:
        schema_findings, totalen = _schema_and_tables(document, periode)
        return CheckResult(periode, totalen, schema_findings + _rules(document, engine))

    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(
        target=_schema_and_tables_child,
        args=(document, periode, send),
        name="ddas-check-schema",
        daemon=True,
    )
    child.start()
    send.close()
    try:
        rule_findings = _rules(document, engine)
        try:
            outcome = receive.recv()
        except EOFError:
            child.join()
            raise RuntimeError(
                f"the schema pass ended without a result (exit code {child.exitcode})"
            ) from None
    finally:
        receive.close()
        child.join()
    if isinstance(outcome, BaseException):
        raise outcome
    schema_findings, totalen = outcome
    return CheckResult(periode, totalen, schema_findings + rule_findings)


def _schema_and_tables(
    document: Document, periode: Periode | None
) -> tuple[list[Finding], Totalen]:
    schema = SchemaCheck()
    findings = schema.root(document.header)
    tabellen = Tabellen()
    add = tabellen.add
    for part in document.parts():
        if type(part) is Traject:
            found = schema.part(part)
            if found:
                findings += found
            if type(part.data) is dict:
                add(traject_feit(part.data, periode))
        elif isinstance(part, LeveringHeader):
            findings += schema.levering(part)
    return findings, tabellen.result()


def _schema_and_tables_child(document: Document, periode: Periode | None, send: Connection) -> None:
    try:
        outcome: object = _schema_and_tables(document, periode)
    except BaseException as exc:  # handed to the parent, which raises it
        outcome = exc
    send.send(outcome)
    send.close()


def _rules(document: Document, engine: RuleEngine) -> list[Finding]:
    root = document.header.data
    findings = engine.check_root(root)
    check_traject = engine.check_traject
    for part in document.parts():
        if type(part) is Traject:
            if type(part.data) is dict:
                found = check_traject(part.data, part.pointer)
                if found:
                    findings += found
        elif isinstance(part, LeveringHeader) and isinstance(part.data, dict):
            findings += engine.check_levering(part.data, part.pointer)
    findings += engine.finish()
    return findings
