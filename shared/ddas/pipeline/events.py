"""The events that travel between the pipeline's services (docs/pipeline.md), as msgspec Structs.

- `Chunk` (topic `ddas.trajecten.v1`, ingest -> validate): at most `chunk_size` pseudonymised
  trajectories of one levering, with the pseudonymised root and levering headers.
- `LeveringEvent` (topic `ddas.leveringen.v1`, validate -> report -> publish): a delivery's state
  change with a findings summary.
- `Rapport` (topic `ddas.rapporten.v1`, report -> publish): a delivery's op-orde-rapport figures.

Everything in an event is already pseudonymised (`ddas.domain.pseudonym`): no raw BSN or other
identifying value is ever put in one.

Encode with `encode(event)` (JSON bytes) and decode with `decode_chunk(data)` /
`decode_levering_event(data)`; both are strict about the fields and their types.

Edge cases of the chunking (so that every finding of the whole document is still produced once):

- a levering with no trajectories (or whose `schuldhulptrajecten` is missing or not a list) gets one
  chunk with `eerste == 0` and `trajecten == []`; its `levering` header then carries the
  non-list `schuldhulptrajecten` value if there was one (as its pseudonymised placeholder), so the
  schema finding about it is reproduced;
- a document with no leveringen (`leveringen` missing, empty or not a list) gets exactly one
  chunk with `levering_index == -1`, `levering is None` and no trajectories; its `root` then
  carries `leveringen` (`[]`, or the placeholder of the non-list value) unless it was missing.
  `root` never carries a non-empty `leveringen` list;
- a levering that is not a JSON object is carried as its placeholder in `levering`, with no
  trajectories.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Chunk(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Up to `chunk_size` pseudonymised trajectories of one levering of one delivery.

    Kafka key: `f"{levering_id}:{chunk}"` (see `key()`), so that a large delivery spreads over the
    partitions.
    """

    event_id: str
    """A UUID, unique per chunk: the consumer's processed-event id."""
    levering_id: str
    """The delivery's UUID (`leveringen.id`)."""
    chunk: int
    """This chunk's number within the delivery, from 0."""
    chunks: int
    """How many chunks the delivery has in total (over all its leveringen)."""
    root: dict[str, Any]
    """The pseudonymised root header, without `leveringen` (unless that was not a list)."""
    levering_index: int
    """The index of the levering within `leveringen` (-1: the document has no leveringen)."""
    levering: Any
    """The pseudonymised levering header, without `schuldhulptrajecten` (unless that was not a
    list); None when `levering_index == -1`."""
    eerste: int
    """The index of the first trajectory of this chunk within its levering."""
    trajecten: list[Any]
    """The pseudonymised trajectories: `trajecten[i]` is
    `/leveringen/{levering_index}/schuldhulptrajecten/{eerste + i}` of the document."""

    def key(self) -> str:
        return chunk_key(self.levering_id, self.chunk)

    @property
    def records_root_findings(self) -> bool:
        """The root header's findings are recorded by chunk 0 only."""
        return self.chunk == 0

    @property
    def records_levering_findings(self) -> bool:
        """A levering header's findings are recorded by the chunk that starts the levering."""
        return self.eerste == 0


class Bevindingen(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A findings summary: how many errors and warnings, and how many per rule code."""

    fouten: int = 0
    waarschuwingen: int = 0
    per_code: dict[str, int] = msgspec.field(default_factory=dict)


class LeveringEvent(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A delivery's state change (`gevalideerd`, `afgekeurd`, `rapport_gereed`, ...).

    Kafka key: `levering_id`, so that the events of one delivery stay in order.
    """

    event_id: str
    """A UUID, unique per event."""
    levering_id: str
    state: str
    """The state the delivery is now in (a `leveringen.state` value)."""
    occurred_at: str
    """When the state changed: an ISO 8601 timestamp with its UTC offset."""
    bevindingen: Bevindingen = msgspec.field(default_factory=Bevindingen)

    def key(self) -> str:
        return self.levering_id


class RapportPeriode(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A reporting period: ISO dates (YYYY-MM-DD), both ends included; None when unknown."""

    start: str | None = None
    eind: str | None = None


class Rapport(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A delivery's op-orde-rapport is ready (topic `ddas.rapporten.v1`, report -> publish): its
    figures, counts only (no personal data).

    Kafka key: `levering_id`.
    """

    event_id: str
    """A UUID, unique per event."""
    levering_id: str
    versie: int
    """The report's version for this delivery (`rapporten.versie`, from 1)."""
    organisatie: str
    """The aanleverende organisatie (KvK number or gemeentecode) of the delivery."""
    periode: RapportPeriode
    oor: dict[str, Any]
    """The OOR as JSON (services/report/README.md describes its shape)."""

    def key(self) -> str:
        return self.levering_id


def chunk_key(levering_id: str, chunk: int) -> str:
    """The Kafka key of a chunk: `<levering_id>:<chunk>`."""
    return f"{levering_id}:{chunk}"


_encoder = msgspec.json.Encoder()
_chunk_decoder = msgspec.json.Decoder(Chunk)
_event_decoder = msgspec.json.Decoder(LeveringEvent)
_rapport_decoder = msgspec.json.Decoder(Rapport)


def encode(event: Chunk | LeveringEvent | Rapport) -> bytes:
    """The event as compact JSON bytes (the Kafka message value)."""
    return _encoder.encode(event)


def decode_chunk(data: bytes | str) -> Chunk:
    """A `Chunk` from its JSON; raises `msgspec.ValidationError` / `msgspec.DecodeError`."""
    return _chunk_decoder.decode(data)


def decode_levering_event(data: bytes | str) -> LeveringEvent:
    """A `LeveringEvent` from its JSON; raises `msgspec.ValidationError` / `msgspec.DecodeError`."""
    return _event_decoder.decode(data)


def decode_rapport(data: bytes | str) -> Rapport:
    """A `Rapport` from its JSON; raises `msgspec.ValidationError` / `msgspec.DecodeError`."""
    return _rapport_decoder.decode(data)
