"""Taking a delivery in: limits, parsing, authorisation, idempotency, the privacy edge, chunks.

`Intake.submit(raw, principal, via)` is the one way in for both HTTP and Kafka:

1. **limits**: at most `max_bytes` bytes (413), `max_trajecten` trajectories (413) and
   `max_depth` levels of JSON nesting (400);
2. **idempotency**: the content hash is SHA-256 over the raw bytes; the same bytes from the same
   supplier are the same delivery, whose id is returned again (`nieuw=False`), also when two
   submissions race (the unique index decides);
3. **parsing** (`ddas.domain.reader`, as `ddas check`): bytes that are not JSON, or JSON that is
   not a DDAS document (not an object, none of the root members, no leveringen, a levering that
   is not an object), are refused with the reason (400);
4. **authorisation**: every levering's `aanleverende_organisatie` must have a KvK-nummer or
   gemeentecode the supplier has a right for (403);
5. **the privacy edge** (`ddas.domain.pseudonym`): every part is pseudonymised; the raw document
   never leaves this process's memory. The contact persons' e-mail addresses are kept, with the
   delivery, for the notifications;
6. **one transaction**: the delivery row (`ontvangen`), its organisations and contacts, its chunks
   in the outbox (COPY) and an audit row. A crash before the commit leaves nothing; after it, the
   relay publishes every chunk (at least once; validate is idempotent per chunk).

Chunks (`ddas.pipeline.events.Chunk`): at most `chunk_size` trajectories of one levering each, a
levering without trajectories one chunk of its own; keyed `<levering_id>:<chunk>` so that a
large delivery spreads over the partitions.

The CPU-bound part (parsing, pseudonymising, encoding: about 4.7 s of CPU for 200,000
trajectories) runs in a worker thread, at most `parallel` at a time, so that the event loop keeps
answering. For a large delivery, that thread hands the chunks to worker processes forked at
start-up (`start_workers`) and waits for them in order.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import multiprocessing
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import asyncpg
import msgspec

from ddas.api import Refused
from ddas.audit import audit
from ddas.domain import gemeenten
from ddas.domain.pseudonym import Pseudonymiser, contact_emails, placeholder
from ddas.domain.reader import (
    ABSENT,
    ArrayShape,
    Document,
    LeveringHeader,
    UnreadableFile,
    decode_value,
    parse_document,
)
from ddas.domain.schema import SchemaCheck
from ddas.domain.schema.formats import is_date
from ddas.outbox import OutboxMessage, enqueue_many
from ddas.pipeline.events import Chunk, chunk_key, encode
from ddas.registry import Principal

log = logging.getLogger("services.ingest")

__all__ = ["Accepted", "Intake", "Limits", "prepare"]

ROOT_MEMBERS: Final = frozenset(
    {
        "startdatumLevering",
        "einddatumLevering",
        "aanleverdatumEnTijd",
        "codeGegevensleverancier",
        "leveringen",
    }
)


def too_large(limit: int) -> Refused:
    return Refused(
        413,
        "te-groot",
        "Levering te groot",
        f"De levering is groter dan {limit} bytes; lever in delen of neem contact op.",
    )


@dataclass(frozen=True, slots=True)
class Limits:
    max_bytes: int = 256 * 1024 * 1024
    max_depth: int = 32
    max_trajecten: int = 500_000
    chunk_size: int = 2_000


@dataclass(frozen=True, slots=True)
class Accepted:
    levering_id: uuid.UUID
    nieuw: bool
    state: str
    trajecten: int | None = None
    chunks: int | None = None


@dataclass(slots=True)
class Prepared:
    """What the CPU-bound part hands to the transaction; no raw personal value in it."""

    levering_id: uuid.UUID
    organisatie: str
    organisaties: list[str]
    code_gegevensleverancier: str
    periode: tuple[date | None, date | None]
    trajecten: int
    messages: list[OutboxMessage] = field(default_factory=list)
    contacten: list[tuple[int, str]] = field(default_factory=list)  # (levering index, e-mail)


# -- the CPU-bound part ---------------------------------------------------------------------


def prepare(
    raw: bytes,
    principal: Principal,
    limits: Limits,
    pseudonymiser: Pseudonymiser,
    levering_id: uuid.UUID,
    chunk_topic: str,
    workers: Executor | None = None,
    workers_min_trajecten: int = 20_000,
) -> Prepared:
    """Parse, check the limits, authorise, pseudonymise and chunk. Raises Refused.

    With `workers`, a delivery of at least `workers_min_trajecten` trajectories has its chunks
    made in those worker processes (a small one is done sooner in this thread)."""
    if len(raw) > limits.max_bytes:
        raise too_large(limits.max_bytes)
    try:
        document = parse_document(raw)
    except UnreadableFile as exc:
        raise Refused(400, "geen-json", "Geen leesbaar DDAS-bestand", exc.reason) from None
    except RecursionError:
        raise _te_diep(limits.max_depth) from None
    root = document.header.data
    if document.header.leveringen is ABSENT and not ROOT_MEMBERS & root.keys():
        raise Refused(
            400,
            "geen-ddas",
            "Geen DDAS-document",
            "Het JSON-object heeft geen van de onderdelen van een DDAS-levering "
            "(startdatumLevering, einddatumLevering, aanleverdatumEnTijd, "
            "codeGegevensleverancier, leveringen).",
        )
    if not isinstance(document.header.leveringen, ArrayShape) or not document.leveringen:
        raise Refused(
            400,
            "geen-leveringen",
            "Geen leveringen",
            "Het document heeft geen (niet-lege) lijst 'leveringen'; een DDAS-levering bevat "
            "ten minste één levering met zijn aanleverende organisatie.",
        )
    if document.traject_count > limits.max_trajecten:
        raise Refused(
            413,
            "te-veel-trajecten",
            "Te veel trajecten",
            f"De levering bevat {document.traject_count} trajecten; het maximum is "
            f"{limits.max_trajecten}. Lever in delen.",
        )
    if _deeper(root, limits.max_depth - 1):
        raise _te_diep(limits.max_depth)
    organisaties, eerste = _authorise(document, principal, limits)

    code = root.get("codeGegevensleverancier")
    prepared = Prepared(
        levering_id=levering_id,
        organisatie=eerste,
        organisaties=organisaties,
        code_gegevensleverancier=code.strip() if type(code) is str and code.strip() else "",
        periode=(_date(root.get("startdatumLevering")), _date(root.get("einddatumLevering"))),
        trajecten=document.traject_count,
    )
    for header in document.leveringen:
        prepared.contacten.extend(
            (header.index, email) for email in dict.fromkeys(contact_emails(header.data))
        )
    if document.traject_count < workers_min_trajecten:
        workers = None
    prepared.messages = list(
        _chunks(document, pseudonymiser, limits, str(levering_id), chunk_topic, workers)
    )
    return prepared


def _te_diep(limit: int) -> Refused:
    return Refused(
        400,
        "te-diep",
        "Te diep genest",
        f"De JSON is dieper genest dan {limit} niveaus; een DDAS-levering heeft er hooguit 7.",
    )


def _date(value: Any) -> date | None:
    if type(value) is not str or not is_date(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:  # year 0000: a valid date to the schema, not to Python
        return None


def _deeper(value: Any, limit: int) -> bool:
    """Whether a decoded value nests containers deeper than `limit` (iteratively)."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if type(v) is dict:
            children = v.values()
        elif type(v) is list:
            children = v  # type: ignore[assignment]
        else:
            continue
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if type(c) in (dict, list))
    return False


def _organisation_keys(levering: dict[str, Any]) -> list[str]:
    """The keys a levering's organisation is known by: its KvK-nummer and its (normalised)
    gemeentecode, as far as present and well-formed."""
    org = levering.get("aanleverende_organisatie")
    if type(org) is not dict:
        return []
    keys = []
    kvk = org.get("KvK-nummer")
    if type(kvk) is str and len(kvk.strip()) == 8 and kvk.strip().isdigit():
        keys.append(kvk.strip())
    code = org.get("gemeentecode")
    if type(code) is str and code.strip():
        norm, _ = gemeenten.normalise(code)
        if len(norm) == 4 and norm.isdigit():
            keys.append(norm)
    return keys


def _authorise(document: Document, principal: Principal, limits: Limits) -> tuple[list[str], str]:
    """Every levering's organisation must be one the supplier may deliver for. Returns all the
    organisations' keys and the first levering's organisation."""
    if not principal.is_leverancier:
        raise Refused(
            403,
            "geen-leverancier",
            "Geen leverancier",
            "Alleen een gegevensleverancier kan leveren; dit token hoort bij een organisatie.",
        )
    alle: dict[str, None] = {}
    eerste = ""
    for header in document.leveringen:
        where = f"/leveringen/{header.index}"
        if type(header.data) is not dict:
            raise Refused(
                400,
                "levering-geen-object",
                "Levering is geen object",
                f"{where} is geen JSON-object met een aanleverende organisatie.",
            )
        if _deeper(header.data, limits.max_depth - 3):
            raise _te_diep(limits.max_depth)
        keys = _organisation_keys(header.data)
        if not keys:
            raise Refused(
                403,
                "organisatie-onbekend",
                "Organisatie onbekend",
                f"{where}/aanleverende_organisatie heeft geen KvK-nummer (8 cijfers) of "
                "gemeentecode (4 cijfers): er is niet vast te stellen voor wie u levert.",
            )
        if not any(principal.may_deliver_for(k) for k in keys):
            raise Refused(
                403,
                "geen-recht",
                "Geen recht om te leveren",
                f"Leverancier {principal.code} mag niet leveren voor de organisatie van {where} "
                f"({' / '.join(keys)}).",
            )
        eerste = eerste or keys[0]
        alle.update(dict.fromkeys(keys))
    return list(alle), eerste


def _root_kop(document: Document, ps: Pseudonymiser) -> dict[str, Any]:
    root = ps.root(document.header.data)
    lev = document.header.leveringen
    if lev is not ABSENT and not (isinstance(lev, ArrayShape) and lev.length > 0):
        root["leveringen"] = [] if isinstance(lev, ArrayShape) else placeholder(lev)
    return root


def _levering_kop(header: LeveringHeader, ps: Pseudonymiser) -> Any:
    kop = ps.levering(header.data)
    trajecten = header.trajecten
    if type(kop) is dict and trajecten is not ABSENT and not isinstance(trajecten, ArrayShape):
        kop["schuldhulptrajecten"] = placeholder(trajecten)
    return kop


def _chunks(
    document: Document,
    ps: Pseudonymiser,
    limits: Limits,
    levering_id: str,
    topic: str,
    workers: Executor | None = None,
) -> Iterator[OutboxMessage]:
    """The delivery's chunks, in order: in this thread, or (`workers`) in worker processes."""
    size = limits.chunk_size
    root = _root_kop(document, ps)
    plan: list[tuple[int, Any, int, list[msgspec.Raw]]] = []  # levering, its header, eerste, raws
    for header, raws in document.raw_leveringen():
        kop = _levering_kop(header, ps)
        plan.extend((header.index, kop, eerste, raws[eerste : eerste + size])
                    for eerste in range(0, max(1, len(raws)), size))  # fmt: skip
    total = len(plan)
    max_depth = limits.max_depth - 4  # a trajectory sits at level 5
    ids = [uuid.uuid4() for _ in plan]
    jobs = (
        ((str(ids[n]), levering_id, n, total, root, index, kop, eerste), raws, max_depth)
        for n, (index, kop, eerste, raws) in enumerate(plan)
    )
    if workers is None:
        bodies: Iterator[bytes | None] = (_chunk_body(ps, *job) for job in jobs)
    else:
        bodies = _in_workers(workers, jobs)
    for nummer, body in enumerate(bodies):
        if body is None:
            raise _te_diep(limits.max_depth)
        yield OutboxMessage(
            topic,
            chunk_key(levering_id, nummer),
            body,
            {"content-type": "application/json"},
            ids[nummer],
        )


#: A chunk's event id, levering id, number, total, root, levering index, levering and eerste.
_Head = tuple[str, str, int, int, Any, int, Any, int]


def _chunk_body(
    ps: Pseudonymiser, head: _Head, raws: Sequence[msgspec.Raw], max_depth: int
) -> bytes | None:
    """One chunk's JSON: its trajectories decoded and pseudonymised. None: one nests too deep."""
    event_id, levering_id, nummer, total, root, index, levering, eerste = head
    trajecten = []
    fast_accepts = SchemaCheck.fast_accepts
    for raw in raws:
        data = decode_value(raw)
        if fast_accepts(raw):
            trajecten.append(ps.geldig_traject(data))
        else:
            if _deeper(data, max_depth):
                return None
            trajecten.append(ps.traject(data))
    return encode(
        Chunk(
            event_id=event_id,
            levering_id=levering_id,
            chunk=nummer,
            chunks=total,
            root=root,
            levering_index=index,
            levering=levering,
            eerste=eerste,
            trajecten=trajecten,
        )
    )


# -- large deliveries: the chunks in worker processes -----------------------------------------
#
# Forked once, at start-up (`start_workers`), from ingest itself: the raw trajectories go to them
# through a pipe and only the pseudonymised chunks come back, so no raw value leaves ingest's
# processes. At most two chunks per worker are in flight, so the raw bytes are not copied whole.

_worker_ps: Pseudonymiser | None = None
_RAWS: Final = msgspec.json.Decoder(list[msgspec.Raw])


def _init_worker(ps: Pseudonymiser) -> None:
    global _worker_ps
    _worker_ps = ps
    # The parent's event loop owns SIGTERM/SIGINT (through the wake-up fd a fork inherits): a
    # worker leaves them to the parent, which shuts the pool down.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _worker_chunk(head: _Head, blob: bytes, max_depth: int) -> bytes | None:
    assert _worker_ps is not None
    return _chunk_body(_worker_ps, head, _RAWS.decode(blob), max_depth)


def start_workers(ps: Pseudonymiser, n: int) -> ProcessPoolExecutor:
    """`n` worker processes forked now (call it before the service starts its threads)."""
    pool = ProcessPoolExecutor(
        n, mp_context=multiprocessing.get_context("fork"), initializer=_init_worker, initargs=(ps,)
    )
    pool.submit(int).result()  # with 'fork' the first task starts all the workers
    return pool


def _in_workers(
    workers: Executor, jobs: Iterator[tuple[_Head, list[msgspec.Raw], int]]
) -> Iterator[bytes | None]:
    in_flight: collections.deque[Future[bytes | None]] = collections.deque()
    ahead = 2 * getattr(workers, "_max_workers", 2)
    for head, raws, max_depth in jobs:
        blob = b"[" + b",".join(raws) + b"]"
        in_flight.append(workers.submit(_worker_chunk, head, blob, max_depth))
        if len(in_flight) >= ahead:
            yield in_flight.popleft().result()
    while in_flight:
        yield in_flight.popleft().result()


# -- the transaction ------------------------------------------------------------------------


def _sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


class _Duplicate(Exception):
    pass


class Intake:
    def __init__(
        self,
        pool: asyncpg.Pool,
        pseudonymiser: Pseudonymiser,
        limits: Limits,
        *,
        chunk_topic: str,
        parallel: int = 2,
        on_enqueued: Callable[[], None] | None = None,
        workers: Executor | None = None,
        workers_min_trajecten: int = 20_000,
    ) -> None:
        self.pool = pool
        self.pseudonymiser = pseudonymiser
        self.limits = limits
        self.chunk_topic = chunk_topic
        self._slots = asyncio.Semaphore(parallel)
        self._on_enqueued = on_enqueued
        self.workers = workers
        self.workers_min_trajecten = workers_min_trajecten
        #: A hook for tests: called (in the worker thread) after the CPU-bound part.
        self.after_prepare: Callable[[Prepared], None] | None = None

    async def existing(self, principal: Principal, digest: str) -> Accepted | None:
        row = await self.pool.fetchrow(
            "SELECT id, state, trajecten, chunks FROM leveringen "
            "WHERE leverancier = $1 AND content_hash = $2",
            principal.code,
            digest,
        )
        if row is None:
            return None
        return Accepted(row["id"], False, row["state"], row["trajecten"], row["chunks"])

    async def submit(self, raw: bytes, principal: Principal, via: str) -> Accepted:
        """Take a delivery in (see the module docstring). Raises Refused."""
        if len(raw) > self.limits.max_bytes:
            raise too_large(self.limits.max_bytes)
        if not principal.is_leverancier:
            raise Refused(
                403,
                "geen-leverancier",
                "Geen leverancier",
                "Alleen een gegevensleverancier kan leveren; dit token hoort bij een organisatie.",
            )
        # 0.3 s for 170 MB: off the event loop (hashlib releases the GIL on large inputs).
        digest = await asyncio.to_thread(_sha256, raw)
        found = await self.existing(principal, digest)
        if found is not None:
            await audit(self.pool, principal.actor, "levering.aangeboden", "dubbel",
                        found.levering_id, via=via)  # fmt: skip
            return found
        async with self._slots:
            started = time.perf_counter()
            prepared = await asyncio.to_thread(self._prepare, raw, principal)
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    await self._record(conn, prepared, principal, digest, via, len(raw))
            except _Duplicate:
                found = await self.existing(principal, digest)
                assert found is not None
                await audit(self.pool, principal.actor, "levering.aangeboden", "dubbel",
                            found.levering_id, via=via)  # fmt: skip
                return found
        log.info(
            "levering %s ontvangen van %s via %s: %d trajecten in %d chunks, %.1fs",
            prepared.levering_id,
            principal.code,
            via,
            prepared.trajecten,
            len(prepared.messages),
            time.perf_counter() - started,
        )
        if self._on_enqueued is not None:
            self._on_enqueued()
        return Accepted(
            prepared.levering_id, True, "ontvangen", prepared.trajecten, len(prepared.messages)
        )

    def _prepare(self, raw: bytes, principal: Principal) -> Prepared:
        args = (raw, principal, self.limits, self.pseudonymiser, uuid.uuid4(), self.chunk_topic)
        try:
            prepared = prepare(*args, self.workers, self.workers_min_trajecten)
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this delivery and the later ones are done
            # in this process.
            log.warning("ingest: a worker process died; chunks are made in the service itself")
            self.workers = None
            prepared = prepare(*args)
        if self.after_prepare is not None:
            self.after_prepare(prepared)
        return prepared

    async def _record(
        self,
        conn: asyncpg.Connection,
        p: Prepared,
        principal: Principal,
        digest: str,
        via: str,
        size: int,
    ) -> None:
        inserted = await conn.fetchval(
            "INSERT INTO leveringen (id, soort, code_gegevensleverancier, organisatie, "
            "startdatum_levering, einddatum_levering, content_hash, leverancier, ontvangen_via, "
            "bytes, trajecten, chunks) "
            "VALUES ($1, 'shv', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) "
            "ON CONFLICT (leverancier, content_hash) DO NOTHING RETURNING id",
            p.levering_id,
            p.code_gegevensleverancier,
            p.organisatie,
            p.periode[0],
            p.periode[1],
            digest,
            principal.code,
            via,
            size,
            p.trajecten,
            len(p.messages),
        )
        if inserted is None:  # the same delivery, committed meanwhile by a racing submission
            raise _Duplicate
        await conn.executemany(
            "INSERT INTO levering_organisaties (levering_id, organisatie) VALUES ($1, $2)",
            [(p.levering_id, org) for org in p.organisaties],
        )
        if p.contacten:
            await conn.executemany(
                "INSERT INTO levering_contacten (levering_id, levering_index, email) "
                "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                [(p.levering_id, i, email) for i, email in p.contacten],
            )
        await enqueue_many(conn, p.messages)
        await audit(
            conn,
            principal.actor,
            "levering.aangeboden",
            "ontvangen",
            p.levering_id,
            via=via,
            bytes=size,
            trajecten=p.trajecten,
            chunks=len(p.messages),
        )
