"""`ddas supplier-api serve FILE`: the reference supplier server (ddas.supplier_api.server), for
suppliers to compare their own pull API with, and for testing the collector over real HTTP.

    ddas supplier-api serve FILE [--host H] [--port P] [--key KEY.pem --chain CHAIN.pem]
        [--client-id ID] [--token-ttl S]

The client secret comes from DDAS_SUPPLIER_API_CLIENT_SECRET or the file named by
DDAS_SUPPLIER_API_CLIENT_SECRET_FILE; without one a random secret is made and printed once.
Without --key/--chain a throwaway CA signs the pages; its root certificate is written to
--root-out (the collector's trust store for this server).
"""

from __future__ import annotations

import os
import secrets
import socket
import sys
from pathlib import Path
from typing import NoReturn

import click


@click.group(name="supplier-api")
def command() -> None:
    """The reference supplier server of the DDAS pull API (DDAS-SHV.yaml)."""


def _fail(message: str) -> NoReturn:
    click.echo(f"ddas supplier-api: {message}", err=True)
    sys.exit(2)


@command.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8090, show_default=True, type=int, help="0: a free port.")
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM RSA private key that signs the pages.")  # fmt: skip
@click.option("--chain", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM certificate chain, the signing certificate first.")  # fmt: skip
@click.option("--root-out", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("ddas-supplier-api-root.pem"), show_default=True,
              help="Where the throwaway CA's root goes (without --key/--chain).")  # fmt: skip
@click.option("--client-id", default="ddas", show_default=True)
@click.option("--token-ttl", default=3600.0, show_default=True, type=float,
              help="Seconds an access token is valid.")  # fmt: skip
def serve(
    file: Path,
    host: str,
    port: int,
    key: Path | None,
    chain: Path | None,
    root_out: Path,
    client_id: str,
    token_ttl: float,
) -> None:
    """Serve FILE per DDAS-SHV.yaml: POST /token and POST /gegevens."""
    import uvicorn

    from ddas.domain.reader import UnreadableFile
    from ddas.supplier_api.pages import Pager
    from ddas.supplier_api.pki import make_pki
    from ddas.supplier_api.server import SupplierApi, create_app
    from ddas.supplier_api.signing import Signer

    try:
        pager = Pager(file.read_bytes())
    except OSError as exc:
        _fail(f"{file}: {exc.strerror}")
    except UnreadableFile as exc:
        _fail(f"{file}: {exc.reason}")
    if (key is None) != (chain is None):
        _fail("geef --key en --chain samen, of geen van beide")
    if key is not None and chain is not None:
        try:
            signer = Signer.from_pem(key.read_bytes(), chain.read_bytes())
        except (OSError, ValueError) as exc:
            _fail(f"sleutel of certificaatketen onbruikbaar: {exc}")
    else:
        pki = make_pki("DDAS referentieserver")
        signer = Signer(pki.leaf.key, pki.chain)
        root_out.write_bytes(pki.root.cert_pem())
        click.echo(f"ddas supplier-api: rootcertificaat (trust store) in {root_out}", err=True)
    secret = os.environ.get("DDAS_SUPPLIER_API_CLIENT_SECRET")
    secret_file = os.environ.get("DDAS_SUPPLIER_API_CLIENT_SECRET_FILE")
    if not secret and secret_file:
        try:
            secret = Path(secret_file).read_text().strip()
        except OSError as exc:
            _fail(f"{secret_file}: {exc.strerror}")
    if not secret:
        secret = secrets.token_urlsafe(24)
        click.echo(f"ddas supplier-api: client {client_id}, geheim {secret}", err=True)
    api = SupplierApi(pager, signer, {client_id: secret}, token_ttl=token_ttl)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        _fail(f"{host}:{port}: {exc.strerror}")
    bound = sock.getsockname()[1]
    click.echo(
        f"ddas supplier-api: {pager.total_records} trajecten op http://{host}:{bound} "
        "(POST /token, POST /gegevens)",
        err=True,
    )
    server = uvicorn.Server(uvicorn.Config(create_app(api), log_level="warning", lifespan="off"))
    server.run(sockets=[sock])
