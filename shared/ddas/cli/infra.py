"""`ddas infra up|down|status`: the local Kafka broker and PostgreSQL, without Docker.

The settings go to stdout as shell exports, so `eval "$(ddas infra up)"` points a shell (and the
services started from it) at what runs; progress and errors go to stderr.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import click
from pydantic import ValidationError

from ddas import infra
from ddas.infra import COMPONENTS, Component, InfraConfig, InfraError, InfraStatus, kafka

_T = TypeVar("_T")

_only = click.option(
    "--only",
    type=click.Choice(COMPONENTS),
    default=None,
    help="Act on one of the two only (e.g. when DATABASE_URL points at a server of your own).",
)


def _selected(only: str | None) -> tuple[Component, ...]:
    return COMPONENTS if only is None else tuple(c for c in COMPONENTS if c == only)


def _guarded(action: Callable[[], _T]) -> _T:
    """Run an infra action; an InfraError becomes one line on stderr and exit status 1."""
    try:
        return action()
    except InfraError as exc:
        click.echo(f"ddas infra: {exc}", err=True)
        sys.exit(1)
    except ValidationError as exc:  # a DDAS_* variable that is not a port, path, ...
        first = exc.errors()[0]
        name = "DDAS_" + "_".join(str(p) for p in first["loc"]).upper()
        click.echo(f"ddas infra: {name}: {first['msg']}", err=True)
        sys.exit(2)


def _print_exports(state: InfraStatus) -> None:
    for key, value in state.env.items():
        click.echo(f"export {key}={shlex.quote(value)}")


def _describe(state: InfraStatus) -> None:
    for name, part in (("kafka", state.kafka), ("postgres", state.postgres)):
        if part is None:
            continue
        where = ", ".join(f"{k}={v}" for k, v in part.env.items())
        if part.running:
            verb = "started" if part.started else "running"
            click.echo(f"{name}: {verb} (pid {part.pid}) {where}", err=True)
        else:
            click.echo(f"{name}: stopped", err=True)


@click.group("infra")
def command() -> None:
    """Run a real Kafka broker and PostgreSQL on this machine (Java 17, Maven, PostgreSQL)."""


@command.command("up")
@_only
def up(only: str | None) -> None:
    """Start the broker and the database unless running; print their settings as exports."""
    began = time.monotonic()
    if "kafka" in _selected(only) and not _guarded(lambda: kafka.jars_ready(InfraConfig())):
        click.echo("fetching the Kafka broker's jars with Maven (once)...", err=True)
    state = _guarded(lambda: infra.up(only=_selected(only)))
    _describe(state)
    click.echo(f"ready in {time.monotonic() - began:.1f}s", err=True)
    _print_exports(state)


@command.command("down")
@_only
def down(only: str | None) -> None:
    """Stop what `up` started and delete its data. Harmless when nothing runs."""
    stopped = _guarded(lambda: infra.down(only=_selected(only)))
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running", err=True)


@command.command("fetch")
def fetch() -> None:
    """Fetch the Kafka broker's jars with Maven now (`up` does it when they are missing)."""
    libs = _guarded(lambda: kafka.ensure_jars(InfraConfig()))
    click.echo(f"Kafka jars in {libs}", err=True)


@command.command("status")
def status() -> None:
    """Say what runs, print its settings; exit status 3 when something is stopped."""
    state = _guarded(infra.status)
    _describe(state)
    running = InfraStatus(
        kafka=state.kafka if state.kafka and state.kafka.running else None,
        postgres=state.postgres if state.postgres and state.postgres.running else None,
    )
    _print_exports(running)
    if not state.all_running:
        sys.exit(3)
