"""Ingest's CPU-bound part without broker or database (services.ingest.intake.prepare): chunk
boundaries, the chunks put together being the pseudonymised document (same findings and tables
as the raw file), contacts kept aside, limits and authorisation, and the same chunks under the
same ids on every submission of a delivery."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import msgspec
import orjson
import pytest

from ddas.api import Refused
from ddas.domain.check import check_document
from ddas.domain.pseudonym import TEST_KEY, Pseudonymiser
from ddas.domain.reader import parse_document
from ddas.pipeline.events import Chunk, decode_chunk
from ddas.registry import Principal
from services.ingest.intake import (
    Intake,
    Limits,
    Prepared,
    levering_id_for,
    prepare,
    start_workers,
)
from tests.ingest.conftest import APP_750, generated, organisations

PS = Pseudonymiser(TEST_KEY)


def _prepare(raw: bytes, chunk_size: int = 100, **limits: Any) -> Prepared:
    principal = Principal("leverancier", "x", frozenset(organisations(raw)))
    return prepare(
        raw, principal, Limits(chunk_size=chunk_size, **limits), PS, uuid.uuid4(), "topic"
    )


def _reassemble(chunks: list[Chunk]) -> dict[str, Any]:
    """The document the chunks stand for (what validate reconstructs)."""
    doc = dict(chunks[0].root)
    leveringen: dict[int, Any] = {}
    for c in sorted(chunks, key=lambda c: c.chunk):
        if c.eerste == 0:
            lev = c.levering
            leveringen[c.levering_index] = (
                {**lev, "schuldhulptrajecten": []}
                if type(lev) is dict and "schuldhulptrajecten" not in lev
                else lev
            )
        target = leveringen[c.levering_index]
        if c.trajecten:
            assert len(target["schuldhulptrajecten"]) == c.eerste
            target["schuldhulptrajecten"].extend(c.trajecten)
    doc["leveringen"] = [leveringen[i] for i in sorted(leveringen)]
    return doc


def _findings(raw: bytes) -> tuple[list[tuple[str, str, str]], Any]:
    result = check_document(parse_document(raw), parallel=False)
    return [(f.code, str(f.ernst), f.pointer) for f in result.findings], result.totalen


@pytest.mark.parametrize(
    ("raw", "size", "expected"),
    [
        (APP_750.read_bytes(), 100, [100] * 7 + [50]),
        (APP_750.read_bytes(), 750, [750]),
        (APP_750.read_bytes(), 749, [749, 1]),
        (generated(500, seed=41, fouten=0.2, leveringen=3), 60, None),
    ],
    ids=["750/100", "750/750", "750/749", "generated-3-leveringen"],
)
def test_chunks_put_together_are_the_pseudonymised_document(
    raw: bytes, size: int, expected: list[int] | None
) -> None:
    prepared = _prepare(raw, size)
    chunks = [decode_chunk(m.payload) for m in prepared.messages]
    assert [c.chunk for c in chunks] == list(range(len(chunks)))
    assert {c.chunks for c in chunks} == {len(chunks)}
    assert all(m.key == f"{prepared.levering_id}:{i}" for i, m in enumerate(prepared.messages))
    assert all(0 < len(c.trajecten) <= size for c in chunks)
    if expected is not None:
        assert [len(c.trajecten) for c in chunks] == expected
    # A chunk never spans two leveringen, and its eerste counts within its levering.
    for c in chunks:
        assert c.eerste % size == 0
    doc = _reassemble(chunks)
    assert doc == orjson.loads(msgspec.json.encode(PS.document(parse_document(raw))))
    assert _findings(orjson.dumps(doc)) == _findings(raw)
    assert prepared.trajecten == sum(len(c.trajecten) for c in chunks)


def test_edge_shapes_of_leveringen_still_give_every_finding() -> None:
    base = orjson.loads(APP_750.read_bytes())
    lev = base["leveringen"][0]
    leeg = {**lev, "schuldhulptrajecten": []}
    zonder = {k: v for k, v in lev.items() if k != "schuldhulptrajecten"}
    verkeerd = {**lev, "schuldhulptrajecten": {"geen": "lijst"}}
    kort = {**lev, "schuldhulptrajecten": lev["schuldhulptrajecten"][:3]}
    raw = orjson.dumps({**base, "leveringen": [leeg, zonder, kort, verkeerd]})
    prepared = _prepare(raw, 2)
    chunks = [decode_chunk(m.payload) for m in prepared.messages]
    assert [(c.levering_index, c.eerste, len(c.trajecten)) for c in chunks] == [
        (0, 0, 0),
        (1, 0, 0),
        (2, 0, 2),
        (2, 2, 1),
        (3, 0, 0),
    ]
    assert chunks[4].levering["schuldhulptrajecten"] == {"*": 0}  # its placeholder
    findings, _ = _findings(raw)
    assert any(f[0] == "schema.type" for f in findings)
    assert _findings(orjson.dumps(_reassemble(chunks)))[0] == findings


def test_contacts_are_kept_aside_and_nothing_raw_is_in_the_chunks() -> None:
    base = orjson.loads(APP_750.read_bytes())
    org = base["leveringen"][0]["aanleverende_organisatie"]
    org["contactpersonen"] = [
        {"naam": "P. de Vries", "email": "p.devries@gemeente.example", "telefoonnummer": "0612345678"},
        {"email": "geen e-mail"},
    ]  # fmt: skip
    raw = orjson.dumps(base)
    prepared = _prepare(raw, 1000)
    assert prepared.contacten == [(0, "p.devries@gemeente.example")]
    body = prepared.messages[0].payload
    for secret in (b"de Vries", b"devries", b"0612345678"):
        assert secret not in body
    kop = decode_chunk(body).levering["aanleverende_organisatie"]["contactpersonen"]
    assert kop == [
        {"naam": "*", "email": "geldig@ddas.invalid", "telefoonnummer": "*"},
        {"email": "ongeldig"},
    ]


def test_limits_and_authorisation() -> None:
    raw = APP_750.read_bytes()
    with pytest.raises(Refused) as exc:
        _prepare(raw, max_bytes=1000)
    assert exc.value.status == 413
    with pytest.raises(Refused) as exc:
        _prepare(raw, max_trajecten=749)
    assert (exc.value.status, exc.value.slug) == (413, "te-veel-trajecten")
    with pytest.raises(Refused) as exc:
        prepare(raw, Principal("leverancier", "y", frozenset({"0599"})), Limits(), PS,
                uuid.uuid4(), "t")  # fmt: skip
    assert (exc.value.status, exc.value.slug) == (403, "geen-recht")
    # A municipality's right by gemeentecode (normalised: GM0153 is 0153).
    enschede = orjson.loads((APP_750.parent / "SHV_2025M09_Enschede_2.json").read_bytes())
    enschede["leveringen"][0]["aanleverende_organisatie"]["gemeentecode"] = "GM0153"
    ok = prepare(orjson.dumps(enschede), Principal("leverancier", "z", frozenset({"0153"})),
                 Limits(), PS, uuid.uuid4(), "t")  # fmt: skip
    assert ok.organisaties == ["0153"] and ok.organisatie == "0153"
    # Periods that are not dates are received (validate rejects them), as NULL.
    base = orjson.loads(raw)
    base["startdatumLevering"] = "2025-02-30"
    assert _prepare(orjson.dumps(base)).periode == (None, _prepare(raw).periode[1])


@pytest.fixture(scope="module")
def workers() -> Iterator[ProcessPoolExecutor]:
    pool = start_workers(PS, 2)
    yield pool
    pool.shutdown(cancel_futures=True)


def test_worker_processes_make_the_same_chunks(workers: ProcessPoolExecutor) -> None:
    """A large delivery's chunks made in the forked workers are those of the one-process way
    (but for the event ids), in order; a small one stays in the service's process."""
    base = orjson.loads(generated(700, seed=43, fouten=0.3, leveringen=2))
    lev = base["leveringen"][0]
    base["leveringen"] += [
        {k: v for k, v in lev.items() if k != "schuldhulptrajecten"},
        {**lev, "schuldhulptrajecten": []},
    ]
    raw = orjson.dumps(base)
    principal = Principal("leverancier", "x", frozenset(organisations(raw)))
    limits = Limits(chunk_size=64)

    def chunks(**kw: Any) -> list[Any]:
        p = prepare(raw, principal, limits, PS, uuid.UUID(int=7), "t", **kw)
        out = []
        for m in p.messages:
            chunk = orjson.loads(m.payload)
            assert chunk.pop("event_id") == str(m.event_id)
            out.append((m.key, chunk))
        return out

    alone = chunks()
    assert len(alone) > 10
    assert chunks(workers=workers, workers_min_trajecten=700) == alone
    # Fewer trajectories than the threshold: not sent to the workers at all.
    workers_used: list[Any] = []

    class Spy(ProcessPoolExecutor):
        def submit(self, *a: Any, **kw: Any) -> Any:  # type: ignore[override]
            workers_used.append(a)
            raise AssertionError("a small delivery went to the workers")

    assert chunks(workers=Spy(1), workers_min_trajecten=701) == alone
    assert workers_used == []


def test_a_too_deep_trajectory_is_refused_from_a_worker(workers: ProcessPoolExecutor) -> None:
    base = orjson.loads(APP_750.read_bytes())
    diep: Any = 0
    for _ in range(40):
        diep = [diep]
    base["leveringen"][0]["schuldhulptrajecten"][700]["onbekend"] = diep
    raw = orjson.dumps(base)
    principal = Principal("leverancier", "x", frozenset(organisations(raw)))
    with pytest.raises(Refused) as exc:
        prepare(raw, principal, Limits(chunk_size=100), PS, uuid.uuid4(), "t", workers, 1)
    assert (exc.value.status, exc.value.slug) == (400, "te-diep")


def test_a_dead_worker_leaves_the_delivery_to_the_service_itself() -> None:
    pool = start_workers(PS, 1)
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    raw = APP_750.read_bytes()
    intake = Intake(None, PS, Limits(chunk_size=100), chunk_topic="t", workers=pool,  # type: ignore[arg-type]
                    workers_min_trajecten=1)  # fmt: skip
    principal = Principal("leverancier", "x", frozenset(organisations(raw)))
    prepared = intake._prepare(raw, principal)
    assert len(prepared.messages) == 8 and intake.workers is None
    pool.shutdown()


def test_a_delivery_has_one_id_and_its_chunks_are_the_same_on_every_submission() -> None:
    """A retried or racing submission publishes byte-identical chunks under the same keys and
    event ids (validate stores each once): the delivery's id comes from the supplier, the
    content and what shapes the chunks; emitted one by one they are those kept in a list."""
    raw = APP_750.read_bytes()
    principal = Principal("leverancier", "x", frozenset(organisations(raw)))
    digest = "ab" * 32
    levering_id = levering_id_for(principal, digest, 100, PS)
    assert levering_id == levering_id_for(principal, digest, 100, PS)
    others = {
        levering_id_for(Principal("leverancier", "y", principal.rechten), digest, 100, PS),
        levering_id_for(principal, "cd" * 32, 100, PS),
        levering_id_for(principal, digest, 250, PS),  # other chunk boundaries
        levering_id_for(principal, digest, 100, Pseudonymiser(b"k" * 32)),  # other pseudonyms
    }
    assert levering_id not in others and len(others) == 4

    kept = prepare(raw, principal, Limits(chunk_size=100), PS, levering_id, "t")
    emitted: list[Any] = []
    again = prepare(raw, principal, Limits(chunk_size=100), PS, levering_id, "t",
                    emit=emitted.append)  # fmt: skip
    assert again.messages == [] and again.chunks == kept.chunks == len(emitted) == 8
    assert [(m.key, m.event_id, m.payload, dict(m.headers)) for m in emitted] == [
        (m.key, m.event_id, m.payload, dict(m.headers)) for m in kept.messages
    ]
    for n, m in enumerate(kept.messages):
        assert m.event_id == uuid.uuid5(levering_id, str(n))
        assert decode_chunk(m.payload).event_id == m.headers["ddas-event-id"] == str(m.event_id)
