"""`ddas stats --periode START/EIND [--gemeentecode G] [--csv | --json]`: the published,
disclosure-protected statistics of a period (the publish API's `GET /v1/statistieken`, public:
no token). Address: `--url` or `DDAS_PUBLISH_URL` (default http://127.0.0.1:8084).

Printed as a table of headline figures per municipality and in total; `x` is a suppressed
cell (under 10, or suppressed so that it cannot be worked out from the others). `--csv` and
`--json` print every cell as the API gives it.

Exit status: 0 shown, 1 refused or nothing published for the period, 2 the API cannot be reached.
"""

from __future__ import annotations

import json
from typing import Any

import click

from ddas.cli._http import fail, problem_line
from ddas.cli.approve import publish_url_option

# (header, table, column) of the headline figures
KOLOMMEN = (
    ("trajecten", "trajecten", "trajecten"),
    ("clienten", "laatste_fase", "totaal"),
    ("instroom", "instroom", "totaal"),
    ("begeleiding", "begeleiding", "clienten"),
    ("met schulden", "schulden", "trajecten"),
    ("schuld (EUR)", "schulden", "totaal_bedrag"),
)
LEGENDA = "x: onderdrukt (minder dan 10, of af te leiden uit de andere cellen); afgerond op 5"


def cel(value: dict[str, Any] | None) -> str:
    if value is None:
        return "-"
    if value.get("waarde") is None:
        return "x" if value.get("status", "").startswith("onderdrukt") else "."
    w = value["waarde"]
    return f"{w:,}".replace(",", ".") if isinstance(w, int) else str(w)


def render(answer: dict[str, Any]) -> str:
    """The headline figures of a `GET /v1/statistieken` answer as a text table."""
    p = answer["periode"]
    rows = [("gemeente", *(h for h, _, _ in KOLOMMEN))]
    for g in answer["gemeenten"]:
        t = g["tabellen"]
        rows.append(
            (g["gemeentecode"], *(cel(t.get(tab, {}).get(kol)) for _, tab, kol in KOLOMMEN))
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"Statistieken {p['start']} t/m {p['eind']} (versie {answer['versie']})",
        *(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(r, widths, strict=True))
            )
            for r in rows
        ),
        LEGENDA,
    ]
    return "\n".join(lines)


@click.command(name="stats")
@click.option("--periode", required=True, help="START/EIND, e.g. 2025-01-01/2025-06-30.")
@click.option("--gemeentecode", default=None, help="One municipality (4 digits) or 'totaal'.")
@publish_url_option
@click.option("--csv", "as_csv", is_flag=True, help="Every cell as CSV.")
@click.option("--json", "as_json", is_flag=True, help="Every cell as the API's JSON.")
def command(periode: str, gemeentecode: str | None, url: str, as_csv: bool, as_json: bool) -> None:
    """Show the published statistics of a period."""
    import httpx

    params = {"periode": periode, **({"gemeentecode": gemeentecode} if gemeentecode else {})}
    if as_csv:
        params["formaat"] = "csv"
    try:
        response = httpx.get(f"{url.rstrip('/')}/v1/statistieken", params=params, timeout=30)
    except httpx.TransportError as exc:
        fail("stats", f"{url} is niet bereikbaar ({type(exc).__name__})", 2)
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = None
        fail("stats", problem_line(response.status_code, body), 1)
    if as_csv:
        click.echo(response.text, nl=False)
    elif as_json:
        click.echo(json.dumps(response.json(), indent=2))
    else:
        click.echo(render(response.json()))
