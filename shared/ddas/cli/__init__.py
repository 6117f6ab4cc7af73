"""The `ddas` command line: one group, each subcommand in a module of its own.

Subcommands are imported only when they run (click's lazy-group pattern), so that `ddas check`
does not pay for the broker and database libraries that `ddas infra` needs.
"""

from __future__ import annotations

from importlib import import_module

import click

# name -> module exposing `command`
SUBCOMMANDS: dict[str, str] = {
    "approve": "ddas.cli.approve",
    "check": "ddas.cli.check",
    "docs": "ddas.cli.docs",
    "collect": "ddas.cli.collect",
    "demo": "ddas.cli.demo",
    "generate": "ddas.cli.generate",
    "infra": "ddas.cli.infra",
    "report": "ddas.cli.report",
    "serve": "ddas.cli.serve",
    "stats": "ddas.cli.stats",
    "status": "ddas.cli.status",
    "submit": "ddas.cli.submit",
    "supplier": "ddas.cli.supplier",
    "withdraw": "ddas.cli.withdraw",
    "webhook": "ddas.cli.webhook",
    "supplier-api": "ddas.cli.supplier_api",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *SUBCOMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in SUBCOMMANDS:
            command: click.Command = import_module(SUBCOMMANDS[cmd_name]).command
            return command
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """DDAS collection platform: check files offline, run the infrastructure and services."""
