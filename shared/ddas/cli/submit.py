"""`ddas submit FILE --token T [--url U]`: deliver a SHV file to the ingest API.

The same file from the same supplier is the same delivery, so a submission that timed out or
lost its connection is simply sent again (`--retries`, with a growing pause): it gets the same
delivery id. Prints the delivery id and its status URL (or, with --json, the answer).

Exit status: 0 accepted (new or already delivered), 1 refused (the problem on one line),
2 the file cannot be read or the API cannot be reached.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ddas.cli._http import fail, need_token, problem_line, token_option, upload, url_option


@click.command(name="submit")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@token_option
@url_option
@click.option("--json", "as_json", is_flag=True, help="Print the API's answer as JSON.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds to wait per try.")
@click.option("--retries", default=3, show_default=True, help="Tries after a timeout.")
def command(
    file: Path, token: str | None, url: str, as_json: bool, timeout: float, retries: int
) -> None:
    """Deliver FILE (SHV v1.0 JSON) and print its delivery id."""
    import httpx

    token = need_token("submit", token)
    try:
        body = file.read_bytes()
    except OSError as exc:
        fail("submit", f"{file}: {exc.strerror or exc}", 2)
    endpoint = url.rstrip("/") + "/v1/leveringen"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    response = None
    for attempt in range(retries + 1):
        try:
            content, length = upload(body)
            response = httpx.post(
                endpoint, content=content, headers=headers | length, timeout=timeout
            )
            break
        except httpx.TransportError as exc:  # a timeout or a lost connection: send it again
            if attempt == retries:
                fail("submit", f"{url} is niet bereikbaar ({type(exc).__name__})", 2)
            time.sleep(min(30.0, 2.0**attempt))
    assert response is not None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code not in (200, 202) or not isinstance(answer, dict):
        fail("submit", problem_line(response.status_code, answer), 1)
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    how = "ontvangen" if answer.get("nieuw") else "was al geleverd"
    click.echo(f"{answer['id']}  {how}  {answer['status_url']}")
