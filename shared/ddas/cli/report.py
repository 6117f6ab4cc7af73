"""`ddas report ID [--html FILE | --csv DIR | --json]`: a delivery's op-orde-rapport from the
report API (DDAS_REPORT_URL, default http://127.0.0.1:8083), with the caller's token (--token or
DDAS_TOKEN, as `ddas status`).

Without an option it prints the headline numbers; --json prints the report's JSON, --html FILE
writes the HTML page, --csv DIR writes one CSV file per table into DIR.

Exit status: 0 done, 1 refused, unknown or not ready yet (the problem on one line), 2 the API
cannot be reached or the output cannot be written.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import click

from ddas.cli._http import fail, need_token, problem_line, token_option

DEFAULT_URL = "http://127.0.0.1:8083"


@click.command(name="report")
@click.argument("levering_id", metavar="ID")
@click.option(
    "--html", "html_file", type=click.Path(dir_okay=False), help="Write the HTML page to FILE."
)
@click.option(
    "--csv", "csv_dir", type=click.Path(file_okay=False), help="Write one CSV per table into DIR."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@token_option
@click.option(
    "--url",
    default=lambda: os.environ.get("DDAS_REPORT_URL", DEFAULT_URL),
    show_default="DDAS_REPORT_URL or " + DEFAULT_URL,
    help="Address of the report API.",
)
def command(
    levering_id: str,
    html_file: str | None,
    csv_dir: str | None,
    as_json: bool,
    token: str | None,
    url: str,
) -> None:
    """Fetch the op-orde-rapport of delivery ID."""
    import httpx

    if sum(bool(x) for x in (html_file, csv_dir, as_json)) > 1:
        fail("report", "kies één van --html, --csv en --json", 2)
    token = need_token("report", token)
    formaat = "html" if html_file else "csv" if csv_dir else "json"
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/v1/leveringen/{levering_id}/rapport",
            params={"formaat": formaat},
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    except httpx.TransportError as exc:
        fail("report", f"{url} is niet bereikbaar ({type(exc).__name__})", 2)
    if response.status_code != 200:
        try:
            answer: Any = response.json()
        except ValueError:
            answer = None
        fail("report", problem_line(response.status_code, answer), 1)
    versie = response.headers.get("x-rapport-versie", "?")
    try:
        if html_file:
            Path(html_file).write_bytes(response.content)
            click.echo(f"rapport (versie {versie}) geschreven naar {html_file}")
        elif csv_dir:
            target = Path(csv_dir)
            target.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(io.BytesIO(response.content)) as z:
                for name in z.namelist():
                    if "/" in name or name.startswith("."):
                        continue  # only plain file names, never a path out of DIR
                    (target / name).write_bytes(z.read(name))
                    click.echo(str(target / name))
        elif as_json:
            click.echo(json.dumps(response.json(), indent=2, ensure_ascii=False))
        else:
            _summary(response.json(), versie)
    except OSError as exc:
        fail("report", f"kan niet schrijven: {exc}", 2)
    except (ValueError, zipfile.BadZipFile):
        fail("report", "het antwoord van de API is onleesbaar", 2)


def _summary(oor: dict[str, Any], versie: str) -> None:
    lev, v, t = oor["levering"], oor["validatie"], oor["totaal"]
    tab = oor["tabellen"]["totaal"]
    p = oor.get("periode") or {}
    click.echo(f"levering          {lev['id']} (rapportversie {versie})")
    click.echo(f"organisatie       {lev.get('organisatie_naam') or lev['organisatie']}")
    click.echo(f"periode           {p.get('start', '?')} t/m {p.get('eind', '?')}")
    click.echo(f"oordeel           {'op orde' if v['op_orde'] else 'niet op orde'}")
    click.echo(f"bevindingen       {v['fouten']} fouten, {v['waarschuwingen']} waarschuwingen")
    click.echo(f"trajecten         {tab['trajecten']}")
    click.echo(f"unieke cliënten   {tab['unieke_bsn']} (actief {tab['unieke_actieve_bsn']})")
    click.echo(f"nieuwe instroom   {t['instroom']['clienten']}")
    click.echo(f"totaal schulden   € {t['schulden']['totaal_bedrag']}")
