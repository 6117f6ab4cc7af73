"""`ddas collect ...`: the collector's operator commands (services/ingest/collect).

    ddas collect now [--supplier S] [--periode P]   collect now (or resume), per endpoint
    ddas collect status                             the last run per endpoint, and its health

Settings as ingest's: the configuration file from DDAS_COLLECTOR_CONFIG (or --config),
DATABASE_*, KAFKA_* and the pseudonym key (DDAS_PSEUDONYM_KEY[_FILE]): `now` takes deliveries in
as the ingest service does. Exit codes: `now` 0 when every run completed, 1 when one did not,
2 for a configuration or connection problem; `status` 0, or 3 when an endpoint is unhealthy.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, NoReturn

import click


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"ddas collect: {message}", err=True)
    sys.exit(code)


def _settings(config: str | None) -> Any:
    from services.ingest.collect import ConfigError, load_config
    from services.ingest.settings import IngestSettings

    settings = IngestSettings()
    path = config or settings.collector_config
    if not path:
        _fail("geen configuratie: zet DDAS_COLLECTOR_CONFIG of geef --config")
    assert path is not None
    try:
        return settings, load_config(path)
    except ConfigError as exc:
        _fail(str(exc))


@click.group(name="collect")
def command() -> None:
    """Collect deliveries from the suppliers' DDAS pull API."""


@command.command()
@click.option("--supplier", "supplier", help="Only this endpoint (its name or supplier code).")
@click.option("--periode", help="2025, 2025H1, 2025Q3, 2025M09 or 2025-01-01..2025-06-30 "
              "(default: each endpoint's last completed period).")  # fmt: skip
@click.option("--config", help="The collector's TOML file (default: DDAS_COLLECTOR_CONFIG).")
def now(supplier: str | None, periode: str | None, config: str | None) -> None:
    """Collect now: one run per endpoint (an unfinished run is resumed)."""
    import logging

    from services.ingest.collect import parse_periode

    settings, cfg = _settings(config)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        chosen = parse_periode(periode) if periode else None
    except ValueError as exc:
        _fail(str(exc))
    endpoints = [e for e in cfg.endpoints if supplier in (None, e.name, e.supplier)]
    if not endpoints:
        _fail(f"geen endpoint {supplier!r} in de configuratie" if supplier else "geen endpoints")
    try:
        outcomes = asyncio.run(_now(settings, cfg, endpoints, chosen))
    except (OSError, ConnectionError) as exc:
        _fail(f"verbinding: {exc}")
    failed = 0
    for o in outcomes:
        pages = f"{o.pages_done}/{o.pages_total or '?'} pagina's"
        if o.state == "voltooid":
            nieuw = "nieuw" if o.nieuw else "al ontvangen"
            click.echo(f"{o.endpoint:<16} {o.periode}  voltooid  {pages}  {o.records} trajecten  "
                       f"levering {o.levering_id} ({nieuw})")  # fmt: skip
        else:
            failed += 1
            reden = f" ({o.reden}): {o.detail}" if o.reden else ""
            click.echo(f"{o.endpoint:<16} {o.periode}  {o.state}  {pages}{reden}")
    sys.exit(1 if failed else 0)


async def _now(settings: Any, cfg: Any, endpoints: list[Any], periode: Any) -> list[Any]:
    import asyncpg
    from aiokafka import AIOKafkaProducer

    from ddas.db.migrate import migrate_database
    from ddas.domain.pseudonym import MissingPseudonymKey, Pseudonymiser
    from ddas.messaging import relay_producer_params
    from services.ingest.collect import Collector
    from services.ingest.intake import Intake, Limits

    try:
        key = settings.key()
    except MissingPseudonymKey as exc:
        _fail(str(exc))
    db = settings.database
    try:
        await migrate_database(db)
        pool = await asyncpg.create_pool(**db.to_asyncpg_params(), min_size=2, max_size=8)
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"database: {exc}")
    producer = AIOKafkaProducer(
        **settings.kafka.to_aiokafka_params(),
        acks="all",
        enable_idempotence=True,
        max_request_size=2 * settings.max_bytes + 1024 * 1024,
        compression_type=relay_producer_params()["compression_type"],
    )
    try:
        await producer.start()
    except Exception as exc:  # aiokafka raises its own KafkaConnectionError
        await pool.close()
        _fail(f"Kafka: {exc}")

    async def publish(
        topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await producer.send(
            topic, value=value, key=key, headers=headers
        )
        return future

    try:
        s = settings
        intake = Intake(
            pool,
            Pseudonymiser(key),
            Limits(s.max_bytes, s.max_depth, s.max_trajecten, s.chunk_size),
            chunk_topic=s.chunk_topic,
            publish=publish,
        )
        collector = Collector(pool, intake, cfg, key)
        return list(await asyncio.gather(*(collector.collect(e, periode) for e in endpoints)))
    finally:
        await producer.stop()
        await pool.close()


@command.command(name="status")
@click.option("--config", help="The collector's TOML file (default: DDAS_COLLECTOR_CONFIG).")
def status_(config: str | None) -> None:
    """The last run per endpoint (period, pages, records, outcome) and its health."""
    settings, cfg = _settings(config)
    rows = asyncio.run(_status(settings, cfg))
    ongezond = False
    for st in rows:
        health = "gezond" if st.gezond else "ONGEZOND"
        ongezond |= not st.gezond
        line = f"{st.endpoint:<16} {st.leverancier:<12} {health}"
        if st.opeenvolgende_fouten:
            line += f" ({st.opeenvolgende_fouten} fout(en) op rij, laatste {st.laatste_reden}"
            if st.volgende_poging:
                line += f"; volgende poging {st.volgende_poging:%Y-%m-%d %H:%M:%S}"
            line += ")"
        click.echo(line)
        run = st.run
        if run is None:
            click.echo("    nog geen run")
            continue
        pages = f"{run['pages_done']}/{run['pages_total'] or '?'} pagina's"
        records = f"{run['records_total']} trajecten" if run["records_total"] is not None else ""
        click.echo(f"    laatste run {run['periode_start']}..{run['periode_eind']}: "
                   f"{run['state']}, {pages}, {records}".rstrip(", "))  # fmt: skip
        if run["levering_id"]:
            click.echo(f"    levering {run['levering_id']}")
        if run["reden"]:
            click.echo(f"    reden {run['reden']}: {run['detail']}")
    sys.exit(3 if ongezond else 0)


async def _status(settings: Any, cfg: Any) -> list[Any]:
    import asyncpg

    from ddas.db.migrate import migrate_database
    from services.ingest.collect import status

    try:
        await migrate_database(settings.database)
        conn = await asyncpg.connect(**settings.database.to_asyncpg_params())
    except (OSError, asyncpg.PostgresError) as exc:
        _fail(f"database: {exc}")
    try:
        return await status(conn, cfg)
    finally:
        await conn.close()
