"""`ddas serve SERVICE`: run one of the pipeline's services in this process (the same as
`python -m services.<service>`), until SIGTERM or SIGINT."""

from __future__ import annotations

import sys
from importlib import import_module
from importlib.util import find_spec

import click

SERVICES = ("ingest", "validate", "report", "publish")


@click.command(name="serve")
@click.argument("service", type=click.Choice(SERVICES))
def command(service: str) -> None:
    """Run SERVICE (settings from the environment: KAFKA_*, DATABASE_*, DDAS_*)."""
    name = f"services.{service}.main"
    if find_spec(f"services.{service}") is None or find_spec(name) is None:
        click.echo(f"ddas serve: de dienst {service} bestaat nog niet", err=True)
        sys.exit(2)
    sys.exit(import_module(name).main())
