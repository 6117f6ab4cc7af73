"""Chunks of a document as ingest would publish them (docs/pipeline.md), built straight from the
file: the validate side does not care whether a BSN is raw or a pseudonym, so these tests do not
need ingest. The trajectories travel as their raw JSON text, so that building the chunks of a
large file costs no decoding."""

from __future__ import annotations

import uuid
from pathlib import Path

import msgspec

from ddas.domain.reader import ABSENT, ArrayShape, Document, parse_document
from ddas.pipeline.events import Chunk, encode


def chunks_of(
    document: bytes | Path | Document, levering_id: uuid.UUID | str, chunk_size: int = 500
) -> list[Chunk]:
    """The chunks of a delivery, in order, each at most `chunk_size` trajectories of one levering."""
    if isinstance(document, Path):
        document = document.read_bytes()
    if isinstance(document, bytes):
        document = parse_document(document)
    root = dict(document.header.data)
    # As ingest does: `leveringen` travels in the root when it is not a non-empty list.
    leveringen = document.header.leveringen
    if leveringen is not ABSENT and not (
        isinstance(leveringen, ArrayShape) and leveringen.length > 0
    ):
        root["leveringen"] = [] if isinstance(leveringen, ArrayShape) else leveringen
    parts: list[tuple[int, object, int, list[msgspec.Raw]]] = []
    for lev in document._leveringen:
        header = lev.header.data
        if (
            isinstance(header, dict)
            and not isinstance(lev.header.trajecten, ArrayShape)
            and lev.header.trajecten is not ABSENT
        ):
            header = {**header, "schuldhulptrajecten": lev.header.trajecten}
        trajecten = lev.trajecten
        if not trajecten:
            parts.append((lev.index, header, 0, []))
        for eerste in range(0, len(trajecten), chunk_size):
            parts.append((lev.index, header, eerste, trajecten[eerste : eerste + chunk_size]))
    if not parts:
        parts.append((-1, None, 0, []))
    return [
        Chunk(
            event_id=str(uuid.uuid4()),
            levering_id=str(levering_id),
            chunk=n,
            chunks=len(parts),
            root=root,
            levering_index=index,
            levering=header,
            eerste=eerste,
            trajecten=list(trajecten),
        )
        for n, (index, header, eerste, trajecten) in enumerate(parts)
    ]


def encoded_chunks(
    document: bytes | Path | Document, levering_id: uuid.UUID | str, chunk_size: int = 500
) -> list[tuple[str, bytes]]:
    """(Kafka key, value) of each chunk."""
    return [(c.key(), encode(c)) for c in chunks_of(document, levering_id, chunk_size)]
