"""Building a delivery's op-orde-rapport (OOR) from what validate stored: validate counted each
chunk's part of the OOR's own figures (`ddas.domain.oor.OorDeel`, in `validatie_chunks.oor`,
where it had the trajectories decoded) and the two DDAS-app tables (`validatie.tabellen`); this
module merges the parts of the delivery (`Oor.voeg_toe`, in any order) and adds the tables
(`Oor.result`): the same code and the same figures as `ddas check`, without reading or counting a
trajectory again. The verdict and the findings per rule come from `validatie` and
`bevindingen`. Nothing is counted here: this module reads, merges, and arranges the result into
the report's JSON (shape: README.md, "The JSON").

The parts (some 100 for a national delivery) are decoded and merged in a worker thread, so that
the event loop keeps serving (health, heartbeats) meanwhile.
"""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import msgspec

from ddas.domain import gemeenten
from ddas.domain.oor import Oor, OorDeel, OorResultaat
from ddas.domain.tables import Periode, Totalen

FORMAAT: Final = 1
"""The version of the report's JSON shape (README.md)."""

# Selected by the delivery's id: the rows of a delivery that is validated (and so recorded);
# staged rows of unrecorded submissions have other ids (docs/pipeline.md). Any order: the parts
# merge in any order.
_DELEN: Final = "SELECT oor FROM validatie_chunks WHERE levering_id = $1"


class NotValidated(Exception):
    """The delivery has no completed validation (nothing to report on yet)."""


class PartsMissing(Exception):
    """Chunks of the delivery have no OOR part: stored before migration 0010 (or by an older
    validate). Its report cannot be made from what is stored; the delivery must be submitted
    again."""


@dataclass(frozen=True, slots=True)
class Gebouwd:
    oor: dict[str, Any]
    trajecten: int
    seconds: float


def naam(code: str | None) -> str:
    """A row's display name: the municipality's name, or what the code is when it is none."""
    if code is None:
        return "Onbekend (geen gemeentecode)"
    if code == gemeenten.ONBEKEND:
        return "Onbekend"
    return gemeenten.naam(code) or f"Onbekende code {code}"


def _merge(periode: Periode | None, delen: Sequence[bytes], tabellen: Totalen) -> OorResultaat:
    """The delivery's figures: its chunks' parts merged, with the tables of the completion."""
    oor = Oor(periode, tabellen=False)
    gc_was_enabled = gc.isenabled()
    gc.disable()  # many small acyclic objects (the client sets): the collector only costs time
    try:
        for deel in delen:
            oor.voeg_toe(OorDeel.decode(deel))
        return oor.result(tabellen)
    finally:
        if gc_was_enabled:
            gc.enable()


async def build(conn: asyncpg.Connection, levering_id: uuid.UUID) -> Gebouwd:
    """The OOR of a validated (or rejected) delivery. Runs inside the caller's transaction (the
    reads see one snapshot). Raises NotValidated or PartsMissing."""
    started = time.perf_counter()
    lev = await conn.fetchrow(
        "SELECT l.id, l.soort, l.organisatie, l.leverancier, l.code_gegevensleverancier, "
        "l.ontvangen_op, v.uitkomst, v.afkeuring, v.periode_start, v.periode_eind, "
        "v.samenvatting::text AS samenvatting, v.tabellen::text AS tabellen, v.chunks "
        "FROM leveringen l JOIN validatie v ON v.levering_id = l.id "
        "WHERE l.id = $1 AND v.uitkomst IS NOT NULL",
        levering_id,
    )
    if lev is None:
        raise NotValidated(f"delivery {levering_id} has no completed validation")
    periode = (
        Periode(lev["periode_start"], lev["periode_eind"])
        if lev["periode_start"] and lev["periode_eind"]
        else None
    )
    regels = await conn.fetch(
        "SELECT DISTINCT ON (code, ernst) code, ernst, "
        "count(*) OVER (PARTITION BY code, ernst) AS aantal, pointer, message "
        "FROM bevindingen WHERE levering_id = $1 "
        "ORDER BY code, ernst, fase, levering_index, traject_index, volgnummer",
        levering_id,
    )

    rows = await conn.fetch(_DELEN, levering_id)
    missing = lev["chunks"] - sum(1 for r in rows if r["oor"] is not None)
    if missing:
        raise PartsMissing(
            f"delivery {levering_id}: {missing} of its {lev['chunks']} chunks have no OOR part "
            "(stored before migration 0010 or by an older validate); submit it again"
        )
    tabellen = Totalen.from_dict(msgspec.json.decode(lev["tabellen"]))
    delen = [r["oor"] for r in rows]
    del rows
    result = await asyncio.to_thread(_merge, periode, delen, tabellen)
    del delen
    n = result.tabellen.totaal.trajecten  # the trajectories counted (JSON objects)

    samenvatting = msgspec.json.decode(lev["samenvatting"] or "{}")
    fouten = int(samenvatting.get("fouten", 0))
    per_regel = [
        {
            "code": r["code"],
            "ernst": r["ernst"],
            "aantal": r["aantal"],
            "voorbeeld": {"pointer": r["pointer"], "melding": r["message"]},
        }
        for r in sorted(regels, key=lambda r: (r["ernst"] != "fout", -r["aantal"], r["code"]))
    ]
    doc = result.as_dict()
    for rij in doc["gemeenten"]:
        rij["naam"] = naam(rij["gemeentecode"])
    for rij in doc["tabellen"]["gemeenten"]:
        rij["naam"] = naam(rij["gemeentecode"])
    organisatie = lev["organisatie"]
    oor_doc = {
        "formaat": FORMAAT,
        "levering": {
            "id": str(lev["id"]),
            "soort": lev["soort"],
            "organisatie": organisatie,
            "organisatie_naam": gemeenten.naam(organisatie) if len(organisatie) == 4 else None,
            "leverancier": lev["leverancier"] or lev["code_gegevensleverancier"],
            "ontvangen_op": lev["ontvangen_op"].isoformat(),
            "trajecten": n,
        },
        "periode": doc["periode"],
        "validatie": {
            "uitkomst": lev["uitkomst"],
            "afkeuring": lev["afkeuring"],
            "op_orde": lev["uitkomst"] == "gevalideerd" and fouten == 0,
            "fouten": fouten,
            "waarschuwingen": int(samenvatting.get("waarschuwingen", 0)),
            "per_regel": per_regel,
        },
        "tabellen": doc["tabellen"],
        "gemeenten": doc["gemeenten"],
        "totaal": doc["totaal"],
    }
    return Gebouwd(oor_doc, n, time.perf_counter() - started)
