"""Collection runs: one endpoint, one period, page by page, into one delivery.

`Collector.collect(endpoint, periode)`:

1. takes a PostgreSQL advisory lock for the endpoint (one collector at a time per endpoint,
   whether the service's scheduler or `ddas collect now`; a killed process drops it with its
   connection);
2. resumes the endpoint's unfinished run for the period (`bezig` after a crash, `onderbroken`
   after the endpoint stayed away), or starts one;
3. fetches the pages not yet stored (client.PullClient: token, retries, Digest and signature
   verified) and stores each verified page, encrypted (AES-256-GCM under a key derived from the
   pseudonym key, the run and page number as associated data), with the run's progress, in one
   transaction: a crash loses at most the page in hand;
4. puts the pages together (ddas.supplier_api.pages.assemble: the same data gives the same
   bytes) and hands the delivery to `Intake.submit(raw, principal, "pull")`, the way in that
   pushed deliveries take (same idempotency: the same bytes from the same supplier are one
   delivery), as the configured supplier with its rights from the registry;
5. ends the run `voltooid` and deletes its pages; the endpoint is healthy again.

A refused page (digest, signature, certificate, not a page), a refused request (an FSC error, a
problem document) or a delivery intake refuses ends the run `mislukt`: its pages are deleted,
nothing is submitted, and the reason's code is logged at ERROR, stored and counted. An endpoint
that stayed unreachable through the retries leaves the run `onderbroken` (pages kept). Either
way the endpoint's consecutive failures grow: from `unhealthy_after` on it is unhealthy (status
and metric), and the scheduler tries it again after a doubling wait (`retry_s` .. `retry_max_s`)
without holding up the other endpoints.

`Collector.run_forever(stop)` is the scheduler: every `interval_s` it starts, per endpoint in a
task of its own, the run of the endpoint's last completed period (halfjaar by default) unless
that period is collected already or the endpoint waits for its next attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ddas.api import Refused
from ddas.registry import Principal
from ddas.supplier_api.pages import PageError, assemble, read_page
from ddas.supplier_api.signing import TrustStore

from ..intake import Intake
from . import metrics
from .client import CollectError, PullClient
from .config import CollectorConfig, ConfigError, Endpoint, Periode

__all__ = ["Collector", "EndpointStatus", "Outcome", "status"]

log = logging.getLogger("services.ingest.collect")

_LOCK_NAMESPACE: Final = 0x0DDA6  # pg_advisory_lock(namespace, hashtext(endpoint))
_PAGE_KEY_INFO: Final = b"ddas-collector-pages-v1"


@dataclass(frozen=True, slots=True)
class Outcome:
    endpoint: str
    periode: Periode
    state: str  # voltooid | mislukt | onderbroken | bezig-elders
    run_id: uuid.UUID | None = None
    pages_done: int = 0
    pages_total: int | None = None
    records: int | None = None
    levering_id: uuid.UUID | None = None
    nieuw: bool | None = None
    reden: str | None = None
    detail: str | None = None


class Collector:
    def __init__(
        self,
        pool: asyncpg.Pool,
        intake: Intake,
        config: CollectorConfig,
        key: bytes,
        *,
        today: Callable[[], dt.date] = dt.date.today,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.pool = pool
        self.intake = intake
        self.config = config
        self._aead = AESGCM(hmac.new(key, _PAGE_KEY_INFO, hashlib.sha256).digest())
        self.today = today
        self._sleep = sleep
        for endpoint in config.endpoints:
            metrics.HEALTHY.labels(endpoint.name).set(1)

    def endpoint(self, name_or_supplier: str) -> list[Endpoint]:
        return [e for e in self.config.endpoints if name_or_supplier in (e.name, e.supplier)]

    def periode_for(self, endpoint: Endpoint) -> Periode:
        return Periode.last_completed(endpoint.period or self.config.period, self.today())

    # -- one run ----------------------------------------------------------------------------

    async def collect(self, endpoint: Endpoint, periode: Periode | None = None) -> Outcome:
        """Collect (or resume collecting) one period from one endpoint; never raises for what
        the endpoint or its data does: the outcome says how it ended."""
        periode = periode or self.periode_for(endpoint)
        async with self.pool.acquire() as lock:
            got = await lock.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", _LOCK_NAMESPACE, endpoint.name
            )
            if not got:
                log.info("collect %s: al bezig in een ander proces", endpoint.name)
                return Outcome(endpoint.name, periode, "bezig-elders")
            try:
                return await self._collect(endpoint, periode)
            finally:
                await lock.execute(
                    "SELECT pg_advisory_unlock($1, hashtext($2))", _LOCK_NAMESPACE, endpoint.name
                )

    async def _collect(self, endpoint: Endpoint, periode: Periode) -> Outcome:
        name = endpoint.name
        run = await self.pool.fetchrow(
            "SELECT * FROM collect_runs WHERE endpoint = $1 AND periode_start = $2 "
            "AND periode_eind = $3 AND state IN ('bezig', 'onderbroken')",
            name,
            periode.start,
            periode.eind,
        )
        if run is None:
            run_id = uuid.uuid4()
            page_size = endpoint.page_size or self.config.page_size
            await self.pool.execute(
                "INSERT INTO collect_runs (id, endpoint, leverancier, periode_start, "
                "periode_eind, page_size) VALUES ($1, $2, $3, $4, $5, $6)",
                run_id, name, endpoint.supplier, periode.start, periode.eind, page_size,
            )  # fmt: skip
            total, records_total, done = None, None, 0
            log.info("collect %s: run %s voor %s gestart (pageSize %d)", name, run_id, periode,
                     page_size)  # fmt: skip
        else:
            run_id, page_size = run["id"], run["page_size"]
            total, records_total = run["pages_total"], run["records_total"]
            done = await self.pool.fetchval(
                "SELECT count(*) FROM collect_pages WHERE run_id = $1", run_id
            )
            await self.pool.execute(
                "UPDATE collect_runs SET state = 'bezig', bijgewerkt_op = now() WHERE id = $1",
                run_id,
            )
            log.info("collect %s: run %s voor %s hervat bij pagina %d", name, run_id, periode,
                     done + 1)  # fmt: skip
        client: PullClient | None = None
        try:
            principal = await self._principal(endpoint.supplier)
            client = PullClient(endpoint, self.config, self._trust(endpoint), sleep=self._sleep)
            number = done + 1
            while total is None or number <= total:
                page, body, page_digest = await client.page(periode, number, page_size)
                if total is None:
                    total, records_total = page.total_pages, page.total_records
                elif page.total_pages != total:
                    raise CollectError(
                        "paginering-onjuist",
                        f"pagina {number} noemt {page.total_pages} pagina's, eerder {total}.",
                    )
                await self._store_page(run_id, number, body, page_digest, page.records,
                                       total, records_total)  # fmt: skip
                metrics.PAGES.labels(name).inc()
                log.info("collect %s: pagina %d van %d opgehaald en geverifieerd (%d trajecten)",
                         name, number, total, page.records)  # fmt: skip
                number += 1
            raw, records = await self._assemble(run_id)
            accepted = await self.intake.submit(raw, principal, "pull")
        except CollectError as exc:
            return await self._failed(endpoint, periode, run_id, exc.code, exc.detail,
                                      keep=exc.transient)  # fmt: skip
        except PageError as exc:
            return await self._failed(endpoint, periode, run_id, exc.code, exc.detail)
        except Refused as exc:
            return await self._failed(endpoint, periode, run_id, f"ingest-{exc.slug}",
                                      f"De verzamelde levering is geweigerd: {exc.detail}")  # fmt: skip
        finally:
            if client is not None:
                await client.aclose()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE collect_runs SET state = 'voltooid', levering_id = $2, "
                "records_total = $3, reden = NULL, detail = NULL, geeindigd_op = now(), "
                "bijgewerkt_op = now() WHERE id = $1",
                run_id, accepted.levering_id, records,
            )  # fmt: skip
            await conn.execute("DELETE FROM collect_pages WHERE run_id = $1", run_id)
            await self._health(conn, endpoint, None)
        metrics.RUNS.labels(name, "voltooid").inc()
        log.info(
            "collect %s: run %s voltooid: %d pagina's, %d trajecten, levering %s (%s)",
            name, run_id, total, records, accepted.levering_id,
            "nieuw" if accepted.nieuw else "al ontvangen",
        )  # fmt: skip
        return Outcome(name, periode, "voltooid", run_id, total or 0, total, records,
                       accepted.levering_id, accepted.nieuw)  # fmt: skip

    async def _failed(
        self,
        endpoint: Endpoint,
        periode: Periode,
        run_id: uuid.UUID,
        code: str,
        detail: str,
        *,
        keep: bool = False,
    ) -> Outcome:
        state = "onderbroken" if keep else "mislukt"
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "UPDATE collect_runs SET state = $2, reden = $3, detail = $4, bijgewerkt_op = now(), "
                "geeindigd_op = CASE WHEN $2 = 'mislukt' THEN now() END WHERE id = $1 "
                "RETURNING pages_done, pages_total",
                run_id, state, code, detail,
            )  # fmt: skip
            if not keep:
                await conn.execute("DELETE FROM collect_pages WHERE run_id = $1", run_id)
            await self._health(conn, endpoint, code)
        metrics.RUNS.labels(endpoint.name, state).inc()
        metrics.FAILURES.labels(endpoint.name, code).inc()
        if keep:
            log.error("collect %s: run %s onderbroken (%s): %s; de %d opgehaalde pagina's "
                      "blijven bewaard en de volgende poging gaat verder", endpoint.name, run_id,
                      code, detail, row["pages_done"])  # fmt: skip
        else:
            log.error("collect %s: run %s MISLUKT (%s): %s; niets van deze run is ingelezen",
                      endpoint.name, run_id, code, detail)  # fmt: skip
        return Outcome(endpoint.name, periode, state, run_id, row["pages_done"],
                       row["pages_total"], reden=code, detail=detail)  # fmt: skip

    async def _health(self, conn: asyncpg.Connection, endpoint: Endpoint, code: str | None) -> None:
        c = self.config
        if code is None:
            await conn.execute(
                "INSERT INTO collect_endpoints (endpoint, leverancier, gezond, "
                "opeenvolgende_fouten, laatste_succes) VALUES ($1, $2, true, 0, now()) "
                "ON CONFLICT (endpoint) DO UPDATE SET leverancier = EXCLUDED.leverancier, "
                "gezond = true, opeenvolgende_fouten = 0, laatste_succes = now(), "
                "volgende_poging = NULL",
                endpoint.name, endpoint.supplier,
            )  # fmt: skip
            metrics.HEALTHY.labels(endpoint.name).set(1)
            metrics.CONSECUTIVE_FAILURES.labels(endpoint.name).set(0)
            return
        before = await conn.fetchval(
            "SELECT opeenvolgende_fouten FROM collect_endpoints WHERE endpoint = $1 FOR UPDATE",
            endpoint.name,
        )
        fouten = (before or 0) + 1
        gezond = fouten < c.unhealthy_after
        wait = min(c.retry_s * 2 ** (fouten - 1), c.retry_max_s)
        await conn.execute(
            "INSERT INTO collect_endpoints (endpoint, leverancier, gezond, opeenvolgende_fouten, "
            "laatste_fout, laatste_reden, volgende_poging) "
            "VALUES ($1, $2, $3, $4, now(), $5, now() + make_interval(secs => $6)) "
            "ON CONFLICT (endpoint) DO UPDATE SET leverancier = EXCLUDED.leverancier, "
            "gezond = EXCLUDED.gezond, opeenvolgende_fouten = EXCLUDED.opeenvolgende_fouten, "
            "laatste_fout = now(), laatste_reden = EXCLUDED.laatste_reden, "
            "volgende_poging = EXCLUDED.volgende_poging",
            endpoint.name, endpoint.supplier, gezond, fouten, code, wait,
        )  # fmt: skip
        metrics.HEALTHY.labels(endpoint.name).set(1 if gezond else 0)
        metrics.CONSECUTIVE_FAILURES.labels(endpoint.name).set(fouten)
        if not gezond:
            log.error("collect %s: endpoint ONGEZOND na %d mislukte runs op rij (laatste: %s); "
                      "volgende poging over %.0f s", endpoint.name, fouten, code, wait)  # fmt: skip

    # -- pieces -------------------------------------------------------------------------------

    async def _principal(self, code: str) -> Principal:
        rows = await self.pool.fetch(
            "SELECT l.code, r.organisatie FROM leveranciers l "
            "LEFT JOIN leverancier_rechten r ON r.leverancier = l.code WHERE l.code = $1",
            code,
        )
        if not rows:
            raise CollectError(
                "leverancier-onbekend",
                f"Leverancier {code!r} staat niet in het register (ddas supplier add).",
            )
        rechten = frozenset(r["organisatie"] for r in rows if r["organisatie"] is not None)
        return Principal("leverancier", code, rechten)

    def _trust(self, endpoint: Endpoint) -> TrustStore:
        try:
            path = self.config.trust_store_for(endpoint)
            with open(path, "rb") as f:
                return TrustStore.from_pem(f.read())
        except ConfigError as exc:
            raise CollectError("trust-store-ontbreekt", str(exc)) from None
        except (OSError, ValueError) as exc:
            raise CollectError("trust-store-onbruikbaar", f"trust store: {exc}") from None

    def _aad(self, run_id: uuid.UUID, page: int) -> bytes:
        return f"{run_id}:{page}".encode()

    async def _store_page(
        self,
        run_id: uuid.UUID,
        page: int,
        body: bytes,
        page_digest: str,
        records: int,
        total: int,
        records_total: int | None,
    ) -> None:
        nonce = os.urandom(12)
        ciphertext = await asyncio.to_thread(
            self._aead.encrypt, nonce, body, self._aad(run_id, page)
        )
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO collect_pages (run_id, page, nonce, ciphertext, digest, records) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                run_id, page, nonce, ciphertext, page_digest, records,
            )  # fmt: skip
            await conn.execute(
                "UPDATE collect_runs SET pages_done = $2, pages_total = $3, records_total = $4, "
                "bijgewerkt_op = now() WHERE id = $1",
                run_id, page, total, records_total,
            )  # fmt: skip

    async def _assemble(self, run_id: uuid.UUID) -> tuple[bytes, int]:
        rows = await self.pool.fetch(
            "SELECT page, nonce, ciphertext FROM collect_pages WHERE run_id = $1 ORDER BY page",
            run_id,
        )

        def work() -> tuple[bytes, int]:
            pages = []
            for row in rows:
                try:
                    body = self._aead.decrypt(
                        row["nonce"], row["ciphertext"], self._aad(run_id, row["page"])
                    )
                except InvalidTag:
                    raise CollectError(
                        "paginas-onleesbaar",
                        f"Opgeslagen pagina {row['page']} is niet te ontsleutelen (een andere "
                        "sleutel?); de run begint opnieuw.",
                    ) from None
                pages.append(read_page(body, row["page"]))
            assembled = assemble(pages)
            return assembled.raw, assembled.records

        return await asyncio.to_thread(work)

    # -- the schedule ---------------------------------------------------------------------------

    async def due(self) -> list[tuple[Endpoint, Periode]]:
        """The endpoints whose last completed period is not collected yet and that do not wait
        for their next attempt."""
        out = []
        for endpoint in self.config.endpoints:
            periode = self.periode_for(endpoint)
            row = await self.pool.fetchrow(
                "SELECT EXISTS (SELECT 1 FROM collect_runs WHERE endpoint = $1 AND "
                "periode_start = $2 AND periode_eind = $3 AND state = 'voltooid') AS klaar, "
                "(SELECT volgende_poging > now() FROM collect_endpoints WHERE endpoint = $1) "
                "AS wacht",
                endpoint.name, periode.start, periode.eind,
            )  # fmt: skip
            if not row["klaar"] and not row["wacht"]:
                out.append((endpoint, periode))
        return out

    async def run_forever(self, stop: asyncio.Event) -> None:
        tasks: dict[str, asyncio.Task[Outcome | None]] = {}
        with contextlib.suppress(OSError, asyncpg.PostgresError):  # the health as last recorded
            for row in await self.pool.fetch(
                "SELECT endpoint, gezond, opeenvolgende_fouten FROM collect_endpoints"
            ):
                metrics.HEALTHY.labels(row["endpoint"]).set(1 if row["gezond"] else 0)
                metrics.CONSECUTIVE_FAILURES.labels(row["endpoint"]).set(
                    row["opeenvolgende_fouten"]
                )
        log.info("collect: schema actief voor %d endpoint(s), elke %.0f s",
                 len(self.config.endpoints), self.config.interval_s)  # fmt: skip
        try:
            while not stop.is_set():
                try:
                    for endpoint, periode in await self.due():
                        running = tasks.get(endpoint.name)
                        if running is None or running.done():
                            tasks[endpoint.name] = asyncio.create_task(
                                self._scheduled(endpoint, periode),
                                name=f"ddas-collect-{endpoint.name}",
                            )
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("collect: schema niet bekeken: %s", type(exc).__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.config.interval_s)
        finally:
            for task in tasks.values():
                task.cancel()
            for task in tasks.values():
                with contextlib.suppress(BaseException):
                    await task

    async def _scheduled(self, endpoint: Endpoint, periode: Periode) -> Outcome | None:
        try:
            return await self.collect(endpoint, periode)
        except (OSError, asyncpg.PostgresError) as exc:
            log.error("collect %s: run afgebroken: %s", endpoint.name, type(exc).__name__)
            return None


# -- status (ddas collect status) ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EndpointStatus:
    endpoint: str
    leverancier: str
    gezond: bool
    opeenvolgende_fouten: int
    laatste_reden: str | None
    volgende_poging: dt.datetime | None
    run: dict[str, Any] | None  # the latest run


async def status(
    conn: asyncpg.Connection | asyncpg.Pool, config: CollectorConfig
) -> list[EndpointStatus]:
    out = []
    for endpoint in config.endpoints:
        health = await conn.fetchrow(
            "SELECT * FROM collect_endpoints WHERE endpoint = $1", endpoint.name
        )
        run = await conn.fetchrow(
            "SELECT id, periode_start, periode_eind, state, pages_done, pages_total, "
            "records_total, levering_id, reden, detail, gestart_op, geeindigd_op "
            "FROM collect_runs WHERE endpoint = $1 ORDER BY gestart_op DESC LIMIT 1",
            endpoint.name,
        )
        out.append(
            EndpointStatus(
                endpoint.name,
                endpoint.supplier,
                health["gezond"] if health else True,
                health["opeenvolgende_fouten"] if health else 0,
                health["laatste_reden"] if health else None,
                health["volgende_poging"] if health else None,
                dict(run) if run else None,
            )
        )
    return out
