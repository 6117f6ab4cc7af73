"""`ddas demo` (what `make demo` runs): the whole pipeline on this machine, end to end.

1. starts Kafka and PostgreSQL (`ddas infra up`; what already runs is used as it is);
2. starts the four services as processes of their own (`python -m services.<name>`, logs in
   `<run dir>/demo/<name>.log`, HTTP on free ports);
3. makes a supplier and a token for it and for the organisation (`ddas supplier ...`);
4. generates a delivery (`ddas generate`, a new seed each run, always the same demo
   organisation and period), submits it as the supplier, waits for the op-orde-rapport,
   approves it as the organisation and waits for the publication;
5. prints the state, the headline figures of the report, the report's URL, the published
   statistics and the e-mails the services sent (to a mail server of the demo's own, on a free
   local port: nothing leaves the machine), then keeps everything running until Ctrl-C
   (`--stop` ends at once; SIGTERM and SIGHUP count as Ctrl-C), and stops all it started: the
   services, and Kafka and PostgreSQL unless they were running before.

Run again, it makes a new delivery of the same organisation for the same period: when the
database was kept (Kafka and PostgreSQL were running before the demo), the new delivery's
publication replaces the previous one's figures, and the demo says so.

Ports: `DDAS_KAFKA_PORT`, `DDAS_PG_PORT` and `DDAS_RUN_DIR` as for `ddas infra`; the services'
ports are free ones unless `DDAS_<SERVICE>_HTTP_PORT` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Final

import click

SERVICES: Final = ("ingest", "validate", "report", "publish")
KVK: Final = "90000001"  # the demo organisation
LEVERANCIER: Final = "DEMO"
PERIODE: Final = ("2025-01-01", "2025-06-30")


class DemoError(Exception):
    """Something the demo needs failed; the message says what and where to look."""


@dataclass
class Service:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Postbus:
    """The demo's mail server (aiosmtpd on a free local port): every e-mail the services send,
    kept to be printed."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.mails: list[tuple[list[str], EmailMessage]] = []
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=_free_port())

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.mails.append((list(envelope.rcpt_tos), message))
        return "250 OK"

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def mails_so_far(self) -> list[tuple[list[str], EmailMessage]]:
        """(recipients, message) of every e-mail received, in order."""
        with self._lock:
            return list(self.mails)


@dataclass
class Demo:
    run_dir: Path
    env: dict[str, str]
    services: dict[str, Service] = field(default_factory=dict)
    started_infra: list[str] = field(default_factory=list)
    smtp_port: int = 25

    # -- processes --------------------------------------------------------------------------

    def start_services(self, key: str) -> None:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_"))}
        base |= self.env | {"DDAS_PSEUDONYM_KEY": key, "PYTHONUNBUFFERED": "1"}
        for name in SERVICES:
            var = f"DDAS_{name.upper()}_HTTP_PORT"
            port = int(os.environ.get(var) or _free_port())
            log = self.run_dir / f"{name}.log"
            service = Service(name, port, log)
            env = base | {
                var: str(port),
                # report and publish send the notifications, to the demo's mail server
                "DDAS_NOTIFY_SMTP_HOST": "127.0.0.1",
                "DDAS_NOTIFY_SMTP_PORT": str(self.smtp_port),
                "DDAS_NOTIFY_POLL_S": "0.2",
            }
            if name in ("report", "publish"):
                env[f"DDAS_{name.upper()}_BASE_URL"] = service.url
            with log.open("ab") as out:
                service.proc = subprocess.Popen(
                    [sys.executable, "-m", f"services.{name}"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Ctrl-C reaches the demo, which stops them in order
                )
            self.services[name] = service

    def wait_ready(self, timeout: float = 180.0) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        for service in self.services.values():
            while True:
                assert service.proc is not None
                if service.proc.poll() is not None:
                    raise DemoError(
                        f"{service.name} stopte meteen (exit {service.proc.returncode}); "
                        f"zie {service.log}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{service.url}/readyz", timeout=2).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise DemoError(f"{service.name} werd niet gereed; zie {service.log}")
                time.sleep(0.2)

    def stop(self) -> None:
        for service in reversed(self.services.values()):
            if service.proc is not None and service.proc.poll() is None:
                service.proc.send_signal(signal.SIGTERM)
        for service in self.services.values():
            if service.proc is None:
                continue
            try:
                service.proc.wait(40)
            except subprocess.TimeoutExpired:
                service.proc.kill()
                service.proc.wait(10)
        if self.started_infra:
            from ddas import infra

            infra.down(only=tuple(self.started_infra))  # type: ignore[arg-type]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _say(text: str = "") -> None:
    click.echo(text)


def _pseudonym_key(run_dir: Path) -> str:
    """DDAS_PSEUDONYM_KEY, else the demo's own key (made once, kept beside its logs: pseudonyms
    stay comparable across runs on one database)."""
    if os.environ.get("DDAS_PSEUDONYM_KEY"):
        return os.environ["DDAS_PSEUDONYM_KEY"]
    path = run_dir / "pseudonym.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _database(url: str, action: Callable[[Any], Any]) -> Any:
    from ddas.cli._db import on_database

    return asyncio.run(on_database(action, url))


def _generate(path: Path, trajecten: int, seed: int) -> bytes:
    import io
    from datetime import date

    import orjson

    from ddas.generate import Options, generate

    out = io.BytesIO()
    generate(
        out,
        Options(
            trajecten=trajecten,
            seed=seed,
            fouten=0.01,
            periode=(date.fromisoformat(PERIODE[0]), date.fromisoformat(PERIODE[1])),
            gemeenten=4,
        ),
    )
    doc = orjson.loads(out.getvalue())
    for lev in doc["leveringen"]:  # always the same organisation: a new run supersedes
        lev["aanleverende_organisatie"]["KvK-nummer"] = KVK
        lev["aanleverende_organisatie"].pop("gemeentecode", None)
    raw = orjson.dumps(doc)
    path.write_bytes(raw)
    return raw


def _wait_state(
    url: str, token: str, levering_id: str, wanted: tuple[str, ...], timeout: float = 300
) -> str:
    import httpx

    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{url}/v1/leveringen/{levering_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        r.raise_for_status()
        state = str(r.json()["state"])
        if state != seen:
            _say(f"  toestand: {state}")
            seen = state
        if state in wanted:
            return state
        time.sleep(0.3)
    raise DemoError(f"de levering bleef {seen}; zie de logs in de demo-map")


_STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupted(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _bedrag(n: int) -> str:
    return f"EUR {n:,}".replace(",", ".")


def run(trajecten: int, seed: int | None, wait: bool) -> None:
    import httpx

    from ddas import infra
    from ddas.cli._http import upload
    from ddas.cli.stats import render
    from ddas.registry import add_organisation_token, add_supplier

    cfg = infra.InfraConfig()
    assert cfg.run_dir is not None
    run_dir = cfg.run_dir / "demo"
    run_dir.mkdir(parents=True, exist_ok=True)
    _say("Kafka en PostgreSQL starten (de eerste keer haalt Maven de Kafka-jars op)...")
    before = infra.status(cfg)
    # SIGTERM and SIGHUP (a closed terminal, `timeout`, `kill`) stop the demo as Ctrl-C does:
    # what it started is stopped, not left running on its ports.
    for s in _STOP_SIGNALS[1:]:
        signal.signal(s, _interrupted)
    postbus = Postbus()
    postbus.controller.start()
    demo = Demo(run_dir, {}, smtp_port=postbus.port)
    # what was not running before is the demo's to stop (also when Ctrl-C comes during `up`)
    demo.started_infra = [n for n, s in (("kafka", before.kafka), ("postgres", before.postgres))
                          if s is None or not s.running]  # fmt: skip
    try:
        state = infra.up(cfg)
        assert state.kafka is not None and state.postgres is not None
        demo.env = state.env
        database_url = state.postgres.database_url
        tokens = _database(
            database_url,
            lambda conn: _tokens(conn, add_supplier, add_organisation_token),
        )
        _say(f"  Kafka {state.kafka.bootstrap_servers}, PostgreSQL {database_url}")
        _say("De vier diensten starten (logs in " + str(run_dir) + ")...")
        demo.start_services(_pseudonym_key(run_dir))
        demo.wait_ready()
        ingest, report, publish = (demo.services[n].url for n in ("ingest", "report", "publish"))
        for service in demo.services.values():
            _say(f"  {service.name:<9} {service.url}")

        seed = seed if seed is not None else int(time.time())
        path = run_dir / f"levering-{seed}.json"
        raw = _generate(path, trajecten, seed)
        _say(f"Levering gemaakt: {trajecten} trajecten, seed {seed} ({path})")
        content, length = upload(raw)
        r = httpx.post(
            f"{ingest}/v1/leveringen",
            content=content,
            headers={
                "Authorization": f"Bearer {tokens['leverancier']}",
                "Content-Type": "application/json",
                **length,
            },
            timeout=120,
        )
        if r.status_code not in (200, 202):
            raise DemoError(f"aanbieden mislukt: HTTP {r.status_code} {r.text[:300]}")
        levering_id = r.json()["id"]
        _say(f"Aangeboden als leverancier {LEVERANCIER}: levering {levering_id}")
        _wait_state(ingest, tokens["leverancier"], levering_id, ("rapport_gereed",))

        rapport_url = f"{report}/v1/leveringen/{levering_id}/rapport"
        r = httpx.get(
            rapport_url, headers={"Authorization": f"Bearer {tokens['organisatie']}"}, timeout=60
        )
        r.raise_for_status()
        oor = r.json()
        v, t, tot = oor["validatie"], oor["tabellen"]["totaal"], oor["totaal"]
        _say("Op-orde-rapport:")
        _say(
            f"  uitkomst {v['uitkomst']}, op orde: {'ja' if v['op_orde'] else 'nee'} "
            f"({v['fouten']} fouten, {v['waarschuwingen']} waarschuwingen)"
        )
        _say(
            f"  {t['trajecten']} trajecten, {t['unieke_bsn']} unieke cliënten, "
            f"{t['unieke_actieve_bsn']} actief in de periode, instroom {tot['instroom']['clienten']}"
        )
        _say(f"  totale schuld van actieve trajecten: {_bedrag(tot['schulden']['totaal_bedrag'])}")
        _say(f"  rapport: {rapport_url}?formaat=html   (token van de organisatie)")

        r = httpx.post(
            f"{publish}/v1/leveringen/{levering_id}/goedkeuring",
            headers={"Authorization": f"Bearer {tokens['organisatie']}"},
            json={"reden": "demo"},
            timeout=30,
        )
        if r.status_code != 200:
            raise DemoError(f"goedkeuren mislukt: HTTP {r.status_code} {r.text[:300]}")
        _say(f"Goedgekeurd als organisatie {KVK}: {r.json()['state']}")
        final = _wait_state(ingest, tokens["organisatie"], levering_id, ("gepubliceerd",))
        _say(f"Toestand: {final}")
        vervangen = _database(database_url, lambda conn: _replaced(conn, levering_id))
        for oud in vervangen:
            _say(
                f"  vervangt de cijfers van de eerdere levering {oud} (zelfde organisatie en periode)"
            )

        periode = "/".join(PERIODE)
        r = httpx.get(f"{publish}/v1/statistieken", params={"periode": periode}, timeout=30)
        r.raise_for_status()
        _say("Gepubliceerde statistieken (beveiligd):")
        _say(render(r.json()))
        _say(f"  {publish}/v1/statistieken?periode={periode}   (&formaat=csv)")
        deadline = time.monotonic() + 60  # the notifications of the delivery: all sent
        while _database(database_url, lambda conn: _waiting(conn, levering_id)):
            if time.monotonic() > deadline:
                raise DemoError("de e-mails bleven in de wachtrij; zie report.log en publish.log")
            time.sleep(0.2)
        mails = postbus.mails_so_far()
        mail_dir = run_dir / "mail"
        mail_dir.mkdir(exist_ok=True)
        _say(f"E-mails van de diensten (de mailserver van de demo ving ze op; in {mail_dir}):")
        for n, (aan, mail) in enumerate(mails, 1):
            (mail_dir / f"{levering_id}-{n}.eml").write_bytes(mail.as_bytes())
            _say(f"  aan {', '.join(aan)}: {mail['Subject']}")
        _say("")
        _say(f"Token leverancier:  {tokens['leverancier']}")
        _say(f"Token organisatie:  {tokens['organisatie']}")
        _say(f"  .venv/bin/ddas status {levering_id} --url {ingest} --token <token>")
        _say(f"  .venv/bin/ddas stats --periode {periode} --url {publish}")
        if wait:
            _say("Alles draait. Ctrl-C stopt alles wat de demo startte.")
            while all(s.proc is not None and s.proc.poll() is None for s in demo.services.values()):
                time.sleep(0.5)
            raise DemoError("een dienst stopte onverwacht; zie de logs in " + str(run_dir))
    finally:
        _say("Stoppen...")
        # a second Ctrl-C or SIGTERM: still stop
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in _STOP_SIGNALS}
        try:
            demo.stop()
        finally:
            postbus.controller.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
        _say("Gestopt.")


async def _tokens(conn: Any, add_supplier: Any, add_organisation_token: Any) -> dict[str, str]:
    return {
        "leverancier": await add_supplier(conn, LEVERANCIER, "Demo-leverancier", [KVK]),
        "organisatie": await add_organisation_token(conn, KVK, omschrijving="demo"),
    }


async def _waiting(conn: Any, levering_id: str) -> int:
    """The delivery's notifications not sent yet (nor given up on)."""
    import uuid

    n: int = await conn.fetchval(
        "SELECT count(*) FROM notificaties WHERE levering_id = $1 AND status = 'wachtend'",
        uuid.UUID(levering_id),
    )
    return n


async def _replaced(conn: Any, levering_id: str) -> list[str]:
    import uuid

    rows = await conn.fetch(
        "SELECT DISTINCT levering_id FROM publicatie_bijdragen WHERE vervangen_door = $1",
        uuid.UUID(levering_id),
    )
    return [str(r["levering_id"]) for r in rows]


@click.command(name="demo")
@click.option("--trajecten", default=2000, show_default=True, help="Size of the delivery.")
@click.option(
    "--seed", type=int, default=None, help="Seed of the delivery (default: new each run)."
)
@click.option("--stop", "stop_at_end", is_flag=True, help="Stop at once instead of at Ctrl-C.")
def command(trajecten: int, seed: int | None, stop_at_end: bool) -> None:
    """Run the whole pipeline end to end on this machine (see `make demo`)."""
    from ddas.infra import InfraError

    try:
        run(trajecten, seed, wait=not stop_at_end)
    except KeyboardInterrupt:
        click.echo("ddas demo: onderbroken; alles wat de demo startte is gestopt", err=True)
    except (DemoError, InfraError) as exc:
        click.echo(f"ddas demo: {exc}", err=True)
        sys.exit(1)
