"""`ddas check FILE`: the DDAS-app's check, offline: schema findings, rule findings and the two
totals tables, as aligned tables (like the app) or as one JSON document (`--json`).

Exit codes: 0 no errors (warnings allowed), 1 errors (the tables are still printed),
2 the file cannot be read as a DDAS file at all (one line on stderr, no traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import msgspec

from ddas.domain.check import CheckResult, check_file
from ddas.domain.findings import Ernst
from ddas.domain.reader import UnreadableFile
from ddas.domain.steps import STAPPEN
from ddas.domain.tables import ONBEKEND, Rij
from ddas.nl import datum

VOORBEELDEN_IN_TEKST = 3


def _tabel(kop: list[str], rijen: list[list[str]]) -> list[str]:
    """Aligned columns: the first left-aligned, the numbers right-aligned."""
    breedte = [max(len(r[i]) for r in [kop, *rijen]) for i in range(len(kop))]

    def regel(cellen: list[str]) -> str:
        eerste = cellen[0].ljust(breedte[0])
        rest = (c.rjust(w) for c, w in zip(cellen[1:], breedte[1:], strict=True))
        return "  ".join([eerste, *rest]).rstrip()

    return [regel(kop), "  ".join("-" * w for w in breedte), *(regel(r) for r in rijen)]


def _code(rij: Rij) -> str:
    return "onbekend*" if rij.gemeentecode is None else rij.gemeentecode


def render_text(result: CheckResult) -> str:
    out: list[str] = []
    p = result.periode
    if p is not None:
        out.append(f"Rapportageperiode: {datum(p.start)} - {datum(p.eind)}")
    else:
        out.append("Rapportageperiode: onbekend (startdatumLevering/einddatumLevering ontbreken)")
    t = result.totalen
    out += ["", "Overzicht aantal trajecten en cliënten (BSN's) per gemeentecode", ""]
    rijen1 = [
        [_code(r), str(r.trajecten), str(r.unieke_bsn), str(r.unieke_actieve_bsn)] for r in t.rijen
    ]
    rijen1.append(
        [
            "Totaal",
            str(t.totaal.trajecten),
            str(t.totaal.unieke_bsn),
            str(t.totaal.unieke_actieve_bsn),
        ]
    )
    out += _tabel(
        ["Gemeentecode", "Aantal trajecten", "Unieke BSN's", "Unieke actieve BSN's*"], rijen1
    )
    out += [
        "",
        "*: actief wil zeggen dat er een processtap tijdens de rapportageperiode is "
        "gestart of de cliënt tijdens de rapportageperiode is uitgestroomd",
    ]
    out += ["", "Overzicht unieke actieve cliënten per meest recente processtap", ""]
    kolommen = [*STAPPEN, ONBEKEND]
    rijen2 = [
        [_code(r), *(str(r.laatste_stap[k]) for k in kolommen), str(r.unieke_bsn)] for r in t.rijen
    ]
    rijen2.append(
        ["Totaal", *(str(t.totaal.laatste_stap[k]) for k in kolommen), str(t.totaal.unieke_bsn)]
    )
    out += _tabel(
        ["Gemeentecode", *(k.capitalize() for k in STAPPEN), "Onbekend*", "Totaal"], rijen2
    )
    out += [
        "",
        "*: onbekend wil zeggen dat er geen processtap is gevonden die tijdens de "
        "rapportageperiode is gestart",
    ]
    out += ["", _samenvatting(result)]
    for regel in result.per_regel():
        ernst = "FOUT" if regel.ernst is Ernst.FOUT else "waarschuwing"
        out.append(f"  {ernst:<12}  {regel.code:<32} {regel.aantal:>8}x  {regel.omschrijving}")
        for ptr in regel.voorbeelden[:VOORBEELDEN_IN_TEKST]:
            out.append(f"{'':16}{ptr}")
    return "\n".join(out) + "\n"


def _samenvatting(result: CheckResult) -> str:
    if not result.findings:
        return "Bevindingen: geen. Het bestand voldoet aan het schema en de regels."
    verdict = "Het bestand bevat fouten." if result.fouten else "Het bestand bevat geen fouten."
    return (
        f"Bevindingen: {result.fouten} fout(en), {result.waarschuwingen} "
        f"waarschuwing(en). {verdict}"
    )


@click.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def command(file: Path, as_json: bool) -> None:
    """Check a DDAS SHV v1.0 file offline, as the DDAS-app does: schema, rules, totals."""
    try:
        result = check_file(file)
    except UnreadableFile as exc:
        click.echo(f"ddas check: {file}: {exc}", err=True)
        sys.exit(2)
    if as_json:
        sys.stdout.buffer.write(msgspec.json.encode(result.as_dict()) + b"\n")
    else:
        click.echo(render_text(result), nl=False)
    sys.exit(1 if result.fouten else 0)
