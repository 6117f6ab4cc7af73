"""`ddas approve ID [--reden R]`: approve a delivery as the organisation it is for (the publish
API, `POST /v1/leveringen/{id}/goedkeuring`). Its figures are then published.

Token: `--token` or `DDAS_TOKEN` (the organisation's, from `ddas supplier organisation`);
address: `--url` or `DDAS_PUBLISH_URL` (default http://127.0.0.1:8084).

Exit status: 0 approved (or approved before), 1 refused (the problem on one line), 2 the API
cannot be reached or no token.
"""

from __future__ import annotations

import json
import os

import click

from ddas.cli._http import fail, need_token, problem_line, token_option

DEFAULT_PUBLISH_URL = "http://127.0.0.1:8084"

publish_url_option = click.option(
    "--url",
    default=lambda: os.environ.get("DDAS_PUBLISH_URL", DEFAULT_PUBLISH_URL),
    show_default="DDAS_PUBLISH_URL or " + DEFAULT_PUBLISH_URL,
    help="Address of the publish API.",
)

_DONE = {"goedkeuring": "goedgekeurd", "intrekking": "ingetrokken"}


def decide(
    name: str, besluit: str, levering_id: str, token: str | None, url: str, reden: str | None,
    as_json: bool,
) -> None:  # fmt: skip
    """POST the decision and print the answer (what `approve` and `withdraw` share)."""
    import httpx

    token = need_token(name, token)
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/v1/leveringen/{levering_id}/{besluit}",
            headers={"Authorization": f"Bearer {token}"},
            json={"reden": reden} if reden else None,
            timeout=30,
        )
    except httpx.TransportError as exc:
        fail(name, f"{url} is niet bereikbaar ({type(exc).__name__})", 2)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200 or not isinstance(answer, dict):
        fail(name, problem_line(response.status_code, answer), 1)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    note = "" if answer.get("nieuw") else f" (was al {_DONE[besluit]})"
    click.echo(f"levering {answer['id']}: {answer['state']}{note}")


@click.command(name="approve")
@click.argument("levering_id", metavar="ID")
@click.option("--reden", default=None, help="An optional reason, kept in the audit log.")
@token_option
@publish_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
def command(
    levering_id: str, reden: str | None, token: str | None, url: str, as_json: bool
) -> None:
    """Approve delivery ID (as its organisation): its figures are then published."""
    decide("approve", "goedkeuring", levering_id, token, url, reden, as_json)
