"""What publish puts on `ddas.statistieken.v1` (key: the period, `<start>/<eind>`): a period's
published statistics, whole, each time a delivery for the period is published (`versie` counts
up). A consumer keeps the highest version per period. Disclosure-protected: a cell that is not
published has `waarde` null and says why in `status` (ddas.domain.disclosure)."""

from __future__ import annotations

import msgspec


class Cel(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    gemeentecode: str
    """A gemeentecode, `onbekend`, or `totaal` (the sum over the municipalities)."""
    tabel: str
    kolom: str
    waarde: int | float | None
    status: str


class Periode(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    start: str
    eind: str


class Statistieken(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    event_id: str
    periode: Periode
    versie: int
    aanleiding: str
    """The delivery whose publication made this version."""
    gepubliceerd_op: str
    cellen: list[Cel]

    def key(self) -> str:
        return f"{self.periode.start}/{self.periode.eind}"


def decode_statistieken(data: bytes | str) -> Statistieken:
    return msgspec.json.decode(data, type=Statistieken)
