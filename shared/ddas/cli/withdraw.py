"""`ddas withdraw ID [--reden R]`: withdraw a delivery as the organisation it is for (the publish
API, `POST /v1/leveringen/{id}/intrekking`): nothing of it is published. Token and address as
`ddas approve`.

Exit status: 0 withdrawn (or withdrawn before), 1 refused (the problem on one line), 2 the API
cannot be reached or no token.
"""

from __future__ import annotations

import click

from ddas.cli._http import token_option
from ddas.cli.approve import decide, publish_url_option


@click.command(name="withdraw")
@click.argument("levering_id", metavar="ID")
@click.option("--reden", default=None, help="An optional reason, kept in the audit log.")
@token_option
@publish_url_option
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
def command(
    levering_id: str, reden: str | None, token: str | None, url: str, as_json: bool
) -> None:
    """Withdraw delivery ID (as its organisation): its data is not published."""
    decide("withdraw", "intrekking", levering_id, token, url, reden, as_json)
