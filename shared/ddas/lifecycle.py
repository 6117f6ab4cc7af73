"""The delivery lifecycle as a state machine in PostgreSQL (architecture.md, "The delivery
lifecycle"):

    ontvangen -> gevalideerd | afgekeurd -> rapport_gereed -> goedgekeurd | ingetrokken
    goedgekeurd -> gepubliceerd | ingetrokken
    any state before gepubliceerd -> vervangen   (the same organisation delivered again for
                                                  the same period; `vervangen_door` says by what)

Both `gevalideerd` and `afgekeurd` get a report: the OOR of a rejected delivery says why. A
delivery may be withdrawn (`ingetrokken`) until it is published; `gepubliceerd` and `vervangen`
are final.

`transition` is the only way a state changes. In the caller's transaction it does three things
that therefore happen together or not at all:

1. the guarded update `UPDATE leveringen SET state = new WHERE id = ... AND state = expected`:
   of two processes that both saw `expected`, one moves the delivery and the other gets
   `StateConflict` (and nothing is written for it);
2. the state change's `LeveringEvent` into the outbox (topic `ddas.leveringen.v1`, key the
   delivery's id), which the relay publishes after the commit;
3. a row in the audit log (`actie` "levering.<new state>", `uitkomst` "ok"): who (`actor`,
   e.g. "service:validate"), from and to, the event id, and details free of personal data.

A refused transition (StateConflict) writes an audit row too, with `uitkomst` "geweigerd" and
the state found: it stays when the caller commits (as validate does: it keeps its results).

The report and publish services use it the same way as validate.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any, Final

import asyncpg

from ddas import observability, outbox
from ddas.audit import audit
from ddas.pipeline import topics
from ddas.pipeline.events import LeveringEvent

__all__ = [
    "FINAL",
    "STATES",
    "TRANSITIONS",
    "IllegalTransition",
    "StateConflict",
    "allowed",
    "received",
    "transition",
]

STATES: Final = (
    "ontvangen",
    "gevalideerd",
    "afgekeurd",
    "rapport_gereed",
    "goedgekeurd",
    "ingetrokken",
    "gepubliceerd",
    "vervangen",
)

_FORWARD: Final[dict[str, tuple[str, ...]]] = {
    "ontvangen": ("gevalideerd", "afgekeurd"),
    "gevalideerd": ("rapport_gereed",),
    "afgekeurd": ("rapport_gereed",),
    "rapport_gereed": ("goedgekeurd", "ingetrokken"),
    "goedgekeurd": ("gepubliceerd", "ingetrokken"),
    "ingetrokken": (),
    "gepubliceerd": (),
    "vervangen": (),
}
FINAL: Final = frozenset(("gepubliceerd", "vervangen"))

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    state: frozenset(nxt + (() if state in FINAL else ("vervangen",)))
    for state, nxt in _FORWARD.items()
}
"""state -> the states it may move to."""


class IllegalTransition(ValueError):
    """The state machine has no such transition (a programming error, not a race)."""


class StateConflict(Exception):
    """The delivery was not in the expected state (another process moved it first), or it does
    not exist. Nothing was changed; only the refusal was audit-logged."""

    def __init__(self, levering_id: uuid.UUID | str, expected: str, actual: str | None) -> None:
        self.levering_id = levering_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"delivery {levering_id} is "
            + (f"{actual}, not {expected}" if actual is not None else "unknown")
        )


def allowed(current: str, new: str) -> bool:
    return new in TRANSITIONS.get(current, ())


async def transition(
    conn: asyncpg.Connection,
    levering_id: uuid.UUID | str,
    expected: str,
    new: str,
    *,
    actor: str,
    event: LeveringEvent | None = None,
    details: Mapping[str, Any] | None = None,
    vervangen_door: uuid.UUID | str | None = None,
) -> LeveringEvent:
    """Move a delivery from `expected` to `new` in the caller's transaction, with its event in
    the outbox and an audit row. Returns the event (built when `event` is None, with an empty
    findings summary).

    Raises IllegalTransition for a transition the state machine does not have, StateConflict
    when the delivery is not in `expected` (nothing changed, the refusal audit-logged; the
    transaction stays usable).
    `vervangen_door` (the successor's id) is required for, and only for, `vervangen`.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("transition() runs inside the caller's transaction")
    if not allowed(expected, new):
        raise IllegalTransition(f"no transition from {expected} to {new}")
    if (new == "vervangen") != (vervangen_door is not None):
        raise IllegalTransition(
            "vervangen, and only vervangen, names the delivery that replaces it"
        )
    levering = uuid.UUID(str(levering_id))
    if event is None:
        event = _event(levering, new)
    elif event.state != new or uuid.UUID(event.levering_id) != levering:
        raise ValueError("the event must name this delivery and its new state")

    # `o` is the row as it was: how long the delivery was in `expected` (the metrics).
    moved = await conn.fetchrow(
        "UPDATE leveringen l SET state = $3, bijgewerkt_op = now(), vervangen_door = $4 "
        "FROM leveringen o WHERE l.id = $1 AND l.state = $2 AND o.id = l.id "
        "RETURNING extract(epoch FROM now() - o.bijgewerkt_op)::float8 AS in_state, "
        "extract(epoch FROM now() - l.ontvangen_op)::float8 AS since_receipt",
        levering,
        expected,
        new,
        None if vervangen_door is None else uuid.UUID(str(vervangen_door)),
    )
    audit = {
        "van": expected,
        "naar": new,
        **({"vervangen_door": str(vervangen_door)} if vervangen_door is not None else {}),
        **(details or {}),
    }
    if not moved:
        actual = await conn.fetchval("SELECT state FROM leveringen WHERE id = $1", levering)
        await _audit(conn, actor, new, levering, "geweigerd", {**audit, "huidig": actual})
        raise StateConflict(levering, expected, actual)

    await outbox.enqueue(
        conn, topics.LEVERINGEN, event.key(), event, event_id=uuid.UUID(event.event_id)
    )
    await _audit(conn, actor, new, levering, "ok", {**audit, "event_id": event.event_id})
    observability.record_transition(expected, new, moved["in_state"], moved["since_receipt"])
    return event


async def received(conn: asyncpg.Connection, levering_id: uuid.UUID | str) -> LeveringEvent:
    """Announce a delivery that was just recorded as `ontvangen` (its first state, set by the
    INSERT, not by a transition): its `LeveringEvent` into the outbox in the caller's
    transaction, so that later stages (publish's supersede) learn of it."""
    if not conn.is_in_transaction():
        raise RuntimeError("received() runs inside the caller's transaction")
    event = _event(uuid.UUID(str(levering_id)), "ontvangen")
    await outbox.enqueue(
        conn, topics.LEVERINGEN, event.key(), event, event_id=uuid.UUID(event.event_id)
    )
    return event


def _event(levering_id: uuid.UUID, state: str) -> LeveringEvent:
    return LeveringEvent(
        event_id=str(uuid.uuid4()),
        levering_id=str(levering_id),
        state=state,
        occurred_at=dt.datetime.now(dt.UTC).isoformat(),
    )


async def _audit(
    conn: asyncpg.Connection,
    actor: str,
    new: str,
    levering_id: uuid.UUID,
    uitkomst: str,
    details: Mapping[str, Any],
) -> None:
    await audit(conn, actor, f"levering.{new}", uitkomst, levering_id, **details)
