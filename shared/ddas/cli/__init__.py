"""The `ddas` command line: one group, each subcommand in a module of its own."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """DDAS collection platform: check files offline, run the infrastructure and services."""


def _register() -> None:
    # Subcommands register themselves here; each module adds one command or group to `main`.
    from importlib import import_module

    for name in ("infra", "check", "generate"):
        try:
            module = import_module(f"ddas.cli.{name}")
        except ModuleNotFoundError as exc:  # a subcommand not yet built
            if exc.name != f"ddas.cli.{name}":
                raise
            continue
        main.add_command(module.command)


_register()
