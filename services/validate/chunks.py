"""One chunk of a delivery, checked: the CPU part of validate, without I/O.

A `Chunk` (ddas.pipeline.events, docs/pipeline.md) is decoded here with its trajectories kept as
raw JSON (`msgspec.Raw`), so that the schema check takes its fast path on the exact bytes, as
`ddas check` does on a file. Then, per trajectory, in file order:

- the schema findings (`SchemaCheck.traject`) and the per-trajectory rules
  (`ChunkRuleEngine.check_traject_feit`, which also hands back what the cross-trajectory rules
  need of it: a `RegelFeit`);
- the table facts (`traject_feit`, the same reduction as `ddas check`);
- the chunk's part of the op-orde-rapport's own figures (`ddas.domain.oor.Oor` without the
  tables, fed the trajectory and its table facts): the report merges the parts of a delivery
  (`OorDeel`) with the tables of the completion instead of reading every trajectory again.

The root header's schema findings come from chunk 0, a levering header's from the chunk that
starts it (`eerste == 0`). The rules on the headers (`check_root`, `check_levering`) and across
trajectories (`finish`) run once per delivery, over the stored facts (`completion`): the
teller of one levering is compared with the others', so they cannot run per chunk.

Every finding is stored with a sort key (`fase`, levering, trajectory, sequence) that orders
them exactly as `ddas check` lists them: schema findings first, then the rules, each in file
order, then the rules across trajectories.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, NamedTuple, cast

import msgspec

from ddas.domain.findings import Finding
from ddas.domain.oor import Oor
from ddas.domain.reader import ABSENT, ArrayShape, LeveringHeader, RootHeader
from ddas.domain.rules import ChunkRuleEngine, RuleEngine
from ddas.domain.schema import SchemaCheck
from ddas.domain.tables import Periode, traject_feit

# The sort key's first part: where in `ddas check`'s list a finding belongs.
FASE_SCHEMA: Final = 0
FASE_REGELS: Final = 1  # the rules on the root, the leveringen and each trajectory
FASE_FINISH: Final = 2  # the rules across trajectories (RuleEngine.finish)
GEEN: Final = -1  # levering index of the root, trajectory index of a header

NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Positive = Annotated[int, msgspec.Meta(ge=1)]


class RawChunk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """`ddas.pipeline.events.Chunk` as validate reads it: the same fields (a test holds them
    equal), the ids checked as UUIDs, the counters checked, and the headers and trajectories
    kept as raw JSON."""

    event_id: uuid.UUID
    levering_id: uuid.UUID
    chunk: NonNegative
    chunks: Positive
    root: msgspec.Raw
    levering_index: Annotated[int, msgspec.Meta(ge=-1)]
    levering: msgspec.Raw
    eerste: NonNegative
    trajecten: list[msgspec.Raw]


class ChunkError(ValueError):
    """The envelope decodes but does not hold together (chunk >= chunks, root not an object,
    ...). The message names fields and numbers only, never a value from the delivery."""


_CHUNK: Final = msgspec.json.Decoder(RawChunk)
# Untyped values as the reader decodes them (float_hook: 1e400 becomes inf, not an error).
_VALUE: Final = msgspec.json.Decoder(float_hook=float)
_SCHEMA: Final = SchemaCheck()


def decode_value(data: bytes | str) -> Any:
    """A JSON value decoded as the reader decodes headers and trajectories."""
    return _VALUE.decode(data)


class BevindingRij(NamedTuple):
    """A row of `bevindingen`, in its column order (`BEVINDING_KOLOMMEN`)."""

    levering_id: uuid.UUID
    fase: int
    levering_index: int
    traject_index: int
    volgnummer: int
    code: str
    ernst: str
    pointer: str
    message: str


BEVINDING_KOLOMMEN: Final = BevindingRij._fields

# The facts of one trajectory, all that the completion needs: (trajectory index, TrajectFeit's
# gemeentecode, bsns, actief, laatste_stap, laatste_datum, the RegelFeit or None). A chunk's
# facts are stored together as one MessagePack value (`validatie_chunks.feiten`), so that the
# completion reads one value per chunk instead of a row per trajectory (until migration 0011
# they were also stored as a row each, in `traject_feiten`, which nothing read).
KortFeit = tuple[
    int,
    str | None,
    tuple[str, ...],
    bool,
    str | None,
    str | None,
    tuple[str | None, str | None, str | None, str | None, str | None] | None,
]
_KORT_ENCODER: Final = msgspec.msgpack.Encoder()
_KORT_DECODER: Final = msgspec.msgpack.Decoder(list[KortFeit])


def decode_kort(data: bytes) -> list[KortFeit]:
    return _KORT_DECODER.decode(data)


@dataclass(slots=True)
class CheckedChunk:
    """A chunk, checked: what its transaction stores."""

    event_id: uuid.UUID
    levering_id: uuid.UUID
    chunk: int
    chunks: int
    root: dict[str, Any]
    root_json: str
    levering_index: int
    eerste: int
    levering_json: str | None  # the levering header's JSON when this chunk starts it
    kort: bytes = b""  # the completion's facts of the chunk (KortFeit rows, MessagePack)
    oor: bytes = b""  # the chunk's OOR part (`OorDeel.encode()`), for the report
    bevindingen: list[BevindingRij] = field(default_factory=list)
    trajecten: int = 0  # trajectories in the chunk (objects or not)


def decode(data: bytes) -> RawChunk:
    """The envelope of a chunk. Raises msgspec.DecodeError (not JSON), msgspec.ValidationError
    (not a chunk) or ChunkError."""
    raw = _CHUNK.decode(data)
    if raw.chunk >= raw.chunks:
        raise ChunkError(f"chunk {raw.chunk} of a delivery of {raw.chunks} chunks")
    return raw


def periode_van(engine: RuleEngine) -> Periode | None:
    """The period the tables count in, as `ddas check` takes it: both ends valid dates."""
    start, eind = engine.periode
    return Periode(start, eind) if start and eind else None


def check_chunk(data: bytes) -> CheckedChunk:
    """Decode a chunk and check it (see the module docstring). Raises as `decode` does.

    Without the cyclic garbage collector: the objects of a chunk (some tens per trajectory)
    form no cycles and are freed by their reference counts; the collector would only walk them
    again and again (about an eighth of the time)."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _check_chunk(data)
    finally:
        if gc_was_enabled:
            gc.enable()


def _check_chunk(data: bytes) -> CheckedChunk:
    raw = decode(data)
    root = _VALUE.decode(raw.root)
    if type(root) is not dict:
        raise ChunkError("root is not a JSON object")
    levering_id = raw.levering_id
    lev = raw.levering_index
    levering = _VALUE.decode(raw.levering)
    if lev == GEEN and (levering is not None or raw.trajecten):
        raise ChunkError("a chunk without a levering (levering_index -1) carries one")

    result = CheckedChunk(
        event_id=raw.event_id,
        levering_id=levering_id,
        chunk=raw.chunk,
        chunks=raw.chunks,
        root=root,
        root_json=bytes(raw.root).decode(),
        levering_index=lev,
        eerste=raw.eerste,
        levering_json=None,
        trajecten=len(raw.trajecten),
    )
    bevindingen = result.bevindingen

    def add(fase: int, i: int, j: int, found: Sequence[Finding]) -> None:
        for n, f in enumerate(found):
            bevindingen.append(
                BevindingRij(levering_id, fase, i, j, n, f.code, str(f.ernst), f.pointer, f.message)
            )

    if raw.chunk == 0:
        add(FASE_SCHEMA, GEEN, GEEN, _SCHEMA.root(_root_header(root, lev)))
    if lev != GEEN and raw.eerste == 0:
        result.levering_json = bytes(raw.levering).decode()
        add(FASE_SCHEMA, lev, GEEN, _SCHEMA.levering(_levering_header(lev, levering)))

    engine = cast(ChunkRuleEngine, ChunkRuleEngine.for_root(root))
    periode = periode_van(engine)
    check_schema = _SCHEMA.traject
    check_rules = engine.check_traject_feit
    decode_value = _VALUE.decode
    kort: list[KortFeit] = []
    add_kort = kort.append
    oor = Oor(periode, tabellen=False)
    add_oor = oor.add
    prefix = f"/leveringen/{lev}/schuldhulptrajecten/"
    for j, traject_raw in enumerate(raw.trajecten, raw.eerste):
        ptr = prefix + str(j)
        data = decode_value(traject_raw)
        found = check_schema(traject_raw, data, ptr)
        if found:
            add(FASE_SCHEMA, lev, j, found)
        if type(data) is not dict:
            continue  # not counted and not remembered, as in `ddas check`
        found, regel = check_rules(data, ptr)
        if found:
            add(FASE_REGELS, lev, j, found)
        feit = traject_feit(data, periode)
        add_kort((j, *feit, regel))
        add_oor(data, feit=feit)
    result.kort = _KORT_ENCODER.encode(kort)
    result.oor = oor.deel().encode()
    return result


def _root_header(root: dict[str, Any], levering_index: int) -> RootHeader:
    """The root header as the schema check wants it. `leveringen` travels in the root only when
    it was not a list; otherwise a chunk with a levering says the list was not empty, and a
    chunk without one (-1) that it was missing."""
    if "leveringen" in root:
        value = root["leveringen"]
        data = {k: v for k, v in root.items() if k != "leveringen"}
        return RootHeader(data, ArrayShape(len(value)) if type(value) is list else value)
    if levering_index == GEEN:
        return RootHeader(root, ABSENT)
    # At least one levering; the exact length does not matter to the schema (minItems 1).
    return RootHeader(root, ArrayShape(levering_index + 1))


def _levering_header(index: int, levering: Any) -> LeveringHeader:
    """A levering header as the schema check wants it; `schuldhulptrajecten` travels only when
    it was not a list (the schema sets no bounds on the list's length)."""
    if type(levering) is not dict:
        return LeveringHeader(index, levering, ABSENT)
    if "schuldhulptrajecten" in levering:
        value = levering["schuldhulptrajecten"]
        data = {k: v for k, v in levering.items() if k != "schuldhulptrajecten"}
        return LeveringHeader(index, data, ArrayShape(len(value)) if type(value) is list else value)
    return LeveringHeader(index, levering, ArrayShape(0))
