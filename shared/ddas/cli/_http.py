"""What `ddas submit` and `ddas status` share: the API's address, the token, one-line errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any, NoReturn

import click

DEFAULT_URL = "http://127.0.0.1:8081"

url_option = click.option(
    "--url",
    default=lambda: os.environ.get("DDAS_URL", DEFAULT_URL),
    show_default="DDAS_URL or " + DEFAULT_URL,
    help="Address of the ingest API.",
)
token_option = click.option(
    "--token",
    default=lambda: os.environ.get("DDAS_TOKEN"),
    show_default="DDAS_TOKEN",
    help="Your API token (as `ddas supplier add` printed it).",
)


UPLOAD_PIECE = 1 << 20


def upload(body: bytes) -> tuple[Iterator[bytes], dict[str, str]]:
    """A request body for httpx, in pieces of 1 MiB, and its Content-Length header.

    Given one bytes object, httpx's synchronous transport (httpcore) copies what is left of it
    after every partial send of the socket (encode/httpcore#1029): for a national delivery of
    170 MB that is 1.5 s of CPU before the last byte leaves. Here each piece is copied once.
    Call it once per request: the iterator is used up by the send."""
    pieces = (body[i : i + UPLOAD_PIECE] for i in range(0, len(body), UPLOAD_PIECE))
    return pieces, {"Content-Length": str(len(body))}


def fail(command: str, message: str, code: int) -> NoReturn:
    click.echo(f"ddas {command}: {message}", err=True)
    sys.exit(code)


def need_token(command: str, token: str | None) -> str:
    if not token:
        fail(command, "geen token: geef --token of zet DDAS_TOKEN", 2)
    return token


def problem_line(status: int, body: Any) -> str:
    """An RFC 7807 problem (or any error answer) as one line."""
    if isinstance(body, dict) and "title" in body:
        detail = f": {body['detail']}" if body.get("detail") else ""
        return f"{status} {body['title']}{detail}"
    return f"HTTP {status}"
