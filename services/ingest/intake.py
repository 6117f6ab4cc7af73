"""Taking a delivery in: limits, parsing, authorisation, idempotency, the privacy edge, chunks.

`Intake.submit(raw, principal, via)` is the one way in for HTTP, Kafka and the collector:

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
6. **the chunks straight to Kafka**, each as soon as it is made (idempotent producer,
   `acks=all`), so that validate checks the first chunks while the last are still being made;
7. **one transaction, once every chunk is acknowledged**: the delivery row (`ontvangen`), its
   organisations and contacts, its `ontvangen` LeveringEvent in the outbox and an audit row.
   Only then the answer (202): the delivery and all its chunks are durable.

The delivery's id, and so every chunk's key and event id, is derived from the supplier, the
content hash and what shapes the chunks (the chunk size, the pseudonym key): a submission that
is retried after a crash, or that races another, publishes the very same chunks, which validate
stores once (docs/pipeline.md, "A submission"). A submission that fails half-way (a trajectory
nested too deep, Kafka away, a crash) has no delivery row: validate never completes or counts
what it may have staged of it, and deletes that after a while.

Chunks (`ddas.pipeline.events.Chunk`): at most `chunk_size` trajectories of one levering each, a
levering without trajectories one chunk of its own; keyed `<levering_id>:<chunk>`, chunk `n` on
partition `n % partitions` (`spreading`) so that a large delivery spreads evenly.

The CPU-bound part (parsing, pseudonymising, encoding) runs in a worker thread, at most
`parallel` at a time, so that the event loop keeps answering. For a large delivery, that thread
hands the chunks to worker processes forked at start-up (`start_workers`) and passes each chunk
on to the event loop's producer as it comes back, in order.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import ctypes.util
import gc
import hashlib
import logging
import multiprocessing
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Protocol

import asyncpg
import msgspec
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ddas import lifecycle
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
from ddas.domain.schema.formats import is_date
from ddas.outbox import EVENT_ID_HEADER, OutboxMessage
from ddas.pipeline.events import Chunk, chunk_key, encode
from ddas.registry import Principal

log = logging.getLogger("services.ingest")

__all__ = [
    "Accepted",
    "Intake",
    "Limits",
    "Publish",
    "levering_id_for",
    "make_chunks",
    "prepare",
    "read",
    "spreading",
]

#: Part of what a delivery's id is derived from: a change to how chunks are made (their format,
#: the pseudonymisation) must give a retried submission other chunk ids than the first attempt.
CHUNK_FORMAT: Final = "shv-chunks-2"

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
    #: The chunks, when `prepare` was not given an `emit` to hand each one to.
    messages: list[OutboxMessage] = field(default_factory=list)
    chunks: int = 0  # how many chunks were made (kept or emitted)
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
    emit: Callable[[OutboxMessage], None] | None = None,
) -> Prepared:
    """Parse, check the limits, authorise, pseudonymise and chunk. Raises Refused.

    With `workers`, a delivery of at least `workers_min_trajecten` trajectories has its chunks
    made in those worker processes (a small one is done sooner in this thread). With `emit`,
    each chunk is handed to it as soon as it is made (in order) instead of being kept in
    `messages`; a Refused may then come after some chunks were emitted (a trajectory nested too
    deep)."""
    document, prepared = read(raw, principal, limits)
    prepared.levering_id = levering_id
    return make_chunks(document, prepared, pseudonymiser, limits, chunk_topic, workers,
                       workers_min_trajecten, emit)  # fmt: skip


def read(raw: bytes, principal: Principal, limits: Limits) -> tuple[Document, Prepared]:
    """Parse, check the limits and authorise (raises Refused): the document and what the
    transaction will record of it, under a nil id until the caller sets it."""
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
        levering_id=uuid.UUID(int=0),
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
    return document, prepared


def make_chunks(
    document: Document,
    prepared: Prepared,
    pseudonymiser: Pseudonymiser,
    limits: Limits,
    chunk_topic: str,
    workers: Executor | None = None,
    workers_min_trajecten: int = 20_000,
    emit: Callable[[OutboxMessage], None] | None = None,
) -> Prepared:
    """The chunks of a document read by `read` (see `prepare`), into `prepared`."""
    if document.traject_count < workers_min_trajecten:
        workers = None
    levering_id = prepared.levering_id
    chunks = _chunks(document, pseudonymiser, limits, levering_id, chunk_topic, workers)
    if emit is None:
        prepared.messages = list(chunks)
        prepared.chunks = len(prepared.messages)
    else:
        for message in chunks:
            emit(message)
            prepared.chunks += 1
    return prepared


def levering_id_for(
    principal: Principal, digest: str, chunk_size: int, ps: Pseudonymiser
) -> uuid.UUID:
    """The id of the delivery of these bytes (`digest`) by this supplier, with these settings:
    the same for every submission of it, so that a retry publishes the same chunks under the
    same keys and event ids. Keyed with the pseudonym key (not guessable from the content)."""
    mac = ps.hmac(f"\0ddas-levering\0{principal.code}\0{digest}\0{chunk_size}\0{CHUNK_FORMAT}")
    return uuid.UUID(hex=mac[:32], version=4)


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
    levering: uuid.UUID,
    topic: str,
    workers: Executor | None = None,
) -> Iterator[OutboxMessage]:
    """The delivery's chunks, in order: in this thread, or (`workers`) in worker processes.
    A chunk's event id is derived from the delivery's id and its number."""
    size = limits.chunk_size
    root = _root_kop(document, ps)
    plan: list[tuple[int, Any, int, list[msgspec.Raw]]] = []  # levering, its header, eerste, raws
    for header, raws in document.raw_leveringen():
        kop = _levering_kop(header, ps)
        plan.extend((header.index, kop, eerste, raws[eerste : eerste + size])
                    for eerste in range(0, max(1, len(raws)), size))  # fmt: skip
    total = len(plan)
    max_depth = limits.max_depth - 4  # a trajectory sits at level 5
    levering_id = str(levering)
    ids = [uuid.uuid5(levering, str(n)) for n in range(len(plan))]
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
            {"content-type": "application/json", EVENT_ID_HEADER: str(ids[nummer])},
            ids[nummer],
        )


#: A chunk's event id, levering id, number, total, root, levering index, levering and eerste.
_Head = tuple[str, str, int, int, Any, int, Any, int]


def _chunk_body(
    ps: Pseudonymiser, head: _Head, raws: Sequence[msgspec.Raw], max_depth: int
) -> bytes | None:
    """One chunk's JSON: its trajectories decoded and pseudonymised. None: one nests too deep.

    Without the cyclic garbage collector: some 40 objects per trajectory, none in a cycle, are
    freed by their reference counts; the collector would walk them (and the rest of the heap)
    again and again for nothing, a third of the time (docs/benchmarks.md)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _chunk_json(ps, head, raws, max_depth)
    finally:
        if gc_was_enabled:
            gc.enable()


def _chunk_json(
    ps: Pseudonymiser, head: _Head, raws: Sequence[msgspec.Raw], max_depth: int
) -> bytes | None:
    event_id, levering_id, nummer, total, root, index, levering, eerste = head
    trajecten: list[Any] = []
    typed = ps.typed
    for raw in raws:
        traject = typed(raw)  # a typed struct, rewritten in place (the common case)
        if traject is None:  # not valid under the schema: decoded, and the schema walk
            data = decode_value(raw)
            if _deeper(data, max_depth):
                return None
            traject = ps.traject(data)
        trajecten.append(traject)
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


_PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


def _init_worker(ps: Pseudonymiser, parent: int) -> None:
    global _worker_ps
    _worker_ps = ps
    # A worker dies with the service, also when the service is killed (kill -9 leaves the pool
    # no time to shut its workers down): Linux's parent-death signal, then a check that the
    # parent did not die before it was set.
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)
    # The parent's event loop owns SIGTERM/SIGINT (through the wake-up fd a fork inherits): a
    # worker leaves them to the parent, which shuts the pool down.
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the worker inherited (the service's modules) stays: out of the collector's sight.
    gc.freeze()


def _worker_chunk(head: _Head, blob: bytes, max_depth: int) -> bytes | None:
    assert _worker_ps is not None
    return _chunk_body(_worker_ps, head, _RAWS.decode(blob), max_depth)


def start_workers(ps: Pseudonymiser, n: int) -> ProcessPoolExecutor:
    """`n` worker processes forked now (call it before the service starts its threads)."""
    pool = ProcessPoolExecutor(
        n,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_init_worker,
        initargs=(ps, os.getpid()),
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


class Publish(Protocol):
    """Hands one chunk to the producer (`AIOKafkaProducer.send`): returns once the producer
    took it, with a future that resolves when the broker acknowledged it. The key is
    `<levering_id>:<chunk>` (`chunk_key`)."""

    async def __call__(
        self, topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]: ...


def spreading(producer: AIOKafkaProducer) -> Publish:
    """`Publish` with a started producer, chunk `n` to partition `n % partitions` rather than
    where its key hashes to: a delivery's chunks are then spread evenly, and so are they over
    the validate processes that share the partitions (hashing 100 keys over 4 partitions once
    gave one of two processes 62 chunks and the other 38, and the delivery waited for the
    first). Nothing depends on where a chunk goes: validate deduplicates by event id."""

    async def publish(
        topic: str, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> asyncio.Future[Any]:
        number = int(key.rsplit(b":", 1)[1])  # chunk_key: <levering_id>:<chunk>
        partitions = sorted(await producer.partitions_for(topic))
        future: asyncio.Future[Any] = await producer.send(
            topic,
            value=value,
            key=key,
            headers=headers,
            partition=partitions[number % len(partitions)],
        )
        return future

    return publish


def unavailable() -> Refused:
    return Refused(
        503,
        "niet-beschikbaar",
        "Tijdelijk niet beschikbaar",
        "De levering kon nu niet worden doorgegeven; er is niets van opgeslagen. "
        "Probeer het later opnieuw.",
    )


class Intake:
    def __init__(
        self,
        pool: asyncpg.Pool,
        pseudonymiser: Pseudonymiser,
        limits: Limits,
        *,
        chunk_topic: str,
        publish: Publish | None = None,
        parallel: int = 2,
        on_enqueued: Callable[[], None] | None = None,
        workers: Executor | None = None,
        workers_min_trajecten: int = 20_000,
    ) -> None:
        self.pool = pool
        self.pseudonymiser = pseudonymiser
        self.limits = limits
        self.chunk_topic = chunk_topic
        self.publish = publish
        self._slots = asyncio.Semaphore(parallel)
        self._on_enqueued = on_enqueued
        self.workers = workers
        self.workers_min_trajecten = workers_min_trajecten
        #: A hook for tests: called (in the worker thread) after the CPU-bound part, when every
        #: chunk was handed to the producer (not necessarily acknowledged yet).
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
        async with self._slots:
            started = time.perf_counter()
            # The content hash (0.3 s for 170 MB; hashlib releases the GIL) and the parsing,
            # side by side in two threads, off the event loop.
            digest, reading = await asyncio.gather(
                asyncio.to_thread(_sha256, raw),
                asyncio.to_thread(read, raw, principal, self.limits),
                return_exceptions=True,
            )
            if isinstance(digest, BaseException):
                raise digest
            found = await self.existing(principal, digest)
            if found is not None:  # the same bytes again: that delivery, whatever they hold
                await audit(self.pool, principal.actor, "levering.aangeboden", "dubbel",
                            found.levering_id, via=via)  # fmt: skip
                return found
            if isinstance(reading, BaseException):
                raise reading
            document, prepared = reading
            prepared.levering_id = levering_id_for(
                principal, digest, self.limits.chunk_size, self.pseudonymiser
            )
            await self._publish_chunks(document, prepared)
            del document, reading
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
            prepared.chunks,
            time.perf_counter() - started,
        )
        if self._on_enqueued is not None:
            self._on_enqueued()
        return Accepted(
            prepared.levering_id, True, "ontvangen", prepared.trajecten, prepared.chunks
        )

    async def _publish_chunks(self, document: Document, prepared: Prepared) -> None:
        """Make the chunks (in a worker thread) and publish each as soon as it is made; return
        when the broker acknowledged every one of them. Raises Refused (nothing recorded)."""
        publish = self.publish
        if publish is None:
            raise RuntimeError("an Intake that takes deliveries in needs a producer (publish)")
        loop = asyncio.get_running_loop()
        acks: list[asyncio.Future[Any]] = []

        async def send(message: OutboxMessage) -> None:
            assert message.key is not None
            headers = [(k, v.encode()) for k, v in message.headers.items()]
            acks.append(
                await publish(message.topic, message.key.encode(), message.payload, headers)
            )

        def emit(message: OutboxMessage) -> None:  # in the worker thread
            asyncio.run_coroutine_threadsafe(send(message), loop).result()

        try:
            await asyncio.to_thread(self._make_chunks, document, prepared, emit)
            await asyncio.gather(*acks)
        except Refused:
            await asyncio.gather(*acks, return_exceptions=True)
            raise
        except (KafkaError, TimeoutError, OSError) as exc:  # the broker away or refusing
            await asyncio.gather(*acks, return_exceptions=True)
            log.warning(
                "levering %s: publishing its chunks failed (%s); nothing recorded",
                prepared.levering_id,
                type(exc).__name__,
            )
            raise unavailable() from None

    def _prepare(self, raw: bytes, principal: Principal) -> Prepared:
        """`read` and `_make_chunks` in one (the chunks kept in `messages`), under a new id."""
        document, prepared = read(raw, principal, self.limits)
        prepared.levering_id = uuid.uuid4()
        return self._make_chunks(document, prepared)

    def _make_chunks(
        self,
        document: Document,
        prepared: Prepared,
        emit: Callable[[OutboxMessage], None] | None = None,
    ) -> Prepared:
        args = (document, prepared, self.pseudonymiser, self.limits, self.chunk_topic)
        emitted = 0

        def counted(message: OutboxMessage) -> None:
            nonlocal emitted
            if emit is not None:
                emit(message)
            emitted += 1

        try:
            make_chunks(*args, self.workers, self.workers_min_trajecten,
                        counted if emit is not None else None)  # fmt: skip
        except BrokenProcessPool:
            # A worker died (killed, out of memory): this delivery and the later ones are done
            # in this process. The chunks already emitted are not emitted again (the same ones
            # would come out: they are deterministic).
            log.warning("ingest: a worker process died; chunks are made in the service itself")
            self.workers = None
            done = emitted
            prepared.chunks = 0
            prepared.messages = []

            def rest(message: OutboxMessage) -> None:
                nonlocal done
                if done > 0:
                    done -= 1
                elif emit is not None:
                    emit(message)

            make_chunks(*args, emit=rest if emit is not None else None)
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
            p.chunks,
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
        await lifecycle.received(conn, p.levering_id)
        await audit(
            conn,
            principal.actor,
            "levering.aangeboden",
            "ontvangen",
            p.levering_id,
            via=via,
            bytes=size,
            trajecten=p.trajecten,
            chunks=p.chunks,
        )
