"""`ddas status ID [--json]`: the state of a delivery and its findings summary.

Exit status: 0 shown, 1 refused or unknown (the problem on one line), 2 the API cannot be
reached.
"""

from __future__ import annotations

import json

import click

from ddas.cli._http import fail, need_token, problem_line, token_option, url_option


@click.command(name="status")
@click.argument("levering_id", metavar="ID")
@token_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
def command(levering_id: str, token: str | None, url: str, as_json: bool) -> None:
    """Show the state of delivery ID."""
    import httpx

    token = need_token("status", token)
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/v1/leveringen/{levering_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.TransportError as exc:
        fail("status", f"{url} is niet bereikbaar ({type(exc).__name__})", 2)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        fail("status", problem_line(response.status_code, answer), 1)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    click.echo(f"levering     {answer['id']}")
    click.echo(f"toestand     {answer['state']}")
    click.echo(f"ontvangen op {answer['ontvangen_op']}")
    click.echo(f"trajecten    {answer['trajecten']}")
    b = answer.get("bevindingen")
    if b:
        click.echo(f"bevindingen  {b['fouten']} fouten, {b['waarschuwingen']} waarschuwingen")
        for code, n in sorted(b["per_code"].items()):
            click.echo(f"  {n:>7}  {code}")
    else:
        click.echo("bevindingen  (nog niet gevalideerd)")
