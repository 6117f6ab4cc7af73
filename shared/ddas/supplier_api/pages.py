"""Paging a DDAS delivery over the pull API, both ways.

A page holds `pageSize` records (trajectories), counted over the whole document in file order;
its `gegevens` is a complete Uitwisselmodel: the root members, and each levering that has
trajectories on the page (its members, and its slice of `schuldhulptrajecten`). A levering
without trajectories goes on the page where its position falls (the last page when it is at the
end). `Pager` cuts a file into such pages (the reference server); `assemble` puts pages back
together (the collector): the first levering of a page continues the last levering of the
page before when their members are equal. The trajectories travel as their JSON text, never
re-encoded, and the result is compacted (`msgspec.json.format`), so the same data gives the
same bytes however the supplier formats its pages.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
from msgspec import Raw

from ddas.domain.reader import ABSENT, ArrayShape, Document, UnreadableFile, parse_document

__all__ = ["MAX_PAGE_SIZE", "Assembled", "PageError", "Pager", "assemble", "read_page"]

MAX_PAGE_SIZE: Final = 25_000
LEVERINGEN: Final = "leveringen"
TRAJECTEN: Final = "schuldhulptrajecten"


class PageError(Exception):
    """A page that cannot be used. `code` is stable; `str(exc)` a Dutch one-line reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _Lev:
    members: dict[str, Any]  # without schuldhulptrajecten
    trajecten: list[Raw] | None  # None: no array (absent, or the value is in `members`)
    start: int  # position of its first trajectory in the whole document


class Pager:
    """A DDAS file cut into pages of at most `page_size` trajectories (page numbers from 1)."""

    def __init__(self, raw: bytes) -> None:
        document: Document = parse_document(raw)  # raises UnreadableFile
        if not isinstance(document.header.leveringen, ArrayShape):
            raise UnreadableFile("het bestand heeft geen lijst 'leveringen' om te pagineren")
        self.root: dict[str, Any] = dict(document.header.data)
        self.leveringen: list[_Lev] = []
        position = 0
        for header, raws in document.raw_leveringen():
            if type(header.data) is not dict:
                raise UnreadableFile(f"{header.pointer} is geen JSON-object")
            members = dict(header.data)
            trajecten: list[Raw] | None = None
            if isinstance(header.trajecten, ArrayShape):
                trajecten = list(raws)
            elif header.trajecten is not ABSENT:
                members[TRAJECTEN] = header.trajecten
            self.leveringen.append(_Lev(members, trajecten, position))
            position += len(trajecten or ())
        self.total_records = position
        self.periode = (self.root.get("startdatumLevering"), self.root.get("einddatumLevering"))

    def total_pages(self, page_size: int) -> int:
        return max(1, math.ceil(self.total_records / page_size))

    def page(self, number: int, page_size: int) -> dict[str, Any]:
        """Page `number`'s `gegevens` (trajectories as msgspec.Raw), for msgspec to encode."""
        last = self.total_pages(page_size)
        if not 1 <= number <= last:
            raise IndexError(number)
        s, e = (number - 1) * page_size, min(number * page_size, self.total_records)
        leveringen = []
        for lev in self.leveringen:
            n = len(lev.trajecten or ())
            a, b = lev.start, lev.start + n
            if n:
                if not (a < e and b > s):
                    continue
            elif not (s <= a < e or (a >= e and number == last)):
                continue
            out = dict(lev.members)
            if lev.trajecten is not None:
                out[TRAJECTEN] = lev.trajecten[max(s, a) - a : min(e, b) - a]
            leveringen.append(out)
        return {**self.root, LEVERINGEN: leveringen}


# -- the collector's side ---------------------------------------------------------------------


class _Paginering(msgspec.Struct, frozen=True):
    pageSize: int
    currentPage: int
    totalPages: int
    totalRecords: int


class _Response(msgspec.Struct, frozen=True):
    gegevens: Raw
    paginering: _Paginering | None = None


_RESPONSE: Final = msgspec.json.Decoder(_Response)
_OBJECT: Final = msgspec.json.Decoder(dict[str, Raw])
_ARRAY: Final = msgspec.json.Decoder(list[Raw])
_VALUE: Final = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Page:
    """One page as received: its number, the paging it announces, its `gegevens` taken apart."""

    number: int
    page_size: int | None
    total_pages: int
    total_records: int | None
    root: dict[str, Any]
    leveringen: list[tuple[dict[str, Any], list[Raw] | None]]

    @property
    def records(self) -> int:
        return sum(len(t or ()) for _, t in self.leveringen)


def read_page(body: bytes, expected: int) -> Page:
    """Take a page's JSON body apart. Raises PageError."""
    try:
        response = _RESPONSE.decode(body)
        gegevens = _OBJECT.decode(response.gegevens)
    except msgspec.ValidationError as exc:
        raise PageError(
            "pagina-ongeldig", f"Pagina {expected} heeft niet de vorm van de API: {exc}."
        ) from None
    except msgspec.DecodeError:
        raise PageError("pagina-ongeldig", f"Pagina {expected} is geen leesbare JSON.") from None
    p = response.paginering
    if p is not None and p.currentPage != expected:
        raise PageError(
            "paginering-onjuist", f"Pagina {expected} gevraagd, pagina {p.currentPage} ontvangen."
        )
    lev_raw = gegevens.pop(LEVERINGEN, None)
    root = {k: _VALUE.decode(v) for k, v in gegevens.items()}
    leveringen: list[tuple[dict[str, Any], list[Raw] | None]] = []
    try:
        for raw in _ARRAY.decode(lev_raw) if lev_raw is not None else []:
            members = _OBJECT.decode(raw)
            t_raw = members.pop(TRAJECTEN, None)
            header = {k: _VALUE.decode(v) for k, v in members.items()}
            trajecten: list[Raw] | None = None
            if t_raw is not None:
                try:
                    trajecten = _ARRAY.decode(t_raw)
                except msgspec.ValidationError:
                    header[TRAJECTEN] = _VALUE.decode(t_raw)
            leveringen.append((header, trajecten))
    except msgspec.ValidationError:
        raise PageError(
            "pagina-ongeldig",
            f"Pagina {expected}: 'leveringen' is geen lijst van objecten; zo is niet vast te "
            "stellen welke trajecten bij welke levering horen.",
        ) from None
    return Page(
        expected,
        p.pageSize if p else None,
        p.totalPages if p else 1,
        p.totalRecords if p else None,
        root,
        leveringen,
    )


@dataclass(frozen=True, slots=True)
class Assembled:
    raw: bytes
    records: int


def assemble(pages: Sequence[Page]) -> Assembled:
    """The delivery the pages make together, as compact JSON. Raises PageError when they do not
    fit together (a different root, other paging, records missing)."""
    if not pages:
        raise PageError("geen-paginas", "Er zijn geen pagina's om samen te voegen.")
    first = pages[0]
    for n, page in enumerate(pages, start=1):
        if page.number != n:
            raise PageError("paginering-onjuist", f"Pagina {n} ontbreekt.")
        if page.root != first.root:
            raise PageError(
                "paginas-inconsistent",
                f"Pagina {n} heeft andere leveringsgegevens (startdatum, einddatum, "
                "aanleverdatum of leverancierscode) dan pagina 1.",
            )
        if (page.total_pages, page.total_records) != (first.total_pages, first.total_records):
            raise PageError(
                "paginering-onjuist", f"Pagina {n} noemt een ander aantal pagina's of records."
            )
    if len(pages) != first.total_pages:
        raise PageError(
            "paginering-onjuist", f"{len(pages)} pagina's ontvangen, {first.total_pages} verwacht."
        )
    leveringen: list[tuple[dict[str, Any], list[Raw] | None]] = []
    for page in pages:
        for i, (members, trajecten) in enumerate(page.leveringen):
            if (
                i == 0
                and leveringen
                and leveringen[-1][0] == members
                and leveringen[-1][1] is not None
                and trajecten is not None
            ):
                leveringen[-1][1].extend(trajecten)
            else:
                leveringen.append((members, list(trajecten) if trajecten is not None else None))
    records = sum(len(t or ()) for _, t in leveringen)
    if first.total_records is not None and records != first.total_records:
        raise PageError(
            "records-onvolledig",
            f"De pagina's bevatten samen {records} trajecten; aangekondigd waren er "
            f"{first.total_records}.",
        )
    document = {
        **first.root,
        LEVERINGEN: [
            {**members, TRAJECTEN: trajecten} if trajecten is not None else members
            for members, trajecten in leveringen
        ],
    }
    return Assembled(msgspec.json.format(msgspec.json.encode(document), indent=-1), records)
