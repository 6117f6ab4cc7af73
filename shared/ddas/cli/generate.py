"""`ddas generate`: write a synthetic SHV v1.0 delivery for tests and benchmarks.

    ddas generate --trajecten 200000 --seed 7 [--fouten 0.01] [--periode 2025-01-01:2025-12-31]
                  [--leveringen 3] [--gemeenten 40] [-o FILE]

Deterministic per seed. Without `--fouten` the file is schema-valid and raises no rule finding;
with `--fouten RATE` about RATE of the trajectories carry one deliberate flaw each. Writes to
stdout without `-o`; with `-o` the file appears complete or not at all (written aside, renamed).
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

import click

from ddas.generate import Options, generate


def _periode(ctx: click.Context, param: click.Parameter, value: str) -> tuple[date, date]:
    start, sep, eind = value.partition(":")
    try:
        if not sep:
            raise ValueError
        periode = date.fromisoformat(start.strip()), date.fromisoformat(eind.strip())
    except ValueError:
        raise click.BadParameter(
            "verwacht START:EIND, bijvoorbeeld 2025-01-01:2025-12-31", ctx, param
        ) from None
    if periode[1] < periode[0]:
        raise click.BadParameter("de einddatum ligt voor de startdatum", ctx, param)
    return periode


@click.command("generate")
@click.option(
    "--trajecten", "-n", type=click.IntRange(min=0), required=True, help="Number of trajectories."
)
@click.option(
    "--seed",
    "-s",
    type=int,
    default=0,
    show_default=True,
    help="Random seed: the same seed gives the same file.",
)
@click.option(
    "--fouten",
    type=click.FloatRange(0.0, 1.0),
    default=0.0,
    show_default=True,
    help="Share of trajectories with one deliberate flaw (schema or rule).",
)
@click.option(
    "--periode",
    default="2025-01-01:2025-12-31",
    show_default=True,
    callback=_periode,
    help="Reporting period START:EIND, both inclusive.",
)
@click.option(
    "--leveringen",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Number of leveringen; the municipalities are spread over them.",
)
@click.option(
    "--gemeenten",
    type=click.IntRange(1, 342),
    default=None,
    help="Number of municipalities [default: grows with --trajecten, at least 3].",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Output file [default: stdout].",
)
def command(
    trajecten: int,
    seed: int,
    fouten: float,
    periode: tuple[date, date],
    leveringen: int,
    gemeenten: int | None,
    output: Path | None,
) -> None:
    """Write a realistic synthetic SHV v1.0 file (optionally with deliberate flaws)."""
    options = Options(
        trajecten=trajecten,
        seed=seed,
        fouten=fouten,
        periode=periode,
        leveringen=leveringen,
        gemeenten=gemeenten,
    )
    if output is None:
        try:
            stats = generate(sys.stdout.buffer, options)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # e.g. `ddas generate ... | head`: the reader is gone
            # Point stdout at devnull so that the interpreter's final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
    else:
        tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("wb", buffering=1 << 20) as out:
                stats = generate(out, options)
            tmp.replace(output)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise click.ClickException(f"{output}: {exc.strerror or exc}") from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    fouten_tekst = f", {stats.met_fout} met een bewuste fout" if fouten else ""
    click.echo(
        f"ddas generate: {stats.trajecten} trajecten, {stats.clienten} cliënten"
        f"{fouten_tekst}" + (f" -> {output}" if output else ""),
        err=True,
    )
